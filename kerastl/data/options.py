"""Checks of the arguments shared by the `kerastl.data` loaders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kerastl._validation import check_bool, check_float, check_int


def image_size_pair(value: Any, *, allow_none: bool = False) -> tuple[int, int] | None:
    """Returns `image_size` as a ``(height, width)`` pair of positive ints.

    Args:
        value: An int (square images) or a ``(height, width)`` pair.
        allow_none: Whether None (keep the size of the input) is valid.

    Returns:
        ``(height, width)``, or None when `value` is None and that is allowed.

    Example:
        >>> kerastl.data.options.image_size_pair(160)
        (160, 160)
    """
    if value is None and allow_none:
        return None
    pair = None
    if isinstance(value, int) and not isinstance(value, bool):
        pair = (value, value)
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        pair = tuple(value)
    ok = pair is not None and all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in pair)
    if not ok:
        none = " or None" if allow_none else ""
        raise ValueError("`image_size` must be a positive int or a (height, width) pair of "
                         f"positive ints{none}. Received: image_size={value!r}")
    return int(pair[0]), int(pair[1])


def split_fractions(validation_split: Any, test_split: Any) -> tuple[float, float]:
    """Checks `validation_split` and `test_split` (each None or in (0, 1)).

    Args:
        validation_split: Fraction of each class held out for validation, or None.
        test_split: Fraction of each class held out for testing, or None.

    Returns:
        ``(validation_fraction, test_fraction)`` with 0.0 for None.

    Example:
        >>> kerastl.data.options.split_fractions(0.2, None)
        (0.2, 0.0)
    """
    fractions = []
    for name, value in (("validation_split", validation_split), ("test_split", test_split)):
        if value is None:
            fractions.append(0.0)
        else:
            fractions.append(check_float(name, value, minimum=0.0, maximum=1.0,
                                         min_inclusive=False, max_inclusive=False))
    if sum(fractions) >= 1.0:
        raise ValueError("`validation_split` + `test_split` must be less than 1 so that images "
                         "are left for training. Received: "
                         f"validation_split={validation_split!r}, test_split={test_split!r}")
    return fractions[0], fractions[1]


def batch_size_int(value: Any) -> int:
    """Checks `batch_size` (an int >= 1)."""
    return check_int("batch_size", value, minimum=1)


def seed_int(value: Any) -> int | None:
    """Checks `seed` (None or an int >= 0)."""
    if value is None:
        return None
    return check_int("seed", value, minimum=0)


def flag(name: str, value: Any) -> bool:
    """Checks that a switch argument is a bool (`kerastl._validation.check_bool`)."""
    return check_bool(name, value)


def cache_option(value: Any) -> bool | str:
    """Checks `cache`: True (memory), False, or a file path prefix for a disk cache."""
    if isinstance(value, bool) or (isinstance(value, str) and value):
        return value
    raise ValueError("`cache` must be True (in memory), False, or a file path for a cache on "
                     f"disk. Received: cache={value!r}")
