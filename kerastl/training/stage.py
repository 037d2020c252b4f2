"""Runs one `kerastl.training.Stage`: set the depth, pick the cache, compile, train."""

from __future__ import annotations

import dataclasses
import math
import sys
import time

import keras
import numpy as np

from kerastl import distribute
from kerastl.freezing import apply_trainable_blocks
from kerastl.model import get_backbone, get_head
from kerastl.training import graph, linear_head
from kerastl.training.cache import FeatureCache
from kerastl.training.callbacks import epoch_selection
from kerastl.training.checkpoint import Checkpoint, backup_callback
from kerastl.training.inputs import Data, check_labels, loss_and_metrics
from kerastl.training.optim import make_optimizer
from kerastl.training.options import FitOptions
from kerastl.training.recipes import Stage
from kerastl.training.report import StageReport

AUGMENTATION_LAYER = "augmentation"


def default_augmenter(seed=None) -> keras.Sequential:
    """Flip + random zoom-in crop: the augmentation of cached passes when the model has none."""
    return keras.Sequential([keras.layers.RandomFlip("horizontal", seed=seed),
                             keras.layers.RandomZoom((-0.2, 0.0), seed=seed)],
                            name="cache_augmentation")


@dataclasses.dataclass
class Context:
    """Everything the stages of one `kerastl.fit` call share."""

    model: keras.Model
    blocks: list
    task: str
    num_outputs: int
    train: Data
    validation: Data | None
    options: FitOptions
    cache: FeatureCache | None
    transform: object
    val_transform: object
    monitor: str
    strategy: object
    loss_scale: bool
    callbacks: list
    checkpoint: Checkpoint | None
    augmenter: object = None
    augmenter_key: str | None = None
    warm_seconds: float = 0.0
    class_weights: object = None

    def cut_for(self, depth: int):
        """Returns ``(cut, note)``: where stage activations can be cached, or why not."""
        if self.cache is None:
            return None, None
        if depth == 0:
            return graph.pooled_cut(self.model), None
        if depth >= len(self.blocks):
            return None, "every block is trainable: nothing to cache"
        cut = graph.prefix_cut(self.model, self.blocks, depth)
        if cut is None:
            return None, ("the frozen blocks do not end in a single tensor (or the backbone "
                          "is not a functional model): training on images")
        return cut, None

    def validation_batches(self):
        """The validation ``(images, labels)`` batches as the model sees them, or None."""
        if self.validation is None:
            return None
        return self.validation.dataset.map(self.val_transform)

    def cached(self, cut) -> tuple:
        """Returns cached ``(train, validation)`` activations at `cut` (filling the cache)."""
        opts = self.options
        progress = opts.verbose == 1
        train = self.cache.get(self.model, self.train.dataset, cut, source=self.train.source,
                               augment_passes=opts.augment_passes, augmenter=self.augmenter,
                               augmenter_key=self.augmenter_key, progress=progress)
        val = None
        if self.validation is not None:
            val = self.cache.get(self.model, self.validation.dataset, cut,
                                 source=self.validation.source, progress=progress)
        return train, val


def keras_verbose(verbose: int) -> int:
    """Returns the ``verbose`` to pass to `keras.Model.fit` for kerastl's `verbose`.

    kerastl's 1 is a progress bar in a terminal; Keras's progress bar writes
    a line per step to a file or a pipe, so there it becomes Keras's 2 (one
    line per epoch). 0 and 2 are passed through.

    Args:
        verbose: 0, 1 or 2 (`kerastl.fit`'s `verbose`).

    Returns:
        Keras's ``verbose``.

    Example:
        >>> kerastl.training.stage.keras_verbose(0)
        0
    """
    if verbose == 1 and not sys.stdout.isatty():
        return 2
    return verbose


def _prepare(ds, ctx: Context, *, training: bool):
    return distribute.prepare_dataset(ds, ctx.strategy, training=training)


def _datasets(ctx: Context, cut):
    """Returns ``(train dataset, validation dataset, examples per epoch, mode)``."""
    opts = ctx.options
    if cut is None:
        train = ctx.train.dataset.map(ctx.transform)
        val = None if ctx.validation is None else ctx.validation.dataset.map(ctx.val_transform)
        return train, val, ctx.train.num_examples, None
    cached_train, cached_val = ctx.cached(cut)
    ctx.train.num_examples = cached_train.num_examples
    if cached_val is not None:
        ctx.validation.num_examples = cached_val.num_examples
    train = cached_train.dataset(batch_size=ctx.train.batch_size, shuffle=opts.shuffle,
                                 seed=opts.seed).map(ctx.transform)
    val = None
    if cached_val is not None:
        val = cached_val.dataset(batch_size=ctx.validation.batch_size,
                                 shuffle=False).map(ctx.val_transform)
    return train, val, cached_train.num_examples, "features" if cut.pooled else "prefix"


def _train_model(ctx: Context, cut):
    if cut is None:
        return ctx.model
    return graph.head_model(ctx.model) if cut.pooled else graph.suffix_model(ctx.model, cut)


def _compile(ctx: Context, model, stage: Stage, steps: int):
    loss, metrics, _ = loss_and_metrics(ctx.task, ctx.num_outputs,
                                        label_smoothing=ctx.options.label_smoothing)
    optimizer = make_optimizer(stage, ctx.blocks, steps_per_epoch=steps,
                               weight_decay=ctx.options.weight_decay,
                               mixed_float16=ctx.loss_scale)
    options = distribute.compile_options(ctx.strategy)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics,
                  jit_compile=ctx.options.jit_compile,
                  steps_per_execution=options["steps_per_execution"])


def linear_head_possible(ctx: Context, stage: Stage) -> bool:
    """Whether a stage's head can be fitted in closed form (`kerastl.training.linear_head`).

    It can when the stage trains the head alone on cached pooled features and
    the head has no hidden layers and a Dense output layer (it is then a
    linear model on the features; a `kerastl.fewshot` prototype head is not).
    """
    head = get_head(ctx.model)
    return (stage.trainable_blocks == 0 and ctx.cache is not None and not head.hidden_units
            and isinstance(head.output_layer, keras.layers.Dense))


def run_stage(ctx: Context, index: int, stage: Stage, *, set_trainable=None) -> StageReport:
    """Trains one stage and returns its report (the model is left at the stage's best).

    Args:
        ctx: The run's context.
        index: The stage's index in the plan.
        stage: The stage.
        set_trainable: None (the top ``stage.trainable_blocks`` named blocks train),
            or a function of the model that sets the trainable variables itself and
            returns the depth of named blocks they reach (`kerastl.peft`: only the
            low-rank, bias or BatchNorm variables). Such a stage is always trained
            by gradient.
    """
    opts = ctx.options
    if set_trainable is None:
        depth = stage.trainable_blocks
        apply_trainable_blocks(get_backbone(ctx.model), ctx.blocks, depth,
                               bn_training=opts.bn_training)
        if opts.head_solver in ("auto", "linear") and linear_head_possible(ctx, stage):
            return run_linear_head(ctx, stage)
    else:
        depth = set_trainable(ctx.model)
    cut, note = ctx.cut_for(depth)
    start = time.perf_counter()
    train_ds, val_ds, n, mode = _datasets(ctx, cut)
    cache_seconds = time.perf_counter() - start + ctx.warm_seconds
    ctx.warm_seconds = 0.0
    with distribute.scope(ctx.strategy):
        model = _train_model(ctx, cut)
        steps = (ctx.train.num_batches if mode is None
                 else max(1, math.ceil(n / ctx.train.batch_size)))
        _compile(ctx, model, stage, steps)
    names = [b.name for b in ctx.blocks[len(ctx.blocks) - depth:]] if depth else []
    report = StageReport(stage.name, depth, names, [v.path for v in model.trainable_weights],
                         stage.epochs, learning_rate=stage.learning_rate,
                         backbone_learning_rate=stage.backbone_learning_rate,
                         layer_decay=stage.layer_decay, cached=mode, cache_note=note,
                         cache_seconds=cache_seconds)
    state_dir = ctx.checkpoint.stage_dir(index) if ctx.checkpoint else None
    best, report.selected_on = epoch_selection(opts, index, ctx.monitor, cached=mode is not None,
                                               validated=ctx.validation is not None,
                                               state_dir=state_dir)
    backup = backup_callback(ctx.checkpoint, index)
    # User callbacks first: a metric a callback adds to the logs can be monitored.
    callbacks = ctx.callbacks + [best] + ([backup] if backup else [])
    if opts.verbose:
        print(f"Stage {index + 1} {stage.name!r}: {depth}/{len(ctx.blocks)} blocks trainable, "
              f"{stage.epochs} epochs, lr {stage.learning_rate:g}"
              + (f", cached {mode} ({cache_seconds:.1f} s)" if mode else "")
              + (f" [{note}]" if note and opts.verbose else ""))
    alpha = _interpolation(ctx, index, depth, set_trainable)
    start_weights = None if alpha is None else _values(model.trainable_weights)
    start = time.perf_counter()
    model.fit(_prepare(train_ds, ctx, training=True),
              validation_data=None if val_ds is None else _prepare(val_ds, ctx, training=False),
              epochs=stage.epochs, verbose=keras_verbose(opts.verbose),
              callbacks=callbacks, shuffle=False)  # the datasets shuffle themselves
    report.train_seconds = time.perf_counter() - start
    here = _epochs_here(model)
    report.resumed = len(best.epochs) > here
    report.epochs_run = len(best.epochs)
    report.history, report.best_epoch, report.best = best.history, best.best_epoch, best.best_logs
    report.stopped = best.stopped
    seen = (n or 0) * here
    report.images_per_second = seen / report.train_seconds if report.train_seconds else 0.0
    if alpha is not None:
        _interpolate(ctx, model, start_weights, alpha, val_ds, report)
    return report


def _interpolation(ctx: Context, index: int, depth: int, set_trainable) -> float | None:
    """The `fine_tune_interpolation` of a stage, or None when its weights stay as trained.

    It applies to stages after the first that train named backbone blocks:
    they start from a trained head (the first stage may start from a new
    one), and `kerastl.peft` stages keep their own update.
    """
    alpha = ctx.options.fine_tune_interpolation
    if index == 0 or depth == 0 or set_trainable is not None or alpha == 1.0:
        return None
    return alpha


def interpolate_weights(start, end, alpha: float) -> list:
    """Returns ``(1 - alpha) * start + alpha * end`` per array (WiSE-FT's weight-space mix).

    Args:
        start: Arrays at the start of fine-tuning.
        end: The fine-tuned arrays (same shapes).
        alpha: Weight of `end`, in (0, 1].

    Returns:
        The mixed arrays, in `end`'s dtypes.

    Example:
        >>> kerastl.training.stage.interpolate_weights([np.zeros(2)], [np.ones(2)], 0.5)
        [array([0.5, 0.5])]
    """
    return [((1.0 - alpha) * np.asarray(s, "float64") + alpha * np.asarray(e, "float64"))
            .astype(np.asarray(e).dtype) for s, e in zip(start, end)]


def _values(variables) -> list:
    return [keras.ops.convert_to_numpy(v) for v in variables]


def _interpolate(ctx: Context, model, start_weights, alpha, val_ds, report) -> None:
    """Moves the trained variables to the interpolation and scores it on validation data."""
    variables = model.trainable_weights
    mixed = interpolate_weights(start_weights, _values(variables), alpha)
    for variable, value in zip(variables, mixed):
        variable.assign(value)
    report.interpolation = alpha
    report.fine_tuned_best = dict(report.best)
    if val_ds is None:
        return
    logs = model.evaluate(_prepare(val_ds, ctx, training=False), verbose=0, return_dict=True)
    report.best = dict(report.best, **{"val_" + k: float(v) for k, v in logs.items()})


def run_linear_head(ctx: Context, stage: Stage) -> StageReport:
    """Fits the head as a regularised linear model on cached features (no epochs).

    The L2 strength is chosen on the validation features, or by k-fold
    cross-validation on the training features without validation data.
    """
    start = time.perf_counter()
    train, val = ctx.cached(graph.pooled_cut(ctx.model))
    cache_seconds = time.perf_counter() - start + ctx.warm_seconds
    ctx.warm_seconds = 0.0
    ctx.train.num_examples = train.num_examples
    if val is not None:
        ctx.validation.num_examples = val.num_examples
    features, labels = np.asarray(train.arrays[0]), np.asarray(train.arrays[1])
    for name, cached in (("train", train), ("validation_data", val)):
        check_labels(name, None if cached is None else cached.arrays[1], task=ctx.task,
                     num_outputs=ctx.num_outputs)
    weights = _row_weights(ctx, train)
    start = time.perf_counter()
    result = linear_head.fit_linear(
        ctx.task, ctx.num_outputs, features, labels,
        validation_features=None if val is None else np.asarray(val.arrays[0]),
        validation_labels=None if val is None else np.asarray(val.arrays[1]),
        sample_weight=weights, passes=train.passes, seed=ctx.options.seed)
    output = get_head(ctx.model).output_layer
    output.set_weights([result.kernel, result.bias])
    smoothing = ctx.options.label_smoothing
    best = _prefixed(linear_head.evaluate_linear(
        ctx.task, result.kernel, result.bias, features[: train.num_examples],
        labels[: train.num_examples], ctx.num_outputs, label_smoothing=smoothing), "")
    if val is not None:
        best.update(_prefixed(linear_head.evaluate_linear(
            ctx.task, result.kernel, result.bias, val.arrays[0], val.arrays[1],
            ctx.num_outputs, label_smoothing=smoothing), "val_"))
    report = StageReport(stage.name, 0, [], [v.path for v in output.trainable_weights], 0,
                         learning_rate=0.0, cached="features", cache_seconds=cache_seconds)
    report.solver, report.l2, report.selected_on = "linear", result.l2, result.selection
    report.l2_scores = {f"{k:.3g}": v for k, v in sorted(result.scores.items())}
    # One row of history: the fitted head's metrics (history.csv, plots).
    report.best, report.best_epoch = best, 0
    report.history = {name: [value] for name, value in best.items()}
    report.train_seconds = time.perf_counter() - start
    if ctx.options.verbose:
        print(f"Stage {stage.name!r}: linear head on cached features ({cache_seconds:.1f} s), "
              f"l2={result.l2:.3g} by {result.selection} of {len(result.scores)} strengths "
              f"({report.train_seconds:.1f} s)")
    return report


def refit_linear_head(ctx: Context, report: StageReport) -> None:
    """Refits a kept linear head on training + validation data at its chosen strength.

    Every choice is made by then, so the validation examples can join the
    training ones (as scikit-learn's ``refit``). `report` keeps the
    validation metrics of the head before the refit and records the refit.
    """
    train, val = ctx.cached(graph.pooled_cut(ctx.model))
    weights = _row_weights(ctx, train)
    val_weights = _row_weights(ctx, val)
    n_val = len(val.arrays[0])
    if weights is not None or val_weights is not None:
        weights = np.concatenate([np.ones(len(train.arrays[0])) if weights is None else weights,
                                  np.ones(n_val) if val_weights is None else val_weights])
    labels = np.concatenate([_as_rows(train.arrays[1]), _as_rows(val.arrays[1])])
    kernel, bias = linear_head.solve_linear(
        ctx.task, ctx.num_outputs, np.concatenate([train.arrays[0], val.arrays[0]]), labels,
        l2=report.l2, sample_weight=weights)
    get_head(ctx.model).output_layer.set_weights([kernel, bias])
    report.refit_on = "training + validation data"


def _as_rows(labels):
    labels = np.asarray(labels)
    return labels.reshape(len(labels), -1) if labels.ndim > 1 else labels


def _prefixed(metrics: dict, prefix: str) -> dict:
    return {prefix + k: v for k, v in metrics.items()}


def _row_weights(ctx: Context, cached):
    """Per-row loss weights of cached training data: sample weights times class weights."""
    weights = np.asarray(cached.arrays[2], "float64") if len(cached.arrays) > 2 else None
    if ctx.class_weights is None:
        return weights
    index = linear_head.class_index(ctx.task, np.asarray(cached.arrays[1]))
    cw = np.asarray(ctx.class_weights, "float64")[index]
    return cw if weights is None else weights.reshape(-1) * cw


def _epochs_here(model) -> int:
    history = getattr(model, "history", None)
    return len(getattr(history, "epoch", []) or [])


__all__ = ["Context", "default_augmenter", "interpolate_weights", "keras_verbose",
           "linear_head_possible", "refit_linear_head", "run_linear_head", "run_stage"]
