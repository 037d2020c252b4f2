"""The backbone registry: look up specs by name, list them, add your own."""

from __future__ import annotations

import fnmatch

from kerastl._validation import suggest
from kerastl.backbones.keras_apps import KERAS_APPLICATION_SPECS
from kerastl.backbones.spec import BackboneSpec


class _Registry:
    """A name -> `BackboneSpec` table, filled from data at import."""

    def __init__(self, specs):
        self._specs: dict[str, BackboneSpec] = {}
        for spec in specs:
            self.add(spec)

    def add(self, spec: BackboneSpec, *, overwrite: bool = False) -> BackboneSpec:
        if not isinstance(spec, BackboneSpec):
            raise TypeError(f"`spec` must be a kerastl.BackboneSpec. Received: spec={spec!r}")
        if spec.name in self._specs and not overwrite:
            raise ValueError(
                f"A backbone named {spec.name!r} is already registered; pass overwrite=True "
                f"to replace it. Received: spec.name={spec.name!r}")
        self._specs[spec.name] = spec
        return spec

    def get(self, name: str) -> BackboneSpec:
        if not isinstance(name, str):
            raise TypeError(f"`name` must be a string. Received: name={name!r}")
        key = name.strip().lower().replace("-", "_")
        if key in self._specs:
            return self._specs[key]
        close = suggest(key, self._specs, n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"Unknown backbone {name!r}.{hint} See kerastl.list_backbones() for all "
            f"{len(self._specs)} names, or use 'hub:<handle>' for a TF Hub model. "
            f"Received: name={name!r}")

    def names(self, pattern: str | None = None) -> list[str]:
        names = list(self._specs)
        if pattern:
            pat = pattern.lower()
            if not any(ch in pat for ch in "*?["):
                pat = f"*{pat}*"
            names = [n for n in names if fnmatch.fnmatch(n, pat)]
        return names


_REGISTRY = _Registry(KERAS_APPLICATION_SPECS)


def list_backbones(pattern: str | None = None) -> list[str]:
    """Returns the registered backbone names, optionally filtered.

    Args:
        pattern: A substring (``"efficientnet"``) or a glob (``"resnet*_v2"``).

    Returns:
        Names in registry order (small to large within a family).

    Example:
        >>> kerastl.list_backbones("mobilenet")
        ['mobilenet', 'mobilenet_v2', 'mobilenet_v3_small', 'mobilenet_v3_large']
    """
    return _REGISTRY.names(pattern)


def get_backbone_spec(name: str) -> BackboneSpec:
    """Returns the `BackboneSpec` registered under `name`.

    Args:
        name: A registry name such as ``"mobilenet_v2"`` (case and ``-``/``_``
            are forgiven).

    Returns:
        The spec.

    Raises:
        ValueError: Unknown name; the message suggests close matches.

    Example:
        >>> kerastl.get_backbone_spec("mobilenet_v2").default_input_size
        224
    """
    return _REGISTRY.get(name)


def register_backbone(spec: BackboneSpec, *, overwrite: bool = False) -> BackboneSpec:
    """Adds a backbone to the registry so `kerastl.build(spec.name, ...)` finds it.

    Args:
        spec: The new spec.
        overwrite: Replace an existing spec of the same name.

    Returns:
        The spec.

    Example:
        >>> spec = dataclasses.replace(kerastl.get_backbone_spec("mobilenet_v2"),
        ...                            name="my_mobilenet", kwargs={"alpha": 0.5})
        >>> kerastl.register_backbone(spec).name
        'my_mobilenet'
    """
    return _REGISTRY.add(spec, overwrite=overwrite)
