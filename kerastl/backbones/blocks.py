"""Finds a backbone's named blocks in its layers (what "unfreeze depth" counts)."""

from __future__ import annotations

import dataclasses
import re

import keras

from kerastl.backbones.spec import BackboneSpec


@dataclasses.dataclass
class Block:
    """One named block of a backbone: a contiguous run of its layers.

    Attributes:
        name: The block's name (``"stem"``, ``"block_16"``, ``"mixed7"``, ``"top"``).
        layers: The block's layers, in the backbone's layer order.
    """

    name: str
    layers: list

    @property
    def num_params(self) -> int:
        return int(sum(int(keras.ops.size(w)) for layer in self.layers for w in layer.weights))


def _has_weights(layers) -> bool:
    return any(layer.weights for layer in layers)


def resolve_blocks(spec: BackboneSpec, backbone) -> list[Block]:
    """Splits `backbone`'s layers into the blocks that `spec` names.

    Args:
        spec: The backbone's spec (its `block_pattern` and `block_anchor`).
        backbone: The backbone layer or model. A layer that is not a
            functional model (a `HubBackbone`) is a single block.

    Returns:
        The blocks, ordered from the stem to the top.

    Raises:
        ValueError: A block's layers are not contiguous in layer order.

    Example:
        >>> spec = kerastl.get_backbone_spec("mobilenet_v2")
        >>> bb = keras.applications.MobileNetV2(include_top=False, weights=None,
        ...                                     input_shape=(32, 32, 3))
        >>> [b.name for b in kerastl.backbones.blocks.resolve_blocks(spec, bb)][:3]
        ['stem', 'block_1', 'block_2']
    """
    layers = list(getattr(backbone, "layers", []) or [])
    if layers and spec.source == "kerashub":
        from kerastl.backbones.kerashub_blocks import kerastl_blocks

        return kerastl_blocks(spec, layers)
    if not layers:
        return [Block(spec.name if spec.source != "hub" else "hub", [backbone])]
    if not spec.block_pattern:
        return _blocks_by_weighted_layer(layers)
    pattern = re.compile(spec.block_pattern)
    if spec.block_anchor == "end":
        blocks = _blocks_by_end(layers, pattern)
    else:
        blocks = _blocks_by_start(layers, pattern)
    if spec.block_prefix:
        for block in blocks:
            if block.name not in ("stem", "top"):
                block.name = spec.block_prefix + block.name
    return blocks


def _blocks_by_start(layers, pattern) -> list[Block]:
    blocks: list[Block] = []
    leading: list = []
    for layer in layers:
        match = pattern.search(layer.name)
        if match:
            name = match.group("block")
            if not blocks or blocks[-1].name != name:
                _check_new(blocks, name)
                blocks.append(Block(name, []))
            blocks[-1].layers.append(layer)
        elif blocks:
            blocks[-1].layers.append(layer)
        else:
            leading.append(layer)
    if not blocks:
        return [Block("stem", leading)]
    if _has_weights(leading):
        blocks.insert(0, Block("stem", leading))
    else:
        blocks[0].layers[:0] = leading
    return blocks


def _blocks_by_end(layers, pattern) -> list[Block]:
    blocks: list[Block] = []
    pending: list = []
    for layer in layers:
        pending.append(layer)
        match = pattern.search(layer.name)
        if match:
            name = match.group("block")
            _check_new(blocks, name)
            blocks.append(Block(name, pending))
            pending = []
    if not blocks:
        return [Block("top", pending)]
    if _has_weights(pending):
        blocks.append(Block("top", pending))
    else:
        blocks[-1].layers.extend(pending)
    return blocks


def _blocks_by_weighted_layer(layers) -> list[Block]:
    """Generic rule for unknown models: every layer with weights starts a block."""
    blocks: list[Block] = []
    leading: list = []
    for layer in layers:
        if layer.weights or not blocks:
            if layer.weights:
                blocks.append(Block(layer.name, leading + [layer]))
                leading = []
            else:
                leading.append(layer)
        else:
            blocks[-1].layers.append(layer)
    if leading:
        if blocks:
            blocks[-1].layers.extend(leading)
        else:
            blocks.append(Block("stem", leading))
    return blocks


def _check_new(blocks, name) -> None:
    if any(b.name == name for b in blocks):
        raise ValueError(
            f"Block {name!r} is not contiguous in the backbone's layer order; the spec's "
            "block_pattern does not fit this model.")
