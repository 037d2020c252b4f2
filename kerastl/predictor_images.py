"""Image files for `kerastl.load_predictor`: which files a path names, and their pixels.

`read_images` decodes with the code of `kerastl.data.from_directory`
(`kerastl.data.scan` picks the decoder, `kerastl.data.pipeline` decodes and
resizes), so prediction sees the pixels training saw; unreadable or oversized
files are returned as skipped, never fatal. Both functions are also importable
from `kerastl.predictor`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
# kerastl.data's limit (Pillow's warning threshold, about 0.25 GiB of RGB
# pixels): larger images are skipped unless `max_pixels` is raised (None: no limit).
DEFAULT_MAX_PIXELS = 89_478_485


def image_files(paths) -> list[Path]:
    """Expands paths: files as given, folders to their image files (sorted, not recursive).

    Raises:
        FileNotFoundError: A path does not exist, or a folder holds no image file.
    """
    out = []
    for item in paths:
        item = Path(item).expanduser()
        if item.is_dir():
            found = sorted(p for p in item.iterdir()
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"No image files in folder {str(item)!r}.")
            out += found
        elif item.is_file():
            out.append(item)
        else:
            raise FileNotFoundError(f"Image {str(item)!r} does not exist.")
    return out


def read_images(paths, size, *, max_pixels: int = DEFAULT_MAX_PIXELS):
    """Decodes image files to float32 RGB ``(N, *size, 3)`` with the training decoder.

    Args:
        paths: Image files.
        size: ``(height, width)``.
        max_pixels: Larger images are skipped before they are decoded (None: no limit).

    Returns:
        ``(images, read_paths, skipped)``; `skipped` holds ``(path, reason)``.

    Example:
        >>> images, read, skipped = kerastl.predictor_images.read_images(["a.png"], (160, 160))
    """
    import tensorflow as tf

    from kerastl.data import pipeline, scan

    size = (int(size[0]), int(size[1]))
    # The checks and decoder choice of kerastl.data.from_directory (its defaults).
    checks = scan.check_files([str(p) for p in paths], size, max_pixels=max_pixels)
    good = [c for c in checks if c.reason is None]
    skipped = [(c.path, c.reason) for c in checks if c.reason is not None]

    def decode(items):
        ds = pipeline.file_dataset([c.path for c in items], [c.decoder for c in items],
                                   np.zeros(len(items), np.int64), image_size=size,
                                   batch_size=max(len(items), 1), shuffle=False, seed=None,
                                   cache=False)
        return np.concatenate([images.numpy() for images, _ in ds])

    if not good:
        return np.zeros((0, *size, 3), "float32"), [], skipped
    try:
        return decode(good), [c.path for c in good], skipped
    except tf.errors.OpError:  # Pillow read it but TensorFlow did not: find the file(s)
        images, read = [], []
        for check in good:
            try:
                images.append(decode([check]))
                read.append(check.path)
            except tf.errors.OpError as error:
                message = (error.message or type(error).__name__).splitlines()[0][:200]
                skipped.append((check.path, f"cannot be decoded ({message})"))
        stacked = np.concatenate(images) if images else np.zeros((0, *size, 3), "float32")
        return stacked, read, skipped


__all__ = ["DEFAULT_MAX_PIXELS", "IMAGE_SUFFIXES", "image_files", "read_images"]
