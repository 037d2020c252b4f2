"""LogME: the log marginal evidence of a linear model on frozen features.

You, Liu, Wang and Long, "LogME: Practical Assessment of Pre-trained Models
for Transfer Learning", ICML 2021. For each target column ``y`` (a one-hot
class column, or a regression target), LogME fits Bayesian linear regression
``y ~ N(F w, 1/beta)``, ``w ~ N(0, 1/alpha)`` on the features ``F`` by
maximising the evidence over ``alpha`` and ``beta`` (the paper's fixed-point
iteration), and returns the maximised log evidence per example. The score is
the mean over target columns: higher means the features explain the labels
better with a simpler linear model, which tracks how well the backbone
transfers.

This implementation computes one thin SVD of ``F`` (``n x d``) and runs the
iteration in its basis: the same numbers as the paper's reference code, which
decomposes ``F^T F`` (``d x d``), in ``O(n d min(n, d))`` once for every
target column.
"""

from __future__ import annotations

import numpy as np

EPSILON = 1e-5
MAX_ITERATIONS = 11
TOLERANCE = 0.01


def _targets(labels, num_classes=None) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
        k = int(y.max()) + 1 if num_classes is None else int(num_classes)
        return np.eye(max(k, 2))[y]
    return y.reshape(len(y), -1).astype("float64")


def _evidence(s, sigma, z, yy, n, d) -> float:
    """Maximised log evidence per example of one target column.

    Args:
        s: Squared singular values of F (the non-zero eigenvalues of F^T F).
        sigma: The singular values.
        z: ``U^T y``.
        yy: ``||y||^2``.
        n: Examples.
        d: Feature dimension.
    """
    alpha, beta, lam = 1.0, 1.0, 1.0
    tmp = sigma * z  # V^T F^T y
    outside = max(yy - float(z @ z), 0.0)  # the part of y outside the span of F
    for _ in range(MAX_ITERATIONS):
        gamma = float((s / (s + lam)).sum())
        m = tmp * beta / (alpha + beta * s)  # the posterior mean, in V's basis
        alpha_de = float(m @ m)
        alpha = gamma / (alpha_de + EPSILON)
        residual = z - sigma * m
        beta_de = float(residual @ residual) + outside
        beta = (n - gamma) / (beta_de + EPSILON)
        new_lam = alpha / beta
        if abs(new_lam - lam) / lam < TOLERANCE:
            break
        lam = new_lam
    log_det = float(np.log(alpha + beta * s).sum()) + (d - len(s)) * np.log(alpha)
    evidence = (d / 2.0 * np.log(alpha) + n / 2.0 * np.log(beta) - 0.5 * log_det
                - beta / 2.0 * (beta_de + EPSILON) - alpha / 2.0 * (alpha_de + EPSILON)
                - n / 2.0 * np.log(2 * np.pi))
    return float(evidence / n)


def logme(features, labels, *, num_classes=None) -> float:
    """Returns the LogME score of `features` for `labels` (higher transfers better).

    Args:
        features: ``(n, d)`` frozen features (pooled backbone outputs).
        labels: ``(n,)`` integer classes (one-hot encoded, one column per
            class), or ``(n, k)`` targets (multi-hot or real values).
        num_classes: Number of classes of integer labels (default: max + 1).

    Returns:
        The mean over target columns of the maximised log evidence per example.

    Raises:
        ValueError: Features and labels of different lengths, fewer than 2
            examples, or non-finite features.

    Example:
        >>> kerastl.ranking.logme(features, labels)
        1.23
    """
    from threadpoolctl import threadpool_limits

    f = np.asarray(features, dtype="float64")
    if f.ndim != 2 or len(f) < 2:
        raise ValueError("`features` must be a (examples, features) array with at least 2 "
                         f"examples. Received: features of shape {f.shape}")
    y = _targets(labels, num_classes)
    if len(y) != len(f):
        raise ValueError(f"`labels` must have one entry per example ({len(f)}). "
                         f"Received: {len(y)} labels")
    if not np.isfinite(f).all():
        raise ValueError("`features` must be finite. Received: features with NaN or inf")
    n, d = f.shape
    with threadpool_limits(limits=1, user_api="blas"):
        u, sigma, _ = np.linalg.svd(f, full_matrices=False)
        z = u.T @ y
    s = sigma ** 2
    yy = (y ** 2).sum(axis=0)
    if not s.size or s.max() <= np.finfo("float64").eps * n:
        # Constant (dead) features: the evidence of the model that predicts 0.
        beta = n / (yy + EPSILON)
        return float(np.mean(0.5 * np.log(beta) - 0.5 - 0.5 * np.log(2 * np.pi)))
    return float(np.mean([_evidence(s, sigma, z[:, k], yy[k], n, d)
                          for k in range(y.shape[1])]))


__all__ = ["logme"]
