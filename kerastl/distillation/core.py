"""`kerastl.distill`: a trained kerastl model (or an ensemble) teaches a small one."""

from __future__ import annotations

import dataclasses
import time

import keras
import numpy as np
import tensorflow as tf

from kerastl.accessors import get_blocks, model_info
from kerastl.distillation.options import (DEFAULT_ALPHA, DEFAULT_FINE_TUNE_EPOCHS,
                                          DEFAULT_HEAD_EPOCHS, DEFAULT_TEMPERATURE,
                                          DEFAULT_TRAINABLE_BLOCKS, DEFAULT_VIEWS,
                                          check_distill_options)
from kerastl.distillation.teacher import TeacherCache, input_size
from kerastl.distillation.trainer import Run, Split, run_stage
from kerastl.distillation.views import Images, collect, view_boxes
from kerastl.distribute import resolve_strategy
from kerastl.freezing import check_trainable_blocks
from kerastl.model import model_spec
from kerastl.training.cache import FeatureCache
from kerastl.training.checkpoint import Checkpoint
# The stage loop of kerastl.fit (checkpoints, keep-a-stage rule), with its runner.
from kerastl.training.selection import run_stages as fit_stages
from kerastl.training.fitting import compile_for_evaluation, reseed_layers
from kerastl.training.inputs import Data
from kerastl.training.options import check_callbacks
from kerastl.training.recipes import Stage, plan_stages
from kerastl.training.report import FitReport

@dataclasses.dataclass
class DistillReport(FitReport):
    """What `kerastl.distillation.distill` did: a `kerastl.training.FitReport` plus the teacher.

    Attributes:
        teachers: Names of the teacher models (more than one: an ensemble).
        temperature: Softmax temperature of the distillation term.
        alpha: Weight of the distillation term (the label term has ``1 - alpha``).
        views: Fixed augmented views per image the teacher's outputs were cached on.
        augment: How the views were drawn.
        num_labeled: Training images with a label.
        num_unlabeled: Images that added only the distillation term.
        teacher_seconds: Wall time of the teacher's outputs (0 when read from a cache).
        fit: The ``"fit"`` stage's `kerastl.training.FitReport` as a dict (None without it).
    """

    teachers: list = dataclasses.field(default_factory=list)
    temperature: float = 0.0
    alpha: float = 0.0
    views: int = 0
    augment: str = ""
    num_labeled: int = 0
    num_unlabeled: int = 0
    teacher_seconds: float = 0.0
    fit: dict | None = None

    def __str__(self) -> str:
        lines = super().__str__().splitlines()
        lines[0] = (f"kerastl.distill: recipe {self.recipe!r}, teacher "
                    f"{' + '.join(self.teachers)}, {self.num_labeled} labelled + "
                    f"{self.num_unlabeled} unlabelled images x {self.views} views, "
                    f"T={self.temperature:g}, alpha={self.alpha:g}, teacher outputs "
                    f"{self.teacher_seconds:.1f} s")
        return "\n".join(lines)


def distill(teacher, student, train, validation_data=None, *, unlabeled=None,
            temperature=DEFAULT_TEMPERATURE, alpha=DEFAULT_ALPHA, views=DEFAULT_VIEWS,
            augment="crop_flip", recipe="two_stage", start="fit", refit_head=True,
            epochs=None, fine_tune_epochs=None, learning_rate=None, backbone_learning_rate=None,
            layer_decay=None, trainable_blocks=None, batch_size=32, label_smoothing=0.1,
            weight_decay=0.0, early_stopping=True, restore_best_weights=None, callbacks=None,
            checkpoint_dir=None,
            teacher_cache=None, jit_compile=False, strategy=None, bn_training=False,
            seed=None, verbose=1) -> DistillReport:
    """Trains `student` to match `teacher` ("patient and consistent" distillation).

    Every image gets `views` fixed augmented views (view 0 is the image
    itself); the teacher's outputs on them are computed once and cached. In
    each epoch of a distillation stage the student sees every image in one of
    its views and is trained, through `keras.distillation.Distiller` and
    `keras.distillation.LogitsDistillation`, on
    ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * crossentropy(labels)``
    (function matching, Beyer et al. 2022: teacher and student see the same
    view). The label term is averaged over labelled images only; `unlabeled`
    images add only the distillation term. Teacher and student each take RGB
    images in [0, 255] at their own input size (views are rendered for each
    from the loaded images) with their own preprocessing inside the model.

    Stages (``recipe="two_stage"``): first the student is trained on the
    labelled images by `kerastl.fit` with its defaults (``start="fit"``), or
    kept as given (``start="student"``), or, with no labelled images, its head
    is distilled on cached pooled features. Then the top `trainable_blocks`
    blocks (default: `kerastl.fit`'s fine-tuning depth) and the head are
    distilled; the student's activations below them on every view are cached
    (the views are fixed), so an epoch costs what a cached fine-tuning epoch
    of `kerastl.fit` costs. Epochs are chosen by `kerastl.fit`'s rule (see
    `restore_best_weights`), and
    a later stage is kept only when it clearly beats the earlier ones on the
    validation data (`kerastl.fit`'s sign test,
    `kerastl.training.selection.keeps`; not run when it could not be): the
    result is never below the fitted student on validation. ``"progressive"``
    distills growing depths, ``"feature_extraction"`` the head alone,
    ``"fine_tune"`` is one distillation stage from the weights as given.
    The student ends compiled for evaluation.

    Args:
        teacher: A trained kerastl model, or a list of them (an ensemble: the
            average of their probabilities is the target).
        student: A model from `kerastl.build` with the teacher's classes
            (e.g. ``kerastl.build("mobilenet", 5, input_shape=160,
            backbone_kwargs={"alpha": 0.25})``).
        train: Labelled images: a `kerastl.data.ImageData`, a `tf.data.Dataset`
            of ``(images, labels)`` batches, or a tuple ``(x, y)`` (may hold
            zero images when `unlabeled` has some). Images of any size.
        validation_data: Labelled validation images in the same forms, or None
            (an `ImageData` `train` brings its own).
        unlabeled: Images without labels: a folder, an array, a dataset of
            image batches or an `ImageData` (labels ignored); same size as `train`.
        temperature: Softmax temperature (> 0).
        alpha: Weight of the distillation term in [0, 1] (1: teacher only).
        views: Fixed views per image (1 to 64); the teacher runs on each once.
        augment: ``"crop_flip"``, ``"flip"`` or ``"none"`` (see `kerastl.distillation.views`).
        recipe: ``"two_stage"``, ``"fine_tune"``, ``"progressive"`` or ``"feature_extraction"``.
        start: The first stage with labelled images: ``"fit"`` (`kerastl.fit`)
            or ``"student"`` (the student's weights as given, e.g. already fitted).
        refit_head: When the student ends at the ``"fit"`` stage's linear head,
            refit that head on training + validation images as `kerastl.fit` does.
        epochs: Epochs of a distilled head stage (no labelled images; default 30).
        fine_tune_epochs: Epochs of each distillation stage (default 24).
        learning_rate, backbone_learning_rate, layer_decay: As in `kerastl.fit`.
        trainable_blocks: Unfreeze depth of the (last) distillation stage
            (default: `kerastl.fit`'s, 4 blocks).
        batch_size: Images per step.
        label_smoothing: Of the label term.
        weight_decay: Decoupled weight decay.
        early_stopping: True (patience 10 epochs on cached stages, 5 otherwise),
            False, or the patience, for stages that end at their best epoch.
        restore_best_weights: As in `kerastl.fit` (one rule,
            `kerastl.training.callbacks.epoch_selection`). None (default): the
            first stage ends at its best validation epoch, every later one
            (the distillation stage after ``"fit"``) at its last epoch, which
            is what is compared with the stages before it; True: every stage
            at its best epoch; False: every stage at its last.
        callbacks: Extra `keras.callbacks.Callback` objects (their ``model`` is the Distiller).
        checkpoint_dir: Folder that makes the run resumable (with the teacher's outputs).
        teacher_cache: A `kerastl.distillation.TeacherCache` to share between calls.
        jit_compile: Compile training steps with XLA.
        strategy: A `tf.distribute.Strategy` or a `kerastl.distribute.get_strategy` kind.
        bn_training: Let BatchNormalization layers of trainable blocks train.
        seed: Seed of the views, the order of examples and the weights.
        verbose: 0, 1 or 2.

    Returns:
        A `DistillReport`.

    Example:
        >>> data = kerastl.data.from_directory("flowers", image_size=224, validation_split=0.2)
        >>> student = kerastl.build("mobilenet", data.num_classes, input_shape=160,
        ...                         backbone_kwargs={"alpha": 0.25})
        >>> report = kerastl.distill(teacher, student, data, unlabeled="more_photos/")
        >>> kerastl.export(student, "saved_models/small", representative_data=data.train)
    """
    teachers = _check_models(teacher, student)
    opts = check_distill_options(
        temperature=temperature, alpha=alpha, views=views, augment=augment, recipe=recipe,
        start=start, refit_head=refit_head,
        epochs=epochs, fine_tune_epochs=fine_tune_epochs, learning_rate=learning_rate,
        backbone_learning_rate=backbone_learning_rate, layer_decay=layer_decay,
        trainable_blocks=trainable_blocks, batch_size=batch_size,
        label_smoothing=label_smoothing, weight_decay=weight_decay,
        early_stopping=early_stopping, restore_best_weights=restore_best_weights,
        checkpoint_dir=checkpoint_dir, jit_compile=jit_compile,
        bn_training=bn_training, seed=seed, verbose=verbose)
    user_callbacks = check_callbacks(callbacks)
    if teacher_cache is not None and not isinstance(teacher_cache, TeacherCache):
        raise ValueError("`teacher_cache` must be a kerastl.distillation.TeacherCache or None. "
                         f"Received: teacher_cache={teacher_cache!r}")
    started = time.perf_counter()
    num_classes = model_info(student).num_outputs
    images, val_images, num_labeled = _images(train, validation_data, unlabeled, num_classes,
                                              input_size(teachers[0]))
    strategy = resolve_strategy(strategy, student)
    if opts.seed is not None:
        keras.utils.set_random_seed(opts.seed)
        reseed_layers(student, opts.seed)  # as kerastl.fit: masks independent of earlier builds
    blocks = get_blocks(student)
    depth = opts.trainable_blocks if opts.trainable_blocks is not None else (
        DEFAULT_TRAINABLE_BLOCKS if opts.recipe != "feature_extraction" else 0)
    if depth is not None:
        check_trainable_blocks(depth, model_spec(student), len(blocks))
    stages = plan(opts, num_blocks=len(blocks), depth=depth, num_labeled=num_labeled)
    boxes = view_boxes(images.keys, opts.views, augment=opts.augment, seed=opts.seed)
    cache = teacher_cache if teacher_cache is not None else TeacherCache(
        None if opts.checkpoint_dir is None else f"{opts.checkpoint_dir}/teacher")
    start_time = time.perf_counter()
    computed = cache.computed
    train_split = Split(images, boxes, cache.get(teachers, images, boxes,
                                                 batch_size=opts.batch_size,
                                                 verbose=opts.verbose))
    val_split = None
    if val_images is not None:
        val_boxes = view_boxes(val_images.keys, 1, augment="none", seed=0)
        val_split = Split(val_images, val_boxes, cache.get(teachers, val_images, val_boxes,
                                                           batch_size=opts.batch_size))
    teacher_seconds = time.perf_counter() - start_time if cache.computed > computed else 0.0
    checkpoint = None
    if opts.checkpoint_dir is not None:
        checkpoint = Checkpoint(opts.checkpoint_dir, _plan(opts, stages, student, teachers),
                                train=_as_data(images), validation=_as_data(val_images))
    monitor = "val_accuracy" if val_split is not None else "loss"
    run = Run(student, blocks, num_classes, train_split, val_split, opts, strategy,
              user_callbacks, checkpoint, monitor, FeatureCache())
    report = DistillReport(opts.recipe, "multiclass", monitor, len(images),
                           teachers=[t.name for t in teachers], temperature=opts.temperature,
                           alpha=opts.alpha, views=opts.views, augment=opts.augment,
                           num_labeled=num_labeled, num_unlabeled=len(images) - num_labeled,
                           teacher_seconds=teacher_seconds)
    report.selected_on = ("validation" if val_split is not None
                          else "none: no validation data, the last stage")
    fit_stages(run, stages, report, runner=run_stage)  # refits a kept linear head
    report.fit = None if run.fit_report is None else run.fit_report.to_dict()
    compile_for_evaluation(student, strategy=strategy)
    report.seconds = time.perf_counter() - started
    if opts.verbose:
        print(report)
    return report


def plan(opts, *, num_blocks: int, depth, num_labeled: int) -> list:
    """The stages of a distill run: `kerastl.training.plan_stages`, its first stage replaced.

    The first stage becomes ``"fit"`` (`kerastl.fit`), ``"student"`` (the
    weights as given), or, without labelled images, a distilled ``"head"``;
    ``"feature_extraction"`` adds a distilled head stage; ``"fine_tune"`` is
    one distillation stage, from the weights as given.
    """
    stages = plan_stages(opts.recipe, num_blocks=num_blocks, head_cached=True,
                         epochs=opts.epochs or (DEFAULT_HEAD_EPOCHS
                                                if opts.recipe != "fine_tune" else None),
                         fine_tune_epochs=opts.fine_tune_epochs or DEFAULT_FINE_TUNE_EPOCHS,
                         learning_rate=opts.learning_rate,
                         backbone_learning_rate=opts.backbone_learning_rate,
                         layer_decay=opts.layer_decay, trainable_blocks=depth)
    if opts.recipe == "fine_tune":
        return stages
    head = stages[0]
    if opts.recipe == "feature_extraction":
        stages = [head, dataclasses.replace(
            head, name="distill", epochs=opts.fine_tune_epochs or DEFAULT_FINE_TUNE_EPOCHS)]
    if opts.start == "student":
        return [Stage("student", 0, 0, 0.0)] + stages[1:]
    if num_labeled:
        return [Stage("fit", 0, 0, 0.0)] + stages[1:]
    return [head] + (stages[1:] if opts.recipe != "feature_extraction" else [])


def _check_models(teacher, student) -> list:
    teachers = list(teacher) if isinstance(teacher, (list, tuple)) else [teacher]
    if not teachers:
        raise ValueError("`teacher` must be a kerastl model or a non-empty list of them. "
                         "Received: teacher=[]")
    for name, model in [("student", student)] + [("teacher", t) for t in teachers]:
        if not isinstance(model, keras.Model):
            raise TypeError(f"`{name}` must be a kerastl model (kerastl.build or its .keras "
                            f"file). Received: {name}={model!r:.200}")
        info = model_info(model)
        if info.task != "multiclass":
            raise ValueError(f"`{name}` must be a multiclass model (softmax outputs) to be "
                             f"distilled. Received: {name} with task={info.task!r}")
    classes = model_info(student).num_outputs
    for t in teachers:
        if model_info(t).num_outputs != classes:
            raise ValueError(f"`teacher` and `student` must have the same classes. Received: a "
                             f"teacher with {model_info(t).num_outputs} outputs, a student "
                             f"with {classes}")
    if any(t is student for t in teachers):
        raise ValueError("`student` must be another model than the teacher. Received: the "
                         "same model as teacher and student")
    return teachers


def _images(train, validation_data, unlabeled, num_classes, teacher_size):
    from kerastl.data import ImageData

    if isinstance(train, ImageData) and validation_data is None:
        validation_data = train.validation
    if isinstance(validation_data, ImageData):
        validation_data = validation_data.validation
    labeled = collect("train", train, labeled=True)
    size = teacher_size if labeled is None or not len(labeled) else labeled.pixels.shape[1:3]
    images = Images.concatenate([labeled, collect("unlabeled", unlabeled, labeled=False,
                                                  image_size=size)])
    val = collect("validation_data", validation_data, labeled=True)
    for name, part in (("train", images), ("validation_data", val)):
        if part is not None and len(part) and part.labels.max() >= num_classes:
            raise ValueError(f"`{name}` labels must be class indices below the student's "
                             f"{num_classes} classes. Received: a label {part.labels.max()}")
    if val is not None and not len(val):
        raise ValueError("`validation_data` is empty. Received: 0 images")
    return images, val, 0 if labeled is None else len(labeled)


def _as_data(images: Images | None):
    """A `kerastl.training.inputs.Data` of the images, for the checkpoint's fingerprint."""
    if images is None:
        return None
    spec = tf.data.Dataset.from_tensor_slices((images.pixels[:0], images.labels[:0])).batch(1)
    return Data(spec, (images.pixels, images.labels), len(images), 1, len(images))


def _plan(opts, stages, student, teachers) -> dict:
    return {"method": "distill", "model": student.name, "teachers": [t.name for t in teachers],
            "stages": [s.to_dict() for s in stages],
            **{k: getattr(opts, k) for k in ("temperature", "alpha", "views", "augment", "start",
                                             "refit_head",
                                             "label_smoothing", "seed", "batch_size",
                                             "bn_training", "weight_decay")}}


def agreement(teacher, student, images) -> dict:
    """Top-1 agreement and mean KL(teacher || student) on images (RGB in [0, 255]).

    Each model gets the images resized to its own input size.

    Example:
        >>> kerastl.distillation.agreement(teacher, student, x_val)["kl"]
    """
    pixels = np.asarray(images, "float32")
    probs = []
    for model in (teacher, student):
        x = tf.image.resize(pixels, input_size(model), antialias=True).numpy()
        probs.append(np.asarray(model.predict(x, verbose=0, batch_size=32), "float64"))
    p, q = (np.clip(a, 1e-12, 1.0) for a in probs)
    kl = float(np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=-1)))
    return {"agreement": float(np.mean(p.argmax(-1) == q.argmax(-1))), "kl": kl}


__all__ = ["DistillReport", "agreement", "distill"]
