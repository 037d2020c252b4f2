"""`kerastl.adapt.GradientReversal`: identity forward, negated scaled gradient backward."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import (assert_float32_close, assert_keras_round_trip,
                     assert_serialization_round_trip)

from kerastl.adapt.layers import GradientReversal, dann_schedule


def _loss(x):
    # A non-linear function of the input, so the upstream gradient is not constant.
    return tf.reduce_sum(tf.sin(x) * x)


@pytest.mark.parametrize("scale", [0.0, 0.3, 2.0])
def test_gradient_is_the_negated_scaled_input_gradient(scale):
    x = tf.constant(np.random.default_rng(0).normal(size=(4, 5)), tf.float32)
    layer = GradientReversal(scale)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        through = _loss(layer(x))
        plain = _loss(x)
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())
    # The same gradient computation, then one multiplication by -scale.
    assert_float32_close(tape.gradient(through, x).numpy(),
                         -scale * tape.gradient(plain, x).numpy(), depth=2)


def test_gradient_matches_finite_differences():
    x = np.random.default_rng(1).normal(size=(3,)).astype("float64")
    layer = GradientReversal(0.5, dtype="float64")
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        value = _loss(layer(xt))
    analytic = tape.gradient(value, xt).numpy()
    eps = 1e-6
    numeric = np.array([(_loss(tf.constant(x + eps * e)) - _loss(tf.constant(x - eps * e))).numpy()
                        / (2 * eps) for e in np.eye(3)])
    np.testing.assert_allclose(analytic, -0.5 * numeric, rtol=1e-5)


def test_set_scale_changes_the_gradient_without_retracing():
    layer = GradientReversal(1.0)
    x = tf.ones((2, 3))

    @tf.function
    def grad():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(layer(x))
        return tape.gradient(y, x)

    np.testing.assert_allclose(grad().numpy(), -np.ones((2, 3)))
    layer.set_scale(0.25)
    np.testing.assert_allclose(grad().numpy(), -0.25 * np.ones((2, 3)))
    with pytest.raises(ValueError, match="`value` must be a number >= 0.0"):
        layer.set_scale(-1.0)


def test_bad_scale_is_refused():
    with pytest.raises(ValueError, match=r"`scale` must be a number >= 0.0. Received: scale=-2"):
        GradientReversal(-2)


def test_serialization_and_safe_mode_round_trip(tmp_path):
    clone = assert_serialization_round_trip(GradientReversal(0.7, name="grl"))
    assert clone.initial_scale == 0.7
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2)(GradientReversal(0.7)(inputs))
    model = keras.Model(inputs, outputs)
    assert_keras_round_trip(model, np.ones((3, 4), "float32"), tmp_path)


def test_schedule_goes_from_zero_to_one():
    values = [dann_schedule(p) for p in np.linspace(0, 1, 11)]
    assert values[0] == 0.0 and 0.99 < values[-1] < 1.0
    assert all(a < b for a, b in zip(values, values[1:]))
