"""The ``"replay"`` method of `kerastl.extend`: new output columns fitted against a buffer.

The old classes' output weights stay as the old model learned them from all
of its images; only the new classes' columns are fitted, as an L2-regularised
softmax regression in which the old columns' logits are fixed offsets
(L-BFGS, exact for each strength), on the new images and a buffer of a few
old images per old class, every class weighted equally.

The few buffer images are fitted, not generalised from: the new columns come
out too confident on old images they have not seen (measured in
``benchmarks/fewshot_benchmark.py``: old-class accuracy 12 points below
joint retraining). So the new logits ``z`` become ``scale * z + offset``, the
bias correction of Wu et al. 2019 (BiC), with ``scale`` and ``offset``
fitted on out-of-fold logits of a k-fold cross-fit of the same rows: no
images are held out of the fit, and none are needed from the user. The L2
strength is the one whose corrected out-of-fold loss is lowest. The
correction is folded into the new columns' kernel and bias, so the model is
a plain kerastl model.
"""

from __future__ import annotations

import keras
import numpy as np

from kerastl.training.linear_head import L2_GRID, PATIENCE, log_softmax

MAX_FOLDS = 5
MAX_ITERATIONS = 500


def _solve(h, y, w, fixed, l2, start):
    """The new columns' flat ``[kernel, bias]`` at one strength (old logits `fixed`)."""
    from scipy.optimize import minimize

    d, k = h.shape[1], fixed.shape[1]
    m = len(start) // (d + 1)
    sw = w / w.sum()
    onehot = np.eye(k + m)[y]

    def objective(theta):
        kernel = theta[: d * m].reshape(d, m)
        z = np.concatenate([fixed, (h @ kernel.astype(h.dtype)).astype("float64")
                            + theta[d * m:]], axis=1)
        logp = log_softmax(z)
        grad_z = ((np.exp(logp) - onehot) * sw[:, None])[:, k:]
        value = -float(sw @ logp[np.arange(len(y)), y]) + 0.5 * l2 * float((kernel ** 2).sum())
        grad_kernel = (h.T @ grad_z.astype(h.dtype)).astype("float64") + l2 * kernel
        return value, np.concatenate([grad_kernel.ravel(), grad_z.sum(axis=0)])

    return minimize(objective, np.asarray(start, "float64"), jac=True, method="L-BFGS-B",
                    options={"maxiter": MAX_ITERATIONS, "gtol": 1e-6}).x


def _new_logits(h, theta, m):
    d = h.shape[1]
    return (h @ theta[: d * m].reshape(d, m).astype(h.dtype)).astype("float64") + theta[d * m:]


def _corrected_loss(params, fixed, z_new, y, sw):
    """Mean weighted cross-entropy and its gradient in ``(scale, offset)``."""
    scale, offset = params
    k = fixed.shape[1]
    logp = log_softmax(np.concatenate([fixed, scale * z_new + offset], axis=1))
    grad_new = (np.exp(logp) - np.eye(logp.shape[1])[y])[:, k:] * sw[:, None]
    value = -float(sw @ logp[np.arange(len(y)), y])
    return value, np.array([float((grad_new * z_new).sum()), float(grad_new.sum())])


def _correction(fixed, z_new, y, w):
    """Returns ``((scale, offset), loss)`` minimising the corrected cross-entropy.

    ``scale >= 0`` (a negative one would turn the new classes' order around).
    On out-of-fold logits that separate the classes perfectly the maximum
    likelihood has no finite optimum; L-BFGS then stops at a large scale,
    which changes no prediction (argmax) but makes the softmax near 0/1.
    """
    from scipy.optimize import minimize

    sw = w / w.sum()
    result = minimize(_corrected_loss, np.array([1.0, 0.0]), args=(fixed, z_new, y, sw),
                      jac=True, method="L-BFGS-B", bounds=[(0.0, None), (None, None)])
    return tuple(float(v) for v in result.x), float(result.fun)


def _folds(y, seed):
    """Stratified fold of every row; as many folds as the smallest class allows (<= 5)."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), "int64")
    count = min(MAX_FOLDS, int(np.bincount(y)[np.unique(y)].min()))
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        fold[rows] = np.arange(len(rows)) % count
    return fold, count


def fit_new_columns(h, y, fixed, num_new: int, *, sample_weight=None, grid=L2_GRID,
                    seed: int = 0) -> dict:
    """Fits the new classes' output columns against fixed old-class logits.

    Args:
        h: ``(rows, width)`` inputs of the output layer (pooled features, or the
            last hidden layer's activations).
        y: Labels in the grown model's order (old classes ``0 .. k-1`` first).
        fixed: ``(rows, k)`` the old classes' logits of the rows (kept as they are).
        num_new: Number of new classes ``m``.
        sample_weight: Per-row weights of the loss, or None.
        grid: L2 strengths to try.
        seed: Seed of the cross-fit folds.

    Returns:
        ``{"kernel": (width, m), "bias": (m,), "l2", "scale", "offset", "folds",
        "scores"}``: the corrected new columns (float32) and how they were chosen
        (``scores``: the corrected out-of-fold loss per strength tried).

    Raises:
        ValueError: If some class has fewer than 2 rows (nothing to cross-fit).

    Example:
        >>> fit = kerastl.fewshot.replay.fit_new_columns(h, y, h @ k_old + b_old, 2)
        >>> fit["scale"], fit["offset"]
    """
    h = np.ascontiguousarray(h, "float32")
    y = np.asarray(y, "int64")
    fixed = np.asarray(fixed, "float64")
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, "float64")
    fold, count = _folds(y, seed)
    if count < 2:
        raise ValueError("Replay cross-fits the new columns: every class needs at least 2 "
                         "images (new ones and the buffer's). Received: a class with "
                         f"{int(np.bincount(y)[np.unique(y)].min())}")
    size = h.shape[1] * num_new + num_new
    starts = [np.zeros(size) for _ in range(count)]
    scores, corrections, best, wait = {}, {}, np.inf, 0
    for l2 in sorted(grid, reverse=True):
        out_of_fold = np.zeros((len(y), num_new))
        for f in range(count):
            train = fold != f
            starts[f] = _solve(h[train], y[train], w[train], fixed[train], l2, starts[f])
            out_of_fold[~train] = _new_logits(h[~train], starts[f], num_new)
        corrections[l2], scores[l2] = _correction(fixed, out_of_fold, y, w)
        if scores[l2] < best:
            best, wait = scores[l2], 0
        else:
            wait += 1
            if wait >= PATIENCE:
                break
    l2 = min(scores, key=lambda s: (scores[s], -s))
    theta = _solve(h, y, w, fixed, l2, np.zeros(size))
    (scale, offset), d = corrections[l2], h.shape[1]
    return {"kernel": (scale * theta[: d * num_new].reshape(d, num_new)).astype("float32"),
            "bias": (scale * theta[d * num_new:] + offset).astype("float32"),
            "l2": float(l2), "scale": scale, "offset": offset, "folds": count,
            "scores": scores}


def buffer_rows(y_old, per_class: int, seed: int) -> np.ndarray:
    """Rows of `per_class` old examples per old class, drawn at random with `seed`."""
    rng = np.random.default_rng(seed)
    rows = [rng.permutation(np.flatnonzero(y_old == c))[:per_class] for c in np.unique(y_old)]
    return np.concatenate(rows)


def replay_head(head, num_old: int, new, old, *, per_class: int, seed: int) -> dict:
    """Sets the new columns of a grown `ClassificationHead` by replay; returns the details.

    Args:
        head: The grown head (old columns ``0 .. num_old-1`` as the old model had them).
        num_old: Number of old classes.
        new: ``(features, labels)`` of the new images (labels in the grown order).
        old: ``(features, labels)`` of the old images; the buffer is drawn from them.
        per_class: Buffer size per old class.
        seed: Seed of the buffer and of the cross-fit.

    Returns:
        ``{"l2", "scale", "offset", "folds", "buffer"}`` (see `fit_new_columns`).
    """
    rows = buffer_rows(old[1], per_class, seed)
    y = np.concatenate([new[1], old[1][rows]]).astype("int64")
    h = np.concatenate([new[0], old[0][rows]]).astype("float32")
    for dense in head.dense_layers:  # the frozen hidden layers (no dropout at inference)
        h = keras.ops.convert_to_numpy(dense(h))
    kernel, bias = head.output_layer.get_weights()
    counts = np.bincount(y, minlength=kernel.shape[1])
    fit = fit_new_columns(h, y, h @ kernel[:, :num_old] + bias[:num_old],
                          kernel.shape[1] - num_old,
                          sample_weight=len(y) / (kernel.shape[1] * counts[y]), seed=seed)
    kernel[:, num_old:], bias[num_old:] = fit["kernel"], fit["bias"]
    head.output_layer.set_weights([kernel, bias])
    return {**{key: fit[key] for key in ("l2", "scale", "offset", "folds")},
            "buffer": int(len(rows))}


__all__ = ["buffer_rows", "fit_new_columns", "replay_head"]
