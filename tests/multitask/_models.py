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


def tiny_two_task_model_with_layers():
    """As `tiny_two_task_model`, the scaling a layer: one tensor leaves the first block."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0, name="scale")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv_a")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv_b")(x)
    return kerastl.build(keras.Model(inputs, x, name="shared"),
                         tasks={"species": 3, "healthy": ["no", "yes"]})
