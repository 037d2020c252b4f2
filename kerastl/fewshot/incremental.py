"""`kerastl.extend`: add classes to a trained classifier without forgetting the old ones.

The head grows by the new classes (the old output weights are copied, the
new ones start at zero) and is trained on the cached pooled features of
the new images, with one of:

* ``"lwf"``: Learning without Forgetting (Li & Hoiem 2016): the cross-entropy
  on the new labels plus ``distillation * T**2 * KL`` between the old model's
  softened outputs on the new images and the grown head's. Needs no old
  data. With ``distill_over="old"`` the grown head's outputs are
  renormalised over the old classes (Li & Hoiem's per-task form): that term
  cannot see how much probability moves to the new classes, so in one shared
  head the new classes take over the old images (measured in
  ``benchmarks/fewshot_benchmark.py``). ``distill_over="all"`` (default)
  compares with the grown head's own softmax, so the old model's belief that
  a new image looks like an old class holds back the new classes' bias; the
  `distillation` weight sets the balance.
* ``"ewc"``: Elastic Weight Consolidation (Kirkpatrick et al. 2017): the
  cross-entropy plus ``ewc_strength / 2 * sum F (w - w_old)**2`` over the old
  weights, ``F`` the diagonal (empirical) Fisher information of the old
  model on `old_data`.
* ``"replay"``: a buffer of `replay_per_class` old images per old class;
  the old output columns are kept, the new ones fitted against the buffer
  and the new images in closed form and bias-corrected by a cross-fit
  (`kerastl.fewshot.replay`; no epochs).
* ``"naive"``: the cross-entropy on the new images alone (the forgetting
  baseline).
* ``"slda"``: no training: the whole head becomes the linear discriminant of
  `kerastl.fewshot.ClassStatistics` (streaming LDA, Hayes & Kanan 2020),
  the old classes' statistics (saved while their images were at hand, or
  computed from `old_data`) plus the new images'. It is the head that all
  the images together would give, so nothing is forgotten by the update;
  the old classes' scores change because the old head is replaced by the
  discriminant. Needs a head without hidden layers.

The backbone is frozen: its features are computed once
(`kerastl.training.FeatureCache`) and the returned model shares it.
"""

from __future__ import annotations

import dataclasses
import time

import keras
import numpy as np
import tensorflow as tf

from kerastl._validation import check_float, check_int, check_one_of
from kerastl.accessors import get_head
from kerastl.fewshot._data import check_every_class, features
from kerastl.fewshot.builder import new_class_names, pooled_width, with_head
from kerastl.fewshot.replay import replay_head
from kerastl.fewshot.statistics import ClassStatistics
from kerastl.layers import ClassificationHead
from kerastl.training.cache import FeatureCache
from kerastl.training.graph import head_model

METHODS = ("lwf", "ewc", "replay", "naive", "slda")
DISTILL_OVER = ("all", "old")
_TINY = 1e-12


@dataclasses.dataclass
class ExtendResult:
    """The grown model and what `kerastl.extend` measured.

    Attributes:
        model: The model with ``old + new`` classes (shares the backbone).
        method: ``"lwf"``, ``"ewc"``, ``"replay"``, ``"naive"`` or ``"slda"``.
        class_names: Old class names, then the new ones.
        num_old_classes: How many of them are old.
        losses: Mean training loss per epoch.
        old_accuracy_before: The original model's accuracy on the old-class
            images of `eval_data` (None without it).
        old_accuracy: The grown model's accuracy (over all classes) on the
            old-class images of `eval_data`.
        new_accuracy: Its accuracy on the new-class images.
        accuracy: Its accuracy on all of `eval_data`.
        seconds: Time of the call.
        statistics: ``"slda"``: the `kerastl.fewshot.ClassStatistics` of every
            class of the grown model (pass them to the next `extend`); else None.
        replay: ``"replay"``: how the new columns were fitted (``l2``, the bias
            correction's ``scale`` and ``offset``, cross-fit ``folds``); else None.
    """

    model: keras.Model
    method: str
    class_names: list
    num_old_classes: int
    losses: list
    old_accuracy_before: float | None = None
    old_accuracy: float | None = None
    new_accuracy: float | None = None
    accuracy: float | None = None
    seconds: float = 0.0
    statistics: ClassStatistics | None = None
    replay: dict | None = None

    @property
    def old_accuracy_drop(self) -> float | None:
        """Old-class accuracy lost by adding the new classes (points in [0, 1])."""
        if self.old_accuracy is None or self.old_accuracy_before is None:
            return None
        return self.old_accuracy_before - self.old_accuracy

    def __str__(self) -> str:
        text = (f"extend ({self.method}): {self.num_old_classes} old + "
                f"{len(self.class_names) - self.num_old_classes} new classes, "
                f"{len(self.losses)} epochs, {self.seconds:.1f} s")
        if self.old_accuracy is not None:
            text += (f"; old classes {100 * self.old_accuracy_before:.1f} -> "
                     f"{100 * self.old_accuracy:.1f} %, new classes "
                     f"{100 * self.new_accuracy:.1f} %")
        return text


def _classifier(model) -> ClassificationHead:
    head = get_head(model)
    if head.task != "multiclass" or type(head) is not ClassificationHead:
        raise ValueError("`model` must be a multiclass kerastl classifier (softmax head); "
                         "add classes to a prototype model with kerastl.fewshot.add_classes. "
                         f"Received: a {type(head).__name__} with task={head.task!r}")
    return head


def _grown_model(model, head, names):
    grown = ClassificationHead(len(names), task="multiclass", pooling=head.pooling,
                               dropout=head.dropout, hidden_units=head.hidden_units,
                               activation=head.activation, class_names=names, name=head.name)
    new = with_head(model, grown)
    k = head.num_outputs
    for mine, theirs in zip(grown.dense_layers, head.dense_layers):
        mine.set_weights(theirs.get_weights())
    kernel, bias = head.output_layer.get_weights()
    new_kernel = np.zeros((kernel.shape[0], len(names)), "float32")
    new_bias = np.full(len(names), bias.mean(), "float32")
    new_kernel[:, :k], new_bias[:k] = kernel, bias
    grown.output_layer.set_weights([new_kernel, new_bias])
    return new


def _predict(net, x, batch_size=256):
    return np.concatenate([keras.ops.convert_to_numpy(net(x[i:i + batch_size], training=False))
                           for i in range(0, len(x), batch_size)])


def _old_weights(trainer, k):
    """Returns ``[(variable, mask)]``: the weights the old model had (masks 1 on old entries)."""
    out = []
    for v in trainer.trainable_weights:
        mask = np.ones(v.shape, "float32")
        if v.path.endswith("predictions/kernel"):
            mask[:, k:] = 0.0
        elif v.path.endswith("predictions/bias"):
            mask[k:] = 0.0
        out.append((v, mask))
    return out


def fisher_diagonal(old_trainer, x, y, *, limit: int = 512, seed: int = 0) -> list:
    """Returns the diagonal empirical Fisher of `old_trainer` per trainable weight.

    The mean over (at most `limit`) examples of the squared gradient of
    ``-log p(y | x)``, one example at a time.
    """
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(x))[:limit]
    weights = old_trainer.trainable_weights
    total = [np.zeros(v.shape, "float64") for v in weights]
    for i in rows:
        with tf.GradientTape() as tape:
            p = old_trainer(x[i:i + 1], training=False)
            loss = -tf.math.log(tf.maximum(p[0, int(y[i])], _TINY))
        for t, g in zip(total, tape.gradient(loss, weights)):
            t += np.square(g.numpy())
    return [(t / max(len(rows), 1)).astype("float32") for t in total]


def _train(trainer, x, y, weights, soft, penalty, opts, k):
    """Adam epochs on ``(x, y)`` with the method's extra term; returns losses per epoch."""
    optimizer = keras.optimizers.Adam(opts["learning_rate"])
    temperature, alpha = opts["temperature"], opts["distillation"]
    variables = trainer.trainable_weights
    ds = tf.data.Dataset.from_tensor_slices((x, y, weights, soft))
    ds = ds.shuffle(len(x), seed=opts["seed"], reshuffle_each_iteration=True)
    ds = ds.batch(opts["batch_size"])

    @tf.function(input_signature=[tf.TensorSpec((None, x.shape[1]), tf.float32),
                                  tf.TensorSpec((None,), tf.int64),
                                  tf.TensorSpec((None,), tf.float32),
                                  tf.TensorSpec((None, k), tf.float32)])
    def step(xb, yb, wb, sb):
        with tf.GradientTape() as tape:
            logp = tf.math.log(tf.maximum(trainer(xb, training=True), _TINY))
            ce = -tf.gather(logp, yb, batch_dims=1)
            loss = tf.reduce_sum(wb * ce) / tf.reduce_sum(wb)
            if alpha:
                if opts["distill_over"] == "old":
                    student = tf.nn.log_softmax(logp[:, :k] / temperature)
                else:
                    student = tf.nn.log_softmax(logp / temperature)[:, :k]
                kl = tf.reduce_sum(sb * (tf.math.log(tf.maximum(sb, _TINY)) - student), -1)
                loss += alpha * temperature ** 2 * tf.reduce_mean(kl)
            if penalty:
                loss += 0.5 * opts["ewc_strength"] * tf.add_n(
                    [tf.reduce_sum(f * tf.square(v - v0)) for v, v0, f in penalty])
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    losses = []
    for _ in range(opts["epochs"]):
        values = [float(step(*batch)) for batch in ds]
        losses.append(float(np.mean(values)))
    return losses


def _accuracies(result, old_trainer, trainer, found, k):
    pred = _predict(trainer, found.x).argmax(axis=1)
    old_rows, new_rows = found.y < k, found.y >= k
    before = _predict(old_trainer, found.x[old_rows]).argmax(axis=1)
    result.old_accuracy_before = float(np.mean(before == found.y[old_rows]))
    result.old_accuracy = float(np.mean(pred[old_rows] == found.y[old_rows]))
    result.new_accuracy = float(np.mean(pred[new_rows] == found.y[new_rows]))
    result.accuracy = float(np.mean(pred == found.y))


def extend(model, new_data, *, old_data=None, method: str = "lwf", class_names=None,
           eval_data=None, epochs: int = 30, learning_rate: float = 1e-3, batch_size: int = 32,
           temperature: float = 2.0, distillation: float = 0.1, distill_over: str = "all",
           ewc_strength: float = 100.0,
           replay_per_class: int = 20, statistics=None, feature_cache=None,
           seed: int = 0) -> ExtendResult:
    """Grows a trained classifier by new classes and trains it without forgetting the old.

    Args:
        model: A multiclass kerastl classifier (`kerastl.build` + `kerastl.fit`).
        new_data: Labelled images of the new classes only (labels 0 .. m-1 index
            the new classes), in any form `kerastl.fewshot.build` takes.
        old_data: Labelled images of the old classes (labels of `model`);
            needed by ``"ewc"`` (the Fisher information) and ``"replay"`` (the
            buffer), and by ``"slda"`` without `statistics`.
        method: ``"lwf"``, ``"ewc"``, ``"replay"``, ``"naive"`` or ``"slda"`` (see
            the module doc; ``"slda"`` and ``"replay"`` have no epochs, rate or
            batches of training).
        class_names: Names of the new classes (default: those of `new_data`).
        eval_data: Optional labelled images of old and new classes, labels in the
            grown model's order (old classes first); fills the accuracies of the result.
        epochs: Passes over the training features.
        learning_rate: Adam step size.
        batch_size: Examples per step (and per backbone batch).
        temperature: Distillation temperature of ``"lwf"``.
        distillation: Weight of the distillation term of ``"lwf"``.
        distill_over: ``"all"`` (the grown head's softmax) or ``"old"`` (renormalised
            over the old classes), see the module doc.
        ewc_strength: Weight of the EWC penalty.
        replay_per_class: Old examples kept per old class for ``"replay"`` (>= 2:
            the new columns are cross-fitted).
        statistics: ``"slda"``: the old classes' `kerastl.fewshot.ClassStatistics`
            (`kerastl.fewshot.class_statistics`, or an earlier result's).
        feature_cache: A `kerastl.training.FeatureCache` to share backbone passes.
        seed: Seed of the shuffling and of the replay buffer.

    Returns:
        An `ExtendResult` (its ``model`` is the grown model).

    Example:
        >>> result = kerastl.extend(model, new_photos, method="lwf", eval_data=all_val)
        >>> result.old_accuracy_drop, result.new_accuracy
    """
    start = time.perf_counter()
    check_one_of("method", method, METHODS)
    opts = {"epochs": check_int("epochs", epochs, minimum=1),
            "learning_rate": check_float("learning_rate", learning_rate, minimum=0.0,
                                         min_inclusive=False),
            "batch_size": check_int("batch_size", batch_size, minimum=1),
            "temperature": check_float("temperature", temperature, minimum=0.0,
                                       min_inclusive=False),
            "distillation": check_float("distillation", distillation, minimum=0.0)
            if method == "lwf" else 0.0,
            "distill_over": check_one_of("distill_over", distill_over, DISTILL_OVER),
            "ewc_strength": check_float("ewc_strength", ewc_strength, minimum=0.0),
            "seed": check_int("seed", seed, minimum=0)}
    per_class = check_int("replay_per_class", replay_per_class, minimum=2)
    head = _classifier(model)
    if method == "slda":
        _check_statistics(head, statistics, old_data)
    elif statistics is not None:
        raise ValueError("`statistics` is used by method='slda' only. Received: "
                         f"method={method!r} with statistics")
    if method in ("ewc", "replay") and old_data is None:
        raise ValueError(f"method={method!r} needs `old_data` (images of the old classes: "
                         f"{'the Fisher information' if method == 'ewc' else 'the buffer'}). "
                         "Received: old_data=None")
    k = head.num_outputs
    cache = FeatureCache() if feature_cache is None else feature_cache
    common = {"width": pooled_width(model), "feature_cache": cache, "batch_size": batch_size}
    found = features("new_data", model, new_data, class_names=class_names, **common)
    old_names, new_names = new_class_names("new_data", head, found)
    check_every_class("new_data", found.y, len(new_names), new_names)
    names = old_names + new_names
    old_trainer = head_model(model)
    grown = _grown_model(model, head, names)
    trainer = head_model(grown)
    if method == "slda":
        result = _slda(grown, head, found, old_names, new_names, statistics, old_data, common)
    else:
        result = _trained(method, old_data, found, names, k, old_trainer, trainer, grown,
                          opts, per_class, common)
    if eval_data is not None:
        evaluation = features("eval_data", model, eval_data, **common)
        check_every_class("eval_data", evaluation.y, len(names), names)
        _accuracies(result, old_trainer, trainer, evaluation, k)
    result.seconds = time.perf_counter() - start
    return result


def _check_statistics(head, statistics, old_data) -> None:
    if head.hidden_units:
        raise ValueError("method='slda' replaces the output layer by a linear discriminant "
                         "of the pooled features; this head has hidden layers. Received: "
                         f"hidden_units={head.hidden_units!r}")
    if statistics is None and old_data is None:
        raise ValueError("method='slda' needs the old classes' `statistics` "
                         "(kerastl.fewshot.class_statistics, computed while their images "
                         "were at hand) or `old_data`. Received: statistics=None, "
                         "old_data=None")
    if statistics is not None and not isinstance(statistics, ClassStatistics):
        raise TypeError("`statistics` must be a kerastl.fewshot.ClassStatistics. "
                        f"Received: statistics={statistics!r:.200}")


def _slda(grown, head, found, old_names, new_names, statistics, old_data, common):
    """The grown head as the discriminant of the old statistics plus the new features."""
    k = head.num_outputs
    if statistics is None:
        old = features("old_data", grown, old_data, **common)
        check_every_class("old_data", old.y, k, old_names)
        statistics = ClassStatistics.from_features(old.x, old.y, old_names)
    if len(statistics.class_names) != k or statistics.width != found.x.shape[1]:
        raise ValueError(f"`statistics` must describe the model's {k} classes on "
                         f"{found.x.shape[1]}-wide features. Received: "
                         f"{len(statistics.class_names)} classes, width {statistics.width}")
    combined = statistics.add(ClassStatistics.from_features(found.x, found.y, new_names))
    get_head(grown).output_layer.set_weights(list(combined.linear_head()))
    return ExtendResult(grown, "slda", old_names + new_names, k, [], statistics=combined)


def _trained(method, old_data, found, names, k, old_trainer, trainer, grown, opts,
             per_class, common):
    """LwF, EWC or naive: Adam epochs of the grown head on cached features (or replay)."""
    x, y = found.x, found.y + k
    weights = np.ones(len(x), "float32")
    penalty = None
    if old_data is not None:
        old = features("old_data", grown, old_data, **common)
        check_every_class("old_data", old.y, k, names[:k])
        if method == "replay":
            details = replay_head(get_head(grown), k, (found.x, found.y + k), (old.x, old.y),
                                  per_class=per_class, seed=opts["seed"])
            return ExtendResult(grown, "replay", names, k, [], replay=details)
        if method == "ewc":
            fisher = fisher_diagonal(old_trainer, old.x, old.y, seed=opts["seed"])
            penalty = [(v, tf.constant(keras.ops.convert_to_numpy(v) * m), tf.constant(f * m))
                       for (v, m), f in zip(_old_weights(trainer, k), _pad(fisher, trainer, k))]
    soft = _predict(old_trainer, x)
    soft = np.exp(np.log(np.maximum(soft, _TINY)) / opts["temperature"])
    soft = (soft / soft.sum(axis=1, keepdims=True)).astype("float32")
    losses = _train(trainer, x.astype("float32"), y.astype("int64"), weights, soft, penalty,
                    opts, k)
    return ExtendResult(grown, method, names, k, losses)


def _pad(fisher, trainer, k):
    """Fits the old model's Fisher arrays to the grown head's shapes (zeros for new classes)."""
    out = []
    for f, v in zip(fisher, trainer.trainable_weights):
        padded = np.zeros(v.shape, "float32")
        padded[tuple(slice(0, n) for n in f.shape)] = f
        out.append(padded)
    return out


__all__ = ["DISTILL_OVER", "ExtendResult", "METHODS", "extend", "fisher_diagonal"]
