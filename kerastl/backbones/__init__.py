"""Backbones: the registry of pretrained feature extractors and their blocks."""

from kerastl.backbones.blocks import Block, resolve_blocks
from kerastl.backbones.registry import (get_backbone_spec, list_backbones, register_backbone,
                                        unregister_backbone)
from kerastl.backbones.spec import BackboneSpec

__all__ = ["BackboneSpec", "Block", "get_backbone_spec", "list_backbones", "register_backbone",
           "resolve_blocks", "unregister_backbone"]
