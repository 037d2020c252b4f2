"""`kerastl.data.from_directory`: a folder of class folders to batched datasets."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from kerastl.data import files as files_lib
from kerastl.data import options, pipeline, scan
from kerastl.data.image_data import ImageData
from kerastl.data.split import split_indices

MAX_LISTED_SKIPPED = 20


def _check_path(path: Any) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError("`path` must be a folder path (str or os.PathLike) with one subfolder "
                        f"per class. Received: path={path!r:.200}")
    path = os.fspath(path)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"`path` does not exist. Received: path={path!r}")
    if not tf.io.gfile.isdir(path):
        raise NotADirectoryError("`path` must be a folder with one subfolder per class. "
                                 f"Received: path={path!r}")
    return path


def _layout(path: str, validation_split: float, test_split: float) -> dict[str, str]:
    layout = files_lib.split_folders(path) or {"train": path}
    for split, fraction, arg in (("validation", validation_split, "validation_split"),
                                 ("test", test_split, "test_split")):
        if split in layout and fraction:
            folder = os.path.basename(layout[split].rstrip("/"))
            raise ValueError(f"`{arg}` cannot be used: '{path}' already has a '{folder}/' "
                             f"folder for the {split} split. Received: {arg}={fraction!r}")
    return layout


def _common_class_names(per_split: dict[str, dict[str, list[str]]], layout: dict[str, str],
                        path: str) -> list[str]:
    train = list(per_split["train"])
    for split, classes in per_split.items():
        missing = sorted(set(train) - set(classes))
        extra = sorted(set(classes) - set(train))
        if missing or extra:
            folder = os.path.basename(layout[split].rstrip("/"))
            parts = ([f"missing from {folder}/: {', '.join(missing)}"] if missing else []) + (
                [f"only in {folder}/: {', '.join(extra)}"] if extra else [])
            raise ValueError(f"The class folders of 'train/' and '{folder}/' in '{path}' differ "
                             f"({'; '.join(parts)}). Every split needs the same class folders.")
    if len(train) < 2:
        raise ValueError(f"`path` must contain at least 2 class folders; found {len(train)} "
                         f"({', '.join(repr(n) for n in train)}). For one class against the "
                         f"rest, add a folder of other images. Received: path={path!r}")
    return train


def _order_classes(found: list[str], class_names: Sequence[str] | None) -> list[str]:
    if class_names is None:
        return found
    if isinstance(class_names, str) or not all(isinstance(n, str) for n in class_names):
        raise ValueError("`class_names` must be a list of folder names. "
                         f"Received: class_names={class_names!r}")
    given = list(class_names)
    missing, extra = sorted(set(found) - set(given)), sorted(set(given) - set(found))
    if missing or extra or len(set(given)) != len(given):
        raise ValueError(f"`class_names` must list each class folder once (found: "
                         f"{', '.join(found)}; not listed: {', '.join(missing) or 'none'}; no "
                         f"such folder: {', '.join(extra) or 'none'}). "
                         f"Received: class_names={given!r}")
    return given


def _warn_skipped(skipped: list[tuple[str, str]], total: int, links: int = 0) -> None:
    if not skipped:
        return
    lines = [f"  {p}: {reason}" for p, reason in skipped[:MAX_LISTED_SKIPPED]]
    if len(skipped) > MAX_LISTED_SKIPPED:
        lines.append(f"  ... and {len(skipped) - MAX_LISTED_SKIPPED} more")
    files = len(skipped) - links
    what = []
    if files:
        what.append(f"{files} of {total} files that are not readable images")
    if links:
        what.append(f"{links} symbolic link(s) it did not follow")
    warnings.warn(f"kerastl.data.from_directory skipped {' and '.join(what)}:\n"
                  + "\n".join(lines) + "\nThe full list is in ImageData.skipped.",
                  UserWarning, stacklevel=3)


def _class_files(path: str, layout: dict[str, str]):
    """Returns ``{split: {class: [paths]}}`` and the symbolic links that were not followed."""
    walk = files_lib.Walk(path)
    names = {split: files_lib.class_folders(folder, walk) for split, folder in layout.items()}
    walk.add_class_folders([files_lib.join(layout[split], n)
                            for split, found in names.items() for n in found])
    per_split = {split: files_lib.class_files(folder, walk, names=names[split])
                 for split, folder in layout.items()}
    return per_split, walk.skipped


def _scan(per_split, class_names, image_size, *, validate_files, fast_decode, links=(),
          max_pixels=scan.MAX_IMAGE_PIXELS):
    """Returns ``{split: (paths, decoders, labels)}`` and the skipped files."""
    entries = [(split, label, p) for split, classes in per_split.items()
               for label, name in enumerate(class_names) for p in classes[name]]
    paths = [p for _, _, p in entries]
    if validate_files:
        checks = scan.check_files(paths, image_size, fast_decode=fast_decode,
                                  max_pixels=max_pixels)
    else:
        checks = [scan.FileCheck(p, scan.guess_decoder(p)) for p in paths]
    skipped = list(links) + [(c.path, c.reason) for c in checks if c.reason is not None]
    _warn_skipped(skipped, len(paths), len(links))
    out = {split: ([], [], []) for split in per_split}
    for (split, label, p), check in zip(entries, checks):
        if check.reason is None:
            for column, value in zip(out[split], (p, check.decoder, label)):
                column.append(value)
    for split, (_, _, labels) in out.items():
        present = set(labels)
        dead = [n for i, n in enumerate(class_names) if i not in present]
        if dead:
            raise ValueError(f"No readable images left in class folder(s) "
                             f"{', '.join(repr(n) for n in dead)} of the {split} split: all "
                             f"their files were skipped (listed in the warning above).")
    return out, skipped


def _carve(columns, fractions: tuple[float, float], seed: int | None) -> dict[str, tuple]:
    """Splits the train columns into train/validation/test, stratified by label."""
    names = ["validation", "test"]
    wanted = [(n, f) for n, f in zip(names, fractions) if f > 0]
    labels = np.asarray(columns[2])
    parts = split_indices(labels, len(labels), tuple(f for _, f in wanted), seed)
    out = {}
    for split, idx in zip(["train"] + [n for n, _ in wanted], parts):
        if len(idx) == 0:
            raise ValueError(f"Too few images to make a {split} split: every class has a "
                             "single image. Add images or drop the split.")
        out[split] = tuple([column[i] for i in idx] for column in columns)
    return out


def from_directory(path: Any, *, image_size: int | tuple[int, int], batch_size: int = 32,
                   validation_split: float | None = None, test_split: float | None = None,
                   seed: int | None = 1337, shuffle: bool = True, cache: bool | str = True,
                   class_names: Sequence[str] | None = None, crop_to_aspect_ratio: bool = False,
                   validate_files: bool = True, fast_decode: bool = True,
                   max_image_pixels: int | None = scan.MAX_IMAGE_PIXELS) -> ImageData:
    """Loads a folder with one subfolder of images per class.

    A ready-made split is used as it is: ``path/train/<class>/``,
    ``path/val/<class>/`` (or ``validation/``) and optionally ``path/test/``.
    Otherwise ``path/<class>/`` is the training data, and `validation_split` /
    `test_split` hold out that fraction of every class (a stratified split,
    the same for the same `seed`).

    Every file is checked once (in parallel): empty, truncated and non-image
    files, and images of more than `max_image_pixels` pixels (decompression
    bombs), are skipped and listed by name in one warning and in `ImageData.skipped`.
    Symbolic links are followed only inside `path`, never into another class
    folder and never in a loop; links not followed are listed there too.
    JPEG, PNG (8 or 16 bit), GIF (first frame), BMP, WebP and TIFF images in
    any mode (grayscale, RGBA, palette, CMYK) become 8-bit RGB.

    Args:
        path: The dataset folder (local or any `tf.io.gfile` filesystem, e.g. ``gs://``).
        image_size: Size the images are resized to: an int or ``(height, width)``.
        batch_size: Images per batch.
        validation_split: Fraction of each class held out for validation, when
            the folder is not already split.
        test_split: Fraction of each class held out for testing.
        seed: Seed of the split and of the training shuffle.
        shuffle: Whether to reshuffle the training split every epoch.
            Validation and test keep a fixed (file name) order.
        cache: Keep decoded images in memory (True), not at all (False), or in
            files starting with this path (a str).
        class_names: The class folders in the order of their labels (default:
            sorted folder names); must name every class folder.
        crop_to_aspect_ratio: Center-crop each image to the aspect ratio of
            `image_size` before resizing, instead of squashing it.
        validate_files: Check every file before training (recommended). False
            skips the scan: unreadable files are then dropped silently while
            reading, `counts` still include them, and the number of batches
            is unknown to Keras.
        fast_decode: Decode JPEGs at least 2, 4 or 8 times larger than
            `image_size` at that reduced scale (libjpeg DCT scaling; much
            faster for big photos).
        max_image_pixels: Images with more pixels (width x height) are skipped
            without being decoded (default `kerastl.data.scan.MAX_IMAGE_PIXELS`,
            about 89.5 million, Pillow's own limit; None: no limit). Needs
            `validate_files`.

    Returns:
        A `kerastl.data.ImageData` (``validation`` / ``test`` are None when absent).

    Raises:
        FileNotFoundError: `path` does not exist.
        TypeError: `path` is not a path (e.g. None).
        ValueError: No images, an empty class folder, a single class, class
            folders that differ between splits, a class folder name with
            control characters, or invalid arguments.

    Example:
        >>> data = kerastl.data.from_directory("flowers", image_size=160, validation_split=0.2)
        >>> data.class_names
        ['daisy', 'dandelion', 'rose', 'sunflower', 'tulip']
        >>> images, labels = next(iter(data.train))  # (32, 160, 160, 3) float32, (32,) int64
    """
    image_size = options.image_size_pair(image_size)
    batch_size = options.batch_size_int(batch_size)
    fractions = options.split_fractions(validation_split, test_split)
    seed = options.seed_int(seed)
    cache = options.cache_option(cache)
    for name, value in (("shuffle", shuffle), ("crop_to_aspect_ratio", crop_to_aspect_ratio),
                        ("validate_files", validate_files), ("fast_decode", fast_decode)):
        options.flag(name, value)
    scan.check_max_pixels(max_image_pixels)
    path = _check_path(path)
    layout = _layout(path, *fractions)
    per_split, links = _class_files(path, layout)
    names = _order_classes(_common_class_names(per_split, layout, path), class_names)
    columns, skipped = _scan(per_split, names, image_size, validate_files=validate_files,
                             fast_decode=fast_decode, links=links,
                             max_pixels=max_image_pixels)
    if any(fractions):
        columns.update(_carve(columns["train"], fractions, seed))
    datasets, counts = {}, {}
    for split, (paths, decoders, labels) in columns.items():
        ds = pipeline.file_dataset(
            paths, decoders, np.asarray(labels, np.int64), image_size=image_size,
            batch_size=batch_size, shuffle=shuffle and split == "train", seed=seed,
            cache=pipeline.cache_for(cache, split), crop_to_aspect_ratio=crop_to_aspect_ratio,
            drop_unreadable=not validate_files)
        datasets[split] = pipeline.attach(ds, names, paths)
        per_class = np.bincount(np.asarray(labels, np.int64), minlength=len(names))
        counts[split] = {n: int(c) for n, c in zip(names, per_class)}
    return ImageData(
        train=datasets["train"], validation=datasets.get("validation"),
        test=datasets.get("test"), class_names=names, num_classes=len(names),
        image_size=image_size, counts=counts, skipped=skipped,
        num_examples={s: len(c[0]) for s, c in columns.items()}, batch_size=batch_size,
        label_type="int")
