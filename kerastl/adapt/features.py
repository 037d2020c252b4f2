"""Cached features and predictions that every adaptation method shares.

Everything here goes through a `kerastl.training.FeatureCache`: the pooled
features (or the activations of a frozen prefix) of a dataset are computed
once per set of frozen weights and reused by every method, diagnosis and
evaluation. The cache keys its entries on the weights of the frozen layers,
BatchNormalization moving statistics included, so after AdaBN changes them
the features are recomputed, never read stale.
"""

from __future__ import annotations

import numpy as np

from kerastl.accessors import get_head, model_info
from kerastl.training import graph
from kerastl.training.cache import FeatureCache


def check_cache(feature_cache) -> FeatureCache:
    """Returns `feature_cache`, or a new `FeatureCache` for None."""
    if feature_cache is None:
        return FeatureCache()
    if not isinstance(feature_cache, FeatureCache):
        raise ValueError("`feature_cache` must be a kerastl.training.FeatureCache or None. "
                         f"Received: feature_cache={feature_cache!r:.100}")
    return feature_cache


def cached(cache: FeatureCache, model, data, cut=None):
    """Returns the clean-pass ``(activations, labels)`` of `data` at `cut` (default: pooled)."""
    cut = graph.pooled_cut(model) if cut is None else cut
    entry = cache.get(model, data.dataset, cut, source=data.source)
    n = entry.num_examples
    return np.asarray(entry.arrays[0][:n]), np.asarray(entry.arrays[1][:n])


def predict_features(model, features, *, batch_size: int = 256) -> np.ndarray:
    """Returns the head's predictions (probabilities) on pooled `features`."""
    head = graph.head_model(model)
    out = [np.asarray(head(features[i:i + batch_size], training=False))
           for i in range(0, len(features), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, get_head(model).num_outputs))


def predicted_classes(task: str, probabilities: np.ndarray) -> np.ndarray:
    """Class index of every prediction (``"multiclass"`` or ``"binary"`` heads)."""
    if task == "binary":
        return (probabilities[:, 0] > 0.5).astype("int64")
    return probabilities.argmax(axis=1)


def confidence(task: str, probabilities: np.ndarray) -> float:
    """Mean probability of the predicted class."""
    if len(probabilities) == 0:
        return float("nan")
    if task == "binary":
        p = probabilities[:, 0]
        return float(np.maximum(p, 1.0 - p).mean())
    return float(probabilities.max(axis=1).mean())


def check_classifier(model) -> str:
    """Returns the model's task, which must be ``"multiclass"`` or ``"binary"``."""
    task = model_info(model).task
    if task not in ("multiclass", "binary"):
        raise ValueError("kerastl.adapt needs a classifier (task 'multiclass' or 'binary'). "
                         f"Received: a model with task={task!r}")
    return task


def accuracy(model, data, cache: FeatureCache) -> float:
    """Accuracy of `model` on labelled `data`, from its cached pooled features."""
    task = check_classifier(model)
    features, labels = cached(cache, model, data)
    predicted = predicted_classes(task, predict_features(model, features))
    return float((predicted == np.asarray(labels).reshape(-1).astype("int64")).mean())


def evaluate(model, data, *, feature_cache=None, batch_size: int = 32) -> float:
    """Accuracy of a kerastl classifier on labelled data, through a feature cache.

    Args:
        model: A kerastl model (task ``"multiclass"`` or ``"binary"``).
        data: A `tf.data.Dataset` of ``(images, labels)`` batches, arrays ``(x, y)``
            or a `kerastl.data.ImageData` (its ``train`` split).
        feature_cache: A `kerastl.training.FeatureCache` (reused between calls:
            the backbone runs once per dataset and set of backbone weights).
        batch_size: Batch size for arrays.

    Returns:
        The accuracy, a float in [0, 1].

    Example:
        >>> cache = kerastl.training.FeatureCache()
        >>> kerastl.adapt.evaluate(model, data.validation, feature_cache=cache)
        0.925
    """
    from kerastl.adapt.data import as_source

    source = as_source("data", data, model=model, batch_size=batch_size)
    return accuracy(model, source, check_cache(feature_cache))


__all__ = ["accuracy", "cached", "check_cache", "check_classifier", "confidence", "evaluate",
           "predict_features", "predicted_classes"]
