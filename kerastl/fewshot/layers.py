"""The prototype head: one prototype per class, a cosine (or Euclidean) classifier.

`PrototypeHead` is a `kerastl.layers.ClassificationHead` whose output layer
is a `PrototypeClassifier` instead of a `Dense` layer, so a prototype model
has kerastl's usual layout (``image -> preprocessing -> backbone -> head``):
`kerastl.model_info`, `kerastl.feature_extractor`, `kerastl.export` and
``model.save("m.keras")`` (safe mode) work on it unchanged.

Scores, for pooled features ``x`` and prototypes ``p_k``:

* ``"cosine"``: ``scale * cos(x, p_k)`` (a cosine classifier, Baseline++);
* ``"euclidean"``: ``-scale * ||x - p_k||**2`` (Prototypical Networks);

and the head returns their softmax. `prototype_scores` is the one
definition, shared by the layer and the exported ``classify`` signature.
"""

from __future__ import annotations

import keras
from keras import ops

from kerastl._validation import check_float, check_int, check_one_of
from kerastl.layers import ClassificationHead

METRICS = ("cosine", "euclidean")
DEFAULT_SCALES = {"cosine": 10.0, "euclidean": 1.0}
_EPSILON = 1e-12


def default_scale(metric: str, scale=None) -> float:
    """Returns `scale`, or the default of `metric` (10 for cosine, 1 for Euclidean)."""
    check_one_of("metric", metric, METRICS)
    if scale is None:
        return DEFAULT_SCALES[metric]
    return check_float("scale", scale, minimum=0.0, min_inclusive=False)


def l2_normalize(x):
    """Returns `x` divided by its L2 norm along the last axis (Keras ops)."""
    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x), axis=-1, keepdims=True), _EPSILON))


def prototype_scores(features, prototypes, *, metric: str, scale: float):
    """Returns the ``(N, K)`` logits of `features` ``(N, D)`` against `prototypes` ``(K, D)``.

    Example:
        >>> kerastl.fewshot.layers.prototype_scores(x, p, metric="cosine", scale=10.0).shape
        (4, 3)
    """
    if metric == "cosine":
        return scale * ops.matmul(l2_normalize(features), ops.transpose(l2_normalize(prototypes)))
    squared = (ops.sum(ops.square(features), axis=-1, keepdims=True)
               - 2.0 * ops.matmul(features, ops.transpose(prototypes))
               + ops.transpose(ops.sum(ops.square(prototypes), axis=-1, keepdims=True)))
    return -scale * ops.maximum(squared, 0.0)


@keras.saving.register_keras_serializable(package="kerastl")
class PrototypeClassifier(keras.layers.Layer):
    """Softmax over the similarity of pooled features to one prototype per class.

    The prototypes are the layer's one weight, ``prototypes`` of shape
    ``(num_classes, features)``; set them with ``layer.set_weights([matrix])``
    (`kerastl.fewshot.build` does). Computes in float32.

    Args:
        num_classes: Number of prototypes.
        metric: ``"cosine"`` or ``"euclidean"``.
        scale: Multiplies the scores (a softmax temperature); default 10 for
            cosine, 1 for Euclidean.
        **kwargs: Standard layer arguments (`name`, `trainable`).

    Example:
        >>> layer = kerastl.fewshot.PrototypeClassifier(3)
        >>> layer(keras.ops.ones((2, 8))).shape
        (2, 3)
    """

    def __init__(self, num_classes: int, *, metric: str = "cosine", scale=None, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes, minimum=1)
        self.metric = check_one_of("metric", metric, METRICS)
        self.scale = default_scale(metric, scale)

    def build(self, input_shape):
        self.prototypes = self.add_weight(shape=(self.num_classes, int(input_shape[-1])),
                                          initializer="zeros", name="prototypes")
        self.built = True

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        return ops.softmax(prototype_scores(x, self.prototypes, metric=self.metric,
                                            scale=self.scale), axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)
        config.update({"num_classes": self.num_classes, "metric": self.metric,
                       "scale": self.scale})
        return config


@keras.saving.register_keras_serializable(package="kerastl")
class PrototypeHead(ClassificationHead):
    """A `kerastl.layers.ClassificationHead` whose output is a `PrototypeClassifier`.

    Pools a 4D feature map (or takes pooled features) and scores them
    against one prototype per class; ``task`` is ``"multiclass"`` and there
    are no hidden layers or dropout.

    Args:
        num_outputs: Number of classes (prototypes).
        metric: ``"cosine"`` or ``"euclidean"``.
        scale: Score scale (see `PrototypeClassifier`).
        pooling: ``"avg"`` or ``"max"`` for 4D inputs.
        class_names: Optional class names.
        **kwargs: Standard layer arguments (`name`, `dtype`, `trainable`).

    Example:
        >>> head = kerastl.fewshot.PrototypeHead(3, class_names=["a", "b", "c"])
        >>> head(keras.ops.ones((2, 4, 4, 8))).shape
        (2, 3)
    """

    def __init__(self, num_outputs: int, *, metric: str = "cosine", scale=None,
                 pooling: str = "avg", class_names=None, **kwargs):
        super().__init__(num_outputs, task="multiclass", pooling=pooling, dropout=0.0,
                         class_names=class_names, **kwargs)
        self._tracker.untrack(self.output_layer)  # the Dense layer the parent made
        self.output_layer = PrototypeClassifier(num_outputs, metric=metric, scale=scale,
                                                name="prototypes")
        self.metric, self.scale = self.output_layer.metric, self.output_layer.scale

    @property
    def prototypes(self):
        """The ``(num_classes, features)`` prototype matrix (a NumPy copy)."""
        return keras.ops.convert_to_numpy(self.output_layer.prototypes)

    def get_config(self):
        config = super().get_config()
        for key in ("task", "dropout", "hidden_units", "activation"):
            config.pop(key)
        config.update({"metric": self.metric, "scale": self.scale})
        return config


__all__ = ["DEFAULT_SCALES", "METRICS", "PrototypeClassifier", "PrototypeHead", "default_scale",
           "l2_normalize", "prototype_scores"]
