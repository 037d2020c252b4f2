"""The backbone registry: look up specs by name, list them, add your own."""

from __future__ import annotations

import fnmatch

from kerastl._validation import suggest
from kerastl.backbones.keras_apps import KERAS_APPLICATION_SPECS
from kerastl.backbones.spec import BackboneSpec


def normalize_name(name: str) -> str:
    """Returns the registry key of a backbone name: case, spaces and ``-``/``_`` forgiven.

    Example:
        >>> kerastl.backbones.registry.normalize_name(" MobileNet-V2 ")
        'mobilenet_v2'
    """
    return name.strip().lower().replace("-", "_")


class _Registry:
    """A normalized name -> `BackboneSpec` table, filled from data at import.

    Lookups and registrations both go through `normalize_name`, so a spec is
    found under every spelling of its name that `get_backbone_spec` forgives.
    """

    def __init__(self, specs):
        self._specs: dict[str, BackboneSpec] = {}
        for spec in specs:
            self.add(spec)

    def add(self, spec: BackboneSpec, *, overwrite: bool = False) -> BackboneSpec:
        if not isinstance(spec, BackboneSpec):
            raise TypeError(f"`spec` must be a kerastl.BackboneSpec. Received: spec={spec!r}")
        if not isinstance(spec.name, str) or not normalize_name(spec.name) or any(
                spec.name.startswith(p) for p in ("hub:", "custom:")):
            raise ValueError("`spec.name` must be a non-empty name without a 'hub:' or 'custom:' "
                             f"prefix. Received: spec.name={spec.name!r}")
        key = normalize_name(spec.name)
        if key in self._specs and not overwrite:
            raise ValueError(
                f"A backbone named {self._specs[key].name!r} is already registered (names "
                f"are compared ignoring case and '-'/'_'); pass overwrite=True to replace it. "
                f"Received: spec.name={spec.name!r}")
        self._specs[key] = spec
        return spec

    def remove(self, name: str) -> BackboneSpec:
        key = normalize_name(self.get(name).name)
        return self._specs.pop(key)

    def get(self, name: str) -> BackboneSpec:
        if not isinstance(name, str):
            raise TypeError(f"`name` must be a string. Received: name={name!r}")
        key = normalize_name(name)
        if key in self._specs:
            return self._specs[key]
        close = suggest(key, [s.name for s in self._specs.values()], n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"Unknown backbone {name!r}.{hint} See kerastl.list_backbones() for all "
            f"{len(self._specs)} names, or use 'hub:<handle>' for a TF Hub model. "
            f"Received: name={name!r}")

    def names(self, pattern: str | None = None) -> list[str]:
        names = [spec.name for spec in self._specs.values()]
        if pattern:
            pat = pattern.lower()
            if not any(ch in pat for ch in "*?["):
                pat = f"*{pat}*"
            names = [n for n in names if fnmatch.fnmatch(n.lower(), pat)
                     or fnmatch.fnmatch(normalize_name(n), pat)]
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

    The registry is the one piece of process-wide state in kerastl: a
    registered backbone is known to every later call in this process (and a
    model saved with it needs it registered again in the next session). Names
    are compared like `get_backbone_spec` looks them up: ``"My-Net"`` and
    ``"my_net"`` are the same backbone. Use `unregister_backbone` to remove it.

    Args:
        spec: The new spec.
        overwrite: Replace an existing spec of the same (normalized) name.

    Returns:
        The spec.

    Example:
        >>> spec = dataclasses.replace(kerastl.get_backbone_spec("mobilenet_v2"),
        ...                            name="my_mobilenet", kwargs={"alpha": 0.5})
        >>> kerastl.register_backbone(spec).name
        'my_mobilenet'
    """
    return _REGISTRY.add(spec, overwrite=overwrite)


def unregister_backbone(name: str) -> BackboneSpec:
    """Removes a backbone from the registry and returns its spec.

    Args:
        name: The name it was registered under (any spelling `get_backbone_spec` forgives).

    Returns:
        The removed spec.

    Raises:
        ValueError: No backbone of that name is registered.

    Example:
        >>> spec = dataclasses.replace(kerastl.get_backbone_spec("mobilenet_v2"), name="my_net")
        >>> kerastl.register_backbone(spec) is kerastl.backbones.unregister_backbone("My-Net")
        True
    """
    return _REGISTRY.remove(name)
