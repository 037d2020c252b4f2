"""`BackboneSpec`: everything kerastl needs to know about one backbone, as data."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

BLOCK_ANCHORS = ("start", "end")


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """Describes one backbone in the registry.

    Unfreeze depth is counted in *blocks*: the architecture's own repeated
    units (MobileNetV2's ``block_1`` … ``block_16``, ResNet's
    ``conv4_block3``, Inception's ``mixed7``), ordered from the stem to the
    top. Blocks are found in the real model from layer names with
    `block_pattern`, a regular expression whose group ``block`` is the block's
    name:

    * ``block_anchor="start"``: a layer whose name matches starts (or
      continues) that block; unmatched layers belong to the block before them,
      and layers before the first match form the block ``"stem"``.
    * ``block_anchor="end"``: a matching layer *ends* its block; unmatched
      layers belong to the next matching one, and layers after the last match
      form the block ``"top"``.

    Args:
        name: Registry name, snake_case (``"mobilenet_v2"``).
        constructor: Callable that builds the backbone, called as
            ``constructor(include_top=False, weights=..., input_shape=..., **kwargs)``.
        preprocessing: Input scaling mode of `kerastl.layers.ImagePreprocessing`.
        default_input_size: Side of the square input the weights were trained on.
        min_input_size: Smallest input side the architecture accepts.
        feature_dim: Width of the pooled features with the default kwargs.
        num_blocks: Number of blocks with the default kwargs.
        block_pattern: Regular expression with a group named ``block``.
        block_anchor: ``"start"`` or ``"end"`` (see above).
        block_prefix: Text put before the matched group to name a block
            (MobileNet's ``"block_"`` turns ``conv_dw_3`` into ``block_3``).
        num_params: Parameters of the backbone with the default kwargs.
        family: Architecture family (``"mobilenet_v2"``, ``"efficientnet"``).
        kwargs: Extra constructor arguments users may pass in
            ``backbone_kwargs``, with their defaults.
        source: ``"keras"`` for Keras Applications, ``"hub"`` for TF Hub, ``"custom"``.
        fixed_input_size: Input sides the ImageNet weights require, if any.
    """

    name: str
    constructor: Callable[..., Any] | None
    preprocessing: str
    default_input_size: int
    min_input_size: int
    feature_dim: int
    num_blocks: int
    block_pattern: str = ""
    block_anchor: str = "start"
    block_prefix: str = ""
    num_params: int = 0
    family: str = ""
    kwargs: dict = dataclasses.field(default_factory=dict)
    source: str = "keras"
    fixed_input_size: tuple = ()

    def to_dict(self) -> dict:
        """Returns the spec as a JSON-friendly dict (constructor as its qualified name)."""
        out = dataclasses.asdict(self)
        ctor = self.constructor
        out["constructor"] = None if ctor is None else f"{ctor.__module__}.{ctor.__qualname__}"
        return out
