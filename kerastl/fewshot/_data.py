"""What the few-shot functions accept as data, turned into pooled features and labels.

Support, query and training data may be:

* a ``dict`` ``{class_name: images}`` (``(n, H, W, 3)`` RGB in [0, 255]) or
  ``{class_name: embeddings}`` (``(n, D)`` pooled features);
* a tuple ``(x, y)`` of images or embeddings and integer (or one-hot) labels;
* a `tf.data.Dataset` of ``(images, labels)`` batches (its ``class_names``
  attribute, set by the kerastl and Keras loaders, names the classes);
* a `kerastl.data.ImageData`: every split it has, pooled.

Images go through the model's frozen preprocessing and backbone once, via
`kerastl.training.FeatureCache` (pass one cache to share the pass between
calls); embeddings are used as they are.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kerastl.training.cache import FeatureCache
from kerastl.training.graph import pooled_cut
from kerastl.training.inputs import as_data


@dataclasses.dataclass
class Features:
    """Pooled features of labelled examples.

    Attributes:
        x: ``(n, D)`` float32 features.
        y: ``(n,)`` int64 class indices.
        class_names: Names of the classes (index ``i`` is ``class_names[i]``), or None.
    """

    x: np.ndarray
    y: np.ndarray
    class_names: list | None


def _labels(name: str, y) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        y = y.argmax(axis=1)
    y = y.reshape(-1)
    if y.size and (not np.all(np.isfinite(y.astype("float64"))) or np.any(y < 0)
                   or np.any(y != np.round(y))):
        raise ValueError(f"`{name}` labels must be class indices >= 0 (or one-hot rows). "
                         f"Received: labels {np.unique(y)[:10].tolist()}")
    return y.astype("int64")


def _from_dict(name: str, value: dict):
    if not value:
        raise ValueError(f"`{name}` must name at least one class. Received: {name}={{}}")
    names, xs, ys = [], [], []
    for index, (class_name, items) in enumerate(value.items()):
        items = np.asarray(items, dtype="float32")
        if items.ndim in (1, 3):  # one embedding or one image
            items = items[None]
        if len(items) == 0:
            raise ValueError(f"`{name}` has no examples of class {class_name!r}: every class "
                             f"needs at least one shot. Received: {name}[{class_name!r}] with "
                             "0 examples")
        names.append(str(class_name))
        xs.append(items)
        ys.append(np.full(len(items), index, "int64"))
    shapes = {x.shape[1:] for x in xs}
    if len(shapes) > 1:
        raise ValueError(f"`{name}` classes must all hold images of one size or embeddings of "
                         f"one width. Received: shapes {sorted(shapes)}")
    return np.concatenate(xs), np.concatenate(ys), names


def _splits(value):
    from kerastl.data import ImageData

    if isinstance(value, ImageData):
        return [s for s in (value.train, value.validation, value.test) if s is not None], \
            list(value.class_names)
    return [value], None


def check_width(name: str, x: np.ndarray, width: int) -> None:
    """Raises ValueError unless the embeddings `x` have `width` columns."""
    if x.shape[-1] != width:
        raise ValueError(f"`{name}` embeddings must have width {width} (the model's pooled "
                         f"feature width). Received: embeddings of shape {x.shape}")


def _image_features(name, model, value, cache, batch_size):
    data = as_data(name, value, batch_size=batch_size, shuffle=False, seed=None)
    cached = cache.get(model, data.dataset, pooled_cut(model), source=data.source)
    return (np.asarray(cached.arrays[0][: cached.num_examples], "float32"),
            _labels(name, cached.labels))


def features(name: str, model, value, *, width: int, feature_cache=None, batch_size: int = 32,
             class_names=None) -> Features:
    """Returns the pooled features, labels and class names of `value` (see the module doc).

    Args:
        name: The argument's name, for error messages.
        model: The kerastl model whose backbone computes the features.
        value: The data.
        width: The model's pooled feature width (embeddings are checked against it).
        feature_cache: A `kerastl.training.FeatureCache`, or None (a new one).
        batch_size: Images per backbone batch.
        class_names: Names overriding those found in `value`.

    Returns:
        `Features`.
    """
    if value is None:
        raise TypeError(f"`{name}` must be a dict {{class_name: images}}, a tuple (x, y), a "
                        f"tf.data.Dataset or a kerastl.data.ImageData. Received: {name}=None")
    cache = FeatureCache() if feature_cache is None else feature_cache
    names = None
    if isinstance(value, dict):
        x, y, names = _from_dict(name, value)
        value = (x, y)
    parts, found = _splits(value)
    names = names or found
    xs, ys = [], []
    for part in parts:
        if isinstance(part, (tuple, list)) and len(part) == 2 and np.ndim(part[0]) == 2:
            x = np.asarray(part[0], "float32")
            y = _labels(name, part[1])
            if len(x) != len(y) or len(x) == 0:
                raise ValueError(f"`{name}` embeddings and labels must have the same length > "
                                 f"0. Received: {len(x)} embeddings, {len(y)} labels")
        else:
            x, y = _image_features(name, model, part, cache, batch_size)
            names = names or getattr(part, "class_names", None)
        check_width(name, x, width)
        xs.append(x)
        ys.append(y)
    if class_names is not None:
        names = [str(c) for c in class_names]
    return Features(np.concatenate(xs), np.concatenate(ys),
                    None if names is None else list(names))


def check_every_class(name: str, labels: np.ndarray, num_classes: int, class_names=None) -> None:
    """Raises ValueError when a class index below `num_classes` has no example (zero shots)."""
    counts = np.bincount(labels, minlength=num_classes)
    if len(counts) > num_classes:
        raise ValueError(f"`{name}` labels must be below {num_classes} (the number of class "
                         f"names). Received: label {int(labels.max())}")
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        c = int(empty[0])
        label = repr(class_names[c]) if class_names else str(c)
        raise ValueError(f"`{name}` has no examples of class {label} (index {c}): every class "
                         f"needs at least one shot. Received: examples per class "
                         f"{counts.tolist()}")


__all__ = ["Features", "check_every_class", "check_width", "features"]
