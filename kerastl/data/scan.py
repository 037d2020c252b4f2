"""Checking image files once, in parallel, before they go into `tf.data`.

Every file is opened with Pillow and decoded (JPEGs at 1/8 scale, which still
reads the whole compressed stream, so truncation is caught cheaply). Files
that cannot be read are reported with a reason instead of failing the run
later, in the middle of an epoch; readable files get the decoder that handles
them best (see `kerastl.data.decode`).

Images of more than `MAX_IMAGE_PIXELS` pixels (``from_directory``'s
``max_image_pixels``) are skipped before they are decoded, with a reason that
names their size: a small file can expand to gigabytes (a "decompression
bomb"). Pillow's own limit and warning are switched off while files are
checked, so kerastl's report, which names the file, is the only one.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import tensorflow as tf

from kerastl.data import decode

TF_FORMATS = ("JPEG", "MPO", "PNG", "WEBP")
JPEG_FORMATS = ("JPEG", "MPO")
PIL_EXTENSIONS = (".bmp", ".gif", ".tif", ".tiff")
# Pillow's own default limit (about 89.5 megapixels, 0.25 GiB as 8-bit RGB):
# a 10000 x 10000 image is over it, a 200-megapixel phone photo too.
MAX_IMAGE_PIXELS = 89_478_485


@dataclass(frozen=True)
class FileCheck:
    """Result of checking one file: its decoder, or why it cannot be used."""

    path: str
    decoder: int | None
    reason: str | None = None


def _read_bytes(path: str) -> bytes:
    if "://" in path:
        with tf.io.gfile.GFile(path, "rb") as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


def choose_decoder(fmt: str, mode: str, width: int, height: int,
                   image_size: tuple[int, int] | None, fast_decode: bool) -> int:
    """Picks the decoder for an image of format `fmt` (Pillow's name).

    Args:
        fmt: Pillow format name, e.g. ``"JPEG"``.
        mode: Pillow mode, e.g. ``"RGB"``.
        width: Image width.
        height: Image height.
        image_size: Target ``(height, width)``.
        fast_decode: Whether JPEGs may be decoded at a reduced scale.

    Returns:
        A decoder constant of `kerastl.data.decode`.
    """
    if fmt in JPEG_FORMATS and mode not in ("L", "RGB"):
        return decode.PIL
    if fmt not in TF_FORMATS:
        return decode.PIL
    if fmt in JPEG_FORMATS and fast_decode and image_size is not None:
        for decoder in (decode.JPEG_EIGHTH, decode.JPEG_QUARTER, decode.JPEG_HALF):
            ratio = decode.JPEG_RATIOS[decoder]
            if height // ratio >= image_size[0] and width // ratio >= image_size[1]:
                return decoder
    return decode.TF


def check_max_pixels(value) -> int | None:
    """Returns `max_image_pixels` checked: a positive int, or None for no limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("`max_image_pixels` must be a positive integer (pixels per image) or "
                         f"None for no limit. Received: max_image_pixels={value!r}")
    return value


def check_file(path: str, image_size: tuple[int, int] | None, fast_decode: bool, *,
               max_pixels: int | None = MAX_IMAGE_PIXELS) -> FileCheck:
    """Opens and decodes `path` with Pillow; returns its decoder or a reason to skip it.

    Args:
        path: The file (any filesystem `tf.io.gfile` knows).
        image_size: Target ``(height, width)``, used to pick a JPEG scale.
        fast_decode: Whether large JPEGs may be decoded at a reduced scale.
        max_pixels: Images with more pixels are skipped undecoded (None: no limit).

    Returns:
        A `FileCheck`.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        contents = _read_bytes(path)
    except (OSError, tf.errors.OpError) as e:
        return FileCheck(path, None, f"cannot be read ({e})")
    if not contents:
        return FileCheck(path, None, "empty file (0 bytes)")
    fmt = None
    try:
        with Image.open(io.BytesIO(contents)) as image:
            fmt, mode, (width, height) = image.format, image.mode, image.size
            if max_pixels is not None and width * height > max_pixels:
                return FileCheck(path, None, f"too large: {width}x{height} = "
                                             f"{width * height} pixels, more than "
                                             f"max_image_pixels={max_pixels}")
            if fmt in JPEG_FORMATS:
                image.draft(None, (max(1, width // 8), max(1, height // 8)))
            image.load()
    except UnidentifiedImageError:
        return FileCheck(path, None, "not an image (unknown format)")
    except Image.DecompressionBombError as e:
        return FileCheck(path, None, f"too large ({e})")
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        return FileCheck(path, None, f"truncated or corrupt {fmt or 'image'} ({e})")
    return FileCheck(path, choose_decoder(fmt, mode, width, height, image_size, fast_decode))


def guess_decoder(path: str) -> int:
    """Decoder for a file that was not checked, from its extension."""
    ext = os.path.splitext(path)[1].lower()
    return decode.PIL if ext in PIL_EXTENSIONS else decode.TF


@contextlib.contextmanager
def _kerastl_pixel_limit():
    """Turns Pillow's process-wide decompression-bomb check off while kerastl checks sizes."""
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def check_files(paths: list[str], image_size: tuple[int, int] | None, *,
                fast_decode: bool = True, max_workers: int | None = None,
                max_pixels: int | None = MAX_IMAGE_PIXELS) -> list[FileCheck]:
    """Checks `paths` in a thread pool (Pillow decodes without holding the GIL).

    Args:
        paths: Files to check.
        image_size: Target ``(height, width)``.
        fast_decode: Whether large JPEGs may be decoded at a reduced scale.
        max_workers: Threads; defaults to 2 per CPU core (at most 16).
        max_pixels: Images with more pixels are skipped (None: no limit).

    Returns:
        One `FileCheck` per path, in order.

    Example:
        >>> checks = kerastl.data.scan.check_files(["a.jpg"], (160, 160))
        >>> checks[0].reason is None
        True
    """
    if not paths:
        return []
    max_pixels = check_max_pixels(max_pixels)
    workers = max_workers or min(16, 2 * (os.cpu_count() or 1))
    with _kerastl_pixel_limit(), ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda p: check_file(p, image_size, fast_decode,
                                                  max_pixels=max_pixels), paths))
