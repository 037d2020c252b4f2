"""The native Keras format (`model.keras`) and `kerastl.load`.

`kerastl.load` reloads an exported model in Keras `safe_mode` (no Python
code is unpickled) with kerastl's serializable layers registered.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import zipfile
from pathlib import Path

import keras

from kerastl._validation import check_bool

KERAS_FILE = "model.keras"
# Registered class name -> module whose import registers it (imported only when
# a saved model uses it: importing tensorflow_hub takes seconds).
_OPTIONAL_LAYERS = {"kerastl>HubBackbone": "kerastl.backbones.hub",
                    "kerastl>TokenPooling": "kerastl.backbones.kerashub"}


def register_custom_objects(keras_file) -> None:
    """Imports the kerastl modules that register the layers `keras_file` uses."""
    import kerastl.layers  # noqa: F401 (registers ImagePreprocessing, ClassificationHead)

    with zipfile.ZipFile(keras_file) as archive:
        config = archive.read("config.json").decode("utf-8")
    for registered, module in _OPTIONAL_LAYERS.items():
        if registered in config and importlib.util.find_spec(module) is not None:
            importlib.import_module(module)


def save_keras(model, path) -> None:
    """Saves `model` in the native Keras format at `path` (a `.keras` file)."""
    model.save(str(path))


def _is_version_dir(path: Path) -> bool:
    return (path / KERAS_FILE).is_file() and not path.name.startswith(".")


def _version_key(path: Path):
    name = path.name
    return (1, int(name), 0.0) if name.isdigit() else (0, -1, path.stat().st_mtime)


def latest_version(directory) -> Path:
    """Returns the newest version folder of an export `directory`.

    Integer versions win over named ones and the highest integer is newest;
    among named versions the most recently modified is newest.

    Args:
        directory: A folder that `kerastl.export` wrote versions into.

    Returns:
        The version folder.

    Raises:
        FileNotFoundError: If it holds no version with a `model.keras`.
    """
    directory = Path(directory)
    versions = [p for p in directory.iterdir() if p.is_dir() and _is_version_dir(p)]
    if not versions:
        raise FileNotFoundError(
            f"No exported version with a {KERAS_FILE} in {str(directory)!r}. "
            "Pass a version folder, a .keras file, or a folder written by kerastl.export "
            "with 'keras' in `formats`.")
    return max(versions, key=_version_key)


def resolve_keras_path(path) -> Path:
    """Returns the `.keras` file that `kerastl.load(path)` loads."""
    path = Path(path)
    if path.is_file():
        if path.suffix != ".keras":
            raise ValueError("`path` must be a .keras file, an exported version folder or an "
                             "export directory (`kerastl.load` returns a Keras model; "
                             "kerastl.load_predictor(path) runs .tflite files and SavedModels). "
                             f"Received: path={str(path)!r}")
        return path
    if (path / "saved_model.pb").is_file():
        raise ValueError("`kerastl.load` returns a Keras model and reads .keras files; this is "
                         "a SavedModel: use kerastl.load_predictor(path) to run it. "
                         f"Received: path={str(path)!r}")
    if not path.is_dir():
        raise FileNotFoundError(f"No such file or directory. Received: path={str(path)!r}")
    if (path / KERAS_FILE).is_file():
        return path / KERAS_FILE
    return latest_version(path) / KERAS_FILE


def load(path, *, compile: bool = True, safe_mode: bool = True,  # noqa: A002 (Keras's names)
         trusted_hub_models=()):
    """Reloads a model exported by `kerastl.export`.

    Args:
        path: A version folder (``saved_models/3``), its ``model.keras`` file,
            or the export directory (``saved_models``: its newest version).
        compile: Whether to restore the training configuration, as in
            `keras.saving.load_model`.
        safe_mode: Keras's safe mode (default): no Python code is unpickled,
            and a TF Hub backbone may load a local SavedModel only when it is
            in `trusted_hub_models`.
        trusted_hub_models: Local SavedModel folders (or folders holding
            them) that a ``hub:`` backbone of the model may load in safe mode.

    Returns:
        The `keras.Model`.

    Raises:
        ValueError: In safe mode, if the model names an untrusted local SavedModel.

    Example:
        >>> model = kerastl.load("saved_models")
        >>> model.predict(images).argmax(axis=-1)
    """
    for name, value in (("compile", compile), ("safe_mode", safe_mode)):
        check_bool(name, value)
    if isinstance(trusted_hub_models, (str, os.PathLike)):
        trusted_hub_models = (trusted_hub_models,)
    keras_file = resolve_keras_path(path)
    register_custom_objects(keras_file)
    trust = contextlib.nullcontext()
    if trusted_hub_models:
        from kerastl.backbones.hub_handles import trusted_hub_models as trusting

        trust = trusting(*trusted_hub_models)
    with trust:
        return keras.saving.load_model(keras_file, compile=compile, safe_mode=safe_mode)
