"""Finding class folders and image files through `tf.io.gfile`.

`tf.io.gfile` works on every filesystem TensorFlow knows (local paths,
``gs://`` buckets, ...), so `kerastl.data.from_directory` does too.

Local folders are walked with `os.scandir` so that symbolic links are
followed only when safe: a link is followed when it resolves inside the
dataset folder, not into another class folder, and (for folders) to a folder
not visited yet. Loops (``cats/self -> .``), escapes (``cats/up -> ..``,
links out of the dataset) and links between classes are skipped and
reported (`Walk.skipped`), so no image is counted twice or under the wrong
class.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import unicodedata

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


def _is_local(path: str) -> bool:
    return "://" not in path


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


@dataclasses.dataclass
class Walk:
    """The symbolic-link policy of one dataset scan, and the links it skipped.

    Args:
        root: The dataset folder; links must resolve inside it.
        class_folders: Every class folder of every split (their real paths are
            marked visited before any walk, so no link leads into one).

    Attributes:
        skipped: ``(link path, reason)`` of every link not followed.
    """

    root: str
    class_folders: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)

    def __post_init__(self):
        self.real_root = os.path.realpath(self.root) if _is_local(self.root) else self.root
        self._class_reals, self._visited = [], {self.real_root}
        self.add_class_folders(self.class_folders)

    def add_class_folders(self, folders) -> None:
        """Marks class folders (and the split folders holding them) as visited."""
        for folder in folders:
            if _is_local(folder):
                real = os.path.realpath(folder)
                self._class_reals.append(real)
                self._visited |= {real, os.path.dirname(real)}

    def follow(self, link: str, real: str, home: str, *, is_dir: bool) -> bool:
        """Whether to follow `link` (resolving to `real`) found under class folder `home`."""
        reason = None
        if not _inside(real, self.real_root):
            reason = "symbolic link resolves outside the dataset folder"
        elif any(_inside(real, c) for c in self._class_reals if c != home) or (
                is_dir and _inside(home, real)):
            reason = "symbolic link leads into another class folder or above its own"
        elif is_dir and real in self._visited:
            reason = "symbolic link to a folder already scanned (a loop)"
        if reason is not None:
            self.skipped.append((link, f"{reason} ({real}); not followed"))
            return False
        if is_dir:
            self._visited.add(real)
        return True


def subfolders(folder: str, walk: Walk | None = None) -> list[str]:
    """Sorted names of the visible subfolders of `folder`.

    With `walk`, a subfolder that is a symbolic link is kept only when it
    resolves inside the dataset folder (see `Walk`).
    """
    names = []
    for name in tf.io.gfile.listdir(folder):
        name = name.rstrip("/")
        path = join(folder, name)
        if not _visible(name) or not tf.io.gfile.isdir(path):
            continue
        if walk is not None and _is_local(path) and os.path.islink(path):
            real = os.path.realpath(path)
            if not _inside(real, walk.real_root) or _inside(walk.real_root, real):
                walk.skipped.append((path, "symbolic link resolves outside the dataset folder "
                                           f"or to a folder above it ({real}); not followed"))
                continue
        names.append(name)
    return sorted(names)


def _local_image_files(folder: str, walk: Walk) -> list[str]:
    home = os.path.realpath(folder)
    paths, seen_files, stack = [], set(), [folder]
    while stack:
        current = stack.pop()
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if not _visible(entry.name):
                continue
            is_dir = entry.is_dir()  # follows links
            if not is_dir and not is_image_name(entry.name):
                continue
            if entry.is_symlink():
                real = os.path.realpath(entry.path)
                if not walk.follow(entry.path, real, home, is_dir=is_dir):
                    continue
            else:
                real = os.path.realpath(entry.path) if not is_dir else entry.path
            if is_dir:
                stack.append(entry.path)
            elif real not in seen_files:
                seen_files.add(real)
                paths.append(entry.path)
    return sorted(paths)


def image_files(folder: str, walk: Walk | None = None) -> list[str]:
    """Sorted paths of the image files in `folder` and its subfolders.

    Local folders follow symbolic links only as `walk` allows (by default:
    links that stay inside `folder`); an image reached twice is listed once.
    """
    if _is_local(folder):
        return _local_image_files(folder, walk or Walk(folder, [folder]))
    paths = []
    for root, dirs, files in tf.io.gfile.walk(folder):
        dirs[:] = [d for d in dirs if _visible(d.rstrip("/"))]
        paths.extend(join(root, f) for f in files if is_image_name(f))
    return sorted(paths)


_LINE_BREAKING = ("Cc", "Zl", "Zp")


def name_problem(name: str) -> str | None:
    """Says why `name` cannot be a class name in one-name-per-line label files, or None.

    Control characters (newline, tab, escape, ...) and Unicode line or
    paragraph separators would split or garble ``labels.txt`` and the label
    metadata, so the class indices and names would no longer line up.

    Example:
        >>> kerastl.data.files.name_problem("roses") is None
        True
    """
    if name == "" or name.strip() != name:
        return "is empty or starts or ends with whitespace"
    for char in name:
        if unicodedata.category(char) in _LINE_BREAKING:
            return f"contains the control character {char!r}"
    return None


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


def class_folders(folder: str, walk: Walk | None = None) -> list[str]:
    """Names of the class folders of `folder`, checked to be usable as labels.

    Raises:
        ValueError: A folder name has control characters (see `name_problem`).
    """
    names = subfolders(folder, walk)
    for name in names:
        problem = name_problem(name)
        if problem:
            raise ValueError(
                f"Class folder names become labels (one per line in labels.txt and the "
                f".tflite metadata); the folder {join(folder, name)!r} {problem}. Rename it. "
                f"Received: class folder {name!r}")
    return names


def class_files(folder: str, walk: Walk | None = None,
                names: list[str] | None = None) -> dict[str, list[str]]:
    """Lists the image files of each class folder of `folder`.

    Args:
        folder: A folder with one subfolder per class.
        walk: The symbolic-link policy (default: links must stay inside `folder`).
        names: The class folders (default: `class_folders(folder)`).

    Returns:
        ``{class_name: [paths]}`` in sorted class order.

    Raises:
        ValueError: `folder` has no class folders, a class folder has no
            images, or a class folder's name cannot be a label.
    """
    if names is None:
        names = class_folders(folder, walk)
    if walk is None:
        walk = Walk(folder, [join(folder, n) for n in names])
    if not names:
        direct = count_direct_images(folder)
        found = (f"found {direct} image(s) directly in it and no class folders"
                 if direct else "found no class folders")
        raise ValueError(f"No images found: '{folder}' must contain one folder per class "
                         f"(e.g. '{join(folder, 'cats')}/', '{join(folder, 'dogs')}/'); {found}.")
    files = {name: image_files(join(folder, name), walk) for name in names}
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
