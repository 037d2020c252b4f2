"""The pieces `keras.distillation.Distiller` trains a kerastl student with.

* `MaskedCategoricalCrossentropy`: the student's label term, averaged over
  the labelled examples of a batch only; an unlabelled example (an all-zero
  target row) adds nothing to it, so it contributes only the distillation term.
* `distiller_models`: the teacher and student as the Distiller sees them.
  Both take ``{"image": student view, "teacher_logits": cached targets}``:
  the "teacher" returns the cached targets (the real teachers ran once,
  `kerastl.distillation.teacher`), the student returns its logits.
* `logits_output`: makes a kerastl model output logits for a while (its head
  ends in a softmax; the distillation loss divides logits by the temperature).
"""

from __future__ import annotations

import contextlib

import keras
from keras import ops

from kerastl._validation import check_float
from kerastl.accessors import get_head

IMAGE = "image"
TARGETS = "teacher_logits"


@keras.saving.register_keras_serializable(package="kerastl")
class MaskedCategoricalCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy from logits over the rows that have a label.

    A row of `y_true` that sums to 0 is unlabelled: it is left out of both
    the sum and the count, so a batch of unlabelled rows has a loss of 0 and
    no gradient. Labelled rows are smoothed as
    ``y * (1 - label_smoothing) + label_smoothing / classes``.

    Args:
        label_smoothing: In [0, 1).
        name: Loss name.

    Example:
        >>> loss = kerastl.distillation.MaskedCategoricalCrossentropy(label_smoothing=0.1)
        >>> float(loss(np.array([[0., 1.], [0., 0.]]), np.array([[0., 3.], [9., 0.]])))
    """

    def __init__(self, label_smoothing: float = 0.0, name: str = "masked_crossentropy",
                 reduction: str = "sum", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.label_smoothing = check_float("label_smoothing", label_smoothing, minimum=0.0,
                                           maximum=1.0, max_inclusive=False)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        mask = ops.cast(ops.sum(y_true, axis=-1) > 0, y_pred.dtype)
        classes = ops.cast(ops.shape(y_pred)[-1], y_pred.dtype)
        smoothed = y_true * (1.0 - self.label_smoothing) + self.label_smoothing / classes
        per_row = -ops.sum(smoothed * ops.log_softmax(y_pred, axis=-1), axis=-1)
        return per_row * mask / ops.maximum(ops.sum(mask), 1.0)

    def get_config(self):
        return {"label_smoothing": self.label_smoothing, "name": self.name,
                "reduction": self.reduction, "dtype": None}


@contextlib.contextmanager
def logits_output(model):
    """Makes the head's output layer linear (logits) inside the block, then restores it."""
    layer = get_head(model).output_layer
    activation = layer.activation
    layer.activation = keras.activations.linear
    try:
        yield model
    finally:
        layer.activation = activation


def distiller_models(student, num_classes: int):
    """Returns ``(teacher, student)`` functional models for `keras.distillation.Distiller`.

    Both take ``{"image": (h, w, 3) student-size view, "teacher_logits": (classes,)}``.
    The student model shares `student`'s layers (training it trains `student`);
    call it inside `logits_output` so it returns logits.
    """
    shape = tuple(int(d) for d in student.inputs[0].shape[1:])
    inputs = {IMAGE: keras.Input(shape, name=IMAGE),
              TARGETS: keras.Input((num_classes,), name=TARGETS)}
    teacher = keras.Model(inputs, keras.layers.Identity(name="cached_teacher")(inputs[TARGETS]),
                          name="cached_teacher")
    wrapped = keras.Model(inputs, student(inputs[IMAGE]), name=f"{student.name}_student")
    return teacher, wrapped


__all__ = ["IMAGE", "MaskedCategoricalCrossentropy", "TARGETS", "distiller_models",
           "logits_output"]
