"""The stages of a distillation run, for `kerastl.training.fit`'s stage loop.

* ``"fit"``: the student trained on the labelled images by `kerastl.fit` with
  its defaults (the head in closed form, then a fine-tuning stage kept only if
  it wins on validation): the start that distillation must beat.
* ``"student"``: the student's weights as given (evaluated on validation).
* any other stage: distilled by `keras.distillation.Distiller` on the fixed
  views. While the bottom blocks are frozen, the student's activations where
  they end are computed once per view and kept in a
  `kerastl.training.FeatureCache` (the views are fixed, like the teacher's
  outputs on them), so an epoch runs only the trained top blocks and the head,
  as a cached `kerastl.fit` fine-tuning epoch does.

The stage loop keeps a later stage only when it beats the earlier ones on the
validation data (`kerastl.fit`'s rule), so a distilled student never ends
below the fitted one on validation.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time

import keras
import numpy as np

from kerastl import distribute
from kerastl.accessors import get_backbone
from kerastl.distillation import datasets
from kerastl.distillation.losses import (IMAGE, TARGETS, MaskedCategoricalCrossentropy,
                                         distiller_models, logits_output)
from kerastl.distillation.views import UNLABELED, Images, resized
from kerastl.freezing import apply_trainable_blocks
from kerastl.training import graph
from kerastl.training.callbacks import epoch_selection
from kerastl.training.checkpoint import backup_callback
from kerastl.training.optim import make_optimizer
from kerastl.training.report import StageReport
from kerastl.training.stage import keras_verbose

# FeatureCache namespace of the student's activations on the views.
NAMESPACE = "kerastl.distill views"


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
    cache: object            # kerastl.training.FeatureCache
    fit_report: object = None
    # What kerastl.training.fit's stage loop (`kerastl.training.selection.run_stages`)
    # and its head refit read of a context.
    task = "multiclass"
    class_weights = None

    @property
    def model(self) -> keras.Model:
        return self.student

    @property
    def num_outputs(self) -> int:
        return self.num_classes

    def cut_for(self, depth: int):
        """Nothing to warm up front: each stage caches after the stages before it ran."""
        return None, None

    def cached(self, cut) -> tuple:
        """``(train, validation)`` activations at `cut` of the labelled images (clean).

        What `kerastl.fit`'s head refit reads (`kerastl.training.stage.refit_linear_head`).
        """
        import tensorflow as tf

        out = []
        for split, validation in ((self.train, False), (self.validation, True)):
            arrays = self.arrays(validation=validation)
            out.append(None if arrays is None else self.cache.get(
                self.student, tf.data.Dataset.from_tensor_slices(arrays).batch(
                    self.options.batch_size), cut, source=split,
                namespace=(NAMESPACE, "labelled")))
        return tuple(out)

    def validation_batches(self):
        """The labelled validation images and class ids in batches (None without validation)."""
        import tensorflow as tf

        arrays = self.arrays(validation=True)
        if arrays is None:
            return None
        return tf.data.Dataset.from_tensor_slices(arrays).batch(self.options.batch_size)

    @property
    def size(self) -> tuple[int, int]:
        return tuple(int(d) for d in self.student.inputs[0].shape[1:3])

    def arrays(self, *, validation: bool):
        """The labelled images at the student's size: ``(x, y)`` (None without validation)."""
        split = self.validation if validation else self.train
        if split is None:
            return None
        keep = split.images.labels != UNLABELED
        return resized(split.images.pixels[keep], self.size), split.images.labels[keep]


def run_stage(run: Run, index: int, stage) -> StageReport:
    """Runs one stage (see the module docstring)."""
    if stage.name == "fit":
        return run_fit(run, stage)
    if stage.name == "student":
        return run_given(run, stage)
    return run_distill(run, index, stage)


def run_fit(run: Run, stage) -> StageReport:
    """`kerastl.fit` of the student on the labelled images (its defaults, no head refit).

    The head is not refitted on the validation images here (they must still
    judge the distillation stages); the stage loop refits it at the end when
    this stage is the one kept (``refit_head``, as `kerastl.fit`).
    """
    from kerastl.training.fitting import fit

    opts = run.options
    folder = None if run.checkpoint is None else os.path.join(opts.checkpoint_dir, "fit")
    report = fit(run.student, run.arrays(validation=False), run.arrays(validation=True),
                 recipe="feature_extraction" if opts.recipe == "feature_extraction" else "auto",
                 refit_head=False, label_smoothing=opts.label_smoothing,
                 restore_best_weights=opts.restore_best_weights,
                 batch_size=opts.batch_size, seed=opts.seed, strategy=run.strategy,
                 checkpoint_dir=folder, verbose=0)
    run.fit_report = report
    kept = report.stages[report.best_stage]
    if opts.verbose:
        print(f"Stage 1 'fit': kerastl.fit on {report.num_examples} labelled images, kept "
              f"its {kept.name!r} stage ({report.seconds:.1f} s)")
    return dataclasses.replace(
        kept, name="fit", cache_seconds=0.0, train_seconds=report.seconds, best=report.best,
        selected_on=f"kerastl.fit ({report.selected_on}): its {kept.name!r} stage")


def run_given(run: Run, stage) -> StageReport:
    """The student as given: its validation metrics, for the keep rule."""
    from kerastl.training.fitting import compile_for_evaluation

    report = StageReport(stage.name, 0, [], [], 0, selected_on="the weights as given")
    val = run.arrays(validation=True)
    if val is not None:
        compile_for_evaluation(run.student, strategy=run.strategy)
        logs = run.student.evaluate(*val, batch_size=run.options.batch_size, verbose=0,
                                    return_dict=True)
        report.best = {"val_accuracy": float(logs["accuracy"]), "val_loss": float(logs["loss"])}
        report.history = {k: [v] for k, v in report.best.items()}
        report.best_epoch = 0
    return report


def _cut(run: Run, depth: int):
    if depth == 0:
        return graph.pooled_cut(run.student)
    return graph.prefix_cut(run.student, run.blocks, depth)


def _stage_data(run: Run, index: int, depth: int, clock):
    """``(trained model, train dataset, validation dataset, cached mode, note)``."""
    opts, size = run.options, run.size
    cut = _cut(run, depth)
    if cut is None:
        note = ("every block is trainable: nothing to cache" if depth >= len(run.blocks) else
                "the frozen blocks do not end in a single tensor: training on images")
        val = None if run.validation is None else datasets.image_validation_dataset(
            run.validation, run.num_classes, size, opts.batch_size)
        return (run.student, datasets.image_train_dataset(
            run.train, run.num_classes, opts, index, clock, size), val, None, note)

    def activations(split):
        return run.cache.get(run.student, datasets.view_batches(
            split, size, batch_size=opts.batch_size), cut, source=split,
            namespace=NAMESPACE).arrays[0]

    train = datasets.cached_train_dataset(activations(run.train), run.train, run.num_classes,
                                          opts, index, clock)
    val = None if run.validation is None else datasets.cached_validation_dataset(
        activations(run.validation), run.validation, run.num_classes, opts.batch_size)
    model = graph.head_model(run.student) if cut.pooled else graph.suffix_model(run.student, cut)
    return model, train, val, "features" if cut.pooled else "prefix", None


def _distiller(run: Run, model, stage, steps: int):
    opts = run.options
    teacher, student = distiller_models(model, run.num_classes)
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
    shape = (1,) + tuple(int(d) for d in model.inputs[0].shape[1:])
    distiller({IMAGE: np.zeros(shape, "float32"),
               TARGETS: np.zeros((1, run.num_classes), "float32")})
    return distiller


def run_distill(run: Run, index: int, stage) -> StageReport:
    """Trains one `kerastl.training.Stage` by distillation.

    The student ends at the stage's best validation epoch or its last one, by
    `kerastl.fit`'s rule (`kerastl.training.stage.epoch_selection`).
    """
    opts, depth = run.options, stage.trainable_blocks
    apply_trainable_blocks(get_backbone(run.student), run.blocks, depth,
                           bn_training=opts.bn_training)
    clock = datasets.EpochClock()
    start = time.perf_counter()
    model, train, val, mode, note = _stage_data(run, index, depth, clock)
    cache_seconds = time.perf_counter() - start
    n = len(run.train.images)
    steps = math.ceil(n / opts.batch_size)
    with distribute.scope(run.strategy), logits_output(run.student):
        distiller = _distiller(run, model, stage, steps)
    names = [b.name for b in run.blocks[len(run.blocks) - depth:]] if depth else []
    report = StageReport(stage.name, depth, names,
                         [v.path for v in distiller.student.trainable_weights], stage.epochs,
                         learning_rate=stage.learning_rate,
                         backbone_learning_rate=stage.backbone_learning_rate,
                         layer_decay=stage.layer_decay, cached=mode, cache_note=note,
                         cache_seconds=cache_seconds)
    best, report.selected_on = epoch_selection(
        opts, index, run.monitor, cached=mode is not None, validated=run.validation is not None,
        state_dir=run.checkpoint.stage_dir(index) if run.checkpoint else None)
    backup = backup_callback(run.checkpoint, index)
    callbacks = [clock] + run.callbacks + [best] + ([backup] if backup else [])
    if opts.verbose:
        print(f"Stage {index + 1} {stage.name!r}: {depth}/{len(run.blocks)} blocks trainable, "
              f"{stage.epochs} epochs, lr {stage.learning_rate:g}, {n} images x "
              f"{run.train.boxes.shape[1]} views" + (f", cached {mode} ({cache_seconds:.1f} s)"
                                                     if mode else ""))
    start = time.perf_counter()
    with logits_output(run.student):
        distiller.fit(distribute.prepare_dataset(train, run.strategy, training=True),
                      validation_data=None if val is None else distribute.prepare_dataset(
                          val, run.strategy, training=False),
                      epochs=stage.epochs, verbose=keras_verbose(opts.verbose),
                      callbacks=callbacks, shuffle=False)  # the dataset shuffles itself
    report.train_seconds = time.perf_counter() - start
    here = len(getattr(distiller.history, "epoch", []) or [])
    report.resumed = len(best.epochs) > here
    report.epochs_run = len(best.epochs)
    report.history, report.best_epoch, report.best = best.history, best.best_epoch, best.best_logs
    report.stopped = best.stopped
    report.images_per_second = n * here / report.train_seconds if report.train_seconds else 0.0
    return report


__all__ = ["NAMESPACE", "Run", "Split", "run_distill", "run_fit", "run_given",
           "run_stage"]
