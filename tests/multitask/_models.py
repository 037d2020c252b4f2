"""The tiny multi-task model of these tests."""

import keras

import kerastl


def tiny_two_task_model():
    """A tiny shared backbone (2 convolutions) with two task heads."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv_a")(inputs / 255.0)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv_b")(x)
    return kerastl.build(keras.Model(inputs, x, name="shared"),
                         tasks={"species": 3, "healthy": ["no", "yes"]})
