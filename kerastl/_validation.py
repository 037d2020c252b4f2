"""Checks of user input with error messages in one form.

Every public function in kerastl validates its arguments with these helpers so
that errors read the same everywhere::

    `trainable_blocks` must be between 0 and 17 or 'all'. Received: trainable_blocks=20

Never ``assert`` on user input: asserts vanish under ``python -O``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any


def _fmt(value: Any) -> str:
    return repr(value)


def check_one_of(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Returns `value` if it is one of `allowed`, else raises `ValueError`.

    Args:
        name: The argument's name, shown in the message.
        value: What the user passed.
        allowed: The valid values.

    Returns:
        `value`, unchanged.

    Example:
        >>> kerastl._validation.check_one_of("task", "binary", ("binary", "multiclass"))
        'binary'
    """
    allowed = tuple(allowed)
    if value in allowed:
        return value
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value, [a for a in allowed if isinstance(a, str)], n=3)
        if close:
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?"
    raise ValueError(
        f"`{name}` must be one of {', '.join(_fmt(a) for a in allowed)}.{hint} "
        f"Received: {name}={_fmt(value)}"
    )


def check_bool(name: str, value: Any) -> bool:
    """Returns `value` if it is True or False, else raises `ValueError`.

    Only real bools pass: ``1``, ``"yes"`` and ``np.bool_`` are refused so a
    misplaced argument cannot be read as a flag.

    Args:
        name: The argument's name.
        value: What the user passed.

    Returns:
        `value`, unchanged.

    Example:
        >>> kerastl._validation.check_bool("overwrite", True)
        True
    """
    if isinstance(value, bool):
        return value
    raise ValueError(f"`{name}` must be True or False. Received: {name}={_fmt(value)}")


def check_int(name: str, value: Any, *, minimum: int | None = None,
              maximum: int | None = None, extra: str = "") -> int:
    """Returns `value` as an int if it is an integer within the bounds.

    Args:
        name: The argument's name.
        value: What the user passed (bools are rejected).
        minimum: Smallest allowed value, inclusive.
        maximum: Largest allowed value, inclusive.
        extra: Text appended to the range, e.g. ``" or 'all'"``.

    Returns:
        The value as `int`.

    Example:
        >>> kerastl._validation.check_int("epochs", 3, minimum=0)
        3
    """
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if not is_int and hasattr(value, "__index__") and not isinstance(value, bool):
        try:
            value = int(value.__index__())
            is_int = True
        except TypeError:
            is_int = False
    ok = is_int and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if ok:
        return int(value)
    if minimum is not None and maximum is not None:
        rng = f"an integer between {minimum} and {maximum}"
    elif minimum is not None:
        rng = f"an integer >= {minimum}"
    elif maximum is not None:
        rng = f"an integer <= {maximum}"
    else:
        rng = "an integer"
    raise ValueError(f"`{name}` must be {rng}{extra}. Received: {name}={_fmt(value)}")


def check_float(name: str, value: Any, *, minimum: float | None = None,
                maximum: float | None = None, min_inclusive: bool = True,
                max_inclusive: bool = True) -> float:
    """Returns `value` as a float if it is a real number within the bounds.

    Args:
        name: The argument's name.
        value: What the user passed.
        minimum: Lower bound.
        maximum: Upper bound.
        min_inclusive: Whether `minimum` itself is allowed.
        max_inclusive: Whether `maximum` itself is allowed.

    Returns:
        The value as `float`.

    Example:
        >>> kerastl._validation.check_float("dropout", 0.2, minimum=0, maximum=1, max_inclusive=False)
        0.2
    """
    try:
        ok_type = not isinstance(value, (bool, str)) and float(value) == float(value)
    except (TypeError, ValueError):
        ok_type = False
    ok = ok_type
    if ok and minimum is not None:
        ok = float(value) >= minimum if min_inclusive else float(value) > minimum
    if ok and maximum is not None:
        ok = float(value) <= maximum if max_inclusive else float(value) < maximum
    if ok:
        return float(value)
    lo = "" if minimum is None else f"{'>=' if min_inclusive else '>'} {minimum}"
    hi = "" if maximum is None else f"{'<=' if max_inclusive else '<'} {maximum}"
    rng = " and ".join(p for p in (lo, hi) if p) or "a number"
    raise ValueError(f"`{name}` must be a number {rng}. Received: {name}={_fmt(value)}")


def check_keys(name: str, given: Mapping[str, Any] | None, allowed: Iterable[str]) -> dict:
    """Returns a copy of `given` if all its keys are in `allowed`.

    Args:
        name: The argument's name (a dict of options).
        given: The dict the user passed, or None for an empty one.
        allowed: Valid keys.

    Returns:
        A new dict.

    Example:
        >>> kerastl._validation.check_keys("head", {"dropout": 0.2}, ("dropout", "pooling"))
        {'dropout': 0.2}
    """
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise TypeError(f"`{name}` must be a dict. Received: {name}={_fmt(given)}")
    allowed = tuple(allowed)
    unknown = [k for k in given if k not in allowed]
    if unknown:
        parts = []
        for k in unknown:
            close = difflib.get_close_matches(str(k), allowed, n=1)
            parts.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ValueError(
            f"Unknown key(s) in `{name}`: {', '.join(parts)}. "
            f"Valid keys: {', '.join(sorted(allowed))}. Received: {name}={dict(given)!r}"
        )
    return dict(given)


def suggest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Returns up to `n` entries of `candidates` close to `name`."""
    return difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.5)
