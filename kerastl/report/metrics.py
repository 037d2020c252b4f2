"""Evaluation metrics of a run: accuracy, per-class precision/recall/F1, confusion matrix.

Computed with NumPy from labels and predictions, so they need neither
scikit-learn nor a model: `classification_metrics` works on any ``y_true`` /
``y_pred`` pair.
"""

from __future__ import annotations

import numpy as np

TASKS = ("multiclass", "binary", "multilabel", "regression")


def _safe_div(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def as_class_indices(y_pred, *, task: str = "multiclass", threshold: float = 0.5) -> np.ndarray:
    """Turns predictions (indices, probabilities or logits) into class indices.

    Args:
        y_pred: Class indices ``(N,)``, or outputs ``(N, K)`` (argmax), or for
            ``task="binary"`` the probability of class 1 ``(N,)``/``(N, 1)``.
        task: ``"multiclass"`` or ``"binary"``.
        threshold: Decision threshold for binary probabilities.

    Returns:
        int64 array ``(N,)``.

    Example:
        >>> kerastl.report.as_class_indices([[0.1, 0.9], [0.8, 0.2]])
        array([1, 0])
    """
    y = np.asarray(y_pred)
    if y.ndim == 2 and y.shape[1] > 1:
        return np.argmax(y, axis=-1).astype("int64")
    y = y.reshape(len(y))
    if task == "binary" and np.issubdtype(y.dtype, np.floating):
        return (y >= threshold).astype("int64")
    if np.issubdtype(y.dtype, np.floating) and not np.all(np.equal(np.mod(y, 1), 0)):
        raise ValueError("`y_pred` must be class indices or (N, K) scores; got fractional "
                         "values of shape (N,). Pass task='binary' for probabilities of class 1.")
    return y.astype("int64")


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Returns the ``(num_classes, num_classes)`` count matrix: rows true, columns predicted.

    Example:
        >>> kerastl.report.confusion_matrix([0, 1, 1], [0, 1, 0], 2).tolist()
        [[1, 0], [1, 1]]
    """
    y_true = np.asarray(y_true, "int64").reshape(-1)
    y_pred = np.asarray(y_pred, "int64").reshape(-1)
    if len(y_true) != len(y_pred):
        raise ValueError(f"`y_true` and `y_pred` must have the same length. Received: "
                         f"{len(y_true)} labels and {len(y_pred)} predictions")
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        if len(values) and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"`{name}` must hold class indices in [0, {num_classes - 1}]. "
                             f"Received: values from {values.min()} to {values.max()}")
    matrix = np.zeros((num_classes, num_classes), dtype="int64")
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def _per_class(matrix: np.ndarray, class_names: list[str]) -> dict:
    out = {}
    for i, name in enumerate(class_names):
        tp = int(matrix[i, i])
        predicted, actual = int(matrix[:, i].sum()), int(matrix[i, :].sum())
        precision, recall = _safe_div(tp, predicted), _safe_div(tp, actual)
        out[name] = {"precision": precision, "recall": recall,
                     "f1": _safe_div(2 * precision * recall, precision + recall),
                     "support": actual}
    return out


def _averages(per_class: dict) -> dict:
    rows = list(per_class.values())
    total = sum(r["support"] for r in rows)
    out = {}
    for key in ("precision", "recall", "f1"):
        out[f"macro_{key}"] = float(np.mean([r[key] for r in rows])) if rows else 0.0
        out[f"weighted_{key}"] = _safe_div(sum(r[key] * r["support"] for r in rows), total)
    return out


def classification_metrics(y_true, y_pred, *, class_names=None, num_classes=None,
                           task: str = "multiclass") -> dict:
    """Accuracy, per-class precision/recall/F1 and the confusion matrix.

    Args:
        y_true: True class indices ``(N,)``.
        y_pred: Predicted indices ``(N,)`` or scores ``(N, K)`` (see `as_class_indices`).
        class_names: Names of the classes (default ``"0"``, ``"1"``, ...).
        num_classes: Number of classes when `class_names` is not given
            (default: inferred from the data).
        task: ``"multiclass"`` or ``"binary"``.

    Returns:
        A JSON-friendly dict: ``task``, ``num_examples``, ``accuracy``,
        ``class_names``, ``per_class`` (``{name: {precision, recall, f1,
        support}}``), macro and weighted averages, and ``confusion_matrix``
        (list of rows; row = true class, column = predicted class).

    Example:
        >>> m = kerastl.report.classification_metrics([0, 1, 1], [0, 1, 0], class_names=["a", "b"])
        >>> m["accuracy"], m["per_class"]["b"]["recall"]
        (0.6666666666666666, 0.5)
    """
    if task not in ("multiclass", "binary"):
        raise ValueError(f"`task` must be one of 'multiclass', 'binary'. Received: task={task!r}")
    y_true = as_class_indices(y_true, task="multiclass")
    y_pred = as_class_indices(y_pred, task=task)
    if class_names is not None:
        class_names = [str(c) for c in class_names]
        num_classes = len(class_names)
    elif num_classes is None:
        seen = np.concatenate([y_true, y_pred]) if len(y_true) else np.zeros(1, "int64")
        num_classes = max(int(seen.max()) + 1, 2)
    if class_names is None:
        class_names = [str(i) for i in range(num_classes)]
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    per_class = _per_class(matrix, class_names)
    return {"task": task, "num_examples": int(len(y_true)),
            "accuracy": _safe_div(np.trace(matrix), matrix.sum()),
            "class_names": class_names, "per_class": per_class, **_averages(per_class),
            "confusion_matrix": matrix.tolist()}


def multilabel_metrics(y_true, y_pred, *, class_names=None, threshold: float = 0.5) -> dict:
    """Per-label precision/recall/F1 and exact-match accuracy of multi-hot outputs.

    Args:
        y_true: Multi-hot labels ``(N, K)``.
        y_pred: Probabilities (or 0/1 decisions) ``(N, K)``.
        class_names: Names of the K labels.
        threshold: Decision threshold.

    Returns:
        A dict like `classification_metrics` without the confusion matrix,
        with ``accuracy`` as the fraction of images whose labels all match.

    Example:
        >>> kerastl.report.multilabel_metrics([[1, 0]], [[0.9, 0.2]])["accuracy"]
        1.0
    """
    y_true = np.asarray(y_true).astype("float64") >= 0.5
    y_pred = np.asarray(y_pred).astype("float64") >= threshold
    if y_true.shape != y_pred.shape or y_true.ndim != 2:
        raise ValueError(f"`y_true` and `y_pred` must both have shape (N, K). Received: "
                         f"{y_true.shape} and {y_pred.shape}")
    names = [str(c) for c in class_names] if class_names is not None else [
        str(i) for i in range(y_true.shape[1])]
    per_class = {}
    for i, name in enumerate(names):
        tp = int(np.sum(y_true[:, i] & y_pred[:, i]))
        precision = _safe_div(tp, int(y_pred[:, i].sum()))
        recall = _safe_div(tp, int(y_true[:, i].sum()))
        per_class[name] = {"precision": precision, "recall": recall,
                           "f1": _safe_div(2 * precision * recall, precision + recall),
                           "support": int(y_true[:, i].sum())}
    return {"task": "multilabel", "num_examples": int(len(y_true)),
            "accuracy": float(np.mean(np.all(y_true == y_pred, axis=1))) if len(y_true) else 0.0,
            "class_names": names, "per_class": per_class, **_averages(per_class),
            "threshold": float(threshold)}


def regression_metrics(y_true, y_pred) -> dict:
    """Mean absolute error, root mean squared error and R^2 of regression outputs.

    Example:
        >>> kerastl.report.regression_metrics([1.0, 2.0], [1.5, 2.0])["mae"]
        0.25
    """
    y_true = np.asarray(y_true, "float64").reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, "float64").reshape(len(y_pred), -1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"`y_true` and `y_pred` must have the same shape. Received: "
                         f"{y_true.shape} and {y_pred.shape}")
    err = y_pred - y_true
    total = float(((y_true - y_true.mean(axis=0)) ** 2).sum())
    return {"task": "regression", "num_examples": int(len(y_true)),
            "mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err ** 2).mean())),
            "r2": 1.0 - _safe_div(float((err ** 2).sum()), total) if total else 0.0}


def format_metrics(metrics: dict) -> str:
    """Formats metrics as a text table (per-class rows, then the averages)."""
    if metrics.get("task") == "regression":
        return (f"regression on {metrics['num_examples']} examples: mae {metrics['mae']:.4g}, "
                f"rmse {metrics['rmse']:.4g}, r2 {metrics['r2']:.4f}")
    names = metrics["class_names"]
    width = max([len("class")] + [len(n) for n in names] + [len("macro avg")])
    lines = [f"accuracy {metrics['accuracy']:.4f} on {metrics['num_examples']} images",
             f"{'class'.ljust(width)}  precision  recall      f1  support"]
    for name in names:
        r = metrics["per_class"][name]
        lines.append(f"{name.ljust(width)}  {r['precision']:9.4f}  {r['recall']:6.4f}  "
                     f"{r['f1']:6.4f}  {r['support']:7d}")
    lines.append(f"{'macro avg'.ljust(width)}  {metrics['macro_precision']:9.4f}  "
                 f"{metrics['macro_recall']:6.4f}  {metrics['macro_f1']:6.4f}  "
                 f"{metrics['num_examples']:7d}")
    return "\n".join(lines)
