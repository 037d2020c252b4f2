"""Tests of `kerastl.ranking.logme` against the paper's reference algorithm."""

from __future__ import annotations

import numpy as np
import pytest

from kerastl.ranking import logme


def reference_logme(f, y):
    """LogME as in the authors' reference code (You et al. 2021): eigen-decomposition of F^T F."""
    f = f.astype(np.float64)
    fh = f
    f = f.transpose()
    d, n = f.shape
    v, s, vh = np.linalg.svd(f @ fh, full_matrices=True)
    evidences = []
    if y.ndim == 1:
        y = np.eye(int(y.max()) + 1)[y]
    for k in range(y.shape[1]):
        y_ = y[:, k].astype(np.float64)
        epsilon = 1e-5
        alpha, beta = 1.0, 1.0
        lam = alpha / beta
        tmp = vh @ (f @ y_)
        for _ in range(11):
            gamma = (s / (s + lam)).sum()
            m = v @ (tmp * beta / (alpha + beta * s))
            alpha_de = (m * m).sum()
            alpha = gamma / (alpha_de + epsilon)
            beta_de = ((y_ - fh @ m) ** 2).sum()
            beta = (n - gamma) / (beta_de + epsilon)
            new_lam = alpha / beta
            if np.abs(new_lam - lam) / lam < 0.01:
                break
            lam = new_lam
        evidence = (d / 2.0 * np.log(alpha) + n / 2.0 * np.log(beta)
                    - 0.5 * np.sum(np.log(alpha + beta * s))
                    - beta / 2.0 * (beta_de + epsilon) - alpha / 2.0 * (alpha_de + epsilon)
                    - n / 2.0 * np.log(2 * np.pi))
        evidences.append(evidence / n)
    return float(np.mean(evidences))


def _problem(n, d, classes, seed, signal=1.0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    centers = rng.normal(size=(classes, d)) * signal
    return centers[labels] + rng.normal(size=(n, d)), labels


@pytest.mark.parametrize("n,d", [(60, 8), (40, 25), (12, 30)])
def test_matches_reference(n, d):
    features, labels = _problem(n, d, 3, seed=n + d)
    expected = reference_logme(features, labels)
    # Both are float64: they differ by the rounding of two decompositions.
    np.testing.assert_allclose(logme(features, labels), expected, rtol=1e-6)


def test_matches_reference_on_real_valued_targets():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(50, 6))
    targets = features @ rng.normal(size=(6, 2)) + 0.3 * rng.normal(size=(50, 2))
    np.testing.assert_allclose(logme(features, targets), reference_logme(features, targets),
                               rtol=1e-6)


def test_informative_features_score_higher_than_shuffled_labels():
    features, labels = _problem(120, 16, 4, seed=5, signal=2.0)
    shuffled = np.random.default_rng(0).permutation(labels)
    assert logme(features, labels) > logme(features, shuffled) + 0.05


def test_stronger_signal_scores_higher():
    weak, labels = _problem(100, 10, 3, seed=7, signal=0.3)
    strong, labels2 = _problem(100, 10, 3, seed=7, signal=3.0)
    np.testing.assert_array_equal(labels, labels2)
    assert logme(strong, labels) > logme(weak, labels)


def test_dead_features_get_the_evidence_of_predicting_zero():
    labels = np.arange(10) % 2
    score = logme(np.zeros((10, 4)), labels)
    assert np.isfinite(score)
    features, _ = _problem(10, 4, 2, seed=1, signal=3.0)
    assert score < logme(features, labels)


def test_bad_input():
    with pytest.raises(ValueError, match="at least 2 examples"):
        logme(np.zeros((1, 3)), [0])
    with pytest.raises(ValueError, match="one entry per example"):
        logme(np.zeros((4, 3)), [0, 1])
    with pytest.raises(ValueError, match="finite"):
        logme(np.full((4, 3), np.nan), [0, 1, 0, 1])
