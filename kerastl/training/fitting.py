"""`kerastl.fit`: train a kerastl model with a transfer-learning recipe."""

from __future__ import annotations

import contextlib
import time
import warnings

import keras
import numpy as np

from kerastl.distribute import resolve_strategy
from kerastl.freezing import check_trainable_blocks
from kerastl.layers import task_loss, task_metrics
from kerastl.model import get_blocks, get_head, model_info, model_spec
from kerastl.training.cache import DEFAULT_MEMORY_LIMIT, FeatureCache
from kerastl.training.checkpoint import Checkpoint
from kerastl.training.inputs import as_data, check_inputs, class_weight_vector, label_transform
from kerastl.training.inputs import loss_and_metrics
from kerastl.training.options import (DEFAULT_FINE_TUNE_INTERPOLATION, check_callbacks,
                                      check_options)
from kerastl.training.recipes import plan_stages, resolve_recipe
from kerastl.training.report import FitReport
from kerastl.training.selection import run_stages
from kerastl.training.stage import AUGMENTATION_LAYER, Context, default_augmenter, run_stage


def fit(model, train, validation_data=None, *, recipe="auto", peft=None, head_solver="auto",
        refit_head=True, epochs=None,
        fine_tune_epochs=None, learning_rate=None, backbone_learning_rate=None,
        layer_decay=None, trainable_blocks=None, batch_size=32, shuffle=True,
        cache_features=True, augment_passes=None, feature_cache=None,
        cache_memory_limit=DEFAULT_MEMORY_LIMIT, label_smoothing=0.1, weight_decay=0.0,
        class_weight=None, early_stopping=True, callbacks=None, checkpoint_dir=None,
        dtype_policy=None, jit_compile=False, strategy=None, bn_training=False,
        fine_tune_interpolation=DEFAULT_FINE_TUNE_INTERPOLATION, restore_best_weights=None,
        seed=None, verbose=1, mixed_precision=None) -> FitReport:
    """Trains a model from `kerastl.build` with a transfer-learning recipe.

    Stages whose backbone is frozen train on cached features: the backbone
    runs once over the data, then the head is fitted on its pooled features,
    by default in closed form as an L2-regularised linear model whose strength
    is chosen by k-fold cross-validation over the training and validation
    data together (`kerastl.training.linear_head`).
    Stages that unfreeze the top blocks train on the cached output of the
    frozen bottom blocks, so each step runs only the top blocks. The first
    stage ends at its best validation epoch, later stages at their last
    epoch (`restore_best_weights`); the model is compiled for its task
    with plain labels (``model.evaluate(data.validation)`` works). A later
    stage is kept only when it clearly beats the stages before it on the
    validation data (accuracy: a sign test on the examples they disagree on,
    `kerastl.training.selection.keeps`; a strict improvement for loss
    monitors); otherwise their weights are restored, and when the kept stage
    misses fewer than two validation examples the rest are not run. Every
    choice (strength, epoch, stage) uses training and validation data only; the report
    says what chose what (``FitReport.selected_on``, ``StageReport.selected_on``).

    Recipes (see `kerastl.training.recipes`): ``"feature_extraction"``,
    ``"fine_tune"``, ``"two_stage"``, ``"progressive"``, and ``"auto"``: with
    validation data, the head and then a fine-tuning stage that is kept only
    when it clearly beats the head on validation (``"two_stage"``); without, the
    head alone, chosen by cross-validation (``"feature_extraction"``).

    Args:
        model: A model from `kerastl.build` (or loaded from its ``.keras`` file).
        train: Training data (``{task: data}`` for a multi-task model, see
            `kerastl.multitask.fit`): a `tf.data.Dataset` of ``(images, labels)`` (or
            ``(images, labels, sample_weights)``) batches with float32 RGB images
            in [0, 255], a tuple of arrays ``(x, y)``, or a `kerastl.data.ImageData`
            (its validation split is used when `validation_data` is None).
        validation_data: Validation data in the same forms, or None (then the
            head's strength is chosen by k-fold cross-validation on the
            training data, and fine-tuning stages keep their last epoch).
        recipe: ``"auto"``, ``"feature_extraction"``, ``"fine_tune"``,
            ``"two_stage"`` or ``"progressive"``.
        peft: None, or parameter-efficient fine-tuning: ``"lora"``, ``"bitfit"``,
            ``"bn_affine"`` or a `kerastl.peft.PeftConfig` (rank, blocks). The model
            gets `kerastl.peft.apply`, then the head and a stage training only the
            PEFT variables and the head (``"auto"`` is ``"two_stage"`` here).
        head_solver: How head-only stages train: ``"linear"`` (closed form on
            cached features, strength chosen on held-out data; needs
            `cache_features` and a head without hidden layers), ``"gradient"``
            (epochs of Adam with early stopping) or ``"auto"`` (``"linear"``
            where it applies).
        refit_head: When the model ends at a linear head, refit it on training +
            validation data at its chosen strength once every choice is made
            (the report keeps the validation metrics from before the refit;
            ``StageReport.refit_on`` records it). False: the head stays fitted
            on the training data alone.
        epochs: Epochs of the first stage when it trains by gradient (default 30
            on cached features, 10 on images; for ``"fine_tune"`` 6).
        fine_tune_epochs: Epochs of each later stage (default 6).
        learning_rate: Peak learning rate of every stage (default 1e-3). Each
            stage warms up for one epoch from a tenth of it (not the head stage),
            then decays it to 0 with a cosine.
        backbone_learning_rate: Peak rate of the top trainable block (default:
            the stage's rate; for ``"fine_tune"``, which trains a new head and
            the blocks together, a tenth of `learning_rate`).
        layer_decay: Factor in (0, 1] applied per block below the top one.
        trainable_blocks: Unfreeze depth of the fine-tuning stage(s): an int or
            ``"all"`` (default 4).
        batch_size: Batch size for array inputs (datasets keep theirs).
        shuffle: Shuffle cached features and arrays every epoch.
        cache_features: Train frozen-backbone stages on cached activations.
        augment_passes: Extra cached passes over the training images with the
            model's ``"augmentation"`` layer (or flip + zoom when it has none);
            each epoch draws every image from a random pass. Default 0.
        feature_cache: A `kerastl.training.FeatureCache` to share between calls.
        cache_memory_limit: Bytes of cached activations kept in memory (default
            2 GiB); larger caches go to memory-mapped files.
        label_smoothing: Label smoothing of classification losses (default 0.1).
        weight_decay: Decoupled weight decay of `kerastl.training.ScaledAdamW`.
        class_weight: None, ``"balanced"``, ``"sqrt"`` or ``{class_index: weight}``.
        early_stopping: True (patience 10 epochs on cached stages, 5 otherwise),
            False, or the patience as an int, for stages that end at their best
            epoch (see `restore_best_weights`).
        restore_best_weights: None (default): the first stage ends at its best
            validation epoch and every later stage at its last epoch, which is
            what is compared with the stages before it (a best epoch picked on
            the same validation images would win that comparison too often);
            True: every stage ends at its best epoch; False: every stage at its
            last (no early stopping then).
        callbacks: Extra `keras.callbacks.Callback` objects, passed to every stage
            (on cached stages their ``model`` is the trained top part).
        checkpoint_dir: Folder that makes the run resumable: called again with the
            same arguments after a crash, `fit` goes on where it stopped.
        dtype_policy: None (the model's policy), ``"float32"``,
            ``"mixed_float16"`` (GPUs) or ``"mixed_bfloat16"`` (TPUs, recent CPUs).
            The layers compute in this policy during `fit` and get their own
            policy back afterwards; the output layer stays float32.
        jit_compile: Compile training steps with XLA (False, True or ``"auto"``).
        strategy: A `tf.distribute.Strategy` or a `kerastl.distribute.get_strategy`
            kind (default: the strategy the model was built in).
        bn_training: Let BatchNormalization layers of trainable blocks train.
        fine_tune_interpolation: Where a fine-tuning stage that follows the head
            ends, between its starting weights (0) and its fine-tuned weights
            (1): every trained variable becomes ``(1 - a) * start + a *
            fine_tuned`` (WiSE-FT, Wortsman et al. 2022), and that is what is
            scored on validation and kept or discarded. A float in (0, 1];
            default 1.0, the fine-tuned weights (0.5 was measured worse on
            both datasets: benchmarks/README.md, "fine-tuning study"). Stages
            of `peft` and the ``"fine_tune"`` recipe's single stage (a new
            head) are never mixed. ``StageReport.interpolation`` records it.
        seed: Seed of weights, shuffling and augmentation (reproducible runs).
        verbose: 0 (silent), 1 (progress bars and the stage table), 2 (one line per epoch).
        mixed_precision: Deprecated name of `dtype_policy`.

    Returns:
        A `kerastl.training.FitReport`.

    Example:
        >>> data = kerastl.data.from_directory("flowers", image_size=160)
        >>> model = kerastl.build("mobilenet_v2", data.num_classes, input_shape=160)
        >>> report = kerastl.fit(model, data)
        >>> print(report)
    """
    if mixed_precision is not None:
        warnings.warn("`mixed_precision` is deprecated; use `dtype_policy` (Keras's name).",
                      FutureWarning, stacklevel=2)
        if dtype_policy is not None and dtype_policy != mixed_precision:
            raise ValueError("Pass `dtype_policy` only (`mixed_precision` is its deprecated "
                             f"name). Received: dtype_policy={dtype_policy!r}, "
                             f"mixed_precision={mixed_precision!r}")
        dtype_policy = mixed_precision
    opts = check_options(
        recipe=recipe, head_solver=head_solver, refit_head=refit_head,
        epochs=epochs, fine_tune_epochs=fine_tune_epochs,
        learning_rate=learning_rate, backbone_learning_rate=backbone_learning_rate,
        layer_decay=layer_decay, trainable_blocks=trainable_blocks, batch_size=batch_size,
        shuffle=shuffle, cache_features=cache_features, augment_passes=augment_passes,
        cache_memory_limit=cache_memory_limit, label_smoothing=label_smoothing,
        weight_decay=weight_decay, early_stopping=early_stopping, checkpoint_dir=checkpoint_dir,
        dtype_policy=dtype_policy, jit_compile=jit_compile, bn_training=bn_training,
        fine_tune_interpolation=fine_tune_interpolation,
        restore_best_weights=restore_best_weights, seed=seed, verbose=verbose)
    if isinstance(train, dict):  # one dataset per task: a multi-task model
        from kerastl.multitask.fit import fit_with_options

        return fit_with_options(model, train, validation_data, opts, peft=peft,
                                feature_cache=feature_cache)
    user_callbacks = check_callbacks(callbacks)
    if feature_cache is not None and not isinstance(feature_cache, FeatureCache):
        raise ValueError("`feature_cache` must be a kerastl.training.FeatureCache or None. "
                         f"Received: feature_cache={feature_cache!r}")
    if feature_cache is not None and not opts.cache_features:
        raise ValueError("`feature_cache` needs cache_features=True. Received: "
                         "cache_features=False with a feature_cache")
    train, validation_data, known = _unpack(train, validation_data)
    info = model_info(model)
    peft_run = None if peft is None else _peft_prepare(model, peft, opts)
    strategy = resolve_strategy(strategy, model)
    started = time.perf_counter()
    if opts.seed is not None:
        keras.utils.set_random_seed(opts.seed)
        reseed_layers(model, opts.seed)
    ctx, stages, report = _setup(model, info, train, validation_data, opts, feature_cache,
                                 strategy, user_callbacks, class_weight, known, peft_run)
    with _dtype_policy(model, opts.dtype_policy):
        run_stages(ctx, stages, report, runner=run_stage if peft_run is None else peft_run.run)
    _compile_for_evaluation(model, info, strategy)
    report.seconds = time.perf_counter() - started
    report.backbone_batches = ctx.cache.backbone_batches if ctx.cache else 0
    if opts.verbose:
        print(report)
    return report


def reseed_layers(model, seed: int) -> None:
    """Restarts every layer's random stream (dropout, augmentation) from `seed`.

    Keras layers draw their `keras.random.SeedGenerator` state when they are
    built, from the global random state of that moment, so the same `seed`
    passed to `fit` would otherwise give other dropout masks whenever the
    process built other models first. Each generator gets ``[seed * 1000003
    + its index in layer order, 0]``.

    Example:
        >>> kerastl.training.fitting.reseed_layers(model, 0)
    """
    index = 0
    for layer in model._flatten_layers(include_self=True, recursive=True):
        for generator in getattr(layer, "_seed_generators", ()):
            state = generator.state
            value = np.array([(int(seed) * 1000003 + index) % (2 ** 31), 0])
            state.assign(value.astype(keras.backend.standardize_dtype(state.dtype)))
            index += 1


def _unpack(train, validation_data):
    from kerastl.data import ImageData

    known = None
    if isinstance(train, ImageData):
        if validation_data is None:
            validation_data = train.validation
        known = train.num_examples.get("train")
        train = train.train
    if isinstance(validation_data, ImageData):
        validation_data = validation_data.validation
    return train, validation_data, known


def _peft_prepare(model, peft, opts):
    from kerastl.peft.training import prepare  # kerastl.peft builds on kerastl.training

    return prepare(model, peft, opts)


def _setup(model, info, train, validation_data, opts, feature_cache, strategy, callbacks,
           class_weight, known_examples, peft_run=None):
    blocks = get_blocks(model)
    spec = model_spec(model)
    if opts.trainable_blocks is not None:
        check_trainable_blocks(opts.trainable_blocks, spec, len(blocks))
    train_data = as_data("train", train, batch_size=opts.batch_size, shuffle=opts.shuffle,
                         seed=opts.seed)
    if known_examples:
        train_data.num_examples = int(known_examples)
    val_data = as_data("validation_data", validation_data, batch_size=opts.batch_size,
                       shuffle=False, seed=None)
    for name, data in (("train", train_data), ("validation_data", val_data)):
        check_inputs(data, name=name, input_shape=model.input_shape, task=info.task,
                     num_outputs=info.num_outputs)
    can_unfreeze = spec.source != "hub" and len(blocks) > 1
    recipe = peft_run.recipe if peft_run is not None else resolve_recipe(
        opts.recipe, has_validation=val_data is not None, can_unfreeze=can_unfreeze)
    if opts.head_solver == "linear" and (not opts.cache_features
                                         or get_head(model).hidden_units):
        raise ValueError("`head_solver='linear'` needs cache_features=True and a head without "
                         "hidden layers. Received: head_solver='linear' with cache_features="
                         f"{opts.cache_features}, hidden_units={get_head(model).hidden_units}")
    _check_recipe_arguments(opts, recipe)
    stages = plan_stages(recipe, num_blocks=len(blocks), head_cached=opts.cache_features,
                         epochs=opts.epochs, fine_tune_epochs=opts.fine_tune_epochs,
                         learning_rate=opts.learning_rate,
                         backbone_learning_rate=opts.backbone_learning_rate,
                         layer_decay=opts.layer_decay, trainable_blocks=opts.trainable_blocks
                         if peft_run is None else peft_run.depth)
    stages = stages if peft_run is None else peft_run.stages(stages)
    cache = feature_cache
    if cache is None and opts.cache_features:
        cache = FeatureCache(memory_limit=opts.cache_memory_limit)
    _, _, monitor = loss_and_metrics(info.task, info.num_outputs, label_smoothing=0.0)
    monitor = ("val_" + monitor) if val_data is not None else "loss"
    weights = None
    if class_weight is not None:
        weights = class_weight_vector(class_weight, info.task, info.num_outputs,
                                      _labels(train_data) if isinstance(class_weight, str)
                                      else None)
    checkpoint = None
    if opts.checkpoint_dir is not None:
        checkpoint = Checkpoint(opts.checkpoint_dir, _plan(recipe, stages, opts, model),
                                train=train_data, validation=val_data)
    augmenter, key = _augmenter(model, opts)
    ctx = Context(model, blocks, info.task, info.num_outputs, train_data, val_data, opts, cache,
                  label_transform(info.task, info.num_outputs, weights),
                  label_transform(info.task, info.num_outputs), monitor, strategy,
                  _loss_scale(model, opts), callbacks, checkpoint, augmenter, key,
                  class_weights=weights)
    report = FitReport(recipe, info.task, monitor, train_data.num_examples)
    report.selected_on = ("validation" if val_data is not None
                          else "none: no validation data, the last stage")
    return ctx, stages, report


def _check_recipe_arguments(opts, recipe):
    if opts.recipe == "auto":
        return
    if recipe in ("feature_extraction", "fine_tune") and opts.fine_tune_epochs is not None:
        raise ValueError(f"`fine_tune_epochs` is for recipes with several stages; recipe "
                         f"{recipe!r} has one (use `epochs`). Received: "
                         f"fine_tune_epochs={opts.fine_tune_epochs}")
    if recipe == "feature_extraction" and opts.trainable_blocks not in (None, 0):
        raise ValueError("`trainable_blocks` must be None or 0 with recipe='feature_extraction' "
                         f"(the backbone stays frozen). Received: "
                         f"trainable_blocks={opts.trainable_blocks!r}")


def _labels(data):
    import numpy as np

    return np.concatenate([np.asarray(batch[1]) for batch in data.dataset])


def _plan(recipe, stages, opts, model) -> dict:
    plan = {"recipe": recipe, "model": model.name, "stages": [s.to_dict() for s in stages],
            "augment_passes": opts.augment_passes, "cache_features": opts.cache_features,
            "head_solver": opts.head_solver,
            "fine_tune_interpolation": opts.fine_tune_interpolation}
    peft = getattr(model, "_kerastl_peft", None)  # kerastl.peft.apply's setting
    return plan if peft is None else dict(plan, peft=peft.to_dict())


def _augmenter(model, opts):
    if not opts.augment_passes:
        return None, None
    try:
        layer = model.get_layer(AUGMENTATION_LAYER)
    except ValueError:
        return default_augmenter(opts.seed), "default"
    return layer, repr(keras.saving.serialize_keras_object(layer))


def _loss_scale(model, opts) -> bool:
    policy = opts.dtype_policy or model.dtype_policy.name
    return policy == "mixed_float16"


def compile_for_evaluation(model, *, strategy=None):
    """Compiles a kerastl model with its task's loss and metrics, as `kerastl.fit` leaves it.

    Args:
        model: A model from `kerastl.build`.
        strategy: The `tf.distribute.Strategy` to compile in (default: the model's).

    Returns:
        The model, compiled for plain (integer) labels: ``model.evaluate(data.validation)``
        reports its loss and ``accuracy`` (``mae`` for regression).

    Example:
        >>> kerastl.training.compile_for_evaluation(model).evaluate(data.validation)
    """
    _compile_for_evaluation(model, model_info(model), strategy or model.distribute_strategy)
    return model


def _compile_for_evaluation(model, info, strategy):
    """Compiles `model` with its task's loss and metrics for plain (integer) labels."""
    metrics, loss = task_metrics(info.task), task_loss(info.task)
    with strategy.scope():
        model.compile(optimizer=keras.optimizers.Adam(), loss=loss, metrics=metrics)


@contextlib.contextmanager
def _dtype_policy(model, policy):
    """Sets every layer's dtype policy to `policy` (not the head's output layer) for a while."""
    if policy is None:
        yield
        return
    output = get_head(model).output_layer
    saved = []
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if layer is output or isinstance(layer, keras.layers.InputLayer):
            continue
        saved.append((layer, layer.dtype_policy))
        layer.dtype_policy = policy
    try:
        yield
    finally:
        for layer, previous in saved:
            layer.dtype_policy = previous


__all__ = ["compile_for_evaluation", "fit", "reseed_layers"]
