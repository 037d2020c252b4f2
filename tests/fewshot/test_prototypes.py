"""Prototype arithmetic: exact nearest-class-mean, refinement, Baseline++ gradients."""

import numpy as np
import pytest

from kerastl.fewshot import prototypes as proto
from kerastl.fewshot.prototypes import _cosine_gradient


def _orthogonal_embeddings(num_classes=4, per_class=5, width=12, noise=0.05, seed=0):
    """Class c lies along axis c (plus small noise): nearest-class-mean is exact."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(num_classes), per_class)
    x = np.eye(width)[y] * rng.uniform(0.5, 2.0, size=(len(y), 1))
    return (x + noise * rng.random((len(y), width))).astype("float32"), y


def test_cosine_prototypes_are_normalised_means_of_normalised_features():
    x, y = _orthogonal_embeddings()
    p = proto.class_prototypes(x, y, 4)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    for c in range(4):
        mean = xn[y == c].mean(axis=0)
        np.testing.assert_allclose(p[c], mean / np.linalg.norm(mean), rtol=1e-5, atol=1e-6)


def test_euclidean_prototypes_are_plain_means():
    x, y = _orthogonal_embeddings()
    p = proto.class_prototypes(x, y, 4, metric="euclidean")
    np.testing.assert_allclose(p, np.stack([x[y == c].mean(0) for c in range(4)]), rtol=1e-6)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_nearest_class_mean_is_exact_on_separated_embeddings(metric):
    x, y = _orthogonal_embeddings()
    queries, truth = _orthogonal_embeddings(per_class=7, seed=1)
    p = proto.class_prototypes(x, y, 4, metric=metric)
    pred = proto.predict_proba(queries, p, metric=metric, scale=1.0).argmax(axis=1)
    np.testing.assert_array_equal(pred, truth)


def test_refinement_moves_prototypes_toward_unlabelled_clusters():
    rng = np.random.default_rng(0)
    centers = np.eye(6)[:2] * 3.0
    support = centers + rng.normal(scale=0.8, size=(2, 6))
    queries = np.repeat(centers, 30, axis=0) + rng.normal(scale=0.3, size=(60, 6))
    p0 = proto.class_prototypes(support, [0, 1], 2, metric="euclidean")
    p1 = proto.refine_prototypes(p0, support, [0, 1], queries, metric="euclidean",
                                 scale=1.0, steps=3)
    assert np.linalg.norm(p1 - centers) < np.linalg.norm(p0 - centers)
    assert proto.refine_prototypes(p0, support, [0, 1], queries, metric="euclidean",
                                   scale=1.0, steps=0) is not None


def test_cosine_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 5))
    xn = proto.normalize(rng.normal(size=(7, 5))).astype("float64")
    onehot = np.eye(3)[rng.integers(0, 3, 7)]
    _, grad = _cosine_gradient(w, xn, onehot, 4.0)
    eps = 1e-6
    numeric = np.zeros_like(w)
    for i in np.ndindex(*w.shape):
        up, down = w.copy(), w.copy()
        up[i] += eps
        down[i] -= eps
        numeric[i] = (_cosine_gradient(up, xn, onehot, 4.0)[0]
                      - _cosine_gradient(down, xn, onehot, 4.0)[0]) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-7)


def test_baseline_plus_plus_lowers_the_support_loss():
    x, y = _orthogonal_embeddings(noise=0.6)
    p = proto.class_prototypes(x, y, 4)
    xn = proto.normalize(x).astype("float64")
    onehot = np.eye(4)[y]
    before = _cosine_gradient(p.astype("float64"), xn, onehot, 10.0)[0]
    w = proto.fit_cosine_classifier(x, y, p, scale=10.0, steps=50)
    after = _cosine_gradient(w.astype("float64"), xn, onehot, 10.0)[0]
    assert after < before
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("kwargs, word", [({"steps": -1}, "fine_tune_steps"),
                                          ({"learning_rate": 0.0}, "learning_rate")])
def test_baseline_plus_plus_bad_options(kwargs, word):
    x, y = _orthogonal_embeddings()
    with pytest.raises(ValueError, match=f"`{word}`"):
        proto.fit_cosine_classifier(x, y, proto.class_prototypes(x, y, 4), scale=10.0, **kwargs)
