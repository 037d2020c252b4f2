"""`GradientReversal`: the layer of domain-adversarial training (DANN, Ganin et al. 2016).

Forward it is the identity; backward it multiplies the gradient by
``-scale``. Put it between a feature extractor and a domain classifier:
the classifier learns to tell the domains apart while the features learn
to make that impossible.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kerastl._validation import check_float


@tf.custom_gradient
def _reverse(x, scale):
    def grad(upstream):
        return -tf.cast(scale, upstream.dtype) * upstream, tf.zeros_like(scale)

    return tf.identity(x), grad


@keras.saving.register_keras_serializable(package="kerastl")
class GradientReversal(keras.layers.Layer):
    """Identity forward, gradient times ``-scale`` backward.

    The scale is a non-trainable weight, so a training loop can follow the
    usual schedule ``2 / (1 + exp(-10 p)) - 1`` (``p``: progress in [0, 1])
    with `set_scale` without retracing.

    Args:
        scale: The initial factor λ >= 0 of the reversed gradient.
        **kwargs: Standard layer arguments (`name`, `dtype`).

    Example:
        >>> layer = kerastl.adapt.GradientReversal(scale=0.5)
        >>> features = keras.Input((1280,))
        >>> domain = keras.layers.Dense(1, activation="sigmoid")(layer(features))
    """

    def __init__(self, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.initial_scale = check_float("scale", scale, minimum=0.0)
        self.scale = self.add_weight(shape=(), initializer=keras.initializers.Constant(
            self.initial_scale), trainable=False, name="scale")

    def set_scale(self, value: float) -> None:
        """Sets the factor of the reversed gradient (e.g. once per step)."""
        self.scale.assign(check_float("value", value, minimum=0.0))

    def call(self, inputs):
        return _reverse(inputs, tf.cast(self.scale, inputs.dtype))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.initial_scale})
        return config


def dann_schedule(progress: float, *, gamma: float = 10.0) -> float:
    """Ganin et al.'s λ schedule: ``2 / (1 + exp(-gamma * progress)) - 1``, 0 to about 1.

    Example:
        >>> round(kerastl.adapt.layers.dann_schedule(0.5), 3)
        0.987
    """
    import math

    return 2.0 / (1.0 + math.exp(-gamma * float(progress))) - 1.0


__all__ = ["GradientReversal", "dann_schedule"]
