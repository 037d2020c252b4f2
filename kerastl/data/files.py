"""Finding class folders and image files through `tf.io.gfile`.

`tf.io.gfile` works on every filesystem TensorFlow knows (local paths,
``gs://`` buckets, ...), so `kerastl.data.from_directory` does too.
"""

from __future__ import annotations

import os
import posixpath

import tensorflow as tf

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")
SPLIT_FOLDERS = {"train": "train", "val": "validation", "validation": "validation",
                 "test": "test"}


def join(folder: str, name: str) -> str:
    """Joins a folder and a name (with ``/`` for URLs such as ``gs://``)."""
    return posixpath.join(folder, name) if "://" in folder else os.path.join(folder, name)


def _visible(name: str) -> bool:
    return not name.startswith((".", "__"))


def is_image_name(name: str) -> bool:
    """Whether `name` has an image file extension (case-insensitive)."""
    return _visible(name) and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def subfolders(folder: str) -> list[str]:
    """Sorted names of the visible subfolders of `folder`."""
    names = []
    for name in tf.io.gfile.listdir(folder):
        name = name.rstrip("/")
        if _visible(name) and tf.io.gfile.isdir(join(folder, name)):
            names.append(name)
    return sorted(names)


def image_files(folder: str) -> list[str]:
    """Sorted paths of the image files in `folder` and its subfolders."""
    paths = []
    for root, dirs, files in tf.io.gfile.walk(folder):
        dirs[:] = [d for d in dirs if _visible(d.rstrip("/"))]
        paths.extend(join(root, f) for f in files if is_image_name(f))
    return sorted(paths)


def count_direct_images(folder: str) -> int:
    """Number of image files directly in `folder` (not in subfolders)."""
    return sum(1 for name in tf.io.gfile.listdir(folder)
               if is_image_name(name) and not tf.io.gfile.isdir(join(folder, name)))


def split_folders(root: str) -> dict[str, str] | None:
    """Finds a ready-made split: ``train/`` plus ``val/`` or ``validation/`` and/or ``test/``.

    Args:
        root: The dataset folder.

    Returns:
        ``{"train": path, "validation": path, "test": path}`` (the splits that
        exist), or None when `root` holds class folders directly.

    Example:
        >>> kerastl.data.files.split_folders("cats_and_dogs_filtered")
        {'train': 'cats_and_dogs_filtered/train', 'validation': 'cats_and_dogs_filtered/validation'}
    """
    names = subfolders(root)
    if "train" not in names or not set(names) <= set(SPLIT_FOLDERS):
        return None
    if not subfolders(join(root, "train")):
        return None
    if "val" in names and "validation" in names:
        raise ValueError(f"'{root}' has both 'val/' and 'validation/' folders; keep one of "
                         f"them. Received: path={root!r}")
    return {SPLIT_FOLDERS[n]: join(root, n) for n in names}


def class_files(folder: str) -> dict[str, list[str]]:
    """Lists the image files of each class folder of `folder`.

    Args:
        folder: A folder with one subfolder per class.

    Returns:
        ``{class_name: [paths]}`` in sorted class order.

    Raises:
        ValueError: `folder` has no class folders, or a class folder has no images.
    """
    names = subfolders(folder)
    if not names:
        direct = count_direct_images(folder)
        found = (f"found {direct} image(s) directly in it and no class folders"
                 if direct else "found no class folders")
        raise ValueError(f"No images found: '{folder}' must contain one folder per class "
                         f"(e.g. '{join(folder, 'cats')}/', '{join(folder, 'dogs')}/'); {found}.")
    files = {name: image_files(join(folder, name)) for name in names}
    empty = [name for name, paths in files.items() if not paths]
    if len(empty) == len(names):
        raise ValueError(f"No images found in the class folders of '{folder}' "
                         f"({', '.join(names)}); image files end with "
                         f"{', '.join(IMAGE_EXTENSIONS)}.")
    if empty:
        where = ", ".join(f"'{join(folder, name)}'" for name in empty)
        raise ValueError(f"Empty class folder(s): {where} contain no images "
                         f"({', '.join(IMAGE_EXTENSIONS)}). Remove them or add images.")
    return files
