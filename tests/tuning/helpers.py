"""Helpers of the kerastl.tune tests: the tiny backbone, its data and a build/fit counter.

The tiny backbone is an alpha=0.35 MobileNetV2 at 32x32 with random weights; trials are
1-2 epochs on 48 images.
"""

from __future__ import annotations

import functools

import tensorflow as tf

import kerastl
import kerastl.training
from harness import separable_images

TINY = dict(input_shape=(32, 32, 3), weights=None, backbone_kwargs={"alpha": 0.35})
BATCH = 16


def tiny_data():
    """(train, validation) datasets: 48 and 24 class-tinted 32x32 images of 3 classes."""
    images, labels = separable_images(72, 3, seed=3)
    train = tf.data.Dataset.from_tensor_slices((images[:48], labels[:48])).batch(BATCH)
    val = tf.data.Dataset.from_tensor_slices((images[48:], labels[48:])).batch(BATCH)
    return train, val


class Counting:
    """Counts kerastl.build calls; can make the n-th kerastl.fit call raise."""

    def __init__(self, monkeypatch, *, fail_at=None, error=None):
        self.builds, self.fits = 0, 0
        self.fail_at, self.error = fail_at, error
        real_build, real_fit = kerastl.model.build, kerastl.training.fit

        @functools.wraps(real_build)
        def build(*args, **kwargs):
            self.builds += 1
            return real_build(*args, **kwargs)

        @functools.wraps(real_fit)
        def fit(*args, **kwargs):
            self.fits += 1
            if self.fits == self.fail_at:
                raise self.error
            return real_fit(*args, **kwargs)

        monkeypatch.setattr(kerastl.model, "build", build)
        monkeypatch.setattr(kerastl.training, "fit", fit)
