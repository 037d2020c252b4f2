"""`TransferHyperModel`: a `keras_tuner.HyperModel` over `kerastl.build` + `kerastl.fit`.

A trial is `kerastl.fit`'s recipe cut into `kerastl.fit` calls (`plan_stages`):

* the head warm-up: the head trained on the frozen backbone (on cached
  features) for `kerastl.fit`'s default head epochs, with early stopping.
  It depends only on the head learning rate and the dropout, costs seconds
  on cached features, and is trained once and shared by every trial with
  those values (its head weights and scores are kept). Depth-0 and
  ``"feature_extraction"`` trials are the warm-up alone;
* ``"two_stage"``: then the top blocks unfrozen for the trial's epoch budget
  (``tuner/epochs``); ``"progressive"`` splits the budget into up to three
  growing depths; ``"fine_tune"`` trains blocks and head together from the
  start, without a warm-up;
* a Hyperband continuation (``tuner/initial_epoch > 0``, weights loaded from
  the earlier trial) trains only the fine-tuning stage for the extra epochs.

So a trial's epoch budget counts the expensive epochs only: those that run
the unfrozen blocks. A fine-tuning stage that scores clearly worse than the
warm-up it started from is stopped at the end of that epoch (more than
`PRUNE_TOLERANCE` worse, relative; after its first epoch, which may dip
before it recovers, more than `PRUNE_FIRST_EPOCH_TOLERANCE`): its rate is
wrecking the pretrained features, and more epochs of it are wasted (the
trial keeps its best weights, usually the warm-up's).
"""

from __future__ import annotations

import dataclasses
import math

import keras
import keras_tuner

from kerastl import model as model_lib
from kerastl.freezing import ALL
from kerastl.heads import HeadConfig
from kerastl.training.recipes import (FINE_TUNE_LR_FACTOR, HEAD_LEARNING_RATE,
                                      progressive_depths)
from kerastl.tuning.space import SearchSpace

FEATURE_EXTRACTION = "feature_extraction"
FINE_TUNE = "fine_tune"
PRUNE_TOLERANCE = 0.1
PRUNE_FIRST_EPOCH_TOLERANCE = 0.5


@dataclasses.dataclass(frozen=True)
class TrialStage:
    """One `kerastl.fit` call of a trial.

    Attributes:
        recipe: ``"feature_extraction"`` (head only) or ``"fine_tune"``.
        epochs: Epochs of the call (None: the shared head warm-up, `kerastl.fit`'s
            default head epochs).
        trainable_blocks: Unfreeze depth (0 for the head only).
        learning_rate: Head learning rate.
        backbone_learning_rate: Rate of the top backbone block (None: `kerastl.fit`'s).
    """

    recipe: str
    epochs: int | None
    trainable_blocks: int | str
    learning_rate: float
    backbone_learning_rate: float | None = None

    @property
    def is_warmup(self) -> bool:
        return self.recipe == FEATURE_EXTRACTION and self.epochs is None


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def plan_stages(recipe: str, depth, epochs: int, initial_epoch: int = 0, *,
                learning_rate=None, backbone_learning_rate=None,
                num_blocks: int | None = None) -> list[TrialStage]:
    """Returns the `kerastl.fit` calls of one trial.

    The stages and rates are those of `kerastl.fit`'s recipes (the second
    stage of ``"two_stage"``/``"progressive"`` trains the head at
    `kerastl.training.recipes.FINE_TUNE_LR_FACTOR` times the warm-up rate, and
    the blocks at `backbone_learning_rate` or that rate). The epoch budget
    goes to the fine-tuning stages; the head warm-up (``epochs=None``) is
    shared between trials and not counted.

    Args:
        recipe: The trial's recipe.
        depth: Its unfreeze depth (int or ``"all"``).
        epochs: The cumulative epoch budget (``tuner/epochs``).
        initial_epoch: Epochs already trained by the trial it continues.
        learning_rate: Head learning rate (None: `kerastl.fit`'s default).
        backbone_learning_rate: Backbone learning rate, or None.
        num_blocks: The backbone's block count (for ``"progressive"`` with ``"all"``).

    Returns:
        A list of `TrialStage`.

    Example:
        >>> [(s.recipe, s.epochs) for s in plan_stages("two_stage", 4, 5)]
        [('feature_extraction', None), ('fine_tune', 5)]
    """
    extra = epochs - initial_epoch
    lr = HEAD_LEARNING_RATE if learning_rate is None else learning_rate
    warmup = TrialStage(FEATURE_EXTRACTION, None, 0, lr)
    if depth == 0 or recipe == FEATURE_EXTRACTION:
        return [warmup]
    if extra <= 0:
        return []
    if recipe == FINE_TUNE:
        return [TrialStage(FINE_TUNE, extra, depth, lr, backbone_learning_rate)]
    late_lr = lr * FINE_TUNE_LR_FACTOR
    late_bb = late_lr if backbone_learning_rate is None else backbone_learning_rate
    if recipe == "two_stage" or initial_epoch > 0:
        stages = [] if initial_epoch > 0 else [warmup]
        return stages + [TrialStage(FINE_TUNE, extra, depth, late_lr, late_bb)]
    full = num_blocks if depth == ALL else depth
    if full is None:
        raise ValueError("`num_blocks` is needed to plan a progressive trial with depth 'all'.")
    groups = progressive_depths(int(full))[-extra:]
    return [warmup] + [TrialStage(FINE_TUNE, n, d, late_lr, late_bb)
                       for d, n in zip(groups, _split(extra, len(groups)))]


class PruneWorseThanWarmup(keras.callbacks.Callback):
    """Stops a fine-tuning stage whose score falls clearly below its starting point.

    The first epoch gets a grace margin: unfreezing blocks often costs some
    score in the first epoch and wins it back later, so only a collapse
    (`first_epoch_tolerance`) stops the stage there.

    Args:
        monitor: The objective's metric name (``"val_accuracy"``, ``"val_loss"``, ...).
        reference: The warm-up's score on `monitor`.
        direction: ``"max"`` or ``"min"``.
        tolerance: Relative shortfall that stops training (0.1: 10% worse).
        first_epoch_tolerance: The shortfall that stops training after the first epoch.
    """

    def __init__(self, monitor: str, reference: float, *, direction: str = "max",
                 tolerance: float = PRUNE_TOLERANCE,
                 first_epoch_tolerance: float = PRUNE_FIRST_EPOCH_TOLERANCE):
        super().__init__()
        self.monitor, self.reference = monitor, float(reference)
        self.direction, self.tolerance = direction, float(tolerance)
        self.first_epoch_tolerance = float(first_epoch_tolerance)
        self.pruned_at: int | None = None
        self._epochs_seen = 0

    def _worse(self, value: float) -> bool:
        first = self._epochs_seen == 1
        margin = (self.first_epoch_tolerance if first else self.tolerance) * abs(self.reference)
        if self.direction == "max":
            return value < self.reference - margin
        return value > self.reference + margin

    def on_epoch_end(self, epoch, logs=None):
        self._epochs_seen += 1
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(self.reference):
            return
        if not math.isfinite(float(value)) or self._worse(float(value)):
            self.pruned_at = epoch
            self.model.stop_training = True


def _trainable_params(model) -> int:
    return int(sum(int(keras.ops.size(w)) for w in model.trainable_weights))


class TransferHyperModel(keras_tuner.HyperModel):
    """Builds trial models with `kerastl.build` and trains them with `kerastl.fit`.

    Args:
        backbone: Registry name or ``"hub:<handle>"``.
        num_classes: Number of classes (outputs).
        space: The `kerastl.SearchSpace`.
        build_kwargs: Extra `kerastl.build` arguments (already validated).
        fit_kwargs: Extra `kerastl.fit` arguments (already validated).
        objective: Name of the metric a trial reports as its score.
        direction: ``"max"`` or ``"min"``.
        build_seed: Seed set before every build, so all trials start from the
            same backbone (what makes cached features and warm-ups shareable).
        feature_cache: A `kerastl.training.FeatureCache` shared by all trials, or None.
        strategy: A `tf.distribute.Strategy` for `kerastl.fit`, or None.
        seed: Seed passed to `kerastl.fit`.
        verbose: Verbosity passed to `kerastl.fit`.
        share_warmup: Reuse head warm-ups between trials.
        warmup_epochs: Epochs of a head warm-up (None: `kerastl.fit`'s default).
        prune: Stop fine-tuning stages that fall clearly below their warm-up.
        num_blocks: The backbone's block count.
    """

    def __init__(self, *, backbone, num_classes, space: SearchSpace, build_kwargs=None,
                 fit_kwargs=None, objective="val_accuracy", direction="max", build_seed=0,
                 feature_cache=None, strategy=None, seed=None, verbose=0, share_warmup=True,
                 warmup_epochs=None, prune=True, num_blocks=None):
        super().__init__(name="kerastl")
        self.backbone, self.num_classes, self.space = backbone, num_classes, space
        self.build_kwargs = dict(build_kwargs or {})
        self.fit_kwargs = dict(fit_kwargs or {})
        self.objective, self.direction = objective, direction
        self.build_seed, self.seed, self.verbose = build_seed, seed, verbose
        self.feature_cache, self.strategy = feature_cache, strategy
        self.share_warmup, self.warmup_epochs, self.prune = share_warmup, warmup_epochs, prune
        self.num_blocks = num_blocks
        self.builds = 0
        self.last_trial_info: dict = {}
        self.last_reports: list = []  # the `kerastl.fit` reports of the last `fit`, in order
        self._warmups: dict = {}

    def declare_hyperparameters(self, hp):
        self.space.declare(hp)

    def build(self, hp):
        """Builds the trial's model (`kerastl.build`) at the trial's depth and dropout."""
        self.space.declare(hp)
        values = SearchSpace.decode(hp.values)
        kwargs = dict(self.build_kwargs)
        if "dropout" in values:
            head = HeadConfig.from_value(kwargs.get("head"))
            kwargs["head"] = dataclasses.replace(head, dropout=float(values["dropout"]))
        depth = values.get("trainable_blocks", 0)
        if values.get("recipe") == FEATURE_EXTRACTION:
            depth = 0
        keras.utils.set_random_seed(self.build_seed)
        try:
            model = model_lib.build(self.backbone, self.num_classes, trainable_blocks=depth,
                                    **kwargs)
        except (ValueError, TypeError) as error:
            # A bad build argument fails every trial alike: stop the search with it.
            fatal = (keras_tuner.errors.FatalValueError if isinstance(error, ValueError)
                     else keras_tuner.errors.FatalTypeError)
            raise fatal(str(error)) from error
        self.builds += 1
        return model

    def fit(self, hp, model, train, validation_data=None, *, epochs, initial_epoch=0,
            callbacks=None, prune=None, start_metrics=None, start_pruned=False):
        """Trains the trial's model for epochs ``initial_epoch..epochs`` with `kerastl.fit`.

        Args:
            prune: Override the hypermodel's `prune` setting (the refit does not prune).
            start_metrics: The scores of the weights `model` starts from (a Hyperband
                continuation: its earlier trial's). They are the reference of pruning,
                and the model goes back to those weights if training does not beat them.
            start_pruned: Whether the earlier trial's fine-tuning was pruned. Then
                nothing is trained: more epochs of the same setting would only repeat
                that, so the earlier result is kept.

        Returns:
            A dict of the best validation metrics (it holds the objective); the
            model is left at the weights that scored them.
        """
        values = SearchSpace.decode(hp.values)
        stages = plan_stages(values.get("recipe", "two_stage"), values.get("trainable_blocks", 0),
                             int(epochs), int(initial_epoch),
                             learning_rate=values.get("learning_rate"),
                             backbone_learning_rate=values.get("backbone_learning_rate"),
                             num_blocks=self.num_blocks)
        prune = self.prune if prune is None else prune
        info = {"epochs": 0, "warmup_epochs": 0, "shared_head_warmup": False, "pruned": False,
                "stages": [dataclasses.asdict(s) for s in stages]}
        self.last_trial_info, self.last_reports = info, []
        if start_metrics and start_pruned:
            info.update(pruned=True, stages=[])
            return dict(start_metrics)
        best, snapshot = None, None
        if start_metrics and stages:
            best, snapshot = dict(start_metrics), model.get_weights()
        for index, stage in enumerate(stages):
            last = index == len(stages) - 1
            if stage.is_warmup:
                metrics = self._warmup(model, train, validation_data, stage,
                                       values.get("dropout"), callbacks, info)
            else:
                pruner = (PruneWorseThanWarmup(self.objective, best[self.objective],
                                               direction=self.direction)
                          if prune and best and self.objective in best else None)
                report = self._fit_stage(model, train, validation_data, stage,
                                         values.get("layer_decay"),
                                         list(callbacks or []) + ([pruner] if pruner else []))
                metrics = best_metrics(report)
                info["epochs"] += _epochs_run(report)
                if pruner is not None and pruner.pruned_at is not None:
                    info["pruned"] = True
            if best is None or self._better(metrics, best):
                best, snapshot = metrics, (None if last else model.get_weights())
            elif last and snapshot is not None:
                model.set_weights(snapshot)  # an earlier stage scored better: keep its weights
            if info["pruned"]:
                break
        info["trainable_params"] = _trainable_params(model)
        return dict(best or {})

    def _better(self, new, old) -> bool:
        a, b = new.get(self.objective), old.get(self.objective)
        if a is None or math.isnan(a):
            return False
        if b is None or math.isnan(b):
            return True
        return a > b if self.direction == "max" else a < b

    def _warmup(self, model, train, validation_data, stage, dropout, callbacks, info) -> dict:
        """Trains the head (or loads a kept warm-up with the same rate and dropout)."""
        key = (stage.learning_rate, dropout)
        kept = self._warmups.get(key) if self.share_warmup else None
        if kept is not None:
            from kerastl.training import compile_for_evaluation

            model_lib.get_head(model).set_weights(kept[0])
            self.last_reports.append(kept[2])
            info["shared_head_warmup"] = True
            if not getattr(model, "compiled", False):  # no kerastl.fit has compiled it yet
                compile_for_evaluation(model, strategy=self.strategy)
            return dict(kept[1])
        stage = dataclasses.replace(stage, epochs=self.warmup_epochs)
        report = self._fit_stage(model, train, validation_data, stage, None, callbacks)
        metrics = best_metrics(report)
        info["warmup_epochs"] = _epochs_run(report)
        if self.share_warmup:
            weights = [w.copy() for w in model_lib.get_head(model).get_weights()]
            self._warmups[key] = (weights, dict(metrics), report)
        return metrics

    def _fit_stage(self, model, train, validation_data, stage: TrialStage, layer_decay,
                   callbacks):
        """Runs one `kerastl.fit` call; returns its report (also kept in `last_reports`)."""
        from kerastl import training

        kwargs = dict(self.fit_kwargs)
        if stage.recipe != FEATURE_EXTRACTION:
            kwargs["trainable_blocks"] = stage.trainable_blocks
            if stage.backbone_learning_rate is not None:
                kwargs["backbone_learning_rate"] = stage.backbone_learning_rate
            if layer_decay is not None:
                kwargs["layer_decay"] = layer_decay
        if callbacks:
            kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + list(callbacks)
        if self.feature_cache is not None:
            kwargs["feature_cache"] = self.feature_cache
        if self.strategy is not None:
            kwargs["strategy"] = self.strategy
        report = training.fit(model, train, validation_data, recipe=stage.recipe,
                              epochs=stage.epochs, learning_rate=stage.learning_rate,
                              seed=self.seed, verbose=self.verbose, **kwargs)
        self.last_reports.append(report)
        return report


def _epochs_run(report) -> int:
    return sum(s.epochs_run for s in report.stages)


def best_metrics(report) -> dict:
    """Returns a `kerastl.fit` report's best-epoch metrics as a dict of floats."""
    metrics = report if isinstance(report, dict) else getattr(report, "best", None)
    return {str(k): float(v) for k, v in dict(metrics or {}).items()
            if isinstance(v, (int, float)) or hasattr(v, "item")}
