"""Named blocks of KerasHub backbones, for `kerastl.build("kerashub:...")`.

KerasHub names the layers of its image families consistently, so one regular
expression (`BLOCK_PATTERN`) finds the stages and transformer blocks after the
nested encoders are expanded (`expand_layers`); a backbone it does not fit
falls back to kerastl's generic rule (each layer with weights is a block).
`kerastl.backbones.blocks.resolve_blocks` calls `kerastl_blocks` for every
backbone whose spec has ``source="kerashub"``.
"""

from __future__ import annotations

import re

import keras

from kerastl.backbones.spec import BackboneSpec

# One named group over the block names of KerasHub's image families: ResNet and
# DenseNet ``stack2_block1_...``, EfficientNet ``block3a_...``, MobileNet
# ``block_2_1_...``, CSPNet ``stage_1_block_0_...``, ViT / DeiT
# ``transformer_block_3``, DINOv2 ``layers_3``, Swin ``stage_2``.
BLOCK_PATTERN = (r"^(?P<block>stack\d+_block\d+|block\d+[a-z]|block_\d+_\d+|"
                 r"stage_\d+_block_\d+|transformer_block_\d+|layers?_\d+|stage_\d+)(?:_|$)")

def _children(layer) -> list:
    if isinstance(layer, keras.Model) and hasattr(layer, "_nodes_by_depth"):
        return list(layer.layers)
    return list(layer._flatten_layers(include_self=False, recursive=False))


def _is_hub_class(obj) -> bool:
    return type(obj).__module__.startswith("keras_hub.")


def _is_container(layer, children) -> bool:
    """A nested KerasHub backbone, or a KerasHub layer holding repeated KerasHub blocks."""
    if isinstance(layer, keras.Model) and _is_hub_class(layer):
        return True
    if not _is_hub_class(layer):
        return False
    kinds = [type(c) for c in children if _is_hub_class(c) and c.weights]
    return any(kinds.count(kind) >= 2 for kind in set(kinds))


def expand_layers(layers) -> list:
    """Returns `layers` with nested KerasHub backbones and encoders replaced by their layers.

    A ViT's transformer blocks live inside one ``vit_encoder`` layer; expanding
    it makes each of them a layer that `kerastl.backbones.blocks` can name.

    Example:
        >>> layers = kerastl.backbones.kerashub_blocks.expand_layers(kerastl.get_backbone(model).layers)
    """
    out = []
    for layer in layers:
        children = _children(layer)
        if children and _is_container(layer, children):
            out.extend(expand_layers(children))
        else:
            out.append(layer)
    return out


def kerastl_blocks(spec: BackboneSpec, layers):
    """Named blocks of a KerasHub backbone's (expanded) layers.

    `spec.block_pattern` names the blocks; a model it does not fit (fewer than
    two blocks, or names that repeat apart) falls back to kerastl's generic
    rule (each layer with weights is a block).
    """
    from kerastl.backbones import blocks as blocks_lib

    layers = expand_layers(layers)
    try:
        found = blocks_lib._blocks_by_start(layers, re.compile(spec.block_pattern))
    except ValueError:
        found = []
    if len([b for b in found if b.name != "stem"]) >= 2:
        return found
    return blocks_lib._blocks_by_weighted_layer(layers)


__all__ = ["BLOCK_PATTERN", "expand_layers", "kerastl_blocks"]
