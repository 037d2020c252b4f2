"""Builders of tiny TF Hub-format SavedModels for the `kerastl.backbones.hub` tests.

Each builder saves a `tf.Module` with `tf.saved_model.save` into a directory,
the same way models on tfhub.dev / Kaggle Models are made, so
`tensorflow_hub.load(path)` loads them. They follow the *reusable SavedModel*
convention (https://www.tensorflow.org/hub/reusable_saved_models):

* ``obj(images, training=False)``: a `tf.function` with a Python bool
  ``training``, traced for both values;
* ``obj.variables`` / ``obj.trainable_variables``: lists of `tf.Variable`;
* ``obj.regularization_losses``: a list of `tf.function` returning scalars.

The tiny "backbone" is a 3x3 convolution, ReLU and global average pooling,
times an optional call argument ``feature_scale`` (1.0 or 2.0, like hub's
``batch_norm_momentum``), minus a non-trainable ``offset`` (like batch norm's
moving mean). In training mode it adds ``TRAINING_SHIFT`` to every feature,
so tests can see whether the ``training`` flag reached the SavedModel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

TRAINING_SHIFT = 1.0
REGULARIZATION = 0.01


# `tf.Module` reserves `variables`/`trainable_variables` as read-only properties;
# hub models are plain trackable objects with these as attributes.
_Trackable = tf.__internal__.tracking.AutoTrackable


class _TinyHubModel(_Trackable):
    def __init__(self, *, features: int, image_size, dict_output: bool, seed: int,
                 min_image_size, training_modes):
        super().__init__()
        self._min_image_size = min_image_size
        rng = np.random.default_rng(seed)
        kernel = rng.normal(0.0, 0.5, size=(3, 3, 3, features)).astype("float32")
        self._kernel = tf.Variable(kernel, name="conv/kernel")
        self._bias = tf.Variable(np.full((features,), 0.1, "float32"), name="conv/bias")
        offset = rng.normal(0.0, 0.1, size=(features,)).astype("float32")
        self._offset = tf.Variable(offset, trainable=False, name="bn/moving_mean")
        self.variables = [self._kernel, self._bias, self._offset]
        self.trainable_variables = [self._kernel, self._bias]
        self.regularization_losses = [
            tf.function(lambda: REGULARIZATION * tf.reduce_sum(tf.square(self._kernel)),
                        input_signature=[])]
        self._dict_output = dict_output
        spec = tf.TensorSpec([None, image_size, image_size, 3], tf.float32)
        for training in training_modes:
            for scale in (1.0, 2.0):
                self.__call__.get_concrete_function(spec, training=training, feature_scale=scale)

    @tf.function
    def __call__(self, inputs, training=False, feature_scale=1.0):
        if self._min_image_size is not None:  # checked when run, not when traced
            tf.debugging.assert_greater_equal(tf.shape(inputs)[1], self._min_image_size,
                                              message="image too small")
        x = tf.nn.conv2d(inputs, self._kernel, strides=1, padding="VALID") + self._bias
        x = tf.reduce_mean(tf.nn.relu(x), axis=[1, 2]) * feature_scale - self._offset
        if training:
            x = x + TRAINING_SHIFT
        if self._dict_output:
            return {"default": x, "logits": 2.0 * x}
        return x


class _SignatureOnlyModel(_Trackable):
    """Variables and a ``serving_default`` signature, no ``__call__``."""

    def __init__(self, *, features: int, seed: int):
        super().__init__()
        rng = np.random.default_rng(seed)
        self._kernel = tf.Variable(rng.normal(0.0, 0.5, size=(3, features)).astype("float32"),
                                   name="dense/kernel")
        self._scale = tf.Variable(2.0, trainable=False, name="scale")

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def serve(self, images):
        pooled = tf.reduce_mean(images, axis=[1, 2])
        features = tf.tanh(tf.matmul(pooled, self._kernel)) * self._scale
        return {"features": features, "mean_color": pooled}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32),
                                  tf.TensorSpec([None, None, None, 1], tf.float32)])
    def serve_masked(self, images, mask):
        return {"features": self.serve(images * mask)["features"]}


def save_hub_model(path, *, features: int = 4, image_size: int | None = None,
                   dict_output: bool = False, min_image_size: int | None = None,
                   training_modes=(False, True), seed: int = 0) -> Path:
    """Saves a reusable TF2 SavedModel (``__call__`` with ``training``) at `path`.

    Args:
        path: Directory to create.
        features: Width of the output feature vector.
        image_size: Fixed input side, or None to accept any size.
        dict_output: Return ``{"default": features, "logits": 2 * features}``.
        min_image_size: If set, the call asserts (at run time) that images are
            at least this tall.
        training_modes: The values of ``training`` the call is traced (and so
            callable) with.
        seed: Seed of the variables' initial values.

    Returns:
        `path` as a `Path`.
    """
    module = _TinyHubModel(features=features, image_size=image_size, dict_output=dict_output,
                           seed=seed, min_image_size=min_image_size,
                           training_modes=training_modes)
    tf.saved_model.save(module, str(path))
    return Path(path)


def save_signature_model(path, *, features: int = 4, seed: int = 0) -> Path:
    """Saves a SavedModel with only a ``serving_default`` signature.

    The signature's input is named ``images`` and its outputs are
    ``features`` and ``mean_color``. A second signature, ``masked``, takes two
    inputs (``images`` and ``mask``).
    """
    module = _SignatureOnlyModel(features=features, seed=seed)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve,
                                                       "masked": module.serve_masked})
    return Path(path)


def save_tf1_hub_module(path) -> Path:
    """Makes a directory laid out like a TF1 ``hub.Module`` (has ``tfhub_module.pb``).

    The TF1 format cannot be written with TF2 any more; a SavedModel plus the
    ``tfhub_module.pb`` marker file is what `tensorflow_hub` itself uses to
    recognize it.
    """
    save_signature_model(path)
    (Path(path) / "tfhub_module.pb").write_bytes(b"")
    return Path(path)
