"""Class weights for imbalanced data: `kerastl.data.compute_class_weight`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from kerastl._validation import check_one_of

CLASS_WEIGHT_MODES = ("balanced", "sqrt")


def _counts_from(labels_or_counts: Any) -> dict[int, int]:
    if isinstance(labels_or_counts, Mapping):
        counts = {}
        for position, (key, count) in enumerate(labels_or_counts.items()):
            index = key if isinstance(key, (int, np.integer)) else position
            counts[int(index)] = int(count)
        if any(c < 0 for c in counts.values()):
            raise ValueError("Class counts must be >= 0. Received: "
                             f"labels_or_counts={dict(labels_or_counts)!r}")
        return counts
    labels = np.asarray(labels_or_counts)
    if labels.ndim != 1 or labels.size == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            "`labels_or_counts` must be a non-empty 1-D array of integer class labels or a dict "
            "{class: count}. Received: labels_or_counts with shape "
            f"{labels.shape} and dtype {labels.dtype}")
    if labels.min() < 0:
        raise ValueError("Class labels must be >= 0. Received: labels_or_counts with minimum "
                         f"{labels.min()}")
    values, counts = np.unique(labels, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts)}


def compute_class_weight(labels_or_counts: Any, mode: str = "balanced") -> dict[int, float]:
    """Returns per-class loss weights that make every class count the same.

    ``"balanced"`` is scikit-learn's formula ``n_samples / (n_classes * count)``;
    ``"sqrt"`` is its square root, a milder correction. Classes with no example
    are left out (Keras gives them weight 1, and they never occur anyway).

    Args:
        labels_or_counts: A 1-D array of integer labels, or a dict ``{class: count}``
            whose keys are class indices, or class names in class order (as in
            `kerastl.data.ImageData.counts`).
        mode: ``"balanced"`` or ``"sqrt"``.

    Returns:
        ``{class_index: weight}``, ready for ``model.fit(class_weight=...)``.

    Example:
        >>> kerastl.data.compute_class_weight([0, 0, 0, 1])
        {0: 0.6666666666666666, 1: 2.0}
        >>> kerastl.data.compute_class_weight({"cat": 10, "dog": 30})
        {0: 2.0, 1: 0.6666666666666666}
    """
    mode = check_one_of("mode", mode, CLASS_WEIGHT_MODES)
    counts = {k: c for k, c in _counts_from(labels_or_counts).items() if c > 0}
    if not counts:
        raise ValueError("Cannot compute class weights: every class count is 0. "
                         f"Received: labels_or_counts={labels_or_counts!r}")
    total = sum(counts.values())
    weights = {k: total / (len(counts) * c) for k, c in sorted(counts.items())}
    if mode == "sqrt":
        weights = {k: math.sqrt(w) for k, w in weights.items()}
    return weights
