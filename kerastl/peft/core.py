"""Apply a parameter-efficient method to a kerastl model; what it trains; LoRA merging.

`apply` enables Keras's own LoRA (``layer.enable_lora``) on the kernels of
the selected named blocks, or marks the bias / BatchNormalization variables
of BitFit and BN-affine tuning, and records the `PeftConfig` on the model.
`set_trainable` then makes exactly those variables (and the head) trainable.
Keras resets a layer's variables to trainable whenever ``layer.trainable`` is
set, so `set_trainable` sets the layer flags first and the variable flags last.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile

import keras

from kerastl.accessors import get_backbone, get_blocks, get_head, model_spec
from kerastl.layers import ClassificationHead
from kerastl.peft.config import ALL_BLOCKS, PeftConfig

CONFIG_ATTRIBUTE = "_kerastl_peft"
LORA_VARIABLES = ("lora_kernel_a", "lora_kernel_b")
_LORA_CONFIG_KEYS = ("lora_rank", "lora_alpha")


@dataclasses.dataclass(frozen=True)
class PeftSummary:
    """What `kerastl.peft.apply` targeted.

    Attributes:
        method: The `PeftConfig` method.
        blocks: Names of the targeted blocks, stem to top.
        layers: Names of the layers holding trained backbone variables.
        trainable_blocks: How many top blocks a step runs through (the lowest
            targeted block and everything above it).
        peft_params: Trained backbone parameters (low-rank factors, biases, BN affine).
        backbone_params: All parameters of the backbone (before LoRA).
    """

    method: str
    blocks: list
    layers: list
    trainable_blocks: int
    peft_params: int
    backbone_params: int

    @property
    def fraction(self) -> float:
        """Trained backbone parameters as a fraction of the backbone's parameters."""
        return self.peft_params / self.backbone_params if self.backbone_params else 0.0

    def to_dict(self) -> dict:
        return dict(dataclasses.asdict(self), fraction=self.fraction)


def _size(variable) -> int:
    return int(math.prod(variable.shape))


def _leaf_layers(layer) -> list:
    """The layers without sublayers inside `layer` (itself if it has none), in layer order."""
    if not layer._layers:
        return [layer]
    return [leaf for sub in layer._layers for leaf in _leaf_layers(sub)]


def _lora_capable(layer) -> bool:
    return hasattr(layer, "enable_lora") and not isinstance(layer, keras.layers.Embedding)


def _heads(model) -> list:
    """The model's heads: one, or one per task of a multi-task model."""
    heads = [layer for layer in model.layers if isinstance(layer, ClassificationHead)]
    return heads or [get_head(model)]


def lora_layers(model) -> list:
    """Returns the model's layers whose LoRA is enabled."""
    return [layer for layer in _leaf_layers(model) if getattr(layer, "lora_enabled", False)]


def max_rank(layer) -> int:
    """Largest useful LoRA rank of a layer: the smaller of its kernel's fan-in and fan-out."""
    shape = tuple(int(d) for d in layer._kernel.shape)
    return min(math.prod(shape[:-1]), shape[-1])


def select_blocks(model, blocks) -> list:
    """Returns the `kerastl.backbones.Block` objects named by a `PeftConfig.blocks` value."""
    every = get_blocks(model)
    if blocks == ALL_BLOCKS:
        return every
    if isinstance(blocks, int):
        if blocks > len(every):
            raise ValueError(f"`blocks` must be between 1 and {len(every)} or 'all' for this "
                             f"backbone. Received: blocks={blocks}")
        return every[len(every) - blocks:]
    names = [b.name for b in every]
    unknown = [n for n in blocks if n not in names]
    if unknown:
        raise ValueError(f"`blocks` names unknown blocks {unknown}; this backbone's blocks are "
                         f"{', '.join(names)}. Received: blocks={list(blocks)!r}")
    return [b for b in every if b.name in blocks]


def _check_backbone(model, method):
    spec = model_spec(model)
    if spec.source == "hub":
        raise ValueError(
            f"method={method!r} needs a Keras backbone (its layers' kernels, biases and "
            "BatchNormalization variables); a TF Hub backbone is one opaque SavedModel layer. "
            f"Received: backbone {spec.name!r}")


def _targets(config: PeftConfig, layer) -> list:
    """The variables of `layer` that `config` trains (LoRA layers: after enable_lora)."""
    if config.method == "lora":
        return [getattr(layer, n) for n in LORA_VARIABLES if getattr(layer, "lora_enabled", False)]
    bn = isinstance(layer, keras.layers.BatchNormalization)
    if config.method == "bn_affine":
        return [v for v in (layer.gamma, layer.beta) if v is not None] if bn else []
    if bn:
        return [layer.beta] if layer.beta is not None else []
    bias = getattr(layer, "bias", None)
    return [bias] if isinstance(bias, keras.Variable) else []


def _enable_lora(config: PeftConfig, layers) -> None:
    capable = [layer for layer in layers if _lora_capable(layer)]
    if not capable:
        raise ValueError("method='lora' found no Dense, EinsumDense or Conv1D/2D/3D layer in "
                         "the selected blocks. Received: blocks="
                         f"{config.blocks!r}")
    narrowest = min(capable, key=max_rank)
    if config.rank > max_rank(narrowest):
        raise ValueError(
            f"`rank` must be between 1 and {max_rank(narrowest)} for these blocks: layer "
            f"{narrowest.name!r} has a kernel of shape {tuple(narrowest._kernel.shape)} (the "
            "rank is at most its smaller fan-in / fan-out). Received: rank="
            f"{config.rank}")
    for layer in capable:
        layer.enable_lora(config.rank, lora_alpha=config.alpha if config.alpha else config.rank)


def get_config(model) -> PeftConfig | None:
    """Returns the `PeftConfig` applied to `model` by `kerastl.peft.apply`, or None."""
    return getattr(model, CONFIG_ATTRIBUTE, None)


def apply(model, peft, *, rank=None, alpha=None, blocks=ALL_BLOCKS) -> PeftSummary:
    """Makes a kerastl model parameter-efficient: `kerastl.fit` then trains only its PEFT part.

    LoRA adds zero-initialised low-rank factors to every Dense, EinsumDense and
    Conv1D/2D/3D kernel of the selected blocks, so the model's outputs are
    unchanged until it trains. BitFit and BN-affine add nothing. The
    BatchNormalization layers of BitFit / BN-affine blocks train on batch
    statistics (as ``bn_training=True``); with LoRA they stay frozen.

    Args:
        model: A model from `kerastl.build` with a Keras backbone.
        peft: ``"lora"``, ``"bitfit"``, ``"bn_affine"``, or a `kerastl.peft.PeftConfig`
            or a dict of its fields (then `rank`, `alpha`, `blocks` must be left at
            their defaults).
        rank: LoRA rank (default 8).
        alpha: LoRA scale numerator (default: `rank`).
        blocks: ``"all"``, the number of top blocks, or a list of block names.

    Returns:
        A `PeftSummary` (targeted blocks and layers, trained parameters).

    Example:
        >>> model = kerastl.build("mobilenet_v2", 5, input_shape=96)
        >>> kerastl.peft.apply(model, "lora", rank=4, blocks=4).peft_params
        33920
    """
    if isinstance(peft, (PeftConfig, dict)):
        if (rank, alpha, blocks) != (None, None, ALL_BLOCKS):
            raise ValueError("Pass either a PeftConfig or `rank`/`alpha`/`blocks`, not both. "
                             f"Received: peft={peft!r}, rank={rank!r}, alpha={alpha!r}, "
                             f"blocks={blocks!r}")
        config = PeftConfig.from_value(peft)
    else:
        config = PeftConfig.from_value({"method": peft, "rank": rank, "alpha": alpha,
                                        "blocks": blocks})
    _check_backbone(model, config.method)
    previous = get_config(model)
    if previous is not None or lora_layers(model):
        if previous == config:
            return summarize(model)
        raise ValueError("kerastl.peft.apply was already applied to this model "
                         f"({previous!r}); build a fresh model for another setting. "
                         f"Received: peft={config!r}")
    selected = select_blocks(model, config.blocks)
    if config.method == "lora":
        _enable_lora(config, [layer for b in selected for layer in b.layers])
        # Traced predict / train steps would still run the layers without LoRA.
        for name in ("train_function", "test_function", "predict_function"):
            setattr(model, name, None)
    setattr(model, CONFIG_ATTRIBUTE, config)
    return summarize(model)


def _require_config(model) -> PeftConfig:
    config = get_config(model)
    if config is None:
        raise ValueError(f"Model {model.name!r} has no PEFT setting: call "
                         "kerastl.peft.apply(model, ...) (or kerastl.peft.load) first.")
    return config


def peft_variables(model) -> list:
    """Returns the backbone variables the model's `PeftConfig` trains, in layer order."""
    config = _require_config(model)
    selected = select_blocks(model, config.blocks)
    return [v for b in selected for layer in b.layers for sub in _leaf_layers(layer)
            for v in _targets(config, sub)]


def _trains_bn(config: PeftConfig) -> bool:
    return config.method in ("bitfit", "bn_affine")


def adapter_variables(model) -> list:
    """Every variable a PEFT training changes: PEFT variables, BN moving statistics, the head.

    These are what `kerastl.peft.save` writes.
    """
    config = _require_config(model)
    out = list(peft_variables(model))
    if _trains_bn(config):
        for block in select_blocks(model, config.blocks):
            for layer in block.layers:
                for sub in _leaf_layers(layer):
                    if isinstance(sub, keras.layers.BatchNormalization):
                        out += [sub.moving_mean, sub.moving_variance]
    return out + [v for head in _heads(model) for v in head.weights]


def set_trainable(model) -> int:
    """Makes only the PEFT variables and the head trainable; returns the blocks a step runs.

    Returns:
        The number of top blocks from the lowest targeted block up (the
        depth below which activations can be cached).
    """
    _require_config(model)
    backbone = get_backbone(model)
    keep = {id(v) for v in peft_variables(model)}
    backbone.trainable = True
    for layer in _leaf_layers(backbone):
        owned = [v for v in layer.weights if id(v) in keep]
        layer.trainable = bool(owned)
        for variable in layer.weights:
            variable.trainable = id(variable) in keep
    for head in _heads(model):
        head.trainable = True
    return summarize(model).trainable_blocks


def summarize(model) -> PeftSummary:
    """Returns the `PeftSummary` of a model that `kerastl.peft.apply` prepared."""
    config = _require_config(model)
    every = get_blocks(model)
    selected = select_blocks(model, config.blocks)
    variables = peft_variables(model)
    layer_names = []
    for block in selected:
        for layer in block.layers:
            if any(_targets(config, sub) for sub in _leaf_layers(layer)):
                layer_names.append(layer.name)
    first = min(every.index(b) for b in selected)
    lora = {id(getattr(layer, n)) for layer in lora_layers(model) for n in LORA_VARIABLES}
    total = sum(_size(v) for v in get_backbone(model).weights if id(v) not in lora)
    return PeftSummary(config.method, [b.name for b in selected], layer_names,
                       len(every) - first, sum(_size(v) for v in variables), total)


def _strip_lora(config):
    """Removes LoRA settings from a serialized model config (every nesting level)."""
    if isinstance(config, dict):
        return {k: _strip_lora(v) for k, v in config.items() if k not in _LORA_CONFIG_KEYS}
    if isinstance(config, list):
        return [_strip_lora(v) for v in config]
    return config


def merge(model) -> keras.Model:
    """Returns a copy of `model` with every LoRA update folded into its kernel.

    The copy has plain Keras layers (no low-rank factors): it computes the same
    outputs as `model` within float32 rounding, exports without LoRA ops, and
    is what `kerastl.export` writes for a LoRA model. A model without LoRA is
    returned as it is.

    Args:
        model: A kerastl model (LoRA applied or not).

    Returns:
        A new, uncompiled `keras.Model` (or `model` itself when it has no LoRA).

    Example:
        >>> merged = kerastl.peft.merge(model)
        >>> kerastl.peft.lora_layers(merged)
        []
    """
    if not lora_layers(model):
        return model
    config = _strip_lora(keras.saving.serialize_keras_object(model))
    merged = keras.saving.deserialize_keras_object(config)
    with tempfile.TemporaryDirectory(prefix="kerastl_merge_") as folder:
        # Keras's save_own_variables writes a LoRA layer's merged kernel.
        path = os.path.join(folder, "merged.weights.h5")
        model.save_weights(path)
        merged.load_weights(path)
    return merged


__all__ = ["PeftSummary", "adapter_variables", "apply", "get_config", "lora_layers", "max_rank",
           "merge", "peft_variables", "select_blocks", "set_trainable", "summarize"]
