"""``kerastl.fit(model, ..., peft=...)``: the head, then a stage that trains only the PEFT part.

The recipe is `kerastl.fit`'s two-stage one: the head is fitted first (in
closed form on cached features), then a stage trains the PEFT variables and
the head together by gradient, on the cached activations below the lowest
targeted block. The PEFT stage is kept only when it beats the head on the
validation data, by `kerastl.fit`'s rule; without validation data it is kept.
"""

from __future__ import annotations

import dataclasses

from kerastl.peft.config import PeftConfig
from kerastl.peft.core import apply, set_trainable
from kerastl.training.report import StageReport
from kerastl.training.stage import run_stage

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
    return run_stage(ctx, index, stage, set_trainable=set_trainable)


__all__ = ["PEFT_RECIPES", "PeftRun", "prepare", "run_peft_stage"]
