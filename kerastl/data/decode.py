"""Decoding image files to 8-bit RGB and resizing them, inside `tf.data`.

Each file gets a *decoder* when it is scanned (see `kerastl.data.scan`):

* ``TF``: `tf.io.decode_image` (JPEG, PNG incl. 16-bit, WebP), first frame only.
* ``JPEG_HALF`` / ``JPEG_QUARTER`` / ``JPEG_EIGHTH``: libjpeg DCT scaling, for
  JPEGs at least 2, 4 or 8 times larger than the target size (much faster on
  big photos, and smoother than decoding in full and resizing bilinearly).
* ``PIL``: Pillow, for what TensorFlow does not decode or decodes wrongly
  (GIF, BMP, TIFF, palette images, CMYK JPEGs).
"""

from __future__ import annotations

import io

import numpy as np
import tensorflow as tf

TF, JPEG_HALF, JPEG_QUARTER, JPEG_EIGHTH, PIL = 0, 1, 2, 3, 4
JPEG_RATIOS = {JPEG_HALF: 2, JPEG_QUARTER: 4, JPEG_EIGHTH: 8}


def pil_to_rgb(image) -> np.ndarray:
    """Returns the first frame of a Pillow image as an 8-bit RGB array.

    16-bit and 32-bit integer images keep their top 8 bits (65535 -> 255), as
    TensorFlow does for 16-bit PNGs; alpha channels are dropped.

    Args:
        image: A `PIL.Image.Image`.

    Returns:
        A uint8 array of shape (height, width, 3).

    Example:
        >>> kerastl.data.decode.pil_to_rgb(PIL.Image.new("L", (4, 2), 7)).shape
        (2, 4, 3)
    """
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)
    if image.mode.startswith("I"):
        values = np.asarray(image).astype(np.int64)
        gray = (np.clip(values, 0, 65535) >> 8).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode == "F":
        gray = np.clip(np.round(np.asarray(image)), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _pil_decode_bytes(contents) -> np.ndarray:
    from PIL import Image

    if isinstance(contents, np.ndarray):  # eager `tf.numpy_function` gives a 0-d array
        contents = contents.item()

    with Image.open(io.BytesIO(contents)) as image:
        return pil_to_rgb(image)


def _decode_branch(decoder: int, contents: tf.Tensor):
    if decoder == TF:
        return lambda: tf.io.decode_image(contents, channels=3, expand_animations=False,
                                          dtype=tf.uint8)
    if decoder in JPEG_RATIOS:
        return lambda: tf.io.decode_jpeg(contents, channels=3, ratio=JPEG_RATIOS[decoder])

    def pil():
        image = tf.numpy_function(_pil_decode_bytes, [contents], tf.uint8, stateful=False)
        return tf.ensure_shape(image, [None, None, 3])

    return pil


def decode(contents: tf.Tensor, decoder: tf.Tensor, decoders: tuple[int, ...]) -> tf.Tensor:
    """Decodes one file's bytes to a uint8 RGB tensor of shape (height, width, 3).

    Args:
        contents: Scalar string tensor, the file's bytes.
        decoder: Scalar int tensor, an index into `decoders`.
        decoders: The decoder constants (``TF``, ``PIL``, ...) used by this
            dataset; only these are built into the graph.

    Returns:
        A uint8 tensor of shape (height, width, 3).
    """
    branches = [_decode_branch(d, contents) for d in decoders]
    if len(branches) == 1:
        image = branches[0]()
    else:
        image = tf.switch_case(decoder, branches)
    return tf.ensure_shape(image, [None, None, 3])


def center_crop_to_aspect(image: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Crops the largest centered window with the aspect ratio of `size`."""
    shape = tf.shape(image)
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    target_h, target_w = float(size[0]), float(size[1])
    crop_h = tf.minimum(height, tf.math.floor(width * target_h / target_w))
    crop_w = tf.minimum(width, tf.math.floor(height * target_w / target_h))
    crop_h = tf.cast(tf.maximum(crop_h, 1.0), tf.int32)
    crop_w = tf.cast(tf.maximum(crop_w, 1.0), tf.int32)
    top = (shape[0] - crop_h) // 2
    left = (shape[1] - crop_w) // 2
    return image[top:top + crop_h, left:left + crop_w]


def resize_uint8(image: tf.Tensor, size: tuple[int, int], *,
                 crop_to_aspect_ratio: bool = False) -> tf.Tensor:
    """Resizes an image bilinearly to `size` and rounds it back to uint8.

    Images already at `size` are returned unchanged. Keeping uint8 makes the
    in-memory cache four times smaller than float32 (the rounding changes a
    value by at most 0.5).

    Args:
        image: A (height, width, channels) tensor.
        size: Target ``(height, width)``.
        crop_to_aspect_ratio: Center-crop to the target aspect ratio first
            instead of squashing the image.

    Returns:
        A uint8 tensor of shape ``(*size, channels)``.
    """
    if crop_to_aspect_ratio:
        image = center_crop_to_aspect(image, size)
    resized = tf.image.resize(image, size, method="bilinear")
    resized = tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)
    channels = image.shape[-1]
    return tf.ensure_shape(resized, [size[0], size[1], channels])
