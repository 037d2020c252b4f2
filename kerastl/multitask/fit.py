"""`kerastl.multitask.fit`: one backbone, one dataset per task, weighted per-task losses."""

from __future__ import annotations

import dataclasses
import time

import keras
import numpy as np

from kerastl._validation import check_bool, check_float, check_int
from kerastl.accessors import get_backbone, get_blocks, model_spec
from kerastl.freezing import apply_trainable_blocks, check_trainable_blocks
from kerastl.multitask import cache as mt_cache
from kerastl.multitask.data import check_task_data, task_stream
from kerastl.multitask.heads import get_heads
from kerastl.multitask.weighting import MultiTaskTrainer, check_weighting
from kerastl.training.cache import FeatureCache
from kerastl.training.callbacks import BestWeights
from kerastl.training.optim import make_optimizer
from kerastl.training.options import DEFAULT_PATIENCE
from kerastl.training.recipes import NEW_HEAD_BACKBONE_LR_FACTOR, Stage


@dataclasses.dataclass
class MultiTaskReport:
    """What `kerastl.multitask.fit` did.

    Attributes:
        tasks: The task names, in output order.
        loss_weighting: ``"equal"``, ``"uncertainty"`` or ``{task: weight}``.
        monitor: The metric that chose the epoch (``"val_mean_accuracy"``: the
            mean of the tasks' validation accuracies, or ``"mean_accuracy"``).
        history: ``{metric: [value per epoch]}``: per task ``<task>_loss``,
            ``<task>_accuracy``, ``weight_<task>`` (and ``val_`` ones), their mean.
        best_epoch: The epoch the model was left at (0-based).
        best: The metrics of that epoch.
        task_weights: ``{task: loss weight}`` at the end (learned ones for ``"uncertainty"``).
        num_examples: ``{task: training examples}``.
        trainable_weights: Paths of the trained variables.
        seconds: Wall time.
        cached: Where training read cached activations: ``"pooled"`` (heads
            only), the name of the last frozen block, or None (images).
    """

    tasks: list
    loss_weighting: object
    monitor: str
    history: dict
    best_epoch: int | None
    best: dict
    task_weights: dict
    num_examples: dict
    trainable_weights: list
    seconds: float = 0.0
    cached: str | None = None

    def per_task(self) -> dict:
        """``{task: {"loss", "accuracy", "val_loss", "val_accuracy", "weight"}}`` (best epoch)."""
        out = {}
        for task in self.tasks:
            row = {}
            for prefix in ("", "val_"):
                for metric in ("loss", "accuracy"):
                    key = f"{prefix}{task}_{metric}"
                    if key in self.best:
                        row[prefix + metric] = float(self.best[key])
            row["weight"] = self.task_weights[task]
            out[task] = row
        return out

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        lines = [f"multi-task fit: {len(self.tasks)} tasks, loss weighting "
                 f"{self.loss_weighting!r}, best epoch {self.best_epoch} by {self.monitor}"]
        for task, row in self.per_task().items():
            cells = ", ".join(f"{k} {v:.4f}" for k, v in row.items())
            lines.append(f"  {task}: {cells}")
        if self.monitor in self.best:
            lines.append(f"  mean: {self.monitor} {float(self.best[self.monitor]):.4f}")
        return "\n".join(lines)


class _MeanAccuracy(keras.callbacks.Callback):
    """Adds ``mean_accuracy`` (and ``val_mean_accuracy``) over the tasks to the epoch logs."""

    def __init__(self, tasks):
        super().__init__()
        self.tasks = list(tasks)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for prefix in ("", "val_"):
            values = [logs.get(f"{prefix}{t}_accuracy") for t in self.tasks]
            if all(v is not None for v in values):
                logs[f"{prefix}mean_accuracy"] = float(np.mean(values))


def _set_trainable(model, heads, trainable_blocks, peft) -> int:
    """Makes the heads and the backbone's trained part trainable; returns its top blocks."""
    blocks = get_blocks(model)
    if peft is not None:
        from kerastl.peft.core import apply, set_trainable

        apply(model, peft)
        depth = set_trainable(model)
    else:
        depth = check_trainable_blocks(trainable_blocks, model_spec(model), len(blocks))
        apply_trainable_blocks(get_backbone(model), blocks, depth)
    for head in heads.values():
        head.trainable = True
    return len(blocks) if depth == "all" else int(depth)


def _check(epochs, learning_rate, backbone_learning_rate, batch_size, label_smoothing,
           early_stopping, verbose):
    check_int("epochs", epochs, minimum=1)
    check_float("learning_rate", learning_rate, minimum=0.0, min_inclusive=False)
    if backbone_learning_rate is not None:
        check_float("backbone_learning_rate", backbone_learning_rate, minimum=0.0)
    check_int("batch_size", batch_size, minimum=1)
    check_float("label_smoothing", label_smoothing, minimum=0.0, maximum=1.0, max_inclusive=False)
    if not isinstance(early_stopping, bool):
        check_int("early_stopping", early_stopping, minimum=1,
                  extra=" (the patience), True or False")
    check_int("verbose", verbose, minimum=0, maximum=2)


def fit(model, train, validation_data=None, *, loss_weighting="equal", trainable_blocks=0,
        peft=None, epochs=10, learning_rate=1e-3, backbone_learning_rate=None, batch_size=32,
        label_smoothing=0.1, early_stopping=True, cache_features=True, feature_cache=None,
        seed=None, verbose=1) -> MultiTaskReport:
    """Trains a multi-task model (`kerastl.build(..., tasks=...)`) on one dataset per task.

    Each step draws one batch from one task's data (in proportion to the
    tasks' sizes, every batch once per epoch); the other tasks' labels in it
    are masked, so they contribute nothing. The total loss is the weighted sum
    of the per-task mean losses. The heads always train; the shared backbone
    trains its top `trainable_blocks` blocks, or a PEFT setting (`peft`). The
    model ends at the epoch with the best mean validation accuracy over the
    tasks (early stopping on it), or the last epoch without validation data.
    The frozen bottom of the backbone runs once per dataset: training reads its
    cached activations (`kerastl.multitask.cache`, kerastl's `FeatureCache`).

    Args:
        model: A multi-task model from ``kerastl.build(..., tasks={...})``.
        train: ``{task: data}``: a `tf.data.Dataset` of ``(images, labels)``
            batches or a tuple of arrays ``(x, y)`` per task (labels: class ids).
        validation_data: ``{task: data}`` for some or all tasks, or None.
        loss_weighting: ``"equal"``, ``{task: weight}`` (fixed) or ``"uncertainty"``
            (learned, Kendall et al. 2018; logged as ``weight_<task>``).
        trainable_blocks: Top blocks of the shared backbone to train (0, k or ``"all"``).
        peft: A `kerastl.peft` setting for the backbone instead of `trainable_blocks`.
        epochs: Epochs (default 10).
        learning_rate: Peak learning rate of the heads (Adam, a linear warm-up
            over the first epoch, then cosine decay: `kerastl.fit`'s schedule).
        backbone_learning_rate: Peak rate of the shared backbone's trained
            variables (default: `learning_rate` / 10, `kerastl.fit`'s rule for
            new heads next to pretrained blocks: the heads start untrained, and
            their first gradients would otherwise wreck the pretrained blocks).
        batch_size: Batch size of array inputs.
        label_smoothing: Label smoothing of every task's cross-entropy.
        early_stopping: True (patience 5), False, or the patience.
        cache_features: Train on cached activations of the frozen part
            (pooled features for heads only, else the frozen prefix).
        feature_cache: A `kerastl.training.FeatureCache` to share between
            calls (default: a new one per call).
        seed: Seed of weights, shuffling and the task draw.
        verbose: 0, 1 or 2 (Keras's progress output).

    Returns:
        A `MultiTaskReport`: per-task losses, accuracies and weights, their mean.

    Example:
        >>> model = kerastl.build("mobilenet_v2", tasks={"species": 5, "healthy": 2})
        >>> report = kerastl.multitask.fit(model, {"species": flowers, "healthy": leaves},
        ...                                loss_weighting="uncertainty")
        >>> report.per_task()["species"]["val_accuracy"]
    """
    _check(epochs, learning_rate, backbone_learning_rate, batch_size, label_smoothing,
           early_stopping, verbose)
    heads = get_heads(model)
    tasks = list(heads)
    weighting = check_weighting(loss_weighting, tasks)
    if peft is not None and trainable_blocks not in (0, None):
        raise ValueError("Pass `peft` or `trainable_blocks`, not both. Received: "
                         f"trainable_blocks={trainable_blocks!r}")
    train = check_task_data("train", train, tasks, required=True)
    validation = check_task_data("validation_data", validation_data, tasks, required=False)
    check_bool("cache_features", cache_features)
    if feature_cache is not None and not isinstance(feature_cache, FeatureCache):
        raise ValueError("`feature_cache` must be a kerastl.training.FeatureCache or None. "
                         f"Received: feature_cache={feature_cache!r}")
    started = time.perf_counter()
    if seed is not None:
        keras.utils.set_random_seed(seed)
    depth = _set_trainable(model, heads, trainable_blocks or 0, peft)
    cut = mt_cache.cut_for(model, heads, depth) if cache_features else None
    features, train_model = None, model
    if cut is not None:
        features = mt_cache.activations(
            FeatureCache() if feature_cache is None else feature_cache, model, cut, seed=seed)
        train_model = mt_cache.cached_model(model, heads, cut)
    stream, counts = task_stream("train", train, tasks, batch_size=batch_size, shuffle=True,
                                 seed=seed, interleave=True, features=features)
    val_stream = None
    if validation:
        val_stream, _ = task_stream("validation_data", validation, tasks, batch_size=batch_size,
                                    shuffle=False, seed=None, interleave=False,
                                    features=features)
    trainer = MultiTaskTrainer(train_model, weighting, label_smoothing=label_smoothing)
    stage = Stage("multitask", depth, epochs, learning_rate,
                  learning_rate * NEW_HEAD_BACKBONE_LR_FACTOR if backbone_learning_rate is None
                  else backbone_learning_rate, warmup_epochs=min(1.0, epochs / 2))
    optimizer = make_optimizer(stage, get_blocks(model), weight_decay=0.0,
                               steps_per_epoch=int(stream.cardinality()))
    trainer.compile(optimizer=optimizer,
                    weighted_metrics={t: [keras.metrics.SparseCategoricalAccuracy("accuracy")]
                                      for t in tasks})
    selects = val_stream is not None
    monitor = "val_mean_accuracy" if selects else "mean_accuracy"
    patience = None if early_stopping is False or not selects else (
        DEFAULT_PATIENCE if early_stopping is True else early_stopping)
    best = BestWeights(monitor, patience=patience, tie_monitor="val_loss" if selects else None,
                       select=selects)
    trainer.fit(stream, validation_data=val_stream, epochs=epochs, verbose=verbose,
                callbacks=[_MeanAccuracy(tasks), best])
    _compile_for_evaluation(model, tasks)
    return MultiTaskReport(tasks, weighting, monitor, best.history, best.best_epoch,
                           dict(best.best_logs or {}), trainer.weights_now(), counts,
                           [v.path for v in trainer.trainable_weights],
                           time.perf_counter() - started, None if cut is None else cut.name)


def fit_with_options(model, train, validation_data, opts, *, peft=None,
                     feature_cache=None) -> MultiTaskReport:
    """`fit` with `kerastl.fit`'s checked options (``kerastl.fit(model, {task: data})``)."""
    return fit(model, train, validation_data, peft=peft, epochs=opts.epochs or 10,
               feature_cache=feature_cache,
               trainable_blocks=opts.trainable_blocks or 0, seed=opts.seed,
               learning_rate=opts.learning_rate or 1e-3, batch_size=opts.batch_size,
               backbone_learning_rate=opts.backbone_learning_rate,
               label_smoothing=opts.label_smoothing, verbose=opts.verbose,
               early_stopping=opts.early_stopping, cache_features=opts.cache_features)


def _compile_for_evaluation(model, tasks):
    model.compile(optimizer=keras.optimizers.Adam(),
                  loss={t: keras.losses.SparseCategoricalCrossentropy() for t in tasks},
                  metrics={t: [keras.metrics.SparseCategoricalAccuracy("accuracy")]
                           for t in tasks})


__all__ = ["MultiTaskReport", "fit", "fit_with_options"]
