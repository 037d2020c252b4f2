"""The head fitted as a regularised linear model on cached features.

While the backbone is frozen, a head without hidden layers is a linear model
on the pooled features, and its best weights are a convex problem:
L2-regularised logistic regression (softmax for ``"multiclass"``, one sigmoid
per output for ``"binary"`` and ``"multilabel"``) or ridge regression
(``"regression"``). `fit_linear` solves it exactly (L-BFGS, or in closed form
for ridge) for every strength of a grid and keeps the one with the lowest
held-out loss: by default k-fold cross-validation over the training and the
validation examples together (folds keep every cached augmented view of an
example together), or the loss on the validation features
(``selection="validation"``). The strength is thus chosen from the data,
never from the training loss.

The objective is the mean (sample-weighted) loss plus
``l2 / 2 * ||kernel||**2``; the bias is not penalised. ``l2`` relates to
scikit-learn's ``LogisticRegression(C=...)`` on ``n`` unweighted examples by
``C = 1 / (l2 * n)``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Strengths tried: 10**-6 ... 10**1 in steps of 10**(1/3) (a factor 2.15), so
# the chosen strength is within a factor 1.5 of the best one on the grid's
# range. The range spans nearly unregularised (the solver's iteration limit
# then bounds the weights) to a head that predicts the class prior.
L2_GRID = tuple(float(v) for v in np.logspace(-6, 1, 22))
MAX_FOLDS = 5
MAX_ITERATIONS = 500
PATIENCE = 3
SELECTIONS = ("cross_validation", "validation")


@dataclasses.dataclass
class LinearFit:
    """The result of `fit_linear`.

    Attributes:
        kernel: ``(features, outputs)`` float32 weights.
        bias: ``(outputs,)`` float32 bias.
        l2: The chosen strength.
        selection: ``"validation"`` or ``"<k>-fold cross-validation"``.
        scores: ``{l2: validation (or mean cross-validation) loss}`` per strength tried.
    """

    kernel: np.ndarray
    bias: np.ndarray
    l2: float
    selection: str
    scores: dict


def _targets(task: str, labels, num_outputs: int) -> np.ndarray:
    y = np.asarray(labels)
    if task == "multiclass":
        if y.ndim == 2 and y.shape[-1] == num_outputs and num_outputs > 1:
            return y.astype("float64")
        index = y.reshape(-1).astype("int64")
        return np.eye(num_outputs)[index]
    return y.reshape(len(y), -1).astype("float64")


def _smoothed(task: str, y: np.ndarray, label_smoothing: float) -> np.ndarray:
    if not label_smoothing or task == "regression":
        return y
    if task == "multiclass":
        return y * (1.0 - label_smoothing) + label_smoothing / y.shape[-1]
    return y * (1.0 - label_smoothing) + 0.5 * label_smoothing


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of ``(rows, classes)`` logits, stable for large logits."""
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _losses(task, z, y) -> tuple[np.ndarray, np.ndarray]:
    """Per-example loss and its gradient with respect to the logits `z`."""
    if task == "multiclass":
        logp = log_softmax(z)
        return -(y * logp).sum(axis=1), np.exp(logp) * y.sum(axis=1, keepdims=True) - y
    if task == "regression":
        diff = z - y
        return (diff ** 2).mean(axis=1), 2.0 * diff / z.shape[1]
    # Sigmoid cross-entropy, stable: log(1 + e^z) - y z.
    loss = np.logaddexp(0.0, z) - y * z
    prob = 0.5 * (1.0 + np.tanh(0.5 * z))
    return loss.mean(axis=1), (prob - y) / z.shape[1]


def _solve_logistic(task, x, y, w, l2, start):
    """L-BFGS on centred features (same kernel; far fewer iterations), bias mapped back."""
    from scipy.optimize import minimize

    d, k = x.shape[1], y.shape[1]
    sw = w / w.sum()
    mean = (sw @ x).astype(x.dtype)
    xc = np.ascontiguousarray(x - mean)
    xt = np.ascontiguousarray(xc.T)
    theta = np.array(start, dtype="float64")
    theta[d * k:] += mean.astype("float64") @ theta[: d * k].reshape(d, k)

    def objective(params):
        kernel = params[: d * k].reshape(d, k)
        z = (xc @ kernel.astype(x.dtype)).astype("float64") + params[d * k:]
        loss, grad_z = _losses(task, z, y)
        grad_z *= sw[:, None]
        value = float(sw @ loss) + 0.5 * l2 * float((kernel ** 2).sum())
        grad_kernel = (xt @ grad_z.astype(x.dtype)).astype("float64") + l2 * kernel
        return value, np.concatenate([grad_kernel.ravel(), grad_z.sum(axis=0)])

    result = minimize(objective, theta, jac=True, method="L-BFGS-B",
                      options={"maxiter": MAX_ITERATIONS, "gtol": 1e-6})
    out = result.x
    out[d * k:] -= mean.astype("float64") @ out[: d * k].reshape(d, k)
    return out


def _solve_ridge(x, y, w, l2):
    total = w.sum()
    sw = w / total
    mean_x = sw @ x
    mean_y = sw @ y
    xc = (x - mean_x) * np.sqrt(sw)[:, None]
    yc = (y - mean_y) * np.sqrt(sw)[:, None]
    # Mean loss is (1/k) * sum over outputs; the 1/k scales the data term.
    gram = xc.T @ xc + 0.5 * l2 * y.shape[1] * np.eye(x.shape[1])
    kernel = np.linalg.solve(gram, xc.T @ yc)
    return np.concatenate([kernel.ravel(), mean_y - mean_x @ kernel])


def _search(task, num_outputs, problems, grid):
    """Mean held-out loss per strength over `problems`, and each problem's solutions.

    Strengths go from strong to weak, each solve warm-started from the last;
    the search stops once the held-out loss has not improved for `PATIENCE`
    strengths (it rises steadily past its minimum), which skips the weakly
    regularised solves that take the most iterations.

    Args:
        task: The task.
        num_outputs: Units of the output layer.
        problems: ``[(x, y, w, held_x, held_y)]``: training rows and held-out rows.
        grid: Strengths to try.

    Returns:
        ``(scores, solutions)``: ``{l2: mean held-out loss}`` and
        ``[{l2: theta}]`` per problem.
    """
    thetas = [np.zeros(p[0].shape[1] * p[1].shape[1] + p[1].shape[1]) for p in problems]
    scores, solutions = {}, [{} for _ in problems]
    best, wait = np.inf, 0
    for l2 in sorted(grid, reverse=True):
        total = 0.0
        for i, (x, y, w, held_x, held_y) in enumerate(problems):
            thetas[i] = _solve_theta(task, x, y, w, l2, thetas[i])
            solutions[i][l2] = thetas[i]
            kernel, bias = _unpack(thetas[i], x.shape[1], y.shape[1])
            total += evaluate_linear(task, kernel, bias, held_x, held_y,
                                     num_outputs)["loss"] / len(problems)
        scores[l2] = total
        if total < best:
            best, wait = total, 0
        else:
            wait += 1
            if wait >= PATIENCE:
                break
    return scores, solutions


def _unpack(theta, d, k):
    return theta[: d * k].reshape(d, k), theta[d * k:]


def evaluate_linear(task, kernel, bias, features, labels, num_outputs, *, sample_weight=None,
                    label_smoothing=0.0) -> dict:
    """Returns ``{"loss": ..., "accuracy" | "mae": ...}`` of a linear head, as Keras computes them.

    The loss is the task's training loss (with `label_smoothing` for
    classification) averaged with `sample_weight`; the metric is accuracy for
    classification tasks, mean absolute error for regression.
    """
    x = np.asarray(features, "float64")
    y = _targets(task, labels, num_outputs)
    w = np.ones(len(x)) if sample_weight is None else np.asarray(sample_weight, "float64")
    z = x @ np.asarray(kernel, "float64") + np.asarray(bias, "float64")
    loss, _ = _losses(task, z, _smoothed(task, y, label_smoothing))
    out = {"loss": float(w @ loss / w.sum())}
    if task == "multiclass":
        out["accuracy"] = float((z.argmax(axis=1) == y.argmax(axis=1)).mean())
    elif task == "regression":
        out["mae"] = float(np.abs(z - y).mean())
    else:
        out["accuracy"] = float(((z > 0) == (y > 0.5)).mean())
    return out


def class_index(task, y):
    """Integer class of every example for stratified folds, or None (no classes)."""
    if task not in ("multiclass", "binary"):
        return None
    y = y.reshape(len(y), -1)
    if y.shape[1] > 1:
        return y.argmax(axis=1)
    return (y[:, 0] > 0.5).astype("int64") if task == "binary" else y[:, 0].astype("int64")


def _folds(task, y, seed):
    """Fold of every example (stratified by class when every class has 2+), and the count."""
    n = len(y)
    rng = np.random.default_rng(seed)
    index = class_index(task, y)
    if index is not None:
        classes, counts = np.unique(index, return_counts=True)
        k = int(min(MAX_FOLDS, counts.min()))
        if k >= 2:
            fold = np.empty(n, "int64")
            for c in classes:
                members = rng.permutation(np.flatnonzero(index == c))
                fold[members] = np.arange(len(members)) % k
            return fold, k
    k = int(min(MAX_FOLDS, n))
    if k < 2:
        raise ValueError("Choosing the head's regularisation by cross-validation needs at "
                         f"least 2 labelled examples. Received: {n} example(s)")
    return rng.permutation(n) % k, k


def fit_linear(task: str, num_outputs: int, train_features, train_labels, *,
               validation_features=None, validation_labels=None, sample_weight=None,
               passes: int = 1, grid=L2_GRID, seed=None,
               selection: str = "cross_validation") -> LinearFit:
    """Fits the linear head with the L2 strength that minimises held-out loss.

    Args:
        task: ``"multiclass"``, ``"binary"``, ``"multilabel"`` or ``"regression"``.
        num_outputs: Units of the output layer.
        train_features: ``(rows, features)`` pooled features; with `passes` > 1,
            row ``p * n + i`` is example ``i`` in pass ``p``.
        train_labels: Labels of every row (integer classes, one-hot, or targets).
        validation_features: Held-out features, or None.
        validation_labels: Their labels.
        selection: How the strength is chosen: ``"cross_validation"`` (k-fold,
            k = min(5, smallest class), over the training examples and the
            validation examples together: every labelled example helps choose
            the one hyperparameter; the head is then fitted on the training
            rows only, so the validation data still judges it fairly against
            other stages) or ``"validation"`` (the loss on the validation
            features; needs them).
        sample_weight: Per-row weights of the training loss, or None.
        passes: Cached passes per example (1 + augmented passes).
        grid: Strengths to try.
        seed: Seed of the cross-validation folds.

    Returns:
        A `LinearFit`.

    Example:
        >>> fit = kerastl.training.linear_head.fit_linear(
        ...     "multiclass", 3, features, labels, validation_features=vf,
        ...     validation_labels=vl)
        >>> fit.l2, fit.selection
        (0.01, '5-fold cross-validation on training + validation data')
    """
    from threadpoolctl import threadpool_limits

    if selection not in SELECTIONS:
        raise ValueError(f"`selection` must be one of {SELECTIONS}. "
                         f"Received: selection={selection!r}")
    if selection == "validation" and validation_features is None:
        raise ValueError("`selection='validation'` needs validation_features. "
                         "Received: validation_features=None")

    # These matrix products are small: one BLAS thread is faster, and much
    # faster when other processes compete for the cores (threads then spin).
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(task, num_outputs, train_features, train_labels, validation_features,
                    validation_labels, sample_weight, passes, grid, seed, selection)


def _fit(task, num_outputs, train_features, train_labels, validation_features,
         validation_labels, sample_weight, passes, grid, seed, selection) -> LinearFit:
    x = np.ascontiguousarray(train_features, dtype="float32")
    y = _targets(task, train_labels, num_outputs)
    w = np.ones(len(x)) if sample_weight is None else np.asarray(sample_weight, "float64")
    if not np.isfinite(x).all():
        raise ValueError("The cached features contain NaN or infinite values (check the "
                         "images for NaN pixels). Received: non-finite features")
    if not np.all(w >= 0) or w.sum() <= 0:
        raise ValueError("Sample and class weights must be >= 0 with a positive sum to fit "
                         f"the head. Received: weights summing to {w.sum():g}")
    d, k = x.shape[1], y.shape[1]
    if selection == "validation":
        held = (validation_features, validation_labels)
        scores, (path,) = _search(task, num_outputs, [(x, y, w) + held], grid)
        best = _argmin(scores)
        kernel, bias = _unpack(path[best], d, k)
        return LinearFit(kernel.astype("float32"), bias.astype("float32"), best, "validation",
                         scores)
    n = len(x) // passes
    example = np.tile(np.arange(n), passes)  # the example of every training row
    pool_x, pool_y, pool_w, clean = x, y, w, np.arange(len(x)) < n
    where = "training data"
    if validation_features is not None:
        vx = np.ascontiguousarray(validation_features, dtype="float32")
        pool_x = np.concatenate([x, vx])
        pool_y = np.concatenate([y, _targets(task, validation_labels, num_outputs)])
        pool_w = np.concatenate([w, np.ones(len(vx))])
        clean = np.concatenate([clean, np.ones(len(vx), bool)])
        example = np.concatenate([example, n + np.arange(len(vx))])
        where = "training + validation data"
    fold_of, count = _folds(task, pool_y[clean], seed)
    fold = fold_of[example] if validation_features is None else np.concatenate(
        [fold_of[example[: len(x)]], fold_of[n:]])
    problems = [(pool_x[fold != f], pool_y[fold != f], pool_w[fold != f],
                 pool_x[(fold == f) & clean], pool_y[(fold == f) & clean])
                for f in range(count)]
    totals, _ = _search(task, num_outputs, problems, grid)
    best = _argmin(totals)
    kernel, bias = _solve(task, x, y, w, best)
    return LinearFit(kernel, bias, best, f"{count}-fold cross-validation on {where}", totals)


def _solve_theta(task, x, y, w, l2, start):
    """The flat ``[kernel, bias]`` solution at one strength (`start`: the warm start)."""
    if task == "regression":
        return _solve_ridge(x, y, w, l2)
    return _solve_logistic(task, x, y, w, l2, start)


def _solve(task, x, y, w, l2):
    d, k = x.shape[1], y.shape[1]
    kernel, bias = _unpack(_solve_theta(task, x, y, w, l2, np.zeros(d * k + k)), d, k)
    return kernel.astype("float32"), bias.astype("float32")


def solve_linear(task: str, num_outputs: int, features, labels, *, l2: float,
                 sample_weight=None) -> tuple[np.ndarray, np.ndarray]:
    """Fits the linear head at one L2 strength; returns ``(kernel, bias)`` (float32).

    Example:
        >>> kernel, bias = kerastl.training.linear_head.solve_linear(
        ...     "multiclass", 3, features, labels, l2=0.01)
    """
    from threadpoolctl import threadpool_limits

    x = np.ascontiguousarray(features, dtype="float32")
    y = _targets(task, labels, num_outputs)
    w = np.ones(len(x)) if sample_weight is None else np.asarray(sample_weight, "float64")
    with threadpool_limits(limits=1, user_api="blas"):
        return _solve(task, x, y, w, float(l2))


def _argmin(scores: dict) -> float:
    # Ties (and non-finite losses) go to the stronger regularisation.
    finite = {l2: s for l2, s in scores.items() if np.isfinite(s)}
    if not finite:
        return max(scores)
    low = min(finite.values())
    return max(l2 for l2, s in finite.items() if s == low)


__all__ = ["L2_GRID", "LinearFit", "class_index", "evaluate_linear", "fit_linear",
           "log_softmax", "solve_linear"]
