"""Tiny kerastl models for the PEFT tests (built by hand, no registry, no weights)."""

from __future__ import annotations

import keras

from kerastl.layers import ClassificationHead, ImagePreprocessing


def mixed_model(num_classes: int = 3, *, size: int = 16, seed: int = 0, backbone: str = "tiny"):
    """Conv2D (bias) + BN, Dense, EinsumDense, Conv2D: every LoRA-capable kind, with biases.

    Named by `backbone` in its preprocessing layer ("tiny" is unregistered: each
    layer with weights is one block).
    """
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="conv_a")(inputs)
    x = keras.layers.BatchNormalization(name="bn_a")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Dense(12, activation="relu", name="dense_b")(x)
    x = keras.layers.EinsumDense("abcd,de->abce", output_shape=(None, None, 10), bias_axes="e",
                                 name="einsum_c")(x)
    x = keras.layers.Conv2D(6, 1, name="conv_d")(x)
    bb = keras.Model(inputs, x, name="backbone")
    image = keras.Input((size, size, 3), name="image")
    y = ImagePreprocessing("tf", backbone=backbone, name="preprocessing")(image)
    out = ClassificationHead(num_classes, dropout=0.0, name="head")(bb(y))
    return keras.Model(image, out, name="mixed")


def perturb(variables, *, scale: float = 0.1, seed: int = 0) -> None:
    """Moves variables by random amounts (as training would), so a change shows in the outputs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for v in variables:
        value = v.numpy() + rng.normal(0, scale, v.shape)
        if v.path.endswith("moving_variance"):
            value = np.abs(value) + scale
        v.assign(value.astype("float32"))
