"""The examples of a distillation stage, epoch by epoch.

In each epoch the student sees every image once, in one of its fixed views;
which image comes when, and in which view, is drawn from ``(seed, stage,
epoch)`` alone (`epoch_order`), so a run resumed from its checkpoint repeats
the epochs it lost exactly. A stage whose bottom blocks are frozen reads the
student's activations on every view from a `kerastl.training.FeatureCache`
(`view_batches` feeds the views to it), so an epoch runs only the trained top
blocks; a stage that trains every block renders the views from the images.
Each example is ``({"image": view or activations, "teacher_logits": cached
targets}, one-hot label)``; an unlabelled image has an all-zero label row.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from kerastl.distillation.losses import IMAGE, TARGETS
from kerastl.distillation.views import UNLABELED, loader, view_dataset


class EpochClock(keras.callbacks.Callback):
    """Holds the epoch Keras is about to run, for the dataset of that epoch."""

    def __init__(self):
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = int(epoch)


def epoch_order(seed, stage: int, epoch: int, num_images: int, views: int, *, shuffle: bool):
    """``(order, view)`` of one epoch: a function of (seed, stage, epoch) alone."""
    rng = np.random.default_rng([0 if seed is None else seed, stage, epoch])
    order = rng.permutation(num_images) if shuffle else np.arange(num_images)
    return order, rng.integers(0, views, num_images)[order]


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """float32 one-hot rows; `UNLABELED` images get a row of zeros."""
    eye = np.vstack([np.eye(num_classes, dtype="float32"), np.zeros((1, num_classes), "float32")])
    return eye[np.where(labels == UNLABELED, num_classes, labels)]


def view_batches(split, size, *, batch_size: int) -> tf.data.Dataset:
    """``(views at size, row)`` batches of every view, view-major (row ``v * n + i``).

    What `kerastl.training.FeatureCache` runs the student's frozen part on.
    """
    n, views = split.boxes.shape[:2]
    rows = tf.data.Dataset.range(n * views).batch(batch_size)
    return tf.data.Dataset.zip((view_dataset(split.images, split.boxes, size,
                                             batch_size=batch_size), rows))


def cached_train_dataset(activations, split, num_classes: int, options, stage: int,
                         clock: EpochClock) -> tf.data.Dataset:
    """Batches of the epoch `clock` says, read from cached activations (view-major rows)."""
    n, views = split.boxes.shape[:2]
    labels, targets, size = one_hot(split.images.labels, num_classes), split.targets, \
        options.batch_size

    def batches():
        order, view = epoch_order(options.seed, stage, clock.epoch, n, views,
                                  shuffle=options.shuffle)
        for start in range(0, n, size):
            i, v = order[start:start + size], view[start:start + size]
            yield ({IMAGE: np.asarray(activations[v * n + i]), TARGETS: targets[i, v]},
                   labels[i])

    spec = ({IMAGE: tf.TensorSpec((None,) + activations.shape[1:], activations.dtype),
             TARGETS: tf.TensorSpec((None, num_classes), tf.float32)},
            tf.TensorSpec((None, num_classes), tf.float32))
    ds = tf.data.Dataset.from_generator(batches, output_signature=spec)
    return ds.apply(tf.data.experimental.assert_cardinality(math.ceil(n / size))).prefetch(
        tf.data.AUTOTUNE)


def cached_validation_dataset(activations, split, num_classes: int,
                              batch_size: int) -> tf.data.Dataset:
    """Batches of the validation images' clean view (view 0, the first rows), in order."""
    n = len(split.images)
    return tf.data.Dataset.from_tensor_slices((
        {IMAGE: np.asarray(activations[:n]), TARGETS: split.targets[:, 0]},
        one_hot(split.images.labels, num_classes))).batch(batch_size)


def _examples(split, num_classes: int, size):
    """A map function ``(index, view) -> ({"image", "teacher_logits"}, one-hot or zeros)``."""
    load = loader(split.images, split.boxes, size)
    targets, labels = split.targets, one_hot(split.images.labels, num_classes)

    def read(i, v):
        return targets[i, v], labels[i]

    def example(i, v):
        target, y = tf.numpy_function(read, [i, v], [tf.float32, tf.float32])
        target.set_shape((num_classes,))
        y.set_shape((num_classes,))
        return {IMAGE: load(i, v), TARGETS: target}, y

    return example


def image_train_dataset(split, num_classes: int, options, stage: int, clock: EpochClock,
                        size) -> tf.data.Dataset:
    """Batches of the epoch `clock` says, each view rendered from the images at `size`."""
    n, views = split.boxes.shape[:2]

    def pairs():
        order, view = epoch_order(options.seed, stage, clock.epoch, n, views,
                                  shuffle=options.shuffle)
        yield from zip(order, view)

    spec = (tf.TensorSpec((), tf.int64), tf.TensorSpec((), tf.int64))
    ds = tf.data.Dataset.from_generator(pairs, output_signature=spec)
    ds = ds.map(_examples(split, num_classes, size), num_parallel_calls=tf.data.AUTOTUNE)
    steps = math.ceil(n / options.batch_size)
    return ds.batch(options.batch_size).apply(
        tf.data.experimental.assert_cardinality(steps)).prefetch(tf.data.AUTOTUNE)


def image_validation_dataset(split, num_classes: int, size,
                             batch_size: int) -> tf.data.Dataset:
    """Batches of the validation images' clean view (view 0), rendered at `size`, in order."""
    n = len(split.images)
    ds = tf.data.Dataset.from_tensor_slices((np.arange(n, dtype=np.int64),
                                             np.zeros(n, np.int64)))
    ds = ds.map(_examples(split, num_classes, size), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


__all__ = ["EpochClock", "cached_train_dataset", "cached_validation_dataset", "epoch_order",
           "image_train_dataset", "image_validation_dataset", "one_hot", "view_batches"]
