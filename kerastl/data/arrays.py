"""`kerastl.data.from_arrays`: in-memory images and labels to batched datasets."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from kerastl.data import options, pipeline
from kerastl.data.files import name_problem
from kerastl.data.image_data import ImageData
from kerastl.data.split import split_indices

RESIZE_CHUNK = 256


def _as_images(x: Any) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or len(x) == 0:
        raise ValueError("`x` must be a non-empty array of images of shape (n, height, width, 3) "
                         f"or (n, height, width) / (n, height, width, 1) for grayscale. "
                         f"Received: x with shape {x.shape}")
    if x.dtype == np.bool_ or not (np.issubdtype(x.dtype, np.integer)
                                   or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"`x` must hold numbers in [0, 255]. Received: x with dtype {x.dtype}")
    low, high = float(x.min()), float(x.max())
    if low < 0 or high > 255:
        raise ValueError(f"`x` must hold RGB values in [0, 255] (kerastl models scale images "
                         f"themselves); its values range from {low} to {high}.")
    if np.issubdtype(x.dtype, np.floating) and 0 < high <= 1.0:
        warnings.warn("The values of `x` are all <= 1: kerastl expects RGB values in [0, 255]. "
                      "Multiply images scaled to [0, 1] by 255.", UserWarning, stacklevel=3)
    x = x.astype(np.uint8 if np.issubdtype(x.dtype, np.integer) else np.float32, copy=False)
    return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x


def _label_type(y: np.ndarray) -> str:
    if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
        return "int"
    if y.ndim == 2 and np.isin(y, (0, 1)).all():
        return "multi_hot"
    return "float"


def _as_labels(y: Any, n: int) -> tuple[np.ndarray, str]:
    y = np.asarray(y)
    if y.ndim not in (1, 2) or len(y) != n or not (
            np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_):
        raise ValueError(f"`y` must be a 1-D array of {n} labels (or a 2-D array of {n} rows "
                         f"for multi-label or multi-output targets), one per image of `x`. "
                         f"Received: y with shape {y.shape} and dtype {y.dtype}")
    kind = _label_type(y)
    if kind == "int" and y.min() < 0:
        raise ValueError(f"Integer labels in `y` must be >= 0. Received: y with minimum {y.min()}")
    return y.astype(np.int64 if kind == "int" else np.float32), kind


def _names(y: np.ndarray, kind: str, class_names: Sequence[str] | None) -> list[str]:
    outputs = int(y.max()) + 1 if kind == "int" else (y.shape[1] if y.ndim == 2 else 1)
    if class_names is None:
        return [str(i) for i in range(outputs)] if kind != "float" else []
    names = list(class_names)
    ok = all(isinstance(n, str) for n in names) and not isinstance(class_names, str) and (
        len(names) >= outputs if kind == "int" else len(names) == outputs)
    if not ok:
        need = f"at least {outputs}" if kind == "int" else f"exactly {outputs}"
        raise ValueError(f"`class_names` must be a list of {need} names for these labels. "
                         f"Received: class_names={class_names!r}")
    for name in names:
        problem = name_problem(name)
        if problem:
            raise ValueError(f"`class_names` become labels, one per line in labels.txt and the "
                             f".tflite metadata; {name!r} {problem}. "
                             f"Received: class_names={class_names!r:.300}")
    return names


def _resize(x: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or tuple(x.shape[1:3]) == size:
        return x
    out = np.empty((len(x), *size, 3), dtype=x.dtype)
    for start in range(0, len(x), RESIZE_CHUNK):
        chunk = tf.image.resize(x[start:start + RESIZE_CHUNK], size, method="bilinear").numpy()
        if x.dtype == np.uint8:
            chunk = np.clip(np.round(chunk), 0, 255)
        out[start:start + RESIZE_CHUNK] = chunk
    return out


def _counts(y: np.ndarray, kind: str, names: list[str]) -> dict[str, int]:
    if kind == "int":
        return {n: int(c) for n, c in zip(names, np.bincount(y, minlength=len(names)))}
    if kind == "multi_hot":
        return {n: int(c) for n, c in zip(names, y.sum(axis=0))}
    return {}


def from_arrays(x: Any, y: Any, *, image_size: int | tuple[int, int] | None = None,
                batch_size: int = 32, validation_split: float | None = None,
                test_split: float | None = None, class_names: Sequence[str] | None = None,
                seed: int | None = 1337, shuffle: bool = True) -> ImageData:
    """Wraps in-memory images and labels into batched datasets.

    Integer labels are class indices and are split stratified by class;
    2-D 0/1 labels are multi-hot (multi-label), other float labels are
    regression targets (both split at random).

    Args:
        x: Images, shape (n, height, width, 3) (or grayscale (n, height, width[, 1])),
            uint8 or float with values in [0, 255].
        y: Labels: shape (n,) ints, (n, k) multi-hot, or float targets.
        image_size: Resize to this size (int or ``(height, width)``); None keeps it.
        batch_size: Images per batch.
        validation_split: Fraction held out for validation.
        test_split: Fraction held out for testing.
        class_names: Names of the classes (default ``"0"``, ``"1"``, ...).
        seed: Seed of the split and of the training shuffle.
        shuffle: Whether to reshuffle the training split every epoch.

    Returns:
        A `kerastl.data.ImageData`.

    Example:
        >>> x = np.random.randint(0, 256, (100, 64, 64, 3), dtype="uint8")
        >>> y = np.arange(100) % 4
        >>> data = kerastl.data.from_arrays(x, y, image_size=32, validation_split=0.2)
        >>> data.num_examples
        {'train': 80, 'validation': 20}
    """
    size = options.image_size_pair(image_size, allow_none=True)
    batch_size = options.batch_size_int(batch_size)
    fractions = options.split_fractions(validation_split, test_split)
    seed = options.seed_int(seed)
    options.flag("shuffle", shuffle)
    x = _as_images(x)
    y, kind = _as_labels(y, len(x))
    names = _names(y, kind, class_names)
    x = _resize(x, size)
    wanted = [(s, f) for s, f in zip(("validation", "test"), fractions) if f > 0]
    parts = split_indices(y if kind == "int" else None, len(x), tuple(f for _, f in wanted), seed)
    datasets, counts, sizes = {}, {}, {}
    for split, idx in zip(["train"] + [s for s, _ in wanted], parts):
        if len(idx) == 0:
            raise ValueError(f"Too few examples ({len(x)}) to make a {split} split.")
        ds = pipeline.array_dataset(x[idx], y[idx], batch_size=batch_size,
                                    shuffle=shuffle and split == "train", seed=seed)
        datasets[split] = pipeline.attach(ds, names)
        counts[split], sizes[split] = _counts(y[idx], kind, names), len(idx)
    return ImageData(
        train=datasets["train"], validation=datasets.get("validation"),
        test=datasets.get("test"), class_names=names,
        num_classes=len(names) if kind != "float" else (y.shape[1] if y.ndim == 2 else 1),
        image_size=tuple(x.shape[1:3]), counts=counts, skipped=[], num_examples=sizes,
        batch_size=batch_size, label_type=kind)
