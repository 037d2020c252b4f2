"""``kerastl.fit(model, ..., peft=...)``: the head, then a stage that trains only the PEFT part.

The recipe is `kerastl.fit`'s two-stage one: the head is fitted first (in
closed form on cached features), then a stage trains the PEFT variables and
the head together by gradient, on the cached activations below the lowest
targeted block. The PEFT stage is kept only when it beats the head on the
validation data, by `kerastl.fit`'s rule; without validation data it is kept.
"""

from __future__ import annotations

import dataclasses
import math
import time

from kerastl import distribute
from kerastl.peft.config import PeftConfig
from kerastl.peft.core import apply, set_trainable
from kerastl.training.callbacks import BestWeights
from kerastl.training.checkpoint import backup_callback
from kerastl.training.report import StageReport
from kerastl.training.stage import (_compile, _datasets, _epochs_here, _keras_verbose, _prepare,
                                    _train_model, run_stage)

# `kerastl.fit` recipes that make sense with a PEFT stage, and what "auto" means there.
PEFT_RECIPES = ("auto", "two_stage", "fine_tune")


@dataclasses.dataclass(frozen=True)
class PeftRun:
    """What `kerastl.fit` needs of a PEFT setting (from `prepare`).

    Attributes:
        config: The applied `kerastl.peft.PeftConfig`.
        depth: Top blocks the PEFT stage runs through (the lowest targeted one and above).
        recipe: The concrete recipe (``"auto"`` is ``"two_stage"``: asking for PEFT
            asks for its stage, with or without validation data).
    """

    config: PeftConfig
    depth: int
    recipe: str

    def stages(self, stages: list) -> list:
        """Names the stages that train the backbone after the method (``"lora"``)."""
        return [dataclasses.replace(s, name=self.config.method) if s.trainable_blocks else s
                for s in stages]

    @staticmethod
    def run(ctx, index: int, stage) -> StageReport:
        """Runs a stage: `kerastl.training.stage.run_stage` for the head, else the PEFT stage."""
        if stage.trainable_blocks == 0:
            return run_stage(ctx, index, stage)
        return run_peft_stage(ctx, index, stage)


def prepare(model, peft, opts) -> PeftRun:
    """Checks ``fit``'s options against `peft` and applies it to `model`.

    Args:
        model: The kerastl model.
        peft: A `kerastl.peft.PeftConfig`, a method name or a dict of its fields.
        opts: The checked `kerastl.training.options.FitOptions`.

    Returns:
        A `PeftRun`.
    """
    config = PeftConfig.from_value(peft)
    if opts.recipe not in PEFT_RECIPES:
        raise ValueError(f"`recipe` must be one of {', '.join(map(repr, PEFT_RECIPES))} with "
                         f"`peft` (a head, then the PEFT stage). Received: recipe={opts.recipe!r}")
    for name in ("trainable_blocks", "layer_decay"):
        if getattr(opts, name) is not None:
            raise ValueError(f"`{name}` does not apply with `peft`: the PEFT setting's `blocks` "
                             f"choose what trains. Received: {name}={getattr(opts, name)!r}")
    if opts.bn_training:
        raise ValueError("`bn_training` does not apply with `peft`: 'bitfit' and 'bn_affine' "
                         "train their BatchNormalization layers, 'lora' keeps them frozen. "
                         "Received: bn_training=True")
    summary = apply(model, config)
    recipe = "two_stage" if opts.recipe == "auto" else opts.recipe
    return PeftRun(config, summary.trainable_blocks, recipe)


def run_peft_stage(ctx, index: int, stage) -> StageReport:
    """Trains the PEFT variables and the head (the model is left at the stage's best epoch)."""
    opts = ctx.options
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
    names = [b.name for b in ctx.blocks[len(ctx.blocks) - depth:]]
    report = StageReport(stage.name, depth, names, [v.path for v in model.trainable_weights],
                         stage.epochs, learning_rate=stage.learning_rate,
                         backbone_learning_rate=stage.backbone_learning_rate,
                         cached=mode, cache_note=note, cache_seconds=cache_seconds)
    selects = ctx.validation is not None
    best = BestWeights(ctx.monitor, patience=opts.patience(mode is not None) if selects else None,
                       tie_monitor="val_loss" if selects else None, select=selects,
                       state_dir=ctx.checkpoint.stage_dir(index) if ctx.checkpoint else None)
    report.selected_on = "validation" if selects else "none: no validation data, last epoch"
    backup = backup_callback(ctx.checkpoint, index)
    if opts.verbose:
        print(f"Stage {index + 1} {stage.name!r}: {len(report.trainable_weights)} variables of "
              f"{depth}/{len(ctx.blocks)} blocks, {stage.epochs} epochs, "
              f"lr {stage.learning_rate:g}" + (f", cached {mode}" if mode else ""))
    start = time.perf_counter()
    model.fit(_prepare(train_ds, ctx, training=True),
              validation_data=None if val_ds is None else _prepare(val_ds, ctx, training=False),
              epochs=stage.epochs, verbose=_keras_verbose(opts.verbose),
              callbacks=ctx.callbacks + [best] + ([backup] if backup else []), shuffle=False)
    report.train_seconds = time.perf_counter() - start
    here = _epochs_here(model)
    report.resumed, report.epochs_run = len(best.epochs) > here, len(best.epochs)
    report.history, report.best_epoch, report.best = best.history, best.best_epoch, best.best_logs
    report.stopped = best.stopped
    seconds = report.train_seconds
    report.images_per_second = (n or 0) * here / seconds if seconds else 0.0
    return report


__all__ = ["PEFT_RECIPES", "PeftRun", "prepare", "run_peft_stage"]
