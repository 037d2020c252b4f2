"""Instantiates a backbone from its spec, with clear errors about weights."""

from __future__ import annotations

import os
from pathlib import Path

from kerastl._validation import check_keys
from kerastl.backbones.spec import BackboneSpec

_NETWORK_HINTS = ("URL fetch failure", "Name or service not known", "urlopen error",
                  "Temporary failure in name resolution", "Network is unreachable",
                  "Connection refused", "HTTP Error")


def check_weights(weights):
    """Returns `weights` ("imagenet", None, or a path as str) or raises.

    Raises:
        FileNotFoundError: `weights` is a path that does not exist.
        ValueError: `weights` is neither "imagenet", None nor a path.
    """
    if weights is None or weights == "imagenet":
        return weights
    if isinstance(weights, (str, os.PathLike)):
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"`weights` file not found: {str(path)!r}. Pass 'imagenet', None, or the path "
                f"of an existing .h5/.weights.h5 file. Received: weights={str(weights)!r}")
        return str(path)
    raise ValueError(f"`weights` must be 'imagenet', None, or a path to a weights file. "
                     f"Received: weights={weights!r}")


def make_backbone(spec: BackboneSpec, *, input_shape, weights, backbone_kwargs=None):
    """Builds the Keras Applications backbone of `spec`, named ``"backbone"``.

    Args:
        spec: A Keras Applications spec (``spec.source == "keras"``).
        input_shape: ``(height, width, channels)``.
        weights: "imagenet", None, or a weights file path (checked by `check_weights`).
        backbone_kwargs: Extra constructor options, keys from ``spec.kwargs``.

    Returns:
        The backbone (``include_top=False``, ``pooling=None``).

    Raises:
        ValueError: Unknown `backbone_kwargs` keys, or a weights file that
            does not fit the architecture.
        OSError: ImageNet weights are not cached and cannot be downloaded.
    """
    kwargs = check_keys("backbone_kwargs", backbone_kwargs, spec.kwargs)
    try:
        backbone = spec.constructor(include_top=False, weights=weights,
                                    input_shape=tuple(input_shape), **kwargs)
    except Exception as err:  # noqa: BLE001 - re-raised with the cause attached
        raise _weights_error(err, spec, weights, input_shape, kwargs) from err
    backbone.name = "backbone"
    return backbone


def _keras_home() -> str:
    """Where Keras caches downloads (``$KERAS_HOME``, read by Keras at import)."""
    try:
        from keras.src.backend.config import keras_home

        return keras_home()
    except ImportError:  # pragma: no cover - private API moved
        return os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras"))


def _weights_error(err, spec, weights, input_shape, kwargs):
    message = str(err)
    if weights == "imagenet" and (isinstance(err, OSError) or
                                  any(h in message for h in _NETWORK_HINTS)):
        home = _keras_home()
        return OSError(
            f"Could not get the ImageNet weights of {spec.name!r}: they are not in the Keras "
            f"cache and downloading failed (no network?). To run offline, run `kerastl "
            f"weights add /path/to/<file>.h5` (or a folder of them; Python: "
            f"`kerastl.weights.add`), which places it in {os.path.join(str(home), 'models')} "
            f"under every name Keras asks for (set KERAS_HOME before importing keras to use "
            f"another folder), or pass weights='/path/to/weights.h5' (CLI: --weights FILE). "
            f"Cause: {message.splitlines()[0] if message else type(err).__name__}")
    if weights not in (None, "imagenet"):
        return ValueError(
            f"The weights file {weights!r} does not fit backbone {spec.name!r} with "
            f"input_shape={tuple(input_shape)} and backbone_kwargs={kwargs}. Check that it "
            f"was saved from the same architecture and options (e.g. `alpha`). Cause: {message}")
    if isinstance(err, (ValueError, TypeError)):
        return ValueError(f"Could not build backbone {spec.name!r} with "
                          f"input_shape={tuple(input_shape)} and backbone_kwargs={kwargs}: "
                          f"{message}")
    return err
