"""Synthetic domain shift for the `kerastl.adapt` tests.

The source is `harness.separable_images` (class = a tinted colour channel);
the target is the same kind of images seen through "fog" (low contrast,
bright: ``0.4 x + 120``), on which a source-trained model is at chance.
"""

from __future__ import annotations

import numpy as np
import pytest
from harness import separable_images

CLASSES = 3


def fog(images):
    return (0.4 * np.asarray(images) + 120.0).astype("float32")


def adapter_model(seed: int = 0, size: int = 32, *, batch_norm: bool = True):
    """A kerastl-layout model whose top blocks are 1x1 convolutions without BatchNormalization
    (conv + BN + ReLU, conv + ReLU, conv 1x1 + ReLU): features the deep methods can move."""
    import keras

    from kerastl.layers import ClassificationHead, ImagePreprocessing

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x) if batch_norm else x)
    x = keras.layers.ReLU()(keras.layers.Conv2D(16, 3, strides=2, padding="same")(x))
    x = keras.layers.ReLU()(keras.layers.Conv2D(16, 1)(x))
    backbone = keras.Model(inputs, x, name="backbone")
    image = keras.Input((size, size, 3), name="image")
    features = backbone(ImagePreprocessing("tf", backbone="tiny", name="preprocessing")(image))
    outputs = ClassificationHead(CLASSES, dropout=0.0, name="head")(features)
    return keras.Model(image, outputs, name="adapter")


@pytest.fixture(scope="module")
def shifted():
    """``{"source", "validation", "target", "target_labels"}`` arrays (32x32, 3 classes)."""
    x, y = separable_images(96, CLASSES, seed=0)
    xv, yv = separable_images(48, CLASSES, seed=1)
    xt, yt = separable_images(96, CLASSES, seed=2)
    return {"source": (x, y), "validation": (xv, yv), "target": fog(xt), "target_labels": yt}


@pytest.fixture(autouse=True)
def _quiet_unregistered_backbone():
    import warnings

    from kerastl.accessors import UnregisteredBackboneWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnregisteredBackboneWarning)
        yield


def source_trained(model, shifted):
    """Fits `model`'s head on the source (closed form), the head not refitted on validation."""
    import kerastl

    kerastl.fit(model, shifted["source"], shifted["validation"], recipe="feature_extraction",
                refit_head=False, verbose=0, seed=0)
    return model
