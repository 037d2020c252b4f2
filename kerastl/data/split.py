"""Seeded splits of a list of examples into train / validation / test."""

from __future__ import annotations

import numpy as np


def _allocate(sizes: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Largest-remainder share of each group, so the total is ``round(sum(sizes) * fraction)``."""
    exact = sizes * fraction
    take = np.floor(exact).astype(np.int64)
    remaining = int(np.floor(sizes.sum() * fraction + 0.5)) - int(take.sum())
    if remaining > 0:
        order = np.lexsort((rng.random(len(sizes)), -(exact - take)))  # random among ties
        take[order[:remaining]] += 1
    return take


def _take_counts(sizes: np.ndarray, fractions: tuple[float, ...],
                 rng: np.random.Generator) -> np.ndarray:
    """Examples of each group (rows) that go to each held-out split (columns)."""
    if not fractions:
        return np.zeros((len(sizes), 0), np.int64)
    takes = np.stack([_allocate(sizes, f, rng) for f in fractions], axis=1)
    for row, n in zip(takes, sizes):
        if n <= len(fractions):  # too small to share: everything stays in train
            row[:] = 0
            continue
        row[:] = np.maximum(row, 1)  # every held-out split sees every class ...
        while row.sum() > n - 1:  # ... and train keeps at least one example
            row[int(np.argmax(row))] -= 1
    return takes


def split_indices(labels: np.ndarray | None, num_examples: int, fractions: tuple[float, ...],
                  seed: int | None) -> list[np.ndarray]:
    """Splits ``range(num_examples)`` into train plus one part per fraction.

    With `labels` (integer class labels) the split is stratified: each class
    is split in the same proportions (remainders go to the classes closest to
    the next example, so the split sizes match the fractions), and every class
    with enough examples is in every split. Without labels the examples are
    split at random.

    Args:
        labels: 1-D integer labels of the examples, or None.
        num_examples: Number of examples.
        fractions: Fraction held out for each extra split (e.g. ``(0.2,)``).
        seed: Seed of the random choice; the same seed gives the same split.

    Returns:
        ``[train_indices, *held_out_indices]``, each sorted ascending.

    Example:
        >>> train, val = kerastl.data.split.split_indices(np.array([0, 0, 1, 1]), 4, (0.5,), 1)
        >>> sorted(np.concatenate([train, val]).tolist())
        [0, 1, 2, 3]
    """
    rng = np.random.default_rng(seed)
    if labels is None:
        groups = [np.arange(num_examples)]
    else:
        groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    takes = _take_counts(np.array([len(g) for g in groups]), fractions, rng)
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for group, row in zip(groups, takes):
        order = rng.permutation(group)
        start = 0
        for i, take in enumerate(row):
            parts[i + 1].append(order[start:start + take])
            start += take
        parts[0].append(order[start:])
    return [np.sort(np.concatenate(p)).astype(np.int64) if p else np.zeros(0, np.int64)
            for p in parts]
