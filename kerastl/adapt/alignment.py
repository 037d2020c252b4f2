"""Feature alignment: CORAL in closed form, and Deep CORAL, MMD (DAN) and DANN.

* `coral` (Sun, Feng & Saenko 2016): the source features are whitened with
  their own covariance and re-coloured with the target's,
  ``x' = (x - mu_s) C_s^-1/2 C_t^1/2 + mu_t``; the linear head is then fitted
  in closed form (`kerastl.training.linear_head`, strength chosen by
  cross-validation) on the coloured features, and by default on the source
  features as they are as well (``head_data="both"``: the head keeps its
  source accuracy), and applied to the target features unchanged: the model
  stays a plain kerastl model.
* `deep_coral`, `mmd`, `dann`: the head and the top blocks train on the
  source labels plus an alignment term (`kerastl.adapt.deep`).
"""

from __future__ import annotations

import numpy as np

from kerastl._validation import check_float, check_one_of
from kerastl.accessors import get_head
from kerastl.adapt import features as feats
from kerastl.adapt.data import as_source, as_target
from kerastl.adapt.deep import DeepOptions, train_aligned
from kerastl.training import linear_head


def _sqrtm(matrix, power: float) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    values = np.maximum(values, values.max() * 1e-12)
    return (vectors * values ** power) @ vectors.T


def _regularised_covariance(x, regularization: float) -> np.ndarray:
    cov = np.cov(x, rowvar=False)
    return cov + regularization * max(float(np.mean(np.diag(cov))), 1e-12) * np.eye(x.shape[1])


def coral_transform(source_features, target_features, *, regularization: float = 1.0):
    """Returns ``f(x)``: source features whitened by the source and coloured by the target.

    Each covariance gets ``regularization`` times its mean variance added to
    its diagonal (the identity of the original CORAL, made scale-free), which
    also keeps a covariance of fewer images than dimensions invertible.

    Args:
        source_features: ``(n, d)`` source features.
        target_features: ``(m, d)`` target features.
        regularization: Ridge added to both covariances, relative to their mean variance.

    Returns:
        A function mapping ``(k, d)`` source features to target-like features.

    Example:
        >>> f = kerastl.adapt.alignment.coral_transform(source, target)
        >>> np.cov(f(source), rowvar=False)  # close to the target's covariance
    """
    from threadpoolctl import threadpool_limits

    regularization = check_float("regularization", regularization, minimum=0.0,
                                 min_inclusive=False)
    xs = np.asarray(source_features, "float64")
    xt = np.asarray(target_features, "float64")
    if len(xs) < 2 or len(xt) < 2:
        raise ValueError("CORAL needs at least 2 source and 2 target images. Received: "
                         f"{len(xs)} source and {len(xt)} target images")
    with threadpool_limits(limits=1, user_api="blas"):
        whiten = _sqrtm(_regularised_covariance(xs, regularization), -0.5)
        colour = _sqrtm(_regularised_covariance(xt, regularization), 0.5)
        matrix = whiten @ colour
    mu_s, mu_t = xs.mean(axis=0), xt.mean(axis=0)

    def transform(x):
        return ((np.asarray(x, "float64") - mu_s) @ matrix + mu_t).astype("float32")

    return transform


HEAD_DATA = ("both", "coloured")


def coral(model, source, target, *, source_validation=None, regularization: float = 1.0,
          head_data: str = "both", coloured_weight: float = 1.0, feature_cache=None,
          seed=None) -> dict:
    """CORAL in closed form: the linear head fitted on source features coloured like the target.

    Sun et al. fit the classifier on the coloured source features alone
    (``head_data="coloured"``). On clean source images the head then sees
    features it was not fitted on, and loses source accuracy (flowers ->
    camera: 5 points of source validation, see benchmarks/README.md). With
    ``head_data="both"`` (the default) every source image counts twice, as it
    is and coloured like the target, so one head serves both domains; the
    cross-validation that chooses its strength keeps both copies of an image
    in one fold and scores the uncoloured ones. `coloured_weight` weighs the
    coloured copies in that fit: towards 0 the head becomes the source-only
    closed-form head, so it trades target accuracy for source accuracy
    (``method="auto"`` steps it down when full CORAL costs source accuracy).

    Args:
        model: A kerastl classifier with a head without hidden layers (the
            backbone's weights are not changed).
        source: Labelled source training data.
        target: Unlabelled target images.
        source_validation: Labelled source validation data (it joins the
            cross-validation that chooses the head's strength).
        regularization: See `coral_transform`.
        head_data: What the head is fitted on: ``"both"`` (the source features
            and their coloured copies) or ``"coloured"`` (the coloured ones only,
            as in Sun et al. 2016).
        coloured_weight: Weight of each coloured copy against its source image in the
            head's loss (``head_data="both"`` only), > 0.
        feature_cache: A `kerastl.training.FeatureCache` to share.
        seed: Seed of the cross-validation folds.

    Returns:
        ``{"l2": ..., "selection": ..., "head_data": ..., "coloured_weight": ...}``.

    Example:
        >>> kerastl.adapt.coral(model, data.train, "phone_photos/", head_data="both")
        >>> kerastl.adapt.coral(model, data.train, "phone_photos/", coloured_weight=0.5)
    """
    check_one_of("head_data", head_data, HEAD_DATA)
    coloured_weight = check_float("coloured_weight", coloured_weight, minimum=0.0,
                                  min_inclusive=False)
    if head_data == "coloured" and coloured_weight != 1.0:
        raise ValueError("`coloured_weight` weighs the coloured copies against the source "
                         "features, which head_data='coloured' leaves out. Received: "
                         f"coloured_weight={coloured_weight!r} with head_data='coloured'")
    task = feats.check_classifier(model)
    head = get_head(model)
    if head.hidden_units:
        raise ValueError("CORAL fits the head in closed form and needs a head without hidden "
                         f"layers. Received: hidden_units={head.hidden_units}; use "
                         "method='deep_coral'")
    cache = feats.check_cache(feature_cache)
    target = as_target(target, input_shape=model.input_shape)
    source = as_source("source", source, model=model)
    validation = as_source("source_validation", source_validation, model=model)
    xs, ys = feats.cached(cache, model, source)
    xt, _ = feats.cached(cache, model, target)
    transform = coral_transform(xs, xt, regularization=regularization)
    vx, vy = (None, None) if validation is None else feats.cached(cache, model, validation)
    if head_data == "both":  # pass 0: the features as they are, pass 1: coloured
        x, y, passes = np.concatenate([xs, transform(xs)]), np.concatenate([ys, ys]), 2
        weight = np.concatenate([np.ones(len(xs)), np.full(len(xs), coloured_weight)])
    else:
        x, y, passes, weight = transform(xs), ys, 1, None
        vx = None if vx is None else transform(vx)
    fit = linear_head.fit_linear(task, head.num_outputs, x, y, validation_features=vx,
                                 validation_labels=vy, sample_weight=weight, passes=passes,
                                 seed=seed)
    head.output_layer.set_weights([fit.kernel, fit.bias])
    return {"l2": fit.l2, "selection": fit.selection, "head_data": head_data,
            "coloured_weight": coloured_weight}


def _deep(alignment, model, source, target, *, trainable_blocks, epochs, learning_rate,
          weight, batch_size, feature_cache, seed, discriminator_learning_rate=None,
          adversary="reversal") -> dict:
    options = DeepOptions(alignment, trainable_blocks=trainable_blocks, epochs=epochs,
                          learning_rate=learning_rate, weight=weight, batch_size=batch_size,
                          discriminator_learning_rate=discriminator_learning_rate,
                          adversary=adversary, seed=seed)
    return train_aligned(model, as_source("source", source, model=model),
                         as_target(target, input_shape=model.input_shape), options,
                         feature_cache=feature_cache)


def deep_coral(model, source, target, *, trainable_blocks: int = 2, epochs: int = 10,
               learning_rate: float = 1e-4, weight: float = 1.0, batch_size: int = 32,
               feature_cache=None, seed=None) -> dict:
    """Deep CORAL (Sun & Saenko 2016): source loss + `kerastl.adapt.coral_loss` on the features.

    Args:
        model: A kerastl classifier trained on the source data.
        source: Labelled source training data.
        target: Unlabelled target images.
        trainable_blocks: Top backbone blocks trained with the head (0: the
            head alone, aligning its predictions).
        epochs: Passes over the source data.
        learning_rate: Adam's learning rate.
        weight: Alignment weight, relative to the classification loss on the first batch.
        batch_size: Source and target examples per step.
        feature_cache: A `kerastl.training.FeatureCache` to share.
        seed: Seed of the shuffling and of the head's dropout (it sets the global Keras
            seed, as `fit` does; `dann` also draws its domain classifier from it).

    Returns:
        ``{"history": {...}, "aligned_on": ..., "scale": ..., "trainable_blocks": ...}``.

    Example:
        >>> kerastl.adapt.deep_coral(model, data.train, "phone_photos/", trainable_blocks=2)
    """
    return _deep("coral", model, source, target, trainable_blocks=trainable_blocks,
                 epochs=epochs, learning_rate=learning_rate, weight=weight,
                 batch_size=batch_size, feature_cache=feature_cache, seed=seed)


def mmd(model, source, target, *, trainable_blocks: int = 2, epochs: int = 10,
        learning_rate: float = 1e-4, weight: float = 1.0, batch_size: int = 32,
        feature_cache=None, seed=None) -> dict:
    """DAN (Long et al. 2015): source loss + multi-kernel `kerastl.adapt.mmd_loss` on the features.

    Arguments as `deep_coral`.

    Example:
        >>> kerastl.adapt.mmd(model, data.train, "phone_photos/")
    """
    return _deep("mmd", model, source, target, trainable_blocks=trainable_blocks,
                 epochs=epochs, learning_rate=learning_rate, weight=weight,
                 batch_size=batch_size, feature_cache=feature_cache, seed=seed)


def dann(model, source, target, *, trainable_blocks: int = 2, epochs: int = 10,
         learning_rate: float = 1e-4, weight: float = 1.0, batch_size: int = 32,
         discriminator_learning_rate: float | None = None, adversary: str = "reversal",
         feature_cache=None, seed=None) -> dict:
    """DANN (Ganin et al. 2016): a domain classifier behind a `kerastl.adapt.GradientReversal`.

    The reversal's factor follows ``2 / (1 + exp(-10 p)) - 1`` over the run;
    `weight` multiplies the domain loss. The domain classifier (two hidden
    layers of 256) has its own Adam at `discriminator_learning_rate` (default:
    `learning_rate`; reference implementations that fine-tune a pretrained
    backbone often train it 10x faster than the backbone, which on the
    synthetic test data lets it win outright and the alignment fail) and is
    discarded afterwards. ``adversary="confusion"`` replaces the reversal by
    domain confusion (Tzeng et al. 2015): the classifier learns the domains,
    the features learn to make it answer 0.5, a bounded loss (reversal
    maximises the classifier's loss without bound). Other arguments as
    `deep_coral`.

    Example:
        >>> kerastl.adapt.dann(model, data.train, "phone_photos/")
    """
    return _deep("dann", model, source, target, trainable_blocks=trainable_blocks,
                 epochs=epochs, learning_rate=learning_rate, weight=weight,
                 batch_size=batch_size, feature_cache=feature_cache, seed=seed,
                 discriminator_learning_rate=discriminator_learning_rate, adversary=adversary)


__all__ = ["HEAD_DATA", "coral", "coral_transform", "dann", "deep_coral", "mmd"]
