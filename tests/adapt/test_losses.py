"""`coral_loss` and `mmd_loss`: zero for matching samples, a NumPy reference, growth with shift."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from harness import assert_serialization_round_trip, float32_tolerance

from kerastl.adapt.losses import CoralLoss, MMDLoss, coral_loss, mmd_loss


def _coral_reference(xs, xt):
    d = xs.shape[1]
    diff = np.cov(xs, rowvar=False) - np.cov(xt, rowvar=False)
    return float((diff ** 2).sum() / (4 * d * d))


def test_coral_is_zero_for_identical_covariances():
    x = np.random.default_rng(0).normal(size=(50, 6)).astype("float32")
    # A shifted copy has the same covariance: CORAL ignores the mean.
    assert float(coral_loss(x, x + 3.0)) == pytest.approx(0.0, abs=1e-6)


def test_coral_matches_numpy():
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(40, 5)).astype("float32")
    xt = (rng.normal(size=(30, 5)) * [1, 2, 0.5, 1, 3]).astype("float32")
    expected = _coral_reference(xs.astype("float64"), xt.astype("float64"))
    tol = float32_tolerance(depth=3, terms=40)
    assert float(coral_loss(xs, xt)) == pytest.approx(expected, rel=tol * 10)
    assert float(CoralLoss()(xs, xt)) == pytest.approx(expected, rel=tol * 10)


def test_mmd_is_zero_for_identical_samples_and_grows_with_a_mean_shift():
    x = np.random.default_rng(2).normal(size=(64, 8)).astype("float32")
    assert float(mmd_loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    values = [float(mmd_loss(x, x + shift)) for shift in (0.25, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(values, values[1:])), values
    assert values[0] > 0.0


def test_mmd_matches_numpy_with_a_fixed_bandwidth():
    rng = np.random.default_rng(3)
    xs, xt = rng.normal(size=(20, 3)), rng.normal(1.0, size=(15, 3))
    z = np.concatenate([xs, xt])
    dist = ((z[:, None] - z[None]) ** 2).sum(-1)
    kernel = sum(np.exp(-dist / (1.5 * 2.0 ** (k - 1))) for k in range(3))
    n = len(xs)
    expected = kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2 * kernel[:n, n:].mean()
    got = float(mmd_loss(xs.astype("float32"), xt.astype("float32"), num_kernels=3,
                         bandwidth=1.5))
    assert got == pytest.approx(expected, rel=1e-4)


def test_losses_serialize():
    clone = assert_serialization_round_trip(MMDLoss(num_kernels=3, multiplier=1.5))
    assert clone.num_kernels == 3 and clone.multiplier == 1.5
    assert_serialization_round_trip(CoralLoss())
    config = keras.saving.serialize_keras_object(coral_loss)
    assert keras.saving.deserialize_keras_object(config) is coral_loss
    assert keras.saving.get_registered_name(mmd_loss) == "kerastl>mmd_loss"


def test_bad_arguments():
    x = np.zeros((4, 2), "float32")
    with pytest.raises(ValueError, match="`num_kernels` must be an integer >= 1"):
        mmd_loss(x, x, num_kernels=0)
    with pytest.raises(ValueError, match="`bandwidth` must be a number > 0.0"):
        mmd_loss(x, x, bandwidth=0.0)
