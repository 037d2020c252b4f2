"""A few labelled target images: Daumé's feature augmentation, and fine-tuning as baseline.

Daumé III (2007), "Frustratingly easy domain adaptation": every feature
vector ``x`` becomes ``[x, x, 0]`` for a source example and ``[x, 0, x]`` for a
target example, and one linear model is fitted on both: the first block
learns what the domains share, the others what is specific to each. On
target images the model computes ``x (W_shared + W_target) + b``, so the
adapted head is again one dense layer on the pooled features (a plain
kerastl model). The head is fitted in closed form with
`kerastl.training.linear_head` (strength by cross-validation over all
labelled examples).

`fine_tune_target` is the baseline: the source-trained head trained further
by gradient on the labelled target images alone (`kerastl.fit`).
"""

from __future__ import annotations

import sys
import types

import numpy as np

from kerastl._validation import check_int
from kerastl.accessors import get_head
from kerastl.adapt import features as feats
from kerastl.adapt.data import as_source
from kerastl.training import linear_head


def augment_features(features, domain: str) -> np.ndarray:
    """Returns ``[x, x, 0]`` (``domain="source"``) or ``[x, 0, x]`` (``"target"``).

    Example:
        >>> kerastl.adapt.daume.augment_features(np.ones((1, 2)), "target")
        array([[1., 1., 0., 0., 1., 1.]], dtype=float32)
    """
    x = np.asarray(features, "float32")
    zeros = np.zeros_like(x)
    if domain == "source":
        return np.concatenate([x, x, zeros], axis=1)
    if domain == "target":
        return np.concatenate([x, zeros, x], axis=1)
    raise ValueError(f"`domain` must be one of 'source', 'target'. Received: domain={domain!r}")


def daume(model, source, target_labelled, *, feature_cache=None, seed=None) -> dict:
    """Fits the head with Daumé's feature augmentation on source + a few labelled target images.

    Args:
        model: A kerastl classifier with a head without hidden layers.
        source: Labelled source training data.
        target_labelled: Labelled target images (a handful per class), in
            `kerastl.fit`'s forms.
        feature_cache: A `kerastl.training.FeatureCache` to share.
        seed: Seed of the cross-validation folds.

    Returns:
        ``{"l2": ..., "selection": ..., "target_examples": n}``.

    Example:
        >>> kerastl.adapt.daume(model, data.train, (few_images, few_labels))
    """
    task = feats.check_classifier(model)
    head = get_head(model)
    if head.hidden_units:
        raise ValueError("Feature augmentation fits the head in closed form and needs a head "
                         f"without hidden layers. Received: hidden_units={head.hidden_units}")
    cache = feats.check_cache(feature_cache)
    source = as_source("source", source, model=model)
    labelled = as_source("target_labelled", target_labelled, model=model)
    xs, ys = feats.cached(cache, model, source)
    xt, yt = feats.cached(cache, model, labelled)
    x = np.concatenate([augment_features(xs, "source"), augment_features(xt, "target")])
    y = np.concatenate([np.asarray(ys).reshape(-1), np.asarray(yt).reshape(-1)])
    fit = linear_head.fit_linear(task, head.num_outputs, x, y, seed=seed)
    d = xs.shape[1]
    kernel = fit.kernel[:d] + fit.kernel[2 * d:]
    head.output_layer.set_weights([kernel.astype("float32"), fit.bias])
    return {"l2": fit.l2, "selection": fit.selection, "target_examples": len(xt)}


def fine_tune_target(model, target_labelled, *, epochs: int = 30, learning_rate: float = 1e-3,
                     feature_cache=None, seed=None) -> dict:
    """Baseline: the source-trained head trained further on the labelled target images only.

    Runs `kerastl.fit` (head by gradient from its current weights, cached
    features; no validation data, so the last epoch is kept).

    Returns:
        ``{"epochs": ..., "target_examples": n}``.

    Example:
        >>> kerastl.adapt.daume.fine_tune_target(model, (few_images, few_labels))
    """
    from kerastl.training import fit  # the function (see kerastl.adapt.fit)

    epochs = check_int("epochs", epochs, minimum=1)
    report = fit(model, target_labelled, None, recipe="feature_extraction",
                 head_solver="gradient", epochs=epochs, learning_rate=learning_rate,
                 feature_cache=feats.check_cache(feature_cache), early_stopping=False,
                 seed=seed, verbose=0)
    return {"epochs": epochs, "target_examples": report.num_examples}


__all__ = ["augment_features", "daume", "fine_tune_target"]


class _CallableModule(types.ModuleType):
    """Makes the module `kerastl.adapt.daume` callable as the function `daume`: importing the
    submodule sets the package attribute of the same name to it."""

    __call__ = staticmethod(daume)


sys.modules[__name__].__class__ = _CallableModule
