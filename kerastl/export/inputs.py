"""Turns the data given to `kerastl.export` into numpy arrays.

`representative_data` and `eval_data` may be a `tf.data.Dataset` of image
batches or of ``(images, labels)`` batches, a numpy array of images, or (for
`eval_data`) an ``(images, labels)`` tuple of arrays. Images are RGB in
[0, 255] at the model's input size.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def _check_images(name: str, images, input_shape) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(input_shape):
        raise ValueError(
            f"`{name}` must hold images of the model's input shape {tuple(input_shape)} "
            f"(a batch of shape (N, {', '.join(map(str, input_shape))})). "
            f"Received: {name} with images of shape {images.shape}")
    return images.astype("float32", copy=False)


def _dataset_batches(name: str, dataset: tf.data.Dataset, limit: int | None):
    """Yields numpy (images, labels-or-None) batches until `limit` images."""
    seen = 0
    for element in dataset.as_numpy_iterator():
        if isinstance(element, tuple):
            if len(element) not in (2, 3):
                raise ValueError(f"`{name}` must yield images or (images, labels) batches. "
                                 f"Received: elements with {len(element)} parts")
            images, labels = element[0], element[1]
        else:
            images, labels = element, None
        if isinstance(images, dict):
            raise ValueError(f"`{name}` must yield image tensors, not dicts. "
                             f"Received: keys {sorted(images)}")
        yield images, labels
        seen += len(images) if np.ndim(images) == 4 else 1
        if limit is not None and seen >= limit:
            return


def spread(num_examples: int, limit: int) -> np.ndarray:
    """Indices of `limit` of `num_examples` items spread evenly (all of them when fewer).

    Every ``num_examples / limit``-th item, from the first: data stored by
    class (as folders are read) gives images of every class, not the first
    class alone.

    Example:
        >>> kerastl.export.inputs.spread(10, 4)
        array([0, 2, 5, 7])
    """
    if num_examples <= limit:
        return np.arange(num_examples)
    return (np.arange(limit) * num_examples) // limit


def _spread_batches(dataset: tf.data.Dataset, limit: int) -> tuple[tf.data.Dataset, int | None]:
    """``(dataset, read limit)``: every k-th batch of a dataset of known length, read whole.

    The stride leaves between `limit` and twice as many images, which
    `spread` then thins, so the images span the whole dataset. A dataset of
    unknown or infinite length is read from its start up to `limit`.
    """
    batches = int(dataset.cardinality())
    if batches <= 0:  # unknown (-2) or infinite (-1)
        return dataset, limit
    first = next(iter(dataset.take(1).as_numpy_iterator()), None)
    if first is None:
        return dataset, None
    images = first[0] if isinstance(first, tuple) else first
    per_batch = len(images) if np.ndim(images) == 4 else 1
    stride = batches // -(-limit // max(1, per_batch))
    return (dataset.shard(stride, 0) if stride > 1 else dataset), None


def representative_images(data, input_shape, limit: int) -> np.ndarray:
    """Returns up to `limit` calibration images as float32 (N, H, W, C).

    The images are spread over the whole of `data`, not its first `limit`:
    every k-th image of an array, every k-th batch of a dataset whose length
    is known (`spread`). Data sorted by class (arrays of a folder, a dataset
    read with ``shuffle=False``) so calibrates int8 on every class, not on the
    first. A dataset of unknown or infinite length is read from its start.

    Args:
        data: A `tf.data.Dataset` of image batches or (images, labels) batches,
            or an array of images.
        input_shape: The model's input shape (H, W, C).
        limit: Maximum number of images.

    Returns:
        A float32 array of at least one image.

    Example:
        >>> kerastl.export.inputs.representative_images(x_train, (32, 32, 3), 100).shape
        (100, 32, 32, 3)
    """
    if isinstance(data, tf.data.Dataset):
        data, read = _spread_batches(data, limit)
        parts = [_check_images("representative_data", im, input_shape)
                 for im, _ in _dataset_batches("representative_data", data, read)]
        images = np.concatenate(parts) if parts else np.zeros((0, *input_shape), "float32")
    elif isinstance(data, (tuple, list)) and len(data) == 2 and np.ndim(data[0]) == 4:
        images = _check_images("representative_data", data[0], input_shape)
    else:
        images = _check_images("representative_data", data, input_shape)
    if len(images) == 0:
        raise ValueError("`representative_data` yielded no images.")
    return images[spread(len(images), limit)]


def eval_arrays(data, input_shape) -> tuple[np.ndarray, np.ndarray]:
    """Returns `eval_data` as (images, labels) numpy arrays.

    Args:
        data: A `tf.data.Dataset` of (images, labels) batches, or a tuple
            ``(images, labels)`` of arrays.
        input_shape: The model's input shape (H, W, C).

    Returns:
        float32 images (N, H, W, C) and labels (N, ...).

    Example:
        >>> x, y = kerastl.export.inputs.eval_arrays((x_val, y_val), (32, 32, 3))
    """
    if isinstance(data, tf.data.Dataset):
        images, labels = [], []
        for im, lab in _dataset_batches("eval_data", data, None):
            if lab is None:
                raise ValueError("`eval_data` must yield (images, labels) batches; "
                                 "it yielded images only.")
            images.append(_check_images("eval_data", im, input_shape))
            labels.append(np.asarray(lab).reshape(len(images[-1]), -1))
        if not images:
            raise ValueError("`eval_data` yielded no images.")
        images, labels = np.concatenate(images), np.concatenate(labels)
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        images = _check_images("eval_data", data[0], input_shape)
        labels = np.asarray(data[1]).reshape(len(images), -1)
    else:
        raise ValueError("`eval_data` must be a tf.data.Dataset of (images, labels) batches or "
                         f"a tuple (images, labels). Received: eval_data of type "
                         f"{type(data).__name__}")
    if labels.shape[1] == 1:
        labels = labels[:, 0]
    return images, labels


def check_eval_labels(labels: np.ndarray, *, task: str, num_outputs: int) -> None:
    """Raises ValueError when `eval_data` labels do not fit the model's outputs.

    Multiclass labels must be class indices in ``[0, num_outputs)`` (or
    one-hot rows of width `num_outputs`); binary and multilabel targets must
    lie in [0, 1] (multilabel rows of width `num_outputs`). Regression targets
    are not checked.

    Args:
        labels: The labels from `eval_arrays`.
        task: The model's task.
        num_outputs: The head's number of outputs.

    Example:
        >>> kerastl.export.inputs.check_eval_labels(np.array([0, 2]), task="multiclass",
        ...                                         num_outputs=3)
    """
    from kerastl.training.inputs import label_problem

    problem = label_problem(np.asarray(labels), task=task, num_outputs=num_outputs)
    if problem:
        raise ValueError(f"`eval_data` labels must fit the model's {num_outputs} output(s) "
                         f"(task {task!r}): {problem}. Received: eval_data with such labels")
