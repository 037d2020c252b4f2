"""Distribution-alignment losses between a source and a target batch of features.

* `coral_loss`: Deep CORAL (Sun & Saenko 2016): squared Frobenius distance
  of the two feature covariances, divided by ``4 d**2``.
* `mmd_loss`: the squared maximum mean discrepancy with a multi-kernel
  Gaussian (DAN, Long et al. 2015): a sum of Gaussian kernels whose
  bandwidths are ``base * multiplier**k`` around the mean pairwise squared
  distance of the two batches (biased estimate: 0 for identical samples).

Both take ``(source, target)`` of shape ``(n, d)`` and ``(m, d)`` and return a
scalar; `CoralLoss` and `MMDLoss` wrap them as serializable `keras.losses.Loss`
objects (``y_true`` is the source batch, ``y_pred`` the target batch).
"""

from __future__ import annotations

import keras
from keras import ops

from kerastl._validation import check_float, check_int


def _covariance(x):
    n = ops.cast(ops.shape(x)[0], x.dtype)
    centred = x - ops.mean(x, axis=0, keepdims=True)
    return ops.matmul(ops.transpose(centred), centred) / ops.maximum(n - 1.0, 1.0)


@keras.saving.register_keras_serializable(package="kerastl")
def coral_loss(source, target):
    """CORAL distance ``||C_s - C_t||_F^2 / (4 d^2)`` of two feature batches.

    Args:
        source: ``(n, d)`` source features.
        target: ``(m, d)`` target features.

    Returns:
        A scalar tensor (0 when the covariances are equal).

    Example:
        >>> float(kerastl.adapt.coral_loss(np.eye(3), np.eye(3)))
        0.0
    """
    source = ops.convert_to_tensor(source, "float32")
    target = ops.convert_to_tensor(target, "float32")
    d = ops.cast(ops.shape(source)[1], "float32")
    diff = _covariance(source) - _covariance(target)
    return ops.sum(ops.square(diff)) / (4.0 * d * d)


def _squared_distances(x, y):
    xx = ops.sum(ops.square(x), axis=1, keepdims=True)
    yy = ops.sum(ops.square(y), axis=1, keepdims=True)
    return ops.maximum(xx - 2.0 * ops.matmul(x, ops.transpose(y)) + ops.transpose(yy), 0.0)


@keras.saving.register_keras_serializable(package="kerastl")
def mmd_loss(source, target, *, num_kernels: int = 5, multiplier: float = 2.0,
             bandwidth=None):
    """Squared MMD of two feature batches with a multi-kernel Gaussian (DAN).

    Args:
        source: ``(n, d)`` source features.
        target: ``(m, d)`` target features.
        num_kernels: Number of Gaussian kernels.
        multiplier: Ratio of consecutive bandwidths.
        bandwidth: The middle kernel's ``2 sigma**2`` (default: the mean pairwise
            squared distance of the pooled batches, a constant of the gradient).

    Returns:
        A scalar tensor >= 0 (0 for identical samples; grows with a mean shift).

    Example:
        >>> x = np.random.default_rng(0).normal(size=(64, 8))
        >>> float(kerastl.adapt.mmd_loss(x, x))
        0.0
    """
    num_kernels = check_int("num_kernels", num_kernels, minimum=1)
    multiplier = check_float("multiplier", multiplier, minimum=1.0)
    source = ops.convert_to_tensor(source, "float32")
    target = ops.convert_to_tensor(target, "float32")
    total = ops.concatenate([source, target], axis=0)
    dist = _squared_distances(total, total)
    n = ops.shape(source)[0]
    if bandwidth is None:
        count = ops.cast(ops.shape(total)[0], "float32")
        base = ops.stop_gradient(ops.sum(dist) / ops.maximum(count * count - count, 1.0))
        base = ops.maximum(base, 1e-12)
    else:
        base = ops.convert_to_tensor(check_float("bandwidth", bandwidth, minimum=0.0,
                                                 min_inclusive=False), "float32")
    kernel = 0.0
    for k in range(num_kernels):
        width = base * multiplier ** (k - num_kernels // 2)
        kernel = kernel + ops.exp(-dist / width)
    xx, yy, xy = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    value = ops.mean(xx) + ops.mean(yy) - 2.0 * ops.mean(xy)
    return ops.maximum(value, 0.0)


@keras.saving.register_keras_serializable(package="kerastl")
class CoralLoss(keras.losses.Loss):
    """`coral_loss` as a Keras loss: ``loss(source_features, target_features)``.

    Example:
        >>> kerastl.adapt.CoralLoss()(source_features, target_features)
    """

    def __init__(self, name: str = "coral_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return coral_loss(y_true, y_pred)


@keras.saving.register_keras_serializable(package="kerastl")
class MMDLoss(keras.losses.Loss):
    """`mmd_loss` as a Keras loss: ``loss(source_features, target_features)``.

    Args:
        num_kernels: Number of Gaussian kernels.
        multiplier: Ratio of consecutive bandwidths.
        name: Loss name.
        **kwargs: Standard `keras.losses.Loss` arguments (`reduction`, `dtype`).

    Example:
        >>> kerastl.adapt.MMDLoss(num_kernels=5)(source_features, target_features)
    """

    def __init__(self, num_kernels: int = 5, multiplier: float = 2.0, name: str = "mmd_loss",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_kernels = check_int("num_kernels", num_kernels, minimum=1)
        self.multiplier = check_float("multiplier", multiplier, minimum=1.0)

    def call(self, y_true, y_pred):
        return mmd_loss(y_true, y_pred, num_kernels=self.num_kernels,
                        multiplier=self.multiplier)

    def get_config(self):
        config = super().get_config()
        config.update({"num_kernels": self.num_kernels, "multiplier": self.multiplier})
        return config


__all__ = ["CoralLoss", "MMDLoss", "coral_loss", "mmd_loss"]
