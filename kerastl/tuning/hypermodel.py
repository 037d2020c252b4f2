"""`TransferHyperModel`: a `keras_tuner.HyperModel` over `kerastl.build` + `kerastl.fit`.

A trial is `kerastl.fit`'s recipe (`kerastl.training.recipes.plan_stages`,
the same stages and rates `kerastl.fit` runs), one `kerastl.fit` call per stage:

* the head stage: the head trained on the frozen backbone (on cached
  features) for `kerastl.fit`'s default head epochs (or tune's `epochs`),
  with early stopping. It depends only on the head learning rate and the
  dropout, costs seconds on cached features, and is trained once and shared
  by every trial with those values (its head weights and scores are kept).
  Depth-0 and ``"feature_extraction"`` trials are the head stage alone;
* ``"two_stage"``: then the top blocks unfrozen for the trial's epoch budget
  (``tuner/epochs``); ``"progressive"`` splits the budget over its growing
  depths; ``"fine_tune"`` trains blocks and head together from the start;
* a Hyperband continuation (``tuner/initial_epoch > 0``, weights loaded from
  the earlier trial) trains only the last fine-tuning stage for the extra epochs.

So a trial's epoch budget counts the expensive epochs only: those that run
the unfrozen blocks. A fine-tuning stage that scores clearly worse than the
stage it started from is stopped at the end of that epoch (more than
`PRUNE_TOLERANCE` worse, relative; after its first epoch, which may dip
before it recovers, more than `PRUNE_FIRST_EPOCH_TOLERANCE`): its rate is
wrecking the pretrained features, and more epochs of it are wasted (the
trial keeps its best weights, usually the head stage's).

`TransferHyperModel.fit` returns what keras-tuner expects from a trial: a
dict of metrics. Next to the validation metrics (the objective among them)
it holds the trial's facts as numbers (`INFO_METRICS`: epochs trained,
whether it was pruned, whether more epochs could change it, ...), which
keras-tuner stores with the trial and `kerastl.tuning.tuners.KerastlHyperbandOracle`
reads to decide continuations.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import keras_tuner

from kerastl import model as model_lib
from kerastl.freezing import ALL
from kerastl.heads import HeadConfig
from kerastl.training import recipes
from kerastl.tuning.space import SearchSpace

FEATURE_EXTRACTION = "feature_extraction"
PRUNE_TOLERANCE = 0.1
PRUNE_FIRST_EPOCH_TOLERANCE = 0.5
# The trial facts `TransferHyperModel.fit` reports next to the validation metrics.
INFO_METRICS = {"epochs": "kerastl/epochs", "head_epochs": "kerastl/head_epochs",
                "shared_head_warmup": "kerastl/shared_head_warmup",
                "pruned": "kerastl/pruned", "trainable_params": "kerastl/trainable_params",
                "can_continue": "kerastl/can_continue", "settled": "kerastl/settled"}


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def trial_stages(values: dict, *, epochs: int, initial_epoch: int = 0,
                 num_blocks: int) -> list[recipes.Stage]:
    """Returns the `kerastl.fit` stages of one trial (`kerastl.training.recipes.plan_stages`).

    The epoch budget ``epochs - initial_epoch`` goes to the fine-tuning
    stages (``"progressive"`` splits it over its depths, keeping the deepest
    when the budget is smaller than their number); the head stage (`Stage`
    named ``"head"``) is the shared warm-up and not counted. A Hyperband
    continuation (``initial_epoch > 0``) runs only the last fine-tuning stage.

    Args:
        values: The trial's decoded values (`kerastl.SearchSpace.decode`).
        epochs: The cumulative epoch budget (``tuner/epochs``).
        initial_epoch: Epochs already trained by the trial it continues.
        num_blocks: The backbone's block count.

    Returns:
        A list of `kerastl.training.recipes.Stage` (empty when nothing is left to train).

    Example:
        >>> [(s.name, s.epochs) for s in trial_stages(
        ...     {"recipe": "two_stage", "trainable_blocks": 4}, epochs=5, num_blocks=18)]
        [('head', 30), ('fine_tune', 5)]
    """
    recipe = values.get("recipe", "two_stage")
    depth = values.get("trainable_blocks", 0)
    extra = int(epochs) - int(initial_epoch)
    if depth == 0 or recipe == FEATURE_EXTRACTION:
        recipe, depth = FEATURE_EXTRACTION, 0
    stages = recipes.plan_stages(
        recipe, num_blocks=num_blocks, head_cached=True,
        epochs=max(1, extra) if recipe == "fine_tune" else None,
        fine_tune_epochs=max(1, extra), learning_rate=values.get("learning_rate"),
        backbone_learning_rate=values.get("backbone_learning_rate"),
        layer_decay=values.get("layer_decay"), trainable_blocks=depth)
    head = [s for s in stages if s.name == "head"]
    tuned = [s for s in stages if s.name != "head"]
    if not tuned:
        return head if initial_epoch == 0 else []
    if extra <= 0:
        return []
    if initial_epoch > 0:
        head, tuned = [], tuned[-1:]
    tuned = tuned[-extra:]
    tuned = [dataclasses.replace(s, epochs=n, warmup_epochs=min(1.0, n / 2),
                                 trainable_blocks=(ALL if depth == ALL and s.trainable_blocks
                                                   == num_blocks else s.trainable_blocks))
             for s, n in zip(tuned, _split(extra, len(tuned)))]
    return head + tuned


class PruneWorseThanWarmup(keras.callbacks.Callback):
    """Stops a fine-tuning stage whose score falls clearly below its starting point.

    The first epoch gets a grace margin: unfreezing blocks often costs some
    score in the first epoch and wins it back later, so only a collapse
    (`first_epoch_tolerance`) stops the stage there.

    Args:
        monitor: The objective's metric name (``"val_accuracy"``, ``"val_loss"``, ...).
        reference: The starting point's score on `monitor`.
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


@dataclasses.dataclass
class TrialOutcome:
    """What one trial (or the refit) trained, as `TransferHyperModel.train` returns it.

    Attributes:
        metrics: The best validation metrics (the objective among them).
        reports: The `kerastl.fit` reports of its stages, in order.
        epochs: Fine-tuning epochs trained.
        head_epochs: Head-stage epochs trained (0 when a kept head stage was reused).
        shared_head_warmup: Whether a kept head stage was reused.
        pruned: Whether a fine-tuning stage was stopped by pruning.
        can_continue: Whether more epochs of this setting could change its result
            (False when it has no fine-tuning stage or was pruned).
        trainable_params: Trainable parameters of the model at the end.
    """

    metrics: dict
    reports: list
    epochs: int = 0
    head_epochs: int = 0
    shared_head_warmup: bool = False
    pruned: bool = False
    can_continue: bool = False
    trainable_params: int = 0

    def tuner_metrics(self) -> dict:
        """Returns the dict a keras-tuner trial reports: metrics + `INFO_METRICS` as floats."""
        out = dict(self.metrics)
        for field, name in INFO_METRICS.items():
            if field != "settled":
                out[name] = float(getattr(self, field))
        out[INFO_METRICS["settled"]] = 0.0
        return out


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
            same backbone (what makes cached features and head stages shareable).
        feature_cache: A `kerastl.training.FeatureCache` shared by all trials, or None.
        strategy: A `tf.distribute.Strategy` for `kerastl.build`/`kerastl.fit`, or None.
        seed: Seed passed to `kerastl.fit`.
        verbose: Verbosity passed to `kerastl.fit`.
        share_warmup: Reuse head stages between trials.
        epochs: Epochs of a head stage (None: `kerastl.fit`'s default).
        prune: Stop fine-tuning stages that fall clearly below their start.
        num_blocks: The backbone's block count.
    """

    def __init__(self, *, backbone, num_classes, space: SearchSpace, build_kwargs=None,
                 fit_kwargs=None, objective="val_accuracy", direction="max", build_seed=0,
                 feature_cache=None, strategy=None, seed=None, verbose=0, share_warmup=True,
                 epochs=None, prune=True, num_blocks=None):
        super().__init__(name="kerastl")
        self.backbone, self.num_classes, self.space = backbone, num_classes, space
        self.build_kwargs = dict(build_kwargs or {})
        self.fit_kwargs = dict(fit_kwargs or {})
        self.objective, self.direction = objective, direction
        self.build_seed, self.seed, self.verbose = build_seed, seed, verbose
        self.feature_cache, self.strategy = feature_cache, strategy
        self.share_warmup, self.epochs, self.prune = share_warmup, epochs, prune
        self.num_blocks = num_blocks
        self._warmups: dict = {}  # (head rate, dropout) -> (head weights, metrics, report)

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
            return model_lib.build(self.backbone, self.num_classes, trainable_blocks=depth,
                                   strategy=self.strategy, **kwargs)
        except (ValueError, TypeError) as error:
            # A bad build argument fails every trial alike: stop the search with it.
            fatal = (keras_tuner.errors.FatalValueError if isinstance(error, ValueError)
                     else keras_tuner.errors.FatalTypeError)
            raise fatal(str(error)) from error

    def fit(self, hp, model, train, validation_data=None, *, epochs, initial_epoch=0,
            callbacks=None, start_metrics=None, **kwargs):
        """Trains one trial; returns its metrics for keras-tuner (`TrialOutcome.tuner_metrics`).

        Args:
            hp: The trial's `keras_tuner.HyperParameters`.
            model: The model from `build` (a continuation: with its earlier trial's weights).
            train: Training batches.
            validation_data: Validation batches.
            epochs: The cumulative epoch budget (``tuner/epochs``).
            initial_epoch: Epochs already trained by the trial it continues.
            callbacks: Extra Keras callbacks for every `kerastl.fit` call.
            start_metrics: The scores of the weights `model` starts from (a
                continuation: its earlier trial's); the reference of pruning,
                and the model goes back to those weights if training does not beat them.
            **kwargs: Ignored (keras-tuner may pass its own fit arguments).
        """
        outcome = self.train(hp, model, train, validation_data, epochs=epochs,
                             initial_epoch=initial_epoch, callbacks=callbacks,
                             start_metrics=start_metrics)
        return outcome.tuner_metrics()

    def train(self, hp, model, train, validation_data=None, *, epochs, initial_epoch=0,
              callbacks=None, prune=None, start_metrics=None) -> TrialOutcome:
        """Runs the trial's stages with `kerastl.fit`; returns a `TrialOutcome`.

        The model is left at the weights that scored the outcome's metrics.
        `prune` overrides the hypermodel's setting (the refit does not prune).
        """
        values = SearchSpace.decode(hp.values)
        stages = trial_stages(values, epochs=int(epochs), initial_epoch=int(initial_epoch),
                              num_blocks=self.num_blocks)
        prune = self.prune if prune is None else prune
        outcome = TrialOutcome(metrics={}, reports=[])
        best, snapshot = None, None
        if start_metrics and stages:
            best, snapshot = dict(start_metrics), model.get_weights()
        for index, stage in enumerate(stages):
            last = index == len(stages) - 1
            if stage.name == "head":
                metrics = self._head_stage(model, train, validation_data, stage,
                                           values.get("dropout"), callbacks, outcome)
            else:
                pruner = (PruneWorseThanWarmup(self.objective, best[self.objective],
                                               direction=self.direction)
                          if prune and best and self.objective in best else None)
                report = self._fit_stage(model, train, validation_data, stage,
                                         list(callbacks or []) + ([pruner] if pruner else []))
                outcome.reports.append(report)
                metrics = best_metrics(report)
                outcome.epochs += _epochs_run(report)
                outcome.pruned = pruner is not None and pruner.pruned_at is not None
            if best is None or self._better(metrics, best):
                best, snapshot = metrics, (None if last else model.get_weights())
            elif last and snapshot is not None:
                model.set_weights(snapshot)  # an earlier stage scored better: keep its weights
            if outcome.pruned:
                break
        outcome.metrics = dict(best or start_metrics or {})
        outcome.can_continue = any(s.name != "head" for s in stages) and not outcome.pruned
        outcome.trainable_params = _trainable_params(model)
        return outcome

    def _better(self, new, old) -> bool:
        a, b = new.get(self.objective), old.get(self.objective)
        if a is None or math.isnan(a):
            return False
        if b is None or math.isnan(b):
            return True
        return a > b if self.direction == "max" else a < b

    def _head_stage(self, model, train, validation_data, stage, dropout, callbacks,
                    outcome) -> dict:
        """Trains the head (or loads a kept head stage with the same rate and dropout)."""
        key = (stage.learning_rate, dropout)
        kept = self._warmups.get(key) if self.share_warmup else None
        if kept is not None:
            from kerastl.training import compile_for_evaluation

            model_lib.get_head(model).set_weights(kept[0])
            outcome.reports.append(kept[2])
            outcome.shared_head_warmup = True
            if not getattr(model, "compiled", False):  # no kerastl.fit has compiled it yet
                compile_for_evaluation(model, strategy=self.strategy)
            return dict(kept[1])
        stage = dataclasses.replace(stage, epochs=self.epochs)
        report = self._fit_stage(model, train, validation_data, stage, callbacks)
        outcome.reports.append(report)
        metrics = best_metrics(report)
        outcome.head_epochs = _epochs_run(report)
        if self.share_warmup:
            weights = [w.copy() for w in model_lib.get_head(model).get_weights()]
            self._warmups[key] = (weights, dict(metrics), report)
        return metrics

    def _fit_stage(self, model, train, validation_data, stage: recipes.Stage, callbacks):
        """Runs one stage as one `kerastl.fit` call; returns its report."""
        from kerastl import training

        kwargs = dict(self.fit_kwargs)
        recipe = FEATURE_EXTRACTION if stage.name == "head" else "fine_tune"
        if recipe == "fine_tune":
            kwargs["trainable_blocks"] = stage.trainable_blocks
            # plan_stages leaves None for "the stage's head rate"; fit's fine_tune
            # recipe would read None as its new-head default instead.
            kwargs["backbone_learning_rate"] = (stage.learning_rate
                                                if stage.backbone_learning_rate is None
                                                else stage.backbone_learning_rate)
            if stage.layer_decay is not None:
                kwargs["layer_decay"] = stage.layer_decay
        if callbacks:
            kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + list(callbacks)
        if self.feature_cache is not None:
            kwargs["feature_cache"] = self.feature_cache
        if self.strategy is not None:
            kwargs["strategy"] = self.strategy
        if recipe == FEATURE_EXTRACTION:
            # The shared head must stay fitted on the training data alone: the
            # validation data scores the trial's fine-tuning and pruning.
            kwargs["refit_head"] = False
        return training.fit(model, train, validation_data, recipe=recipe, epochs=stage.epochs,
                            learning_rate=stage.learning_rate, seed=self.seed,
                            verbose=self.verbose, **kwargs)


def _epochs_run(report) -> int:
    return sum(s.epochs_run for s in report.stages)


def best_metrics(report) -> dict:
    """Returns a `kerastl.fit` report's best-epoch metrics as a dict of floats."""
    metrics = report if isinstance(report, dict) else getattr(report, "best", None)
    return {str(k): float(v) for k, v in dict(metrics or {}).items()
            if isinstance(v, (int, float)) or hasattr(v, "item")}
