"""The training loop of the deep alignment methods (Deep CORAL, MMD/DAN, DANN).

The head and the top `trainable_blocks` blocks train on the source labels
plus an alignment term between source and target features, on cached
activations of the frozen blocks below (`kerastl.training.FeatureCache`), so
an epoch costs what a cached fine-tuning epoch of `kerastl.fit` costs.
BatchNormalization layers stay frozen (inference mode), as in `kerastl.fit`.

The aligned features are the pooled backbone output the head sees (with
``trainable_blocks=0``: the head's predictions, as Deep CORAL aligns the
last layer). CORAL and MMD terms are scaled so that, on the first batch,
they equal the classification loss, times `weight`: their raw size depends
on the feature width and scale, and no target label exists to tune it.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from kerastl._validation import check_float, check_int, check_one_of
from kerastl.accessors import get_backbone, get_blocks, get_head
from kerastl.adapt import features as feats
from kerastl.adapt.layers import GradientReversal, dann_schedule
from kerastl.adapt.losses import coral_loss, mmd_loss
from kerastl.freezing import apply_trainable_blocks
from kerastl.layers import task_loss
from kerastl.training import graph
from kerastl.training.fitting import reseed_layers

ALIGNMENTS = ("coral", "mmd", "dann")
ADVERSARIES = ("reversal", "confusion")


@dataclasses.dataclass
class DeepOptions:
    """Settings of one deep alignment run (checked by `check`)."""

    alignment: str
    trainable_blocks: int = 2
    epochs: int = 10
    learning_rate: float = 1e-4
    weight: float = 1.0
    batch_size: int = 32
    label_smoothing: float = 0.1
    discriminator_learning_rate: float | None = None
    adversary: str = "reversal"
    seed: int | None = None

    @property
    def discriminator_rate(self) -> float:
        """DANN's domain classifier rate (default: `learning_rate`)."""
        if self.discriminator_learning_rate is None:
            return self.learning_rate
        return self.discriminator_learning_rate

    def check(self, num_blocks: int) -> DeepOptions:
        if self.alignment not in ALIGNMENTS:
            raise ValueError(f"`alignment` must be one of {ALIGNMENTS}. "
                             f"Received: alignment={self.alignment!r}")
        check_int("trainable_blocks", self.trainable_blocks, minimum=0,
                  maximum=num_blocks - 1)
        check_int("epochs", self.epochs, minimum=1)
        check_float("learning_rate", self.learning_rate, minimum=0.0, min_inclusive=False)
        check_float("weight", self.weight, minimum=0.0)
        check_int("batch_size", self.batch_size, minimum=2)
        check_float("label_smoothing", self.label_smoothing, minimum=0.0, maximum=1.0,
                    max_inclusive=False)
        check_one_of("adversary", self.adversary, ADVERSARIES)
        if self.discriminator_learning_rate is not None:
            check_float("discriminator_learning_rate", self.discriminator_learning_rate,
                        minimum=0.0, min_inclusive=False)
        return self


def _feature_model(model, cut):
    if cut.pooled:
        return None
    return graph.segment(model, cut, graph.pooled_cut(model))


def _domain_classifier(width: int, scale_layer) -> keras.Model:
    inputs = keras.Input((width,))
    x = keras.layers.Dense(256, activation="relu")(scale_layer(inputs))
    x = keras.layers.Dense(256, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(1)(x), name="domain_classifier")


class _Loop:
    """Source classification + alignment on cached activations."""

    def __init__(self, model, options: DeepOptions, cut):
        self.model, self.opts, self.cut = model, options, cut
        self.task = feats.check_classifier(model)
        self.head = get_head(model)
        self.features = _feature_model(model, cut)
        self.ce = task_loss(self.task, one_hot=True, label_smoothing=options.label_smoothing)
        self.grl, self.domain = None, None
        if options.alignment == "dann":
            self.grl = GradientReversal(0.0)
            aligned = (self.head.num_outputs if cut.pooled
                       else int(self.head.input.shape[-1]))
            first = self.grl if options.adversary == "reversal" else keras.layers.Identity()
            self.domain = _domain_classifier(aligned, first)
        self.variables = self._variables()
        self.optimizer = keras.optimizers.Adam(options.learning_rate)
        self.optimizer.build(self.variables)
        self.domain_variables, self.domain_optimizer = [], None
        if self.domain is not None:
            self.domain_variables = list(self.domain.trainable_weights)
            self.domain_optimizer = keras.optimizers.Adam(options.discriminator_rate)
            self.domain_optimizer.build(self.domain_variables)
        self.scale = tf.Variable(1.0, trainable=False)
        self.step = tf.function(self._step)

    def _variables(self) -> list:
        out = list(self.head.trainable_weights)
        if self.features is not None:
            out = list(self.features.trainable_weights) + out
        seen, unique = set(), []
        for v in out:
            if id(v) not in seen:
                seen.add(id(v))
                unique.append(v)
        return unique

    def _outputs(self, x):
        pooled = x if self.features is None else self.features(x, training=True)
        probs = self.head.classify(pooled, training=True)
        return (probs if self.features is None else pooled), probs

    def _align(self, a_s, a_t):
        """(the domain classifier's own loss, the loss the features follow); one for CORAL/MMD."""
        kind = self.opts.alignment
        if kind in ("coral", "mmd"):
            align = coral_loss(a_s, a_t) if kind == "coral" else mmd_loss(a_s, a_t)
            return align, align
        both = tf.concat([a_s, a_t], axis=0)
        labels = tf.concat([tf.zeros((tf.shape(a_s)[0], 1)), tf.ones((tf.shape(a_t)[0], 1))], 0)
        if self.opts.adversary == "reversal":
            logits = self.domain(both, training=True)
            align = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels, logits))
            return align, align
        # Domain confusion (Tzeng et al. 2015): the classifier learns the domains on the
        # features as they are; the features learn to make it answer 0.5 (a loss bounded
        # below by log 2, where reversal's maximisation has no bound).
        own = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
            labels, self.domain(tf.stop_gradient(both), training=True)))
        confused = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
            tf.fill(tf.shape(labels), 0.5), self.domain(both, training=True)))
        return own, confused

    def losses(self, xs, ys, xt):
        """Classification loss, the classifier's alignment loss and the features' one."""
        a_s, probs = self._outputs(xs)
        a_t, _ = self._outputs(xt)
        return (self.ce(ys, probs), *self._align(a_s, a_t))

    def _step(self, xs, ys, xt):
        with tf.GradientTape(persistent=True) as tape:
            ce, align, moving = self.losses(xs, ys, xt)
            loss = ce + self.scale * moving
        grads = tape.gradient(loss, [v.value for v in self.variables])
        self.optimizer.apply(grads, self.variables)
        if self.domain_optimizer is not None:
            # Reversal: one loss, its gradient reversed below the classifier. Confusion:
            # the classifier follows its own loss only.
            target = loss if self.opts.adversary == "reversal" else align
            self.domain_optimizer.apply(
                tape.gradient(target, [v.value for v in self.domain_variables]),
                self.domain_variables)
        del tape
        return ce, align


def _one_hot(task, labels, num_outputs):
    y = np.asarray(labels).reshape(-1)
    if task == "binary":
        return y.astype("float32").reshape(-1, 1)
    return np.eye(num_outputs, dtype="float32")[y.astype("int64")]


def train_aligned(model, source, target, options: DeepOptions, *, feature_cache=None) -> dict:
    """Trains `model`'s head and top blocks with an alignment term (see the module).

    Args:
        model: A kerastl classifier trained on the source data.
        source: Labelled source `Data`.
        target: Unlabelled `kerastl.adapt.data.Target`.
        options: A `DeepOptions`.
        feature_cache: A `kerastl.training.FeatureCache` to share.

    Returns:
        ``{"history": {"loss": [...], "alignment": [...]}, "aligned_on": ..., "scale": ...}``.
    """
    blocks = get_blocks(model)
    opts = options.check(len(blocks))
    cache = feats.check_cache(feature_cache)
    depth = opts.trainable_blocks
    apply_trainable_blocks(get_backbone(model), blocks, depth)
    cut = graph.pooled_cut(model) if depth == 0 else graph.prefix_cut(model, blocks, depth)
    if cut is None:
        raise ValueError(f"The frozen blocks below the top {depth} do not end in a single "
                         "tensor, so they cannot be cached; choose another trainable_blocks. "
                         f"Received: trainable_blocks={depth}")
    xs, ys = feats.cached(cache, model, source, cut)
    xt, _ = feats.cached(cache, model, target, cut)
    if opts.seed is not None:  # the domain classifier's initial weights, the head's dropout
        keras.utils.set_random_seed(opts.seed)
        reseed_layers(model, opts.seed)
    loop = _Loop(model, opts, cut)
    ys = _one_hot(loop.task, ys, loop.head.num_outputs)
    rng = np.random.default_rng(opts.seed)
    size = opts.batch_size
    scale = _initial_scale(loop, xs[:size], ys[:size], xt[:size])
    loop.scale.assign(scale)
    total = opts.epochs * max(1, -(-len(xs) // size))
    history = {"loss": [], "alignment": []}
    target_batches = _target_batches(len(xt), size, rng)
    step = 0
    for _ in range(opts.epochs):
        sums = np.zeros(2)
        order = rng.permutation(len(xs))
        starts = range(0, len(order) - 1, size)
        for i in starts:
            if loop.grl is not None:
                loop.grl.set_scale(dann_schedule(step / total))
            idx, t_idx = order[i:i + size], next(target_batches)
            sums += [float(v) for v in loop.step(tf.constant(xs[idx]), tf.constant(ys[idx]),
                                                 tf.constant(xt[t_idx]))]
            step += 1
        history["loss"].append(sums[0] / max(len(starts), 1))
        history["alignment"].append(sums[1] / max(len(starts), 1))
    apply_trainable_blocks(get_backbone(model), blocks, 0)
    return {"history": history, "aligned_on": "predictions" if depth == 0 else "features",
            "scale": scale, "trainable_blocks": depth}


def _target_batches(n: int, size: int, rng):
    """Endless target batches: shuffled passes over the `n` target rows."""
    while True:
        order = rng.permutation(n)
        for i in range(0, max(n - size, 0) + 1, size):
            yield order[i:i + size]


def _initial_scale(loop, xs, ys, xt) -> float:
    """The multiplier of the alignment term (CORAL and MMD: matched to the first batch's loss)."""
    if loop.opts.alignment == "dann":
        return float(loop.opts.weight)
    ce, align, _ = loop.losses(tf.constant(xs), tf.constant(ys), tf.constant(xt))
    align = float(align)
    if not np.isfinite(align) or align <= 0.0:
        return float(loop.opts.weight)
    return float(loop.opts.weight) * float(ce) / align


__all__ = ["ADVERSARIES", "ALIGNMENTS", "DeepOptions", "train_aligned"]
