"""Lazy package attributes (PEP 562): each name is imported the first time it is used.

Example:
    >>> # in kerastl/<package>/__init__.py
    >>> __getattr__, __dir__ = kerastl._lazy.attributes(__name__, {"fit": "fitting"})
"""

from __future__ import annotations

import importlib
import sys


def attributes(package: str, names: dict, modules=()):
    """Returns ``(__getattr__, __dir__)`` for `package`.

    Args:
        package: The package's ``__name__``.
        names: Public name -> the submodule (relative to `package`) that defines it.
        modules: Submodules that are themselves public attributes.

    Returns:
        The two module-level functions; a resolved name is stored in the
        package's namespace, so it is looked up only once.
    """
    def __getattr__(name):
        if name in names:
            value = getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        elif name in modules:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(names) | set(modules))

    return __getattr__, __dir__
