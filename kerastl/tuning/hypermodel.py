"""`TransferHyperModel`: a `keras_tuner.HyperModel` over `kerastl.build` + `kerastl.fit`.

A trial's epoch budget is cut into `kerastl.fit` calls (`plan_stages`) that
follow `kerastl.fit`'s recipes:

* depth 0 or ``recipe="feature_extraction"``: the head trains for all epochs
  (on the shared cache of frozen features);
* ``"fine_tune"``: one call, blocks and head trained together;
* ``"two_stage"``: a head warm-up (``ceil(epochs / 2)`` epochs) then the top
  blocks unfrozen for the rest; ``"progressive"`` unfreezes in up to three
  growing steps after the same warm-up. A warm-up depends only on the head
  learning rate, the dropout and its length, so trials that share those
  reuse one (its head weights and scores are kept);
* a Hyperband continuation (``tuner/initial_epoch > 0``, weights loaded from
  the earlier trial) trains only the fine-tuning stage for the extra epochs.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import keras_tuner

from kerastl import model as model_lib
from kerastl.freezing import ALL
from kerastl.heads import HeadConfig
from kerastl.tuning.space import SearchSpace

FEATURE_EXTRACTION = "feature_extraction"
FINE_TUNE = "fine_tune"
# kerastl.fit's defaults (kerastl.training.recipes), repeated so that planning
# a trial needs no TensorFlow import.
HEAD_LEARNING_RATE = 1e-3
FINE_TUNE_LR_FACTOR = 0.1
PROGRESSIVE_GROUPS = 3


@dataclasses.dataclass(frozen=True)
class TrialStage:
    """One `kerastl.fit` call of a trial.

    Attributes:
        recipe: ``"feature_extraction"`` (head only) or ``"fine_tune"``.
        epochs: Epochs of the call.
        trainable_blocks: Unfreeze depth (0 for the head only).
        learning_rate: Head learning rate.
        backbone_learning_rate: Rate of the top backbone block (None: `kerastl.fit`'s).
    """

    recipe: str
    epochs: int
    trainable_blocks: int | str
    learning_rate: float
    backbone_learning_rate: float | None = None


def _groups(depth: int) -> list[int]:
    count = min(PROGRESSIVE_GROUPS, depth)
    return sorted({max(1, round(depth * (i + 1) / count)) for i in range(count)})


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def plan_stages(recipe: str, depth, epochs: int, initial_epoch: int = 0, *,
                learning_rate=None, backbone_learning_rate=None,
                num_blocks: int | None = None) -> list[TrialStage]:
    """Returns the `kerastl.fit` calls of one trial, with its epoch budget split.

    The stages and rates are those of `kerastl.fit`'s recipes (the second
    stage of ``"two_stage"``/``"progressive"`` trains the head at 0.1x the
    warm-up rate, and the blocks at `backbone_learning_rate` or that rate), cut
    into calls so a warm-up can be shared and a Hyperband continuation can
    run the second stage only.

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
        [('feature_extraction', 3), ('fine_tune', 2)]
    """
    extra = epochs - initial_epoch
    lr = HEAD_LEARNING_RATE if learning_rate is None else learning_rate
    if extra <= 0:
        return []
    if depth == 0 or recipe == FEATURE_EXTRACTION:
        return [TrialStage(FEATURE_EXTRACTION, extra, 0, lr)]
    if recipe == FINE_TUNE:
        return [TrialStage(FINE_TUNE, extra, depth, lr, backbone_learning_rate)]
    late_lr = lr * FINE_TUNE_LR_FACTOR
    late_bb = late_lr if backbone_learning_rate is None else backbone_learning_rate
    if initial_epoch > 0:
        return [TrialStage(FINE_TUNE, extra, depth, late_lr, late_bb)]
    head = math.ceil(extra / 2)
    stages = [TrialStage(FEATURE_EXTRACTION, head, 0, lr)]
    rest = extra - head
    if rest == 0:
        return stages
    if recipe == "two_stage":
        return stages + [TrialStage(FINE_TUNE, rest, depth, late_lr, late_bb)]
    full = num_blocks if depth == ALL else depth
    if full is None:
        raise ValueError("`num_blocks` is needed to plan a progressive trial with depth 'all'.")
    groups = _groups(int(full))[-rest:]
    return stages + [TrialStage(FINE_TUNE, n, d, late_lr, late_bb)
                     for d, n in zip(groups, _split(rest, len(groups)))]


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
        share_warmup: Reuse two-stage head warm-ups between trials.
        num_blocks: The backbone's block count.
    """

    def __init__(self, *, backbone, num_classes, space: SearchSpace, build_kwargs=None,
                 fit_kwargs=None, objective="val_accuracy", direction="max", build_seed=0,
                 feature_cache=None, strategy=None, seed=None, verbose=0, share_warmup=True,
                 num_blocks=None):
        super().__init__(name="kerastl")
        self.backbone = backbone
        self.num_classes = num_classes
        self.space = space
        self.build_kwargs = dict(build_kwargs or {})
        self.fit_kwargs = dict(fit_kwargs or {})
        self.objective = objective
        self.direction = direction
        self.build_seed = build_seed
        self.feature_cache = feature_cache
        self.strategy = strategy
        self.seed = seed
        self.verbose = verbose
        self.share_warmup = share_warmup
        self.num_blocks = num_blocks
        self.builds = 0
        self.last_trial_info: dict = {}
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
            callbacks=None):
        """Trains the trial's model for epochs ``initial_epoch..epochs`` with `kerastl.fit`.

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
        info = {"epochs": sum(s.epochs for s in stages), "shared_head_warmup": False,
                "stages": [dataclasses.asdict(s) for s in stages]}
        self.last_trial_info = info
        best, snapshot = None, None
        for index, stage in enumerate(stages):
            warmup, last = index == 0 and len(stages) > 1, index == len(stages) - 1
            key = (stage.learning_rate, values.get("dropout"), stage.epochs)
            metrics = self._take_warmup(key, model) if warmup else None
            if metrics is not None:
                info["shared_head_warmup"] = True
            else:
                metrics = self._fit_stage(model, train, validation_data, stage,
                                          values.get("layer_decay"), callbacks)
                if warmup and self.share_warmup:
                    weights = [w.copy() for w in model_lib.get_head(model).get_weights()]
                    self._warmups[key] = (weights, dict(metrics))
            if best is None or self._better(metrics, best):
                best, snapshot = metrics, (None if last else model.get_weights())
            elif last and snapshot is not None:
                model.set_weights(snapshot)  # an earlier stage scored better: keep its weights
        info["trainable_params"] = _trainable_params(model)
        return dict(best or {})

    def _better(self, new, old) -> bool:
        a, b = new.get(self.objective), old.get(self.objective)
        if a is None or math.isnan(a):
            return False
        if b is None or math.isnan(b):
            return True
        return a > b if self.direction == "max" else a < b

    def _take_warmup(self, key, model):
        """Loads a kept warm-up's head weights into `model`; returns its metrics or None."""
        kept = self._warmups.get(key) if self.share_warmup else None
        if kept is None:
            return None
        model_lib.get_head(model).set_weights(kept[0])
        return dict(kept[1])

    def _fit_stage(self, model, train, validation_data, stage: TrialStage, layer_decay,
                   callbacks):
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
        return best_metrics(report)


def best_metrics(report) -> dict:
    """Returns a `kerastl.fit` report's best-epoch metrics as a dict of floats."""
    metrics = report if isinstance(report, dict) else getattr(report, "best", None)
    return {str(k): float(v) for k, v in dict(metrics or {}).items()
            if isinstance(v, (int, float)) or hasattr(v, "item")}
