"""The `tf.data` pipelines behind the `kerastl.data` loaders.

Files are read and decoded in parallel (``AUTOTUNE``), resized, kept as uint8
in the cache (4x smaller than float32), shuffled after the cache, batched,
turned into float32 and prefetched. The number of batches is known (Keras
shows it and learning-rate schedules can use it), except for files that were
not checked first: those that fail to decode are dropped
(`tf.data.Dataset.ignore_errors`) instead of ending the run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from kerastl.data import decode

AUTOTUNE = tf.data.AUTOTUNE
STREAMING_SHUFFLE_BUFFER = 1024


def _to_float(images, labels):
    return tf.cast(images, tf.float32), labels


def batch_and_prefetch(ds: tf.data.Dataset, *, num_examples: int, batch_size: int,
                       shuffle: bool, seed: int | None, cache: bool | str) -> tf.data.Dataset:
    """Caches, shuffles, batches and prefetches a dataset of ``(uint8 image, label)``.

    Args:
        ds: Unbatched dataset of uint8 images and labels.
        num_examples: Number of elements (the shuffle buffer when cached in memory).
        batch_size: Batch size.
        shuffle: Whether to reshuffle every epoch (seeded).
        seed: Shuffle seed.
        cache: True (memory), False, or a file path for a disk cache.

    Returns:
        A dataset of ``(float32 images, labels)`` batches.
    """
    if cache is not False:
        ds = ds.cache("" if cache is True else cache)
    if shuffle:
        buffer = num_examples if cache is True else min(num_examples, STREAMING_SHUFFLE_BUFFER)
        ds = ds.shuffle(max(buffer, 1), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    ds = ds.map(_to_float, num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def file_dataset(paths: Sequence[str], decoders: Sequence[int], labels: np.ndarray, *,
                 image_size: tuple[int, int], batch_size: int, shuffle: bool,
                 seed: int | None, cache: bool | str, crop_to_aspect_ratio: bool = False,
                 drop_unreadable: bool = False) -> tf.data.Dataset:
    """Builds the batched dataset of a list of image files.

    Args:
        paths: Image files.
        decoders: Decoder constant of each file (see `kerastl.data.decode`).
        labels: int64 label of each file.
        image_size: Target ``(height, width)``.
        batch_size: Batch size.
        shuffle: Whether to reshuffle every epoch.
        seed: Shuffle seed.
        cache: True (memory), False, or a file path for a disk cache.
        crop_to_aspect_ratio: Center-crop to the target aspect ratio before resizing.
        drop_unreadable: Drop files that fail to decode instead of raising. For
            files that were not checked first; the number of batches is then
            unknown to Keras (``tf.data.UNKNOWN_CARDINALITY``).

    Returns:
        A dataset of ``(float32 images (B, H, W, 3), int64 labels (B,))``.
    """
    used = tuple(sorted(set(decoders)))
    position = {d: i for i, d in enumerate(used)}
    branch = np.array([position[d] for d in decoders], dtype=np.int32)
    ds = tf.data.Dataset.from_tensor_slices(
        (tf.constant(list(paths), tf.string), branch, np.asarray(labels, np.int64)))
    if shuffle and cache is False:
        # Shuffling paths is cheap; without a cache this is the only shuffle.
        ds = ds.shuffle(max(len(paths), 1), seed=seed, reshuffle_each_iteration=True)

    def load(path, decoder, label):
        image = decode.decode(tf.io.read_file(path), decoder, used)
        image = decode.resize_uint8(image, image_size, crop_to_aspect_ratio=crop_to_aspect_ratio)
        return image, label

    ds = ds.map(load, num_parallel_calls=AUTOTUNE)
    if drop_unreadable:
        ds = ds.ignore_errors(log_warning=True)
    return batch_and_prefetch(ds, num_examples=len(paths), batch_size=batch_size,
                              shuffle=shuffle and cache is not False, seed=seed, cache=cache)


def array_dataset(x: np.ndarray, y: np.ndarray, *, batch_size: int, shuffle: bool,
                  seed: int | None) -> tf.data.Dataset:
    """Builds the batched dataset of in-memory images (uint8 or float32) and labels."""
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(max(len(x), 1), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    ds = ds.map(_to_float, num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def cache_for(cache: bool | str, split: str) -> bool | str:
    """The cache setting of one split (disk caches get one file prefix per split)."""
    return f"{cache}.{split}" if isinstance(cache, str) else cache


def attach(ds: tf.data.Dataset | None, class_names: list[str],
           file_paths: Sequence[str] | None = None) -> tf.data.Dataset | None:
    """Sets ``ds.class_names`` (and ``ds.file_paths``) as Keras's loaders do."""
    if ds is not None:
        ds.class_names = list(class_names)
        if file_paths is not None:
            ds.file_paths = list(file_paths)
    return ds
