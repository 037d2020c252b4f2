"""TF Hub handles: well-known image feature vectors, resolving handles, reading SavedModels.

`kerastl.build("hub:<handle>")` looks the handle up here to learn the input
size the model was trained at and the input range it expects, so it can add
the right `kerastl.layers.ImagePreprocessing`. Every model in the table takes
float32 RGB images scaled to [0, 1] (the TF Hub image convention) and returns
pooled 2D features. Unknown handles work too; they need ``input_shape``.

Handles are matched without their version and regardless of spelling
variants: ``https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/4``,
``.../feature_vector/5`` and the Kaggle forms
``https://www.kaggle.com/models/google/mobilenet-v2/TensorFlow2/100-224-feature-vector/2`` and
``https://www.kaggle.com/models/google/mobilenet-v2/frameworks/tensorFlow2/variations/100-224-feature-vector/versions/2``
all find the same entry.

The table of known models is `kerastl.backbones.hub_catalog.KNOWN_HUB_MODELS`
(also importable from here). `resolve_handle` turns a handle into a local
SavedModel directory (through the ``TFHUB_CACHE_DIR`` cache) with clear errors;
`trusted_hub_models` says which local SavedModels safe-mode loading may run.
`kerastl.backbones.hub_savedmodel` reads what
`kerastl.backbones.hub.HubBackbone` needs from a loaded SavedModel.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import re
import urllib.parse

import tensorflow as tf
import tensorflow_hub as hub

from kerastl.backbones.hub_catalog import KNOWN_HUB_MODELS, HubImageModel

_KAGGLE_LONG = re.compile(r"^(models/[^/]+/[^/]+)/frameworks/([^/]+)/variations/([^/]+)"
                          r"(?:/versions/([^/]+))?$")
_HOST_ALIASES = {"hub.tensorflow.google.cn": "tfhub.dev", "www.kaggle.com": "kaggle.com"}


def is_url(handle: str) -> bool:
    """Returns whether `handle` is a URL (``https://``, ``gs://``...) rather than a path."""
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]+://", str(handle)) is not None


def handle_key(handle: str) -> str:
    """Returns the lookup key of a hub handle: host and path, no version, one spelling.

    Args:
        handle: A ``https://tfhub.dev/...`` or ``https://www.kaggle.com/models/...``
            handle (any other string is returned lower-cased).

    Returns:
        A string such as ``"tfhub.dev/google/imagenet/mobilenet-v2-100-224/feature-vector"``.

    Example:
        >>> kerastl.backbones.hub_handles.handle_key(
        ...     "https://www.kaggle.com/models/google/bit/frameworks/TensorFlow2/variations/m-r50x1/versions/1")
        'kaggle.com/models/google/bit/tensorflow2/m-r50x1'
    """
    handle = str(handle).strip()
    if not is_url(handle):
        return handle.lower()
    parts = urllib.parse.urlsplit(handle)
    host = parts.netloc.lower()
    host = _HOST_ALIASES.get(host, host)
    path = parts.path.strip("/").lower().replace("_", "-")
    long_form = _KAGGLE_LONG.match(path)
    if long_form:
        path = "/".join(p for p in long_form.groups() if p)
    segments = path.split("/")
    if len(segments) > 1 and segments[-1].isdigit():
        segments = segments[:-1]
    return f"{host}/{'/'.join(segments)}"


def find_hub_model(handle: str) -> HubImageModel | None:
    """Returns the known model a handle points to, or None.

    Args:
        handle: A tfhub.dev or Kaggle Models handle, with or without version.

    Returns:
        The `HubImageModel`, or None for unknown handles and local paths.

    Example:
        >>> kerastl.backbones.hub_handles.find_hub_model(
        ...     "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/4").feature_dim
        1280
    """
    key = handle_key(handle)
    for model in KNOWN_HUB_MODELS:
        if key in (handle_key(model.tfhub), handle_key(model.kaggle)):
            return model
    return None


def _cache_location(handle: str) -> tuple[str, str]:
    """Returns (cache dir, module dir) where `tensorflow_hub` caches a URL handle."""
    from tensorflow_hub import resolver

    cache_dir = resolver.tfhub_cache_dir(use_temp=True)
    return cache_dir, os.path.join(cache_dir, hashlib.sha1(handle.encode("utf8")).hexdigest())


def _unresolved_error(handle: str, err: Exception) -> OSError:
    if not is_url(handle):
        return FileNotFoundError(
            f"TF Hub handle {handle!r} is not a URL and no such directory exists. Pass the "
            "directory of a TF2 SavedModel (the folder holding saved_model.pb) or a "
            "https://tfhub.dev/... or https://www.kaggle.com/models/... handle.")
    cache_dir, module_dir = _cache_location(handle)
    source = ("TFHUB_CACHE_DIR" if os.environ.get("TFHUB_CACHE_DIR")
              else "the default, as TFHUB_CACHE_DIR is unset")
    return OSError(
        f"Could not resolve the TF Hub handle {handle!r}: it is not in the TF Hub cache "
        f"(looked for {module_dir} and {len(equivalent_handles(handle)) - 1} equivalent "
        f"handle(s); cache directory {cache_dir} from {source}) and "
        f"downloading it failed ({type(err).__name__}: {err}). To use it offline, download "
        "it once where there is internet access, e.g. `TFHUB_CACHE_DIR=/path/to/cache "
        f"python -c \"import tensorflow_hub as hub; hub.resolve('{handle}')\"`, then set "
        "TFHUB_CACHE_DIR=/path/to/cache here; or download and extract the model and pass "
        "its local directory as the handle.")


def _version(handle: str) -> str | None:
    path = urllib.parse.urlsplit(handle).path.strip("/")
    long_form = _KAGGLE_LONG.match(path.lower())
    if long_form:
        return long_form.group(4)
    last = path.split("/")[-1] if path else ""
    return last if last.isdigit() else None


def _spellings(handle: str) -> list[str]:
    """The URL spellings of one handle and version (hosts, Kaggle's short and long form)."""
    parts = urllib.parse.urlsplit(handle.strip())
    host, path = parts.netloc.lower(), parts.path.strip("/")
    if host in ("tfhub.dev", "hub.tensorflow.google.cn"):
        return list(dict.fromkeys([handle.strip()] + [
            f"https://{h}/{path}" for h in ("tfhub.dev", "hub.tensorflow.google.cn")]))
    if host not in ("www.kaggle.com", "kaggle.com"):
        return [handle.strip()]
    long_form, seg = _KAGGLE_LONG.match(path), path.split("/")
    forms = [path]
    if long_form:
        model, framework, variation, version = long_form.groups()
        forms.append("/".join(p for p in (model, framework, variation, version) if p))
    elif len(seg) >= 5 and seg[0] == "models":
        forms.append("/".join(seg[:3]) + f"/frameworks/{seg[3]}/variations/{seg[4]}"
                     + (f"/versions/{seg[5]}" if len(seg) > 5 else ""))
    return list(dict.fromkeys([handle.strip()] + [
        f"https://{h}/{form}" for form in forms for h in ("www.kaggle.com", "kaggle.com")]))


def moved_to(handle: str) -> str | None:
    """Returns the Kaggle Models handle a tfhub.dev handle moved to (from the table), or None.

    Example:
        >>> kerastl.backbones.hub_handles.moved_to(
        ...     "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5")
        'https://www.kaggle.com/models/google/mobilenet-v2/TensorFlow2/100-224-feature-vector/2'
    """
    model = find_hub_model(handle)
    if model is None or _version(handle) not in (None, _version(model.tfhub)):
        return None
    return model.kaggle


def equivalent_handles(handle: str) -> list[str]:
    """Returns every handle that names the same SavedModel as `handle`, `handle` first.

    These are its spellings (``tfhub.dev`` / ``hub.tensorflow.google.cn``,
    ``www.kaggle.com`` / ``kaggle.com``, Kaggle's short and long paths) and, for
    a model of `KNOWN_HUB_MODELS` at the version the table names, its handle on
    the other site (the tfhub.dev model and the Kaggle Models copy it moved to).
    A handle without a version matches the table's version.

    Example:
        >>> kerastl.backbones.hub_handles.equivalent_handles(
        ...     "https://www.kaggle.com/models/google/bit/TensorFlow2/m-r50x1/1")[-1]
        'https://hub.tensorflow.google.cn/google/bit/m-r50x1/1'
    """
    handle = os.fspath(handle)
    if not is_url(handle):
        return [handle]
    out = _spellings(handle)
    model = find_hub_model(handle)
    if model is not None:
        site = handle_key(handle).split("/")[0]
        versions = {_version(h) for h in (model.tfhub, model.kaggle)
                    if handle_key(h).split("/")[0] == site}
        if _version(handle) in versions | {None}:
            for h in (model.kaggle, model.tfhub):
                out += _spellings(h)
    return list(dict.fromkeys(out))


def cached_model_dir(handle: str) -> str | None:
    """Returns the ``TFHUB_CACHE_DIR`` folder of `handle` or of an equivalent handle, or None.

    `tensorflow_hub` caches a download under the SHA-1 of the exact handle
    string, so a model downloaded as ``https://tfhub.dev/...`` is found here
    when asked for by its Kaggle Models handle (and the reverse), offline.
    """
    for candidate in equivalent_handles(handle):
        folder = _cache_location(candidate)[1]
        if tf.io.gfile.exists(os.path.join(folder, "saved_model.pb")) or tf.io.gfile.exists(
                os.path.join(folder, "tfhub_module.pb")):
            return folder
    return None


def resolve_handle(handle) -> str:
    """Returns the local SavedModel directory of a TF Hub handle.

    A URL handle is first looked up in the ``TFHUB_CACHE_DIR`` cache under
    every equivalent handle (`equivalent_handles`: its spellings, and the
    tfhub.dev / Kaggle Models handle of the same model), so it works offline
    when any of them was downloaded; otherwise `tensorflow_hub.resolve`
    downloads it into the cache (or a temporary default).

    Args:
        handle: A ``https://tfhub.dev/...`` or ``https://www.kaggle.com/models/...``
            handle, or a local directory.

    Returns:
        The directory holding ``saved_model.pb``.

    Raises:
        OSError: The handle cannot be resolved (missing directory, no network
            and not cached); the message says where the cache was searched.
        ValueError: The directory is a TF1 ``hub.Module`` or not a SavedModel.

    Example:
        >>> kerastl.backbones.hub_handles.resolve_handle("/models/mobilenet_v2_feature_vector")
        '/models/mobilenet_v2_feature_vector'
    """
    handle = os.fspath(handle)
    path = cached_model_dir(handle) if is_url(handle) else None
    try:
        path = path or hub.resolve(handle)
    except (OSError, ValueError, tf.errors.OpError) as err:
        raise _unresolved_error(handle, err) from err
    if tf.io.gfile.exists(os.path.join(path, "tfhub_module.pb")):
        raise ValueError(
            f"TF Hub handle {handle!r} is in the TF1 Hub format (hub.Module, {path} has "
            "tfhub_module.pb), which kerastl does not support: TF1 modules cannot run in "
            "Keras 3 models. Use a TF2 SavedModel of the model instead (on Kaggle Models, "
            "the 'TensorFlow2' framework variation).")
    if not tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        raise ValueError(f"TF Hub handle {handle!r} resolved to {path}, which has no "
                         "saved_model.pb: it is not a TF2 SavedModel.")
    return path


TRUST_ENV = "KERASTL_TRUSTED_HUB_MODELS"
_TRUSTED = contextvars.ContextVar("kerastl_trusted_hub_models", default=())


def _real(path) -> str:
    return os.path.realpath(os.path.expanduser(os.fspath(path)))


@contextlib.contextmanager
def trusted_hub_models(*paths):
    """Lets safe-mode loading use these local SavedModels (or any SavedModel below them).

    A `.keras` file whose `kerastl.backbones.hub.HubBackbone` names a local
    SavedModel runs that SavedModel's TensorFlow graph when it loads. Keras's
    safe mode (the default of `keras.saving.load_model` and `kerastl.load`)
    refuses it unless it is trusted here, in ``$KERASTL_TRUSTED_HUB_MODELS``
    (paths separated by ``os.pathsep``), or the model is loaded with
    ``safe_mode=False``.

    Args:
        *paths: SavedModel folders, or folders holding them.

    Example:
        >>> with kerastl.backbones.hub_handles.trusted_hub_models("/models/mobilenet_v2"):
        ...     model = kerastl.load("saved_models/flowers")
    """
    token = _TRUSTED.set(_TRUSTED.get() + tuple(_real(p) for p in paths))
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def is_trusted_path(handle) -> bool:
    """Whether a local SavedModel `handle` is trusted (see `trusted_hub_models`)."""
    real = _real(handle)
    env = [p for p in os.environ.get(TRUST_ENV, "").split(os.pathsep) if p.strip()]
    for trusted in _TRUSTED.get() + tuple(_real(p) for p in env):
        if real == trusted or real.startswith(trusted.rstrip(os.sep) + os.sep):
            return True
    return False


__all__ = ["KNOWN_HUB_MODELS", "TRUST_ENV", "HubImageModel", "cached_model_dir",
           "equivalent_handles", "find_hub_model", "handle_key", "is_trusted_path", "is_url",
           "moved_to", "resolve_handle", "trusted_hub_models"]
