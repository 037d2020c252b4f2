"""The one `json.dumps` fallback of kerastl (reports, run folders, the CLI's ``--json``).

Imports nothing heavy, so the CLI can use it without loading TensorFlow.
"""

from __future__ import annotations


def json_default(value):
    """`json.dumps` fallback: arrays and NumPy scalars, report objects, sets and tuples.

    Arrays and NumPy scalars become lists and numbers (``tolist``), report
    objects their ``to_dict()``, sets and tuples lists, anything else its ``str``.

    Example:
        >>> json.dumps({"a": numpy.float32(0.5)}, default=kerastl._json.json_default)
        '{"a": 0.5}'
    """
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


__all__ = ["json_default"]
