"""What `kerastl.fit` accepts as data, and the loss, metrics and label encoding per task."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from kerastl._validation import check_one_of

CLASS_WEIGHT_MODES = ("balanced", "sqrt")


@dataclasses.dataclass
class Data:
    """A batched dataset of ``(images, labels[, sample_weights])`` and what identifies it.

    Attributes:
        dataset: The batched `tf.data.Dataset`.
        source: The object the user passed (the feature cache's key).
        num_examples: Examples per epoch.
        batch_size: Size of the batches.
        num_batches: Batches per epoch.
    """

    dataset: tf.data.Dataset
    source: object
    num_examples: int
    batch_size: int
    num_batches: int


def _error(name, value):
    return TypeError(f"`{name}` must be a tf.data.Dataset of (images, labels) batches, a tuple "
                     "(x, y) or (x, y, sample_weight) of arrays, or a kerastl.data.ImageData. "
                     f"Received: {name}={value!r:.200}")


def _from_arrays(name, value, *, batch_size, shuffle, seed):
    if len(value) not in (2, 3):
        raise _error(name, value)
    arrays = tuple(np.asarray(a) for a in value)
    n = len(arrays[0])
    if any(len(a) != n for a in arrays) or arrays[0].ndim != 4 or n == 0:
        raise ValueError(f"`{name}` arrays must have the same length > 0 and images of shape "
                         f"(n, height, width, channels). Received: shapes "
                         f"{[a.shape for a in arrays]}")
    images = arrays[0].astype("float32", copy=False)
    ds = tf.data.Dataset.from_tensor_slices((images,) + arrays[1:])
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    return Data(ds.batch(batch_size).prefetch(tf.data.AUTOTUNE), value, n, batch_size,
                -(-n // batch_size))


def _count(ds) -> tuple[int, int]:
    total = batches = 0
    for size in ds.map(lambda *b: tf.shape(b[1])[0]):
        total += int(size)
        batches += 1
    return total, batches


def as_data(name: str, value, *, batch_size: int, shuffle: bool, seed) -> Data | None:
    """Returns `value` as `Data` (None stays None).

    Args:
        name: Argument name for error messages.
        value: A `tf.data.Dataset` (batched or not), a tuple of arrays, or None.
        batch_size: Batch size for arrays and unbatched datasets.
        shuffle: Shuffle arrays every epoch.
        seed: Shuffle seed.

    Returns:
        A `Data`, or None.
    """
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return _from_arrays(name, value, batch_size=batch_size, shuffle=shuffle, seed=seed)
    if not isinstance(value, tf.data.Dataset):
        raise _error(name, value)
    spec = value.element_spec
    if not isinstance(spec, tuple) or len(spec) not in (2, 3):
        raise ValueError(f"`{name}` must yield (images, labels) or (images, labels, "
                         f"sample_weight) tuples. Received: element_spec={spec}")
    ds = value
    if spec[0].shape.rank == 3:
        ds = ds.batch(batch_size)
    elif spec[0].shape.rank != 4:
        raise ValueError(f"`{name}` images must have shape (batch, height, width, channels). "
                         f"Received: element_spec={spec}")
    cardinality = int(ds.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise ValueError(f"`{name}` must be finite (one epoch per pass). Received: a dataset "
                         "that repeats forever")
    first = next(iter(ds.take(1)), None)
    if first is None:
        raise ValueError(f"`{name}` is empty. Received: {name}={value!r:.200}")
    size = int(first[0].shape[0])
    # A known number of batches gives an upper bound (the last batch may be
    # smaller); the feature cache counts exactly. Unknown: count once.
    n, batches = _count(ds) if cardinality < 0 else (cardinality * size, cardinality)
    return Data(ds, value, n, size, batches)


def loss_and_metrics(task: str, num_outputs: int, *, label_smoothing: float):
    """Returns ``(loss, metrics, monitor)`` for a task (monitor without ``"val_"``)."""
    if task == "multiclass":
        return (keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
                [keras.metrics.CategoricalAccuracy(name="accuracy")], "accuracy")
    if task == "binary":
        return (keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing),
                [keras.metrics.BinaryAccuracy(name="accuracy")], "accuracy")
    if task == "multilabel":
        return (keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing),
                [keras.metrics.BinaryAccuracy(name="accuracy"),
                 keras.metrics.AUC(multi_label=True, num_labels=num_outputs, name="auc")],
                "loss")
    return keras.losses.MeanSquaredError(), [keras.metrics.MeanAbsoluteError(name="mae")], "loss"


def class_weight_vector(class_weight, task: str, num_outputs: int, labels=None):
    """Returns per-class weights as a float32 vector, or None.

    Args:
        class_weight: None, ``{class_index: weight}``, ``"balanced"`` or ``"sqrt"``.
        task: The model's task (class weights need ``"multiclass"`` or ``"binary"``).
        num_outputs: Number of outputs (classes).
        labels: Integer training labels, for ``"balanced"``/``"sqrt"``.
    """
    if class_weight is None:
        return None
    if task not in ("multiclass", "binary"):
        raise ValueError("`class_weight` needs integer class labels (task 'multiclass' or "
                         f"'binary'). Received: class_weight={class_weight!r} for task={task!r}")
    classes = 2 if task == "binary" else num_outputs
    if isinstance(class_weight, str):
        from kerastl.data import compute_class_weight

        check_one_of("class_weight", class_weight, CLASS_WEIGHT_MODES)
        class_weight = compute_class_weight(np.asarray(labels).astype("int64").reshape(-1),
                                            class_weight)
    if not isinstance(class_weight, dict) or not all(
            isinstance(k, (int, np.integer)) and 0 <= k < classes for k in class_weight):
        raise ValueError(f"`class_weight` must be None, 'balanced', 'sqrt' or a dict "
                         f"{{class_index: weight}} with indices in [0, {classes}). "
                         f"Received: class_weight={class_weight!r}")
    vector = np.ones(classes, "float32")
    for k, w in class_weight.items():
        vector[int(k)] = float(w)
    return vector


def label_transform(task: str, num_outputs: int, class_weights=None):
    """Returns a `tf.data` map function that encodes labels for the loss.

    Multiclass integer labels become one-hot (for label smoothing), binary and
    regression targets float32 of shape ``(batch, outputs)``; class weights
    become sample weights (multiplied with given ones).
    """
    weights = None if class_weights is None else tf.constant(class_weights)

    def encode(x, y, w=None):
        index = None
        if task == "multiclass":
            if y.shape.rank == 1 or (y.shape.rank == 2 and y.shape[-1] == 1):
                index = tf.cast(tf.reshape(y, [-1]), tf.int32)
                y = tf.one_hot(index, num_outputs)
            else:
                y = tf.cast(y, tf.float32)
        else:
            y = tf.cast(y, tf.float32)
            if y.shape.rank == 1:
                y = tf.reshape(y, [-1, 1])
            if task == "binary":
                index = tf.cast(tf.reshape(y, [-1]) > 0.5, tf.int32)
        if weights is not None:
            if index is None:
                index = tf.cast(tf.argmax(y, axis=-1), tf.int32)
            cw = tf.gather(weights, index)
            w = cw if w is None else tf.cast(w, tf.float32) * cw
        return (x, y) if w is None else (x, y, w)

    return encode


__all__ = ["Data", "as_data", "class_weight_vector", "label_transform", "loss_and_metrics"]
