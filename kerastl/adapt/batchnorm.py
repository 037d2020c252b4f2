"""Adaptation of the BatchNormalization statistics and affine parameters.

* `estimate_batch_norm`: sets every BatchNormalization layer's moving mean and
  variance of the backbone to the (batch-size weighted) average of its batch
  statistics over a set of images. kerastl keeps BatchNormalization frozen in
  inference mode, so the layers are switched to training mode for this one
  pass only, with a momentum that makes the moving averages exact running
  means, and put back.
* `adabn` (Li et al. 2016): each domain normalised by its own statistics: the
  statistics are re-estimated on the source images, the linear head refitted
  on the source features (strength chosen as `kerastl.fit` does), then the
  statistics are re-estimated on the target images.
* `tent` (Wang et al. 2021): after AdaBN, the affine parameters (gamma,
  beta) of the BatchNormalization layers in the top blocks minimise the
  entropy of the predictions on target images, trained on cached
  activations of the frozen blocks below (the moving statistics stay the
  target's, so the model runs as any kerastl model). A diversity term (the
  entropy of the mean prediction, maximised: SHOT's information
  maximisation, Liang et al. 2020) keeps it from collapsing onto one class.

Neither needs source labels at adaptation time (the head refit of AdaBN, and of
TENT's AdaBN step, uses them when `source` is given).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from kerastl._validation import check_float, check_int
from kerastl.accessors import get_backbone, get_blocks, get_head, get_preprocessing
from kerastl.adapt import features as feats
from kerastl.freezing import apply_trainable_blocks
from kerastl.training import graph, linear_head


def batch_norm_layers(layers) -> list:
    """The BatchNormalization layers among `layers` and their sublayers."""
    out = []
    for layer in layers:
        for sub in layer._flatten_layers(include_self=True, recursive=True):
            if isinstance(sub, keras.layers.BatchNormalization) and sub not in out:
                out.append(sub)
    return out


def estimate_batch_norm(model, data) -> int:
    """Sets the backbone's BatchNormalization moving statistics from the images of `data`.

    Args:
        model: A kerastl model.
        data: A `kerastl.training.inputs.Data` (or `kerastl.adapt.data.Target`).

    Returns:
        The number of BatchNormalization layers updated (0: nothing to adapt).

    Example:
        >>> target = kerastl.adapt.data.as_target("phone/", input_shape=model.input_shape)
        >>> kerastl.adapt.batchnorm.estimate_batch_norm(model, target)
        52
    """
    backbone, prep = get_backbone(model), get_preprocessing(model)
    layers = batch_norm_layers([backbone])
    if not layers:
        return 0
    saved = [(layer.trainable, layer.momentum) for layer in layers]
    seen = 0
    try:
        for layer in layers:
            layer.trainable = True
        for batch in data.dataset:
            size = int(batch[0].shape[0])
            for layer in layers:
                layer.momentum = seen / (seen + size)
            backbone(prep(tf.cast(batch[0], tf.float32)), training=True)
            seen += size
    finally:
        for layer, (trainable, momentum) in zip(layers, saved):
            layer.trainable, layer.momentum = trainable, momentum
    return len(layers)


def refit_head(model, source, source_validation, cache, *, seed=None) -> dict:
    """Fits the linear head on the source features in closed form (`kerastl.fit`'s head).

    The strength is chosen by cross-validation over the training and
    validation features; the head is fitted on the training features only,
    so the validation split still measures it.

    Returns:
        ``{"l2": ..., "selection": ...}``.
    """
    if get_head(model).hidden_units:
        raise ValueError("Refitting the head in closed form needs a head without hidden "
                         "layers. Received: hidden_units="
                         f"{get_head(model).hidden_units}; pass refit_head=False")
    task = feats.check_classifier(model)
    x, y = feats.cached(cache, model, source)
    vx, vy = (None, None) if source_validation is None else feats.cached(
        cache, model, source_validation)
    fit = linear_head.fit_linear(task, get_head(model).num_outputs, x, y,
                                 validation_features=vx, validation_labels=vy, seed=seed)
    get_head(model).output_layer.set_weights([fit.kernel, fit.bias])
    return {"l2": fit.l2, "selection": fit.selection}


def adabn(model, target, *, source=None, source_validation=None, refit_head_on_source=True,
          feature_cache=None, seed=None) -> dict:
    """AdaBN: BatchNormalization statistics of each domain (Li et al. 2016).

    Args:
        model: A kerastl model trained on the source images (`kerastl.fit`).
        target: Unlabelled target images (see `kerastl.adapt.data.as_target`).
        source: Labelled source training data: with it (and
            `refit_head_on_source`), the statistics are first set from the source
            images and the head refitted on the features they give.
        source_validation: Labelled source validation data (helps choose the
            head's strength).
        refit_head_on_source: Re-estimate the source statistics and refit the head
            before switching to the target statistics (needs `source` and a head
            without hidden layers).
        feature_cache: A `kerastl.training.FeatureCache` to share.
        seed: Seed of the cross-validation folds.

    Returns:
        ``{"batch_norm_layers": count, "head": {...} or None}``.

    Example:
        >>> kerastl.fit(model, data.train, data.validation)
        >>> kerastl.adapt.adabn(model, "phone_photos/", source=data.train)
    """
    from kerastl.adapt.data import as_source, as_target

    cache = feats.check_cache(feature_cache)
    target = as_target(target, input_shape=model.input_shape)
    source = as_source("source", source, model=model)
    source_validation = as_source("source_validation", source_validation, model=model)
    head = None
    if source is not None and refit_head_on_source:
        estimate_batch_norm(model, source)
        head = refit_head(model, source, source_validation, cache, seed=seed)
    count = estimate_batch_norm(model, target)
    if count == 0:
        raise ValueError("AdaBN needs BatchNormalization layers in the backbone; this one has "
                         "none. Received: a backbone without BatchNormalization")
    return {"batch_norm_layers": count, "head": head}


def _affine_variables(layers) -> list:
    out = []
    for layer in batch_norm_layers(layers):
        out.extend(v for v in (layer.gamma, layer.beta) if v is not None)
    return out


def _entropies(task, probs):
    """Entropy of every prediction (nats)."""
    eps = 1e-7
    if task == "binary":
        p = tf.clip_by_value(probs[:, 0], eps, 1.0 - eps)
        return -(p * tf.math.log(p) + (1.0 - p) * tf.math.log(1.0 - p))
    p = tf.clip_by_value(probs, eps, 1.0)
    return -tf.reduce_sum(p * tf.math.log(p), axis=1)


def tent_loss(task, probs, diversity_weight: float = 0.0):
    """Mean prediction entropy minus `diversity_weight` x the entropy of the mean prediction.

    Args:
        task: ``"multiclass"`` or ``"binary"``.
        probs: ``(batch, outputs)`` predicted probabilities.
        diversity_weight: 0 is TENT's loss; 1 is SHOT's information
            maximisation (confident predictions that still use every class).

    Returns:
        A scalar tensor.

    Example:
        >>> kerastl.adapt.batchnorm.tent_loss("multiclass", probs, diversity_weight=1.0)
    """
    loss = tf.reduce_mean(_entropies(task, probs))
    if diversity_weight:
        loss -= diversity_weight * _entropies(task, tf.reduce_mean(probs, axis=0,
                                                                   keepdims=True))[0]
    return loss


def tent(model, target, *, source=None, source_validation=None, trainable_blocks: int = 4,
         epochs: int = 3, learning_rate: float = 1e-3, batch_size: int = 32,
         adabn_first: bool = True, diversity_weight: float = 1.0, feature_cache=None,
         seed=None) -> dict:
    """TENT: entropy minimisation of the BatchNormalization affine parameters on target images.

    Args:
        model: A kerastl model trained on the source images.
        target: Unlabelled target images.
        source: Labelled source training data, or None. kerastl trains with
            BatchNormalization frozen, so the head was fitted on features
            normalised by the pretrained (ImageNet) statistics, not the
            source's: with `source`, the AdaBN step is `adabn` (source
            statistics, head refitted, then target statistics); without, the
            target statistics replace the pretrained ones under the same head.
        source_validation: Labelled source validation data (the refitted head's
            strength), with `source`.
        trainable_blocks: Top blocks whose BatchNormalization gamma and beta train
            (the blocks below run once, on the feature cache).
        epochs: Passes over the target images.
        learning_rate: Adam's learning rate.
        batch_size: Target images per step.
        adabn_first: Set the target statistics first, as TENT normalises with
            target statistics.
        diversity_weight: Weight of the diversity term of `tent_loss` (0: TENT's
            entropy alone, which can collapse every prediction onto one class).
        feature_cache: A `kerastl.training.FeatureCache` to share.
        seed: Shuffling seed.

    Returns:
        ``{"entropy": [mean entropy per epoch], "loss": [mean loss per epoch],
        "variables": count, "head": the AdaBN head refit or None}``.

    Example:
        >>> kerastl.adapt.tent(model, "phone_photos/", trainable_blocks=4)
    """
    from kerastl.adapt.data import as_target

    epochs = check_int("epochs", epochs, minimum=1)
    learning_rate = check_float("learning_rate", learning_rate, minimum=0.0, min_inclusive=False)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    diversity_weight = check_float("diversity_weight", diversity_weight, minimum=0.0)
    task = feats.check_classifier(model)
    cache = feats.check_cache(feature_cache)
    target = as_target(target, input_shape=model.input_shape)
    blocks = get_blocks(model)
    depth = check_int("trainable_blocks", trainable_blocks, minimum=1, maximum=len(blocks))
    head = None
    if adabn_first and source is not None:
        head = adabn(model, target, source=source, source_validation=source_validation,
                     feature_cache=cache, seed=seed)["head"]
    elif adabn_first:
        estimate_batch_norm(model, target)
    apply_trainable_blocks(get_backbone(model), blocks, depth)
    cut = graph.prefix_cut(model, blocks, depth)
    if cut is None:
        raise ValueError(f"TENT trains on cached activations below the top {depth} blocks, "
                         "which need a single tensor between them; choose another "
                         f"trainable_blocks. Received: trainable_blocks={trainable_blocks!r}")
    suffix = graph.suffix_model(model, cut)
    variables = _affine_variables([layer for b in blocks[len(blocks) - depth:]
                                   for layer in b.layers])
    if not variables:
        raise ValueError(f"The top {depth} blocks have no BatchNormalization affine parameters "
                         f"to adapt. Received: trainable_blocks={trainable_blocks!r}")
    activations, _ = feats.cached(cache, model, target, cut)
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build(variables)
    tensors = [v.value for v in variables]

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            probs = suffix(x, training=False)
            loss = tent_loss(task, probs, diversity_weight)
        optimizer.apply(tape.gradient(loss, tensors), variables)
        return loss, tf.reduce_mean(_entropies(task, probs))

    rng = np.random.default_rng(seed)
    history, losses = [], []
    for _ in range(epochs):
        order = rng.permutation(len(activations))
        steps = [step(tf.constant(activations[order[i:i + batch_size]]))
                 for i in range(0, len(order), batch_size)]
        losses.append(float(np.mean([float(loss) for loss, _ in steps])))
        history.append(float(np.mean([float(entropy) for _, entropy in steps])))
    return {"entropy": history, "loss": losses, "variables": len(variables), "head": head}


__all__ = ["adabn", "batch_norm_layers", "estimate_batch_norm", "refit_head", "tent",
           "tent_loss"]
