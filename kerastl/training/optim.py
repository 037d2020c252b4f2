"""Per-variable learning rates (discriminative rates, layer-wise decay) and schedules.

`ScaledAdamW` is Keras 3's `AdamW` with a learning-rate multiplier per
variable: the step of a variable (and its weight decay) uses
``learning_rate * multiplier``, so a multiplier of 0 freezes the variable and
0.1 trains it 10x slower. `block_multipliers` computes the multipliers for a
kerastl model: 1 for the head, ``backbone_lr / head_lr`` for the top block,
times `layer_decay` per block below it.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerastl")
class ScaledAdamW(keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` with a learning-rate multiplier per variable.

    Args:
        lr_multipliers: ``{variable.path: multiplier}``; variables not listed
            use `default_multiplier`.
        default_multiplier: Multiplier of unlisted variables.
        **kwargs: `keras.optimizers.AdamW` arguments (`learning_rate`,
            `weight_decay`, `beta_1`, ...).

    Example:
        >>> opt = kerastl.training.ScaledAdamW(
        ...     learning_rate=1e-3, lr_multipliers={"block_16_project/kernel": 0.1})
    """

    def __init__(self, lr_multipliers=None, default_multiplier: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.lr_multipliers = {str(k): float(v) for k, v in (lr_multipliers or {}).items()}
        self.default_multiplier = float(default_multiplier)
        self._scales = []
        self._decays = []

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._scales = [self.lr_multipliers.get(v.path, self.default_multiplier)
                        for v in var_list]
        self._decays = [bool(self.weight_decay) and self._use_weight_decay(v)
                        for v in var_list]

    def _apply_weight_decay(self, variables):
        # Applied per variable in `update_step`, with the variable's own rate.
        return

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        scale = self._scales[index]
        if scale == 0.0:
            return
        lr = ops.cast(learning_rate, variable.dtype)
        if scale != 1.0:
            lr = lr * ops.cast(scale, variable.dtype)
        if self._decays[index]:
            wd = ops.cast(self.weight_decay, variable.dtype)
            self.assign_sub(variable, variable * wd * lr)
        super().update_step(gradient, variable, lr)

    def get_config(self):
        config = super().get_config()
        config.update({"lr_multipliers": dict(self.lr_multipliers),
                       "default_multiplier": self.default_multiplier})
        return config


def block_multipliers(blocks, depth: int, *, learning_rate: float,
                      backbone_learning_rate: float | None, layer_decay: float | None) -> dict:
    """Returns ``{variable.path: multiplier}`` for the trainable backbone blocks.

    Args:
        blocks: The backbone's blocks (`kerastl.get_blocks`), stem to top.
        depth: How many top blocks are trainable.
        learning_rate: The head's rate (multiplier 1).
        backbone_learning_rate: Rate of the top block (None: `learning_rate`).
        layer_decay: Factor per block below the top one (None: 1).

    Returns:
        Multipliers of the trainable blocks' variables (the head is left at the
        optimizer's default of 1).

    Example:
        >>> mult = kerastl.training.block_multipliers(kerastl.get_blocks(model), 2,
        ...     learning_rate=1e-3, backbone_learning_rate=1e-4, layer_decay=0.5)
    """
    top = 1.0 if backbone_learning_rate is None else backbone_learning_rate / learning_rate
    decay = 1.0 if layer_decay is None else layer_decay
    out = {}
    for distance, block in enumerate(reversed(blocks[len(blocks) - depth:] if depth else [])):
        scale = top * decay ** distance
        for layer in block.layers:
            for variable in layer.trainable_weights:
                out[variable.path] = scale
    return out


def warmup_cosine(peak: float, *, total_steps: int, warmup_steps: int):
    """Returns a linear warm-up then cosine decay to 0 schedule.

    Args:
        peak: Learning rate at the end of the warm-up.
        total_steps: Steps of the whole stage (at least 1).
        warmup_steps: Steps of the linear warm-up from ``peak / 10``.

    Returns:
        A `keras.optimizers.schedules.CosineDecay`.

    Example:
        >>> schedule = kerastl.training.warmup_cosine(1e-3, total_steps=100, warmup_steps=10)
    """
    total_steps = max(1, int(total_steps))
    warmup_steps = max(0, min(int(warmup_steps), total_steps - 1))
    if warmup_steps == 0:
        return keras.optimizers.schedules.CosineDecay(peak, decay_steps=total_steps)
    return keras.optimizers.schedules.CosineDecay(
        peak / 10.0, decay_steps=total_steps - warmup_steps, warmup_target=peak,
        warmup_steps=warmup_steps)


def make_optimizer(stage, blocks, *, steps_per_epoch: int, weight_decay: float,
                   mixed_float16: bool = False):
    """Returns the optimizer of a `kerastl.training.Stage`.

    Args:
        stage: The stage (rates, layer decay, epochs, warm-up).
        blocks: The backbone's blocks.
        steps_per_epoch: Training steps per epoch.
        weight_decay: Decoupled weight decay (scaled by each variable's rate).
        mixed_float16: Wrap in `keras.optimizers.LossScaleOptimizer`.

    Returns:
        A `ScaledAdamW` (or a loss-scaled one).
    """
    schedule = warmup_cosine(stage.learning_rate, total_steps=steps_per_epoch * stage.epochs,
                             warmup_steps=round(steps_per_epoch * stage.warmup_epochs))
    multipliers = block_multipliers(
        blocks, stage.trainable_blocks, learning_rate=stage.learning_rate,
        backbone_learning_rate=stage.backbone_learning_rate, layer_decay=stage.layer_decay)
    optimizer = ScaledAdamW(lr_multipliers=multipliers, learning_rate=schedule,
                            weight_decay=weight_decay)
    if mixed_float16:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


__all__ = ["ScaledAdamW", "block_multipliers", "make_optimizer", "warmup_cosine"]
