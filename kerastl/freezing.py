"""Unfreeze depth: which of a backbone's named blocks are trainable.

Depth ``k`` makes the top ``k`` blocks of `BackboneSpec` trainable (``0`` is
feature extraction, ``"all"`` every block). BatchNormalization layers stay
frozen, and so run in inference mode, unless ``bn_training=True``: Keras 3
runs a BatchNormalization layer with ``trainable=False`` in inference mode,
which is what transfer learning on small data wants (and, unlike
``backbone(x, training=False)``, it survives in a functional model, whose
outer ``training`` flag overrides the one given when the graph was built).
"""

from __future__ import annotations

import dataclasses

import keras

from kerastl._validation import check_bool, check_int
from kerastl.accessors import get_backbone, get_blocks, model_spec
from kerastl.backbones.blocks import Block, resolve_blocks
from kerastl.backbones.spec import BackboneSpec

ALL = "all"


@dataclasses.dataclass
class TrainableSummary:
    """What `kerastl.set_trainable_blocks` left trainable.

    Attributes:
        trainable_blocks: The depth, as a number of blocks.
        num_blocks: How many blocks the backbone has.
        trainable_block_names: Names of the trainable blocks, stem to top.
        trainable_params: Trainable parameters of the whole model.
        non_trainable_params: Non-trainable parameters of the whole model.
        recompiled: Whether the model was recompiled for the change to take effect.
    """

    trainable_blocks: int
    num_blocks: int
    trainable_block_names: list
    trainable_params: int
    non_trainable_params: int
    recompiled: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        names = ", ".join(self.trainable_block_names) or "(none: feature extraction)"
        return (f"trainable blocks: {self.trainable_blocks}/{self.num_blocks} [{names}]\n"
                f"trainable params: {self.trainable_params:,}\n"
                f"non-trainable params: {self.non_trainable_params:,}"
                + ("\n(recompiled)" if self.recompiled else ""))


def check_trainable_blocks(value, spec: BackboneSpec, num_blocks: int) -> int:
    """Returns the depth `value` as a number of blocks, or raises a clear error.

    Args:
        value: An int, or ``"all"``.
        spec: The backbone's spec (TF Hub backbones accept only 0 or "all").
        num_blocks: Number of blocks of the built backbone.

    Returns:
        The depth in ``[0, num_blocks]``.
    """
    if value == ALL:
        return num_blocks
    if spec.source == "hub":
        if value in (0, False) and not isinstance(value, bool):
            return 0
        raise ValueError(
            "TF Hub backbones are frozen or trained whole: `trainable_blocks` must be 0 or "
            f"'all'. Received: trainable_blocks={value!r}")
    if isinstance(value, str):
        raise ValueError(f"`trainable_blocks` must be between 0 and {num_blocks} or 'all'. "
                         f"Received: trainable_blocks={value!r}")
    return check_int("trainable_blocks", value, minimum=0, maximum=num_blocks, extra=" or 'all'")


def _is_batch_norm(layer) -> bool:
    return isinstance(layer, keras.layers.BatchNormalization)


def apply_trainable_blocks(backbone, blocks: list[Block], depth: int, *,
                           bn_training: bool = False) -> None:
    """Sets ``trainable`` on the backbone's layers for unfreeze depth `depth`.

    Args:
        backbone: The backbone layer or model.
        blocks: Its blocks from `kerastl.backbones.resolve_blocks`.
        depth: Number of top blocks to make trainable.
        bn_training: Let BatchNormalization layers of trainable blocks train
            (batch statistics, updated moving averages) instead of staying frozen.
    """
    if hasattr(backbone, "bn_training"):  # a HubBackbone: its SavedModel's own batch norm
        backbone.bn_training = bn_training
    if depth == 0:
        backbone.trainable = False
        return
    backbone.trainable = True
    first_trainable = len(blocks) - depth
    for index, block in enumerate(blocks):
        unfrozen = index >= first_trainable
        for layer in block.layers:
            if layer is backbone:
                continue
            layer.trainable = unfrozen
            if unfrozen and not bn_training:
                for sub in layer._flatten_layers(include_self=True, recursive=True):
                    if _is_batch_norm(sub):
                        sub.trainable = False


def recompile(model) -> bool:
    """Recompiles a compiled model with a fresh copy of its optimizer settings.

    Keras builds the training step for the trainable variables it sees at
    compile time, so a change of ``trainable`` needs a new compile.

    Returns:
        Whether the model was compiled (and so recompiled).
    """
    if not getattr(model, "compiled", False):
        return False
    config = model.get_compile_config()
    if config is None:
        return False
    if getattr(model, "optimizer", None) is not None:
        config["optimizer"] = keras.optimizers.serialize(model.optimizer)
    with model.distribute_strategy.scope():
        model.compile_from_config(config)
    return True


def summarize(model, blocks: list[Block], depth: int, *, recompiled: bool) -> TrainableSummary:
    """Builds the `TrainableSummary` of a model at depth `depth`."""
    trainable = sum(int(keras.ops.size(w)) for w in model.trainable_weights)
    frozen = sum(int(keras.ops.size(w)) for w in model.non_trainable_weights)
    names = [b.name for b in blocks[len(blocks) - depth:]] if depth else []
    return TrainableSummary(depth, len(blocks), names, trainable, frozen, recompiled)


def set_trainable_blocks(model, trainable_blocks, *, bn_training: bool = False,
                         recompile_model: bool = True) -> TrainableSummary:
    """Changes the unfreeze depth of a model built by `kerastl.build`.

    A compiled model is recompiled (same loss, metrics and optimizer
    settings, fresh optimizer state) so the change takes effect in the next
    ``fit``.

    Args:
        model: A model from `kerastl.build` (or loaded from its ``.keras`` file).
        trainable_blocks: Number of top blocks to train, ``0`` for feature
            extraction, or ``"all"``.
        bn_training: Let BatchNormalization layers in trainable blocks train.
        recompile_model: Recompile a compiled model (default True).

    Returns:
        A `TrainableSummary` (prints as a short table).

    Example:
        >>> model = kerastl.build("mobilenet_v2", 3, input_shape=(32, 32, 3), weights=None)
        >>> kerastl.set_trainable_blocks(model, 2).trainable_block_names
        ['block_16', 'Conv_1']
    """
    check_bool("bn_training", bn_training)
    check_bool("recompile_model", recompile_model)
    spec = model_spec(model)
    backbone = get_backbone(model)
    blocks = get_blocks(model)
    depth = check_trainable_blocks(trainable_blocks, spec, len(blocks))
    apply_trainable_blocks(backbone, blocks, depth, bn_training=bn_training)
    recompiled = recompile(model) if recompile_model else False
    return summarize(model, blocks, depth, recompiled=recompiled)


__all__ = ["ALL", "TrainableSummary", "apply_trainable_blocks", "check_trainable_blocks",
           "recompile", "resolve_blocks", "set_trainable_blocks"]
