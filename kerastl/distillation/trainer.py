"""One distillation stage: `keras.distillation.Distiller` on the fixed views.

Each stage sets the student's unfreeze depth (kerastl's BatchNorm rule),
builds its optimizer with per-block learning rates (`kerastl.training.optim`),
and trains a `keras.distillation.Distiller` whose teacher is the cached
targets. The examples of an epoch, and the view each one is shown, are
drawn from ``(seed, stage, epoch)`` alone, so a run resumed from its
checkpoint (`keras.callbacks.BackupAndRestore` at epoch ends) repeats the
epochs it lost exactly and ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import math
import time

import keras
import numpy as np
import tensorflow as tf

from kerastl import distribute
from kerastl.accessors import get_backbone, get_head
from kerastl.distillation.losses import (IMAGE, TARGETS, MaskedCategoricalCrossentropy,
                                         distiller_models, logits_output)
from kerastl.distillation.views import UNLABELED, Images, loader, resized
from kerastl.freezing import apply_trainable_blocks
from kerastl.training.callbacks import BestWeights
from kerastl.training.checkpoint import backup_callback
from kerastl.training.optim import make_optimizer
from kerastl.training.report import StageReport
from kerastl.training.stage import _keras_verbose


@dataclasses.dataclass
class Split:
    """Images, their views and the teacher's targets on them."""

    images: Images
    boxes: np.ndarray
    targets: np.ndarray

    @property
    def num_examples(self) -> int:
        return len(self.images)


@dataclasses.dataclass
class Run:
    """What the stages of one `kerastl.distillation.distill` call share."""

    student: keras.Model
    blocks: list
    num_classes: int
    train: Split
    validation: Split | None
    options: object          # kerastl.distillation.options.DistillOptions
    strategy: object
    callbacks: list
    checkpoint: object       # kerastl.training.checkpoint.Checkpoint or None
    monitor: str
    later_stages: bool = False

    # What kerastl.training.fit's stage loop (`_run`) reads of its context.
    @property
    def model(self) -> keras.Model:
        return self.student

    def cut_for(self, depth: int):
        """No activation cache: every view is new to the student."""
        return None, None


class EpochClock(keras.callbacks.Callback):
    """Holds the epoch Keras is about to run, for the dataset of that epoch."""

    def __init__(self):
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = int(epoch)


def _examples(split: Split, num_classes: int, size):
    """A map function ``(index, view) -> ({"image", "teacher_logits"}, one-hot or zeros)``."""
    load = loader(split.images, split.boxes, size)
    targets, labels = split.targets, split.images.labels
    eye = np.vstack([np.eye(num_classes, dtype="float32"), np.zeros((1, num_classes), "float32")])

    def read(i, v):
        label = labels[i]
        return targets[i, v], eye[num_classes if label == UNLABELED else label]

    def example(i, v):
        target, y = tf.numpy_function(read, [i, v], [tf.float32, tf.float32])
        target.set_shape((num_classes,))
        y.set_shape((num_classes,))
        return {IMAGE: load(i, v), TARGETS: target}, y

    return example


def epoch_order(seed, stage: int, epoch: int, num_images: int, views: int, *, shuffle: bool):
    """``(order, view)`` of one epoch: a function of (seed, stage, epoch) alone."""
    rng = np.random.default_rng([0 if seed is None else seed, stage, epoch])
    order = rng.permutation(num_images) if shuffle else np.arange(num_images)
    return order, rng.integers(0, views, num_images)[order]


def train_dataset(run: Run, stage_index: int, clock: EpochClock, size) -> tf.data.Dataset:
    """Batches of the epoch `clock` says: every image once, each in one of its views."""
    split, opts = run.train, run.options
    n, views = split.boxes.shape[:2]

    def pairs():
        order, view = epoch_order(opts.seed, stage_index, clock.epoch, n, views,
                                  shuffle=opts.shuffle)
        yield from zip(order, view)

    spec = (tf.TensorSpec((), tf.int64), tf.TensorSpec((), tf.int64))
    ds = tf.data.Dataset.from_generator(pairs, output_signature=spec)
    ds = ds.map(_examples(split, run.num_classes, size), num_parallel_calls=tf.data.AUTOTUNE)
    steps = math.ceil(n / opts.batch_size)
    return ds.batch(opts.batch_size).apply(
        tf.data.experimental.assert_cardinality(steps)).prefetch(tf.data.AUTOTUNE)


def validation_dataset(run: Run, size) -> tf.data.Dataset | None:
    """Batches of the validation images' clean view (view 0), in order."""
    if run.validation is None:
        return None
    n = len(run.validation.images)
    ds = tf.data.Dataset.from_tensor_slices((np.arange(n, dtype=np.int64),
                                             np.zeros(n, np.int64)))
    ds = ds.map(_examples(run.validation, run.num_classes, size),
                num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(run.options.batch_size).prefetch(tf.data.AUTOTUNE)


def _distiller(run: Run, stage, steps: int):
    opts = run.options
    teacher, student = distiller_models(run.student, run.num_classes)
    distiller = keras.distillation.Distiller(
        teacher, student, keras.distillation.LogitsDistillation(
            # An instance: with the string 'kl_divergence' Keras 3.15 applies the KL to
            # the logits themselves (its softmax is only for a KLDivergence instance).
            temperature=opts.temperature, loss=keras.losses.KLDivergence()),
        student_loss_weight=1.0 - opts.alpha)
    optimizer = make_optimizer(stage, run.blocks, steps_per_epoch=steps,
                               weight_decay=opts.weight_decay)
    options = distribute.compile_options(run.strategy)
    distiller.compile(optimizer=optimizer,
                      loss=MaskedCategoricalCrossentropy(label_smoothing=opts.label_smoothing),
                      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
                      jit_compile=opts.jit_compile,
                      steps_per_execution=options["steps_per_execution"])
    shape = (1,) + tuple(int(d) for d in run.student.inputs[0].shape[1:])
    distiller({IMAGE: np.zeros(shape, "float32"),
               TARGETS: np.zeros((1, run.num_classes), "float32")})
    return distiller


def run_stage(run: Run, index: int, stage) -> StageReport:
    """Trains one `kerastl.training.Stage` by distillation; the student ends at its best epoch."""
    opts, size = run.options, tuple(int(d) for d in run.student.inputs[0].shape[1:3])
    depth = stage.trainable_blocks
    apply_trainable_blocks(get_backbone(run.student), run.blocks, depth,
                           bn_training=opts.bn_training)
    n = len(run.train.images)
    steps = math.ceil(n / opts.batch_size)
    with distribute.scope(run.strategy), logits_output(run.student):
        distiller = _distiller(run, stage, steps)
    names = [b.name for b in run.blocks[len(run.blocks) - depth:]] if depth else []
    report = StageReport(stage.name, depth, names,
                         [v.path for v in distiller.student.trainable_weights], stage.epochs,
                         learning_rate=stage.learning_rate,
                         backbone_learning_rate=stage.backbone_learning_rate,
                         layer_decay=stage.layer_decay)
    selects = run.validation is not None
    best = BestWeights(run.monitor, patience=opts.patience(False) if selects else None,
                       tie_monitor="val_loss" if selects else None,
                       state_dir=run.checkpoint.stage_dir(index) if run.checkpoint else None,
                       select=selects)
    report.selected_on = "validation" if selects else "none: no validation data, last epoch"
    clock = EpochClock()
    backup = backup_callback(run.checkpoint, index)
    callbacks = [clock] + run.callbacks + [best] + ([backup] if backup else [])
    if opts.verbose:
        print(f"Stage {index + 1} {stage.name!r}: {depth}/{len(run.blocks)} blocks trainable, "
              f"{stage.epochs} epochs, lr {stage.learning_rate:g}, {n} images x "
              f"{run.train.boxes.shape[1]} views")
    val = validation_dataset(run, size)
    start = time.perf_counter()
    with logits_output(run.student):
        _fit(distiller, run, index, clock, size, val, stage.epochs, callbacks)
    report.train_seconds = time.perf_counter() - start
    here = len(getattr(distiller.history, "epoch", []) or [])
    report.resumed = len(best.epochs) > here
    report.epochs_run = len(best.epochs)
    report.history, report.best_epoch, report.best = best.history, best.best_epoch, best.best_logs
    report.stopped = best.stopped
    report.images_per_second = n * here / report.train_seconds if report.train_seconds else 0.0
    return report


def can_fit_linear_head(run: Run, stage) -> bool:
    """Whether a head stage can start from `kerastl.fit`'s closed-form head on the labels."""
    return (stage.trainable_blocks == 0 and run.train.images.num_labeled > 0
            and not get_head(run.student).hidden_units)


def run_linear_head(run: Run) -> StageReport:
    """Fits the head in closed form on the labelled images' clean features.

    This is `kerastl.fit`'s ``"feature_extraction"`` recipe (an L2 logistic
    head, its strength chosen on the validation images, not refitted on
    them), a far better start for the distillation stages than a few
    gradient epochs from a random head.
    """
    from kerastl.training.fitting import fit

    size = tuple(int(d) for d in run.student.inputs[0].shape[1:3])
    images, opts = run.train.images, run.options
    labelled = images.labels != UNLABELED
    train = (resized(images.pixels[labelled], size), images.labels[labelled])
    val = None if run.validation is None else (
        resized(run.validation.images.pixels, size), run.validation.images.labels)
    report = fit(run.student, train, val, recipe="feature_extraction", refit_head=False,
                 label_smoothing=opts.label_smoothing, batch_size=opts.batch_size,
                 seed=opts.seed, strategy=run.strategy, verbose=0)
    if opts.verbose:
        print(f"Stage 1 'head': closed-form head on {len(train[1])} labelled images "
              f"(l2={report.stages[0].l2:.3g})")
    return report.stages[0]


def _fit(distiller, run, index, clock, size, val, epochs, callbacks):
    opts = run.options
    distiller.fit(distribute.prepare_dataset(train_dataset(run, index, clock, size),
                                             run.strategy, training=True),
                  validation_data=None if val is None else distribute.prepare_dataset(
                      val, run.strategy, training=False),
                  epochs=epochs, verbose=_keras_verbose(opts.verbose),
                  callbacks=callbacks, shuffle=False)  # the dataset shuffles itself


__all__ = ["EpochClock", "Run", "Split", "can_fit_linear_head", "epoch_order", "run_linear_head",
           "run_stage", "train_dataset",
           "validation_dataset"]
