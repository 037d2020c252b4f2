"""The prototype head: one prototype per class, a cosine (or Euclidean) classifier.

`PrototypeHead` is a `kerastl.layers.ClassificationHead` whose output layer
is a `PrototypeClassifier` instead of a `Dense` layer, so a prototype model
has kerastl's usual layout (``image -> preprocessing -> backbone -> head``):
`kerastl.model_info`, `kerastl.feature_extractor`, `kerastl.export` and
``model.save("m.keras")`` (safe mode) work on it unchanged.

Scores, for pooled features ``x`` and prototypes ``p_k``:

* ``"cosine"``: ``scale * cos(x, p_k)`` (a cosine classifier, Baseline++);
* ``"euclidean"``: ``-scale * ||x - p_k||**2`` (Prototypical Networks);
* ``"mahalanobis"``: the Euclidean score of whitened features ``w(x)``
  (`whiten_features`: centred, normalised, multiplied by the inverse square
  root of the support's shrunk within-class covariance) against prototypes
  that are means of whitened features; with the default scale 0.5 this is
  the posterior of Gaussian classes with a shared covariance (linear
  discriminant analysis on the support);

and the head returns their softmax. `prototype_scores` is the one
definition, shared by the layer and the exported ``classify`` signature.
"""

from __future__ import annotations

import collections

import keras
from keras import ops

from kerastl._validation import check_float, check_int, check_one_of
from kerastl.layers import ClassificationHead

METRICS = ("cosine", "euclidean", "mahalanobis")
DEFAULT_SCALES = {"cosine": 10.0, "euclidean": 1.0, "mahalanobis": 0.5}
# The metric of prototype arithmetic on the features the classifier compares (`embed`'s):
# Mahalanobis features are whitened already, so their prototypes are Euclidean means.
AVERAGING = {"cosine": "cosine", "euclidean": "euclidean", "mahalanobis": "euclidean"}
_EPSILON = 1e-12

Whitening = collections.namedtuple("Whitening", ["center", "isotropic", "basis", "gains"])
Whitening.__doc__ = """The ``"mahalanobis"`` metric's feature map (`whiten_features`).

Fields: ``center`` ``(D,)``, ``isotropic`` (a scalar), ``basis`` ``(D, rank)``
with orthonormal columns and ``gains`` ``(rank,)``; fitted by
`kerastl.fewshot.prototypes.fit_whitening`.
"""


def default_scale(metric: str, scale=None) -> float:
    """Returns `scale`, or the default of `metric` (cosine 10, Euclidean 1, Mahalanobis 0.5)."""
    check_one_of("metric", metric, METRICS)
    if scale is None:
        return DEFAULT_SCALES[metric]
    return check_float("scale", scale, minimum=0.0, min_inclusive=False)


def l2_normalize(x):
    """Returns `x` divided by its L2 norm along the last axis (Keras ops)."""
    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x), axis=-1, keepdims=True), _EPSILON))


def whiten_features(features, center, isotropic, basis, gains):
    """Returns ``isotropic * z + ((z @ basis) * gains) @ basis.T``, ``z = normalize(x - center)``.

    Example:
        >>> kerastl.fewshot.layers.whiten_features(x, *whitening).shape
        (4, 1280)
    """
    z = l2_normalize(features - center)
    return isotropic * z + ops.matmul(ops.matmul(z, basis) * gains, ops.transpose(basis))


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

    The prototypes are the layer's first weight, ``prototypes`` of shape
    ``(num_classes, features)``; set them with ``layer.set_weights([matrix])``
    (`kerastl.fewshot.build` does). With ``metric="mahalanobis"`` the layer
    also holds the four `Whitening` weights (``center``, ``isotropic``,
    ``basis``, ``gains``) that map features before scoring, and its
    prototypes are in the whitened space:
    ``layer.set_weights([matrix, *whitening])``. Computes in float32.

    Args:
        num_classes: Number of prototypes.
        metric: ``"cosine"``, ``"euclidean"`` or ``"mahalanobis"``.
        scale: Multiplies the scores (a softmax temperature); default 10 for
            cosine, 1 for Euclidean, 0.5 for Mahalanobis.
        rank: Columns of the whitening basis (``"mahalanobis"`` only).
        **kwargs: Standard layer arguments (`name`, `trainable`).

    Example:
        >>> layer = kerastl.fewshot.PrototypeClassifier(3)
        >>> layer(keras.ops.ones((2, 8))).shape
        (2, 3)
    """

    def __init__(self, num_classes: int, *, metric: str = "cosine", scale=None, rank: int = 1,
                 **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes, minimum=1)
        self.metric = check_one_of("metric", metric, METRICS)
        self.scale = default_scale(metric, scale)
        self.rank = check_int("rank", rank, minimum=1)

    def build(self, input_shape):
        d = int(input_shape[-1])
        self.prototypes = self.add_weight(shape=(self.num_classes, d), initializer="zeros",
                                          name="prototypes")
        if self.metric == "mahalanobis":
            shapes = {"center": (d,), "isotropic": (), "basis": (d, self.rank),
                      "gains": (self.rank,)}
            for key, shape in shapes.items():
                setattr(self, key, self.add_weight(shape=shape, initializer="zeros",
                                                   trainable=False, name=key))
        self.built = True

    @property
    def whitening(self):
        """The `Whitening` weights (``"mahalanobis"``), or None for the other metrics."""
        if self.metric != "mahalanobis":
            return None
        return Whitening(self.center, self.isotropic, self.basis, self.gains)

    def embed(self, features):
        """Returns the features the prototypes are compared with: whitened for Mahalanobis."""
        x = ops.cast(features, "float32")
        whitening = self.whitening
        return x if whitening is None else whiten_features(x, *whitening)

    def call(self, inputs):
        return ops.softmax(prototype_scores(self.embed(inputs), self.prototypes,
                                            metric=self.metric, scale=self.scale), axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)
        config.update({"num_classes": self.num_classes, "metric": self.metric,
                       "scale": self.scale, "rank": self.rank})
        return config


@keras.saving.register_keras_serializable(package="kerastl")
class PrototypeHead(ClassificationHead):
    """A `kerastl.layers.ClassificationHead` whose output is a `PrototypeClassifier`.

    Pools a 4D feature map (or takes pooled features) and scores them
    against one prototype per class; ``task`` is ``"multiclass"`` and there
    are no hidden layers or dropout.

    Args:
        num_outputs: Number of classes (prototypes).
        metric: ``"cosine"``, ``"euclidean"`` or ``"mahalanobis"``.
        scale: Score scale (see `PrototypeClassifier`).
        rank: Whitening basis columns (``"mahalanobis"``; see `PrototypeClassifier`).
        pooling: ``"avg"`` or ``"max"`` for 4D inputs.
        class_names: Optional class names.
        **kwargs: Standard layer arguments (`name`, `dtype`, `trainable`).

    Example:
        >>> head = kerastl.fewshot.PrototypeHead(3, class_names=["a", "b", "c"])
        >>> head(keras.ops.ones((2, 4, 4, 8))).shape
        (2, 3)
    """

    def __init__(self, num_outputs: int, *, metric: str = "cosine", scale=None, rank: int = 1,
                 pooling: str = "avg", class_names=None, **kwargs):
        super().__init__(num_outputs, task="multiclass", pooling=pooling, dropout=0.0,
                         class_names=class_names, **kwargs)
        self._tracker.untrack(self.output_layer)  # the Dense layer the parent made
        self.output_layer = PrototypeClassifier(num_outputs, metric=metric, scale=scale,
                                                rank=rank, name="prototypes")
        self.metric, self.scale = self.output_layer.metric, self.output_layer.scale
        self.rank = self.output_layer.rank

    @property
    def prototypes(self):
        """The ``(num_classes, features)`` prototype matrix (a NumPy copy)."""
        return keras.ops.convert_to_numpy(self.output_layer.prototypes)

    @property
    def whitening(self):
        """The `Whitening` of a ``"mahalanobis"`` head as NumPy arrays, else None."""
        whitening = self.output_layer.whitening
        if whitening is None:
            return None
        return Whitening(*(keras.ops.convert_to_numpy(w) for w in whitening))

    def get_config(self):
        config = super().get_config()
        for key in ("task", "dropout", "hidden_units", "activation"):
            config.pop(key)
        config.update({"metric": self.metric, "scale": self.scale, "rank": self.rank})
        return config


__all__ = ["AVERAGING", "DEFAULT_SCALES", "METRICS", "PrototypeClassifier", "PrototypeHead",
           "Whitening", "default_scale", "l2_normalize", "prototype_scores", "whiten_features"]
