"""Prototype arithmetic on pooled features (NumPy): class means, refinement, Baseline++.

* `class_prototypes`: one prototype per class, the mean of its support
  features (cosine: the normalised mean of the normalised features, so
  every shot weighs the same; Euclidean: the plain mean).
* `refine_prototypes`: transductive refinement (soft k-means, Ren et al.
  2018): unlabelled features join each prototype weighted by their softmax
  assignment to it.
* `fit_cosine_classifier`: Baseline++ (Chen et al. 2019): the prototypes
  as the initial weights of a cosine classifier, trained on the support
  features by full-batch Adam on the softmax cross-entropy.
* `fit_whitening` / `whiten`: the ``"mahalanobis"`` metric's feature map:
  features centred on the support mean, L2-normalised, then whitened by
  the support's within-class covariance shrunk towards the identity by the
  Ledoit-Wolf formula (as `kerastl.fewshot.ClassStatistics`). Euclidean
  prototypes of the whitened features are a linear discriminant with a
  shared covariance (nearest class mean in the Mahalanobis metric).
* `predict_proba`: the head's probabilities, computed by the same function
  as the Keras layer (`kerastl.fewshot.layers.prototype_scores`).
"""

from __future__ import annotations

import numpy as np
from keras import ops

from kerastl._validation import check_float, check_int
from kerastl.fewshot.layers import Whitening, prototype_scores, whiten_features

_EPSILON = 1e-12


def normalize(x: np.ndarray) -> np.ndarray:
    """Returns the rows of `x` scaled to unit L2 norm (zero rows stay zero)."""
    x = np.asarray(x, "float32")
    return x / np.sqrt(np.maximum((x * x).sum(axis=-1, keepdims=True), _EPSILON))


def class_prototypes(x, y, num_classes: int, *, metric: str = "cosine") -> np.ndarray:
    """Returns the ``(num_classes, D)`` prototypes of features `x` with labels `y`.

    Example:
        >>> kerastl.fewshot.prototypes.class_prototypes(x, y, 5).shape
        (5, 1280)
    """
    x = normalize(x) if metric == "cosine" else np.asarray(x, "float32")
    y = np.asarray(y, "int64")
    onehot = np.eye(num_classes, dtype="float32")[y]
    counts = onehot.sum(axis=0)[:, None]
    means = (onehot.T @ x) / np.maximum(counts, 1.0)
    return normalize(means) if metric == "cosine" else means


def fit_whitening(x, y, num_classes: int) -> Whitening:
    """Returns the ``"mahalanobis"`` metric's `Whitening` fitted on support features `x`, `y`.

    The map is ``x -> Sigma^-1/2 normalize(x - center)``: `center` is the mean
    of `x`, and ``Sigma`` the pooled within-class covariance of the centred,
    normalised support, shrunk towards ``trace / D`` times the identity by
    the Ledoit-Wolf formula (no strength is chosen on any data). ``Sigma``
    differs from a multiple of the identity only on the span of the
    class-centred support (rank ``n - K`` at most), so it is stored as
    ``isotropic * I`` plus a ``(D, rank)`` `basis` with one `gain` per column.
    With one shot per class there is no within-class spread: the map is the
    centring and normalisation alone (`basis` one zero column).

    Example:
        >>> w = kerastl.fewshot.prototypes.fit_whitening(x, y, 5)
        >>> kerastl.fewshot.prototypes.whiten(x, w).shape
        (25, 1280)
    """
    from kerastl.fewshot.statistics import ledoit_wolf
    from kerastl.fewshot._data import check_every_class

    x = np.asarray(x, "float64")
    y = np.asarray(y, "int64")
    check_every_class("data", y, num_classes, [str(i) for i in range(num_classes)])
    center = x.mean(axis=0)
    z = normalize(x - center).astype("float64")
    sums = np.zeros((num_classes, z.shape[1]), "float64")
    np.add.at(sums, y, z)
    residual = z - (sums / np.bincount(y, minlength=num_classes)[:, None])[y]
    n, d = float(len(z)), int(z.shape[1])
    # The moments from the (n, n) Gram matrix: no (D, D) scatter per episode.
    gram = residual @ residual.T
    lengths = np.diag(gram)
    mu = float(np.sum(lengths)) / (n * d)
    singular, vt = np.linalg.svd(residual, full_matrices=False)[1:]
    keep = singular > 1e-6 * max(float(singular.max(initial=0.0)), _EPSILON)
    if mu <= _EPSILON or not np.any(keep):
        return Whitening(center.astype("float32"), np.float32(1.0),
                         np.zeros((d, 1), "float32"), np.zeros(1, "float32"))
    delta = ledoit_wolf(n, d, float(np.sum(lengths)), float(np.sum(gram * gram)),
                        float(np.sum(lengths ** 2)))
    # Floor the shrinkage: at delta -> 0 the isotropic factor and the gains would cancel in
    # float32 (both ~ 1 / sqrt(delta * mu)); Ledoit-Wolf gives 0.6-0.8 on few shots.
    floor = max(delta, 1e-6) * mu
    variances = floor + (1.0 - delta) * singular[keep] ** 2 / n
    gains = 1.0 / np.sqrt(variances) - 1.0 / np.sqrt(floor)
    return Whitening(center.astype("float32"), np.float32(1.0 / np.sqrt(floor)),
                     vt[keep].T.astype("float32"), gains.astype("float32"))


def whiten(x, whitening: Whitening) -> np.ndarray:
    """Returns features `x` mapped by `whitening` (the function the Keras layer uses)."""
    return ops.convert_to_numpy(whiten_features(
        ops.convert_to_tensor(np.asarray(x, "float32")),
        *(ops.convert_to_tensor(np.asarray(w, "float32")) for w in whitening)))


def predict_proba(x, prototypes, *, metric: str, scale: float) -> np.ndarray:
    """Returns the ``(N, K)`` softmax probabilities of features `x` against `prototypes`."""
    logits = prototype_scores(ops.convert_to_tensor(np.asarray(x, "float32")),
                              ops.convert_to_tensor(np.asarray(prototypes, "float32")),
                              metric=metric, scale=scale)
    return ops.convert_to_numpy(ops.softmax(logits, axis=-1))


def refine_prototypes(prototypes, support_x, support_y, unlabelled_x, *, metric: str,
                      scale: float, steps: int = 1) -> np.ndarray:
    """Refines prototypes with unlabelled features (soft k-means, transductive).

    Each step assigns every unlabelled feature to the classes by the head's
    softmax, then recomputes each prototype as the weighted mean of its
    support features (weight 1) and the unlabelled ones (their assignment).

    Args:
        prototypes: ``(K, D)`` prototypes of the support set.
        support_x: ``(n, D)`` support features; `support_y` their labels.
        support_y: ``(n,)`` class indices.
        unlabelled_x: ``(m, D)`` unlabelled features (e.g. the queries).
        metric: ``"cosine"`` or ``"euclidean"``.
        scale: The head's score scale.
        steps: Refinement steps.

    Returns:
        The refined ``(K, D)`` prototypes.
    """
    steps = check_int("refine_steps", steps, minimum=0)
    k = len(prototypes)
    prep = normalize if metric == "cosine" else (lambda a: np.asarray(a, "float32"))
    sx, ux = prep(support_x), prep(unlabelled_x)
    onehot = np.eye(k, dtype="float32")[np.asarray(support_y, "int64")]
    for _ in range(steps):
        weights = predict_proba(ux, prototypes, metric=metric, scale=scale)
        total = onehot.T @ sx + weights.T @ ux
        mass = onehot.sum(axis=0) + weights.sum(axis=0)
        prototypes = total / np.maximum(mass, _EPSILON)[:, None]
        if metric == "cosine":
            prototypes = normalize(prototypes)
    return np.asarray(prototypes, "float32")


def _cosine_gradient(w, xn, onehot, scale):
    """Loss and gradient of the mean softmax cross-entropy of a cosine classifier."""
    norms = np.sqrt(np.maximum((w * w).sum(axis=1, keepdims=True), _EPSILON))
    wn = w / norms
    z = scale * xn @ wn.T
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    loss = -float(np.mean(np.log(np.maximum((p * onehot).sum(axis=1), _EPSILON))))
    g_wn = scale * ((p - onehot) / len(xn)).T @ xn
    g_w = (g_wn - (g_wn * wn).sum(axis=1, keepdims=True) * wn) / norms
    return loss, g_w


def fit_cosine_classifier(x, y, prototypes, *, scale: float, steps: int = 100,
                          learning_rate: float = 0.01) -> np.ndarray:
    """Baseline++: trains a cosine classifier initialised at `prototypes` on `x`, `y`.

    Full-batch Adam on the mean softmax cross-entropy of ``scale * cos(x, w_k)``;
    the returned weights are normalised (they are the new prototypes).

    Args:
        x: ``(n, D)`` support features.
        y: ``(n,)`` class indices.
        prototypes: ``(K, D)`` initial weights.
        scale: The cosine scale.
        steps: Adam steps.
        learning_rate: Adam's step size.

    Returns:
        ``(K, D)`` float32 normalised weights.

    Example:
        >>> w = kerastl.fewshot.prototypes.fit_cosine_classifier(x, y, p, scale=10.0)
    """
    steps = check_int("fine_tune_steps", steps, minimum=0)
    rate = check_float("learning_rate", learning_rate, minimum=0.0, min_inclusive=False)
    from threadpoolctl import threadpool_limits

    w = np.asarray(prototypes, "float64").copy()
    xn = normalize(x).astype("float64")
    onehot = np.eye(len(w))[np.asarray(y, "int64")]
    m, v = np.zeros_like(w), np.zeros_like(w)
    beta1, beta2 = 0.9, 0.999
    with threadpool_limits(limits=1, user_api="blas"):
        for t in range(1, steps + 1):
            _, grad = _cosine_gradient(w, xn, onehot, scale)
            m = beta1 * m + (1 - beta1) * grad
            v = beta2 * v + (1 - beta2) * grad * grad
            w -= rate * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + 1e-8)
    return normalize(w)


__all__ = ["class_prototypes", "fit_cosine_classifier", "fit_whitening", "normalize",
           "predict_proba", "refine_prototypes", "whiten"]
