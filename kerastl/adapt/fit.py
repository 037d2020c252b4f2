"""`kerastl.adapt.fit`: train on labelled source images, adapt to unlabelled target images.

The model stays a plain kerastl model (image -> preprocessing -> backbone ->
head): every method changes its weights only (BatchNormalization
statistics, the head, the top blocks), so `kerastl.export`, ``model.save``
and `kerastl.load_predictor` work unchanged. Every method reads the same
`kerastl.training.FeatureCache`, so the backbone runs once per dataset and
set of frozen weights.
"""

from __future__ import annotations

import sys
import time
import types

from kerastl._validation import check_bool, check_float, check_int, check_one_of
from kerastl.adapt import alignment, batchnorm, daume
from kerastl.adapt import features as feats
from kerastl.adapt.data import as_source, as_source_pair, as_target
from kerastl.adapt.diagnosis import shift_report
from kerastl.adapt.methods import AUTO_ORDER, CORAL_WEIGHTS, DEEP, LABELLED_TARGET, METHODS
from kerastl.adapt.report import AdaptReport, Candidate

SOURCE_TOLERANCE = 0.01


def _run_method(method, model, train, val, target, labelled, cache, opts) -> dict:
    seed = opts["seed"]
    if method == "adabn":
        return batchnorm.adabn(model, target, source=train, source_validation=val,
                               feature_cache=cache, seed=seed)
    if method == "tent":
        return batchnorm.tent(model, target, source=train, source_validation=val,
                              trainable_blocks=opts["trainable_blocks"] or 4,
                              epochs=opts["epochs"] or 3,
                              learning_rate=opts["learning_rate"] or 1e-3,
                              feature_cache=cache, seed=seed)
    if method == "coral":
        return alignment.coral(model, train, target, source_validation=val, feature_cache=cache,
                               coloured_weight=opts.get("coloured_weight", 1.0), seed=seed)
    if method in DEEP:
        fn = {"deep_coral": alignment.deep_coral, "mmd": alignment.mmd,
              "dann": alignment.dann}[method]
        blocks = 2 if opts["trainable_blocks"] is None else opts["trainable_blocks"]
        return fn(model, train, target, trainable_blocks=blocks, epochs=opts["epochs"] or 10,
                  learning_rate=opts["learning_rate"] or 1e-4, weight=opts["alignment_weight"],
                  feature_cache=cache, seed=seed)
    if method == "daume":
        return daume.daume(model, train, labelled, feature_cache=cache, seed=seed)
    return daume.fine_tune_target(model, labelled, epochs=opts["epochs"] or 30,
                                  learning_rate=opts["learning_rate"] or 1e-3,
                                  feature_cache=cache, seed=seed)


def _check(method, trainable_blocks, epochs, learning_rate, alignment_weight, train_source,
           target_labelled):
    check_one_of("method", method, METHODS)
    check_bool("train_source", train_source)
    if trainable_blocks is not None:
        check_int("trainable_blocks", trainable_blocks, minimum=0)
    if epochs is not None:
        check_int("epochs", epochs, minimum=1)
    if learning_rate is not None:
        check_float("learning_rate", learning_rate, minimum=0.0, min_inclusive=False)
    check_float("alignment_weight", alignment_weight, minimum=0.0)
    if method in LABELLED_TARGET and target_labelled is None:
        raise ValueError(f"method={method!r} needs a few labelled target images: pass "
                         "target_labelled=(images, labels). Received: target_labelled=None")


def fit(model, source_train, target, *, method="auto", source_validation=None,
        target_labelled=None, train_source=True, source_recipe="auto", trainable_blocks=None,
        epochs=None, learning_rate=None, alignment_weight=1.0, auto_methods=AUTO_ORDER,
        feature_cache=None, batch_size=32, seed=None, verbose=1) -> AdaptReport:
    """Trains `model` on labelled source images and adapts it to unlabelled target images.

    Methods (see the `kerastl.adapt` modules): ``"source_only"`` (no
    adaptation), ``"adabn"``, ``"tent"`` (BatchNormalization statistics /
    affine parameters; the source images only refit the head under source
    statistics first), ``"coral"`` (closed form on features; the head
    fitted on the source features and their copies coloured like the
    target), ``"deep_coral"``, ``"mmd"``, ``"dann"`` (head + top blocks on
    cached activations), ``"daume"`` and ``"fine_tune_target"`` (need
    `target_labelled`), and ``"auto"``: `kerastl.adapt.shift_report` first; no
    shift means no adaptation (the report says so); otherwise the methods of
    `AUTO_ORDER` are tried in turn and the first whose source validation
    accuracy is at most 1 point below the source-only model's is kept (none:
    the source-only model is returned); ``"coral"`` is tried at each
    coloured-copy weight of `CORAL_WEIGHTS` (1, 0.5, 0.25), strongest first.
    The methods and their order are `auto_methods`.

    Args:
        model: A model from `kerastl.build` (a classifier).
        source_train: Labelled source training data (`kerastl.fit`'s forms; a
            `kerastl.data.ImageData` also gives `source_validation`).
        target: Unlabelled target images: a folder (class folders inside are
            read as images; their names are ignored, with a warning), an
            array, or a dataset (labels ignored, with a warning).
        method: One of `METHODS`.
        source_validation: Labelled source validation data: chooses the head's
            strength and is the split the 1-point rule of ``"auto"`` is checked on.
        target_labelled: A few labelled target images (``"daume"``, ``"fine_tune_target"``).
        train_source: Train on the source first with `kerastl.fit` (recipe
            `source_recipe`, the head not refitted on the validation split so that
            the split stays held out). False: `model` is already trained on it.
        source_recipe: The `kerastl.fit` recipe of the source training.
        trainable_blocks: Top blocks the deep methods (default 2) and TENT
            (default 4) train.
        epochs: Epochs of the deep methods (default 10), TENT (3) and
            ``"fine_tune_target"`` (30).
        learning_rate: Their Adam rate (default 1e-4 deep, 1e-3 TENT and fine-tuning).
        alignment_weight: Weight of the deep methods' alignment term.
        auto_methods: The methods ``"auto"`` tries, in order (default `AUTO_ORDER`).
        feature_cache: A `kerastl.training.FeatureCache` to share between calls.
        batch_size: Batch size for arrays and folders.
        seed: Seed of training, shuffling and folds.
        verbose: 0 (silent) or 1 (the source training's output and the report).

    Returns:
        A `kerastl.adapt.AdaptReport`.

    Example:
        >>> data = kerastl.data.from_directory("studio_photos/", image_size=224)
        >>> model = kerastl.build("mobilenet_v2", data.num_classes, class_names=data.class_names)
        >>> report = kerastl.adapt.fit(model, data, "phone_photos/", method="auto")
        >>> print(report)
    """
    # The package's lazy name `fit` first: importing the submodule ``kerastl.training.fit``
    # any other way (also through the lazy ``compile_for_evaluation``) leaves the package
    # attribute ``kerastl.training.fit``, and so ``kerastl.fit``, bound to the module.
    from kerastl.training import fit as fit_source
    from kerastl.training import compile_for_evaluation

    _check(method, trainable_blocks, epochs, learning_rate, alignment_weight, train_source,
           target_labelled)
    auto_methods = _check_auto(auto_methods)
    verbose = check_int("verbose", verbose, minimum=0, maximum=2)
    started = time.perf_counter()
    cache = feats.check_cache(feature_cache)
    feats.check_classifier(model)
    source_train, source_validation = as_source_pair(source_train, source_validation)
    target = as_target(target, input_shape=model.input_shape, batch_size=batch_size)
    report = AdaptReport(requested=method)
    if train_source:
        report.source_fit = fit_source(model, source_train, source_validation,
                                       recipe=source_recipe, refit_head=False,
                                       feature_cache=cache, batch_size=batch_size, seed=seed,
                                       verbose=verbose)
    train = as_source("source_train", source_train, model=model, batch_size=batch_size)
    val = as_source("source_validation", source_validation, model=model, batch_size=batch_size)
    base = None if val is None else feats.accuracy(model, val, cache)
    report.source_only_validation_accuracy = base
    report.shift = shift_report(model, train, target, feature_cache=cache, seed=seed or 0)
    opts = {"seed": seed, "trainable_blocks": trainable_blocks, "epochs": epochs,
            "learning_rate": learning_rate, "alignment_weight": alignment_weight}
    if method == "auto":
        _auto(report, model, train, val, target, cache, opts, base, auto_methods)
    elif method == "source_only":
        report.message = "source_only: no adaptation asked for"
    else:
        candidate = _try(method, model, train, val, target, target_labelled, cache, opts)
        candidate.kept, candidate.reason = True, "asked for"
        report.candidates.append(candidate)
        report.method = method
        report.message = f"{method}: asked for"
    compile_for_evaluation(model)
    report.seconds = time.perf_counter() - started
    report.backbone_batches = cache.backbone_batches
    if verbose:
        print(report)
    return report


def _try(method, model, train, val, target, labelled, cache, opts) -> Candidate:
    start = time.perf_counter()
    details = _run_method(method, model, train, val, target, labelled, cache, opts)
    accuracy = None if val is None else feats.accuracy(model, val, cache)
    return Candidate(method, accuracy, False, "", time.perf_counter() - start, details or {})


def _check_auto(auto_methods) -> tuple:
    allowed = [m for m in METHODS if m not in ("auto", "source_only") + LABELLED_TARGET]
    if isinstance(auto_methods, str) or not isinstance(auto_methods, (tuple, list)):
        raise ValueError(f"`auto_methods` must be a tuple of method names from {allowed}. "
                         f"Received: auto_methods={auto_methods!r}")
    for name in auto_methods:
        check_one_of("auto_methods", name, allowed)
    return tuple(auto_methods)


def _auto_candidates(order):
    """(method, options) in the order "auto" tries them: CORAL at each of `CORAL_WEIGHTS`."""
    for method in order:
        if method == "coral":
            yield from ((method, {"coloured_weight": w}) for w in CORAL_WEIGHTS)
        else:
            yield method, {}


def _auto(report, model, train, val, target, cache, opts, base, order) -> None:
    if not report.shift.shift:
        report.adaptation_needed = False
        report.message = f"source_only: {report.shift.verdict}"
        return
    weights = model.get_weights()
    for method, options in _auto_candidates(order):
        if method == "adabn" and not batchnorm.batch_norm_layers([model]):
            continue
        candidate = _try(method, model, train, val, target, None, cache, {**opts, **options})
        report.candidates.append(candidate)
        acc = candidate.source_validation_accuracy
        if base is None or acc >= base - SOURCE_TOLERANCE - 1e-9:
            candidate.kept = True
            candidate.reason = ("no source validation data to check it on" if base is None else
                                f"source validation {acc:.4f} >= source-only {base:.4f} - 0.01")
            report.method = method
            setting = "".join(f", {k}={v:g}" for k, v in options.items())
            report.message = (f"{method}{setting}: the first of {order} within 1 point on "
                              "source")
            return
        candidate.reason = f"source validation {acc:.4f} < source-only {base:.4f} - 0.01"
        model.set_weights(weights)
    report.message = ("source_only: every adaptation lost more than 1 point of source "
                      "validation accuracy")


__all__ = ["AUTO_ORDER", "METHODS", "fit"]


class _CallableModule(types.ModuleType):
    """Makes the module `kerastl.adapt.fit` callable as the function `fit`: importing the
    submodule sets the package attribute of the same name to it."""

    __call__ = staticmethod(fit)


sys.modules[__name__].__class__ = _CallableModule
