"""Tiny registered backbones for the ranking and multi-backbone tuning tests."""

from __future__ import annotations

import contextlib
import dataclasses

import keras

import kerastl
from kerastl.backbones.spec import BackboneSpec

SIZE = 16


def tiny_backbone(include_top=False, weights=None, input_shape=None, width=8, dead=False):
    """A 2-block CNN; "imagenet" means fixed seeded weights (dead: all-zero kernels)."""
    del include_top
    if weights == "imagenet":
        init = "zeros" if dead else keras.initializers.GlorotUniform(seed=1)
    else:
        init = "glorot_uniform"
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(width, 3, padding="same", kernel_initializer=init,
                            name="block_1_conv")(inputs)
    x = keras.layers.ReLU(name="block_1_relu")(x)
    x = keras.layers.Conv2D(width, 3, strides=2, padding="same", kernel_initializer=init,
                            name="block_2_conv")(x)
    return keras.Model(inputs, x)


@contextlib.contextmanager
def registered(*names):
    """Registers ``rank_tiny`` (and ``<name>_dead`` variants) for the block's duration."""
    base = BackboneSpec(name="rank_tiny", constructor=tiny_backbone, preprocessing="tf",
                        default_input_size=SIZE, min_input_size=8, feature_dim=8, num_blocks=2,
                        block_pattern=r"^(?P<block>block_\d+)_",
                        kwargs={"width": 8, "dead": False})
    specs = [dataclasses.replace(base, name=n) for n in names or ("rank_tiny",)]
    for spec in specs:
        kerastl.register_backbone(spec, overwrite=True)
    try:
        yield specs
    finally:
        for spec in specs:
            kerastl.backbones.unregister_backbone(spec.name)
