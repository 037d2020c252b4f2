"""`kerastl.weights`: make ImageNet weight files findable offline, in the Keras cache.

``weights="imagenet"`` goes through Keras's download path, which first looks
for ``$KERAS_HOME/models/<file name>`` (default ``~/.keras/models``). Keras
names some files after the input size: MobileNetV2 asks for
``mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_160_no_top.h5`` for
160x160 inputs and ``..._1.0_224_no_top.h5`` for 224x224, although every
size uses the same weights (MobileNet V1 likewise). `add` places a weight
file under every name Keras may ask for it by, so one downloaded file serves
every input size:

* by default as **symbolic links** to the file where it is (nothing is
  copied; moving or deleting the original breaks them),
* with ``copy=True`` the file is copied once into the cache and the other
  names link to that copy (the cache then stands alone).

Files whose Keras name does not depend on the input size (ResNet,
EfficientNet, ...) are placed under their own name. Nothing here imports
TensorFlow.

Example:
    >>> placed = kerastl.weights.add("downloads/" + V2)  # V2: MobileNetV2's 224 file name
    >>> [p.path.name for p in placed][0]
    'mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5'
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from pathlib import Path

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# Keras file-name patterns whose only variable part is the input size, and the
# sizes Keras names files after (keras.applications.MobileNetV2 / MobileNet).
SIZED_NAMES = (
    (re.compile(r"^(mobilenet_v2_weights_tf_dim_ordering_tf_kernels_[0-9.]+_)(\d+)"
                r"((?:_no_top)?\.h5)$"), (96, 128, 160, 192, 224)),
    (re.compile(r"^(mobilenet_[0-9]_[0-9]_)(\d+)(_tf(?:_no_top)?\.h5)$"), (128, 160, 192, 224)),
)
WEIGHT_SUFFIXES = (".h5", ".hdf5")


@dataclasses.dataclass
class Placed:
    """One name `add` made in the cache.

    Attributes:
        path: The file name in ``$KERAS_HOME/models``.
        source: The weight file it holds (or links to).
        action: ``"linked"``, ``"copied"`` or ``"kept"`` (already there, same file).
    """

    path: Path
    source: Path
    action: str


def keras_home() -> Path:
    """Returns the folder Keras caches downloads in, as Keras computes it at import.

    ``$KERAS_HOME`` when set, else ``~/.keras`` (``/tmp/.keras`` when the home
    folder is not writable), without importing Keras.

    Example:
        >>> kerastl.weights.keras_home() / "models"
        PosixPath('/home/me/.keras/models')
    """
    if os.environ.get("KERAS_HOME"):
        return Path(os.environ["KERAS_HOME"]).expanduser()
    base = Path(os.path.expanduser("~"))
    if not os.access(base, os.W_OK):
        base = Path("/tmp")
    return base / ".keras"


def keras_names(file_name: str) -> list[str]:
    """Returns every name Keras may ask for the weights in `file_name` by.

    Example:
        >>> kerastl.weights.keras_names("mobilenet_2_5_224_tf_no_top.h5")
        ['mobilenet_2_5_128_tf_no_top.h5', 'mobilenet_2_5_160_tf_no_top.h5', ...]
    """
    for pattern, sizes in SIZED_NAMES:
        match = pattern.match(file_name)
        if match:
            head, _, tail = match.groups()
            return [f"{head}{size}{tail}" for size in sizes]
    return [file_name]


def _is_hdf5(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE
    except OSError:
        return False


def _weight_files(source: Path) -> list[Path]:
    if source.is_dir():
        files = sorted(p for p in source.iterdir()
                       if p.is_file() and p.name.lower().endswith(WEIGHT_SUFFIXES))
        if not files:
            raise FileNotFoundError(f"No .h5 weight files in folder {str(source)!r}. "
                                    f"Received: source={str(source)!r}")
        return files
    if not source.is_file():
        raise FileNotFoundError(f"`source` must be a weight file or a folder of them. "
                                f"Received: source={str(source)!r}")
    return [source]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or os.path.samefile(a, b)
    except OSError:
        return False


def add(source, *, keras_home_dir=None, copy: bool = False,
        overwrite: bool = False) -> list[Placed]:
    """Places weight files in the Keras cache under every name Keras asks for.

    Args:
        source: A ``.h5`` weight file as Keras names its download, or a folder
            of them (not recursive).
        keras_home_dir: The Keras home to fill (default: `keras_home`, i.e.
            ``$KERAS_HOME`` or ``~/.keras``); files go to its ``models/``.
        copy: Copy each file into the cache once (the other names link to
            the copy) instead of linking to it where it is.
        overwrite: Replace a different file already under one of the names.

    Returns:
        One `Placed` per name.

    Raises:
        FileNotFoundError: `source` does not exist, or a folder holds no ``.h5``.
        ValueError: A file is not an HDF5 file.
        FileExistsError: A name holds another file and `overwrite` is False.

    Example:
        >>> placed = kerastl.weights.add("downloads/", copy=True)
        >>> [p.path.name for p in placed]
    """
    if not isinstance(copy, bool) or not isinstance(overwrite, bool):
        raise TypeError(f"`copy` and `overwrite` must be True or False. Received: copy={copy!r}, "
                        f"overwrite={overwrite!r}")
    source = Path(source).expanduser()
    files = _weight_files(source)
    for file in files:
        if not _is_hdf5(file):
            raise ValueError(f"{str(file)!r} is not an HDF5 (.h5) weight file: it does not "
                             f"start with the HDF5 signature. Received: source={str(source)!r}")
    models = Path(keras_home_dir).expanduser() if keras_home_dir else keras_home()
    models = models / "models"
    models.mkdir(parents=True, exist_ok=True)
    placed = []
    for file in files:
        names = keras_names(file.name)
        target_of_links = file.resolve()
        if copy:
            first = models / file.name
            placed.append(_put(first, file, copy=True, overwrite=overwrite))
            target_of_links = first.resolve()
            names = [n for n in names if n != file.name]
        for name in names:
            placed.append(_put(models / name, target_of_links, copy=False, overwrite=overwrite))
    return placed


def _put(path: Path, source: Path, *, copy: bool, overwrite: bool) -> Placed:
    if path.exists() or path.is_symlink():
        if path.exists() and _same_file(path, source):
            return Placed(path, source, "kept")
        if not overwrite:
            raise FileExistsError(f"{str(path)!r} already holds another file; pass "
                                  f"overwrite=True (kerastl weights add --overwrite) to replace "
                                  f"it. Received: overwrite=False")
    tmp = path.with_name(f".{path.name}.kerastl-tmp")
    if tmp.exists() or tmp.is_symlink():
        tmp.unlink()
    if copy:
        shutil.copyfile(source, tmp)
    else:
        tmp.symlink_to(source)
    os.replace(tmp, path)  # atomic: Keras never sees a half-written file
    return Placed(path, source, "copied" if copy else "linked")


def cached(keras_home_dir=None) -> list[Path]:
    """Returns the weight files in ``<keras home>/models`` (sorted; broken links left out).

    Example:
        >>> [p.name for p in kerastl.weights.cached()]
    """
    models = (Path(keras_home_dir).expanduser() if keras_home_dir else keras_home()) / "models"
    if not models.is_dir():
        return []
    return sorted(p for p in models.iterdir()
                  if p.name.lower().endswith(WEIGHT_SUFFIXES) and p.exists())


__all__ = ["Placed", "add", "cached", "keras_home", "keras_names"]
