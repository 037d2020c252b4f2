"""What `kerastl.fit` accepts as data, and the loss, metrics and label encoding per task."""

from __future__ import annotations

import dataclasses

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
        if name == "train":  # validation data is optional, training data is not
            raise TypeError("`train` must be a tf.data.Dataset of (images, labels) batches, "
                            "a tuple (x, y) of arrays, or a kerastl.data.ImageData. "
                            "Received: train=None")
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


def label_problem(labels: np.ndarray, *, task: str, num_outputs: int) -> str | None:
    """Says why `labels` do not fit a head of `num_outputs` outputs, or returns None.

    Args:
        labels: Labels of some examples, shape ``(n,)`` or ``(n, k)``.
        task: ``"multiclass"``, ``"binary"``, ``"multilabel"`` or ``"regression"``.
        num_outputs: The head's number of outputs.

    Returns:
        A short description of the problem, or None.

    Example:
        >>> kerastl.training.inputs.label_problem(np.array([0, 3]), task="multiclass",
        ...                                       num_outputs=3)
        'labels range from 0 to 3; class indices must be integers in [0, 3)'
    """
    labels = np.asarray(labels)
    if labels.size == 0 or task == "regression" and labels.ndim < 2:
        return None
    if labels.dtype.kind not in "biuf":
        return f"labels must be numbers, got dtype {labels.dtype}"
    values = labels.astype("float64")
    if np.isnan(values).any():
        return "labels contain NaN"
    column = labels.ndim == 1 or (labels.ndim == 2 and labels.shape[1] == 1)
    if task == "multiclass" and column:
        low, high = values.min(), values.max()
        if low < 0 or high >= num_outputs or np.any(values != np.round(values)):
            return (f"labels range from {low:g} to {high:g}; class indices must be integers "
                    f"in [0, {num_outputs})")
        return None
    width = 1 if column else labels.shape[-1]
    if labels.ndim > 2 or (task != "binary" and width != num_outputs) or (
            task == "binary" and width != 1):
        expected = 1 if task == "binary" else num_outputs
        return f"labels have {width} column(s) per example, the model has {expected} output(s)"
    if task in ("binary", "multilabel") and (values.min() < 0 or values.max() > 1):
        return (f"labels range from {values.min():g} to {values.max():g}; {task} targets must "
                "be in [0, 1]")
    return None


def _sample_labels(data: Data, batches: int) -> np.ndarray | None:
    source = data.source
    if isinstance(source, (tuple, list)):
        return np.asarray(source[1])
    parts = [np.asarray(element[1]) for element in data.dataset.take(batches)]
    return np.concatenate(parts) if parts else None


def check_inputs(data: Data | None, *, name: str, input_shape, task: str, num_outputs: int,
                 batches: int = 4) -> None:
    """Checks `data` against the model before training: image size, classes, labels.

    Cheap: the image shape comes from the dataset's element spec, the number
    of classes from its ``class_names`` (kerastl and Keras loaders set it),
    and the labels are read from arrays in full or from the first `batches`
    batches of a dataset (every batch is checked again while training, see
    `label_transform`).

    Args:
        data: The `Data` of `as_data`, or None (nothing to check).
        name: The argument's name (``"train"``, ``"validation_data"``).
        input_shape: The model's input shape ``(batch, height, width, channels)``.
        task: The model's task.
        num_outputs: The head's number of outputs.
        batches: How many batches of a dataset to read labels from.

    Raises:
        ValueError: Images of another size, another number of classes, or
            labels that do not fit the head.

    Example:
        >>> data = kerastl.training.inputs.as_data("train", (x, y), batch_size=32,
        ...                                        shuffle=False, seed=None)
        >>> kerastl.training.inputs.check_inputs(data, name="train", input_shape=(None, 32, 32, 3),
        ...                                      task="multiclass", num_outputs=3)
    """
    if data is None:
        return
    expected = tuple(input_shape)[1:]
    got = tuple(data.dataset.element_spec[0].shape)[1:]
    if len(got) != len(expected) or any(
            e is not None and g is not None and e != g for e, g in zip(expected, got)):
        raise ValueError(
            f"`{name}` images must have the model's input shape "
            f"{tuple(d for d in expected)} (height, width, channels); resize them (e.g. "
            f"kerastl.data.from_directory(..., image_size={expected[0]})) or build the model "
            f"for this size. Received: {name} images of shape {got}")
    classes = 2 if task == "binary" else num_outputs
    names = getattr(data.source, "class_names", None)
    if task in ("multiclass", "binary") and names is not None and len(names) != classes:
        raise ValueError(
            f"`{name}` has {len(names)} classes ({', '.join(map(str, names))}) but the model "
            f"has {classes}; build it with num_classes={len(names)}. "
            f"Received: {name} with {len(names)} class_names")
    check_labels(name, _sample_labels(data, batches), task=task, num_outputs=num_outputs)


def check_labels(name: str, labels, *, task: str, num_outputs: int) -> None:
    """Raises ValueError when `labels` do not fit the head (see `label_problem`).

    For the labels of a whole split at once, e.g. the cached labels a
    linear head is solved on.

    Args:
        name: The argument's name (``"train"``, ``"validation_data"``).
        labels: The labels, or None (nothing to check).
        task: The model's task.
        num_outputs: The head's number of outputs.

    Example:
        >>> kerastl.training.inputs.check_labels("train", np.array([0, 1]), task="multiclass",
        ...                                      num_outputs=2)
    """
    problem = None if labels is None else label_problem(labels, task=task,
                                                        num_outputs=num_outputs)
    if problem:
        raise ValueError(f"`{name}` labels must fit the model's {num_outputs} output(s) "
                         f"(task {task!r}): {problem}. Received: {name} with such labels")


def loss_and_metrics(task: str, num_outputs: int, *, label_smoothing: float):
    """Returns ``(loss, metrics, monitor)`` for training (one-hot labels; monitor without ``"val_"``).

    The loss and metrics come from `kerastl.layers.task_loss` / `task_metrics`,
    the one definition of task -> loss in kerastl.
    """
    from kerastl.layers import task_loss, task_metrics

    loss = task_loss(task, one_hot=True, label_smoothing=label_smoothing)
    metrics = task_metrics(task, one_hot=True, num_outputs=num_outputs)
    return loss, metrics, "accuracy" if task in ("multiclass", "binary") else "loss"


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
                index = _checked_index(index, num_outputs)
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


def _checked_index(index, num_outputs: int):
    """`index` with an in-graph check that every class index is in [0, num_outputs).

    `tf.one_hot` turns an out-of-range index into a zero row and the loss
    trains on it silently; this makes such a batch fail with a message instead.
    """
    ok = tf.reduce_all((index >= 0) & (index < num_outputs))
    check = tf.debugging.Assert(ok, [
        f"kerastl.fit: labels must be class indices in [0, {num_outputs}) for this model's "
        f"{num_outputs} outputs; a batch has labels in", tf.reduce_min(index), "..",
        tf.reduce_max(index)], summarize=8)
    with tf.control_dependencies([check]):
        return tf.identity(index)


__all__ = ["Data", "as_data", "check_inputs", "check_labels", "class_weight_vector",
           "label_problem", "label_transform", "loss_and_metrics"]
