"""`kerastl.distill(restore_best_weights=)`: the epoch rule of `kerastl.fit`."""

import keras
import pytest
import tensorflow as tf
from harness import separable_images, tiny_kerastl_model

import kerastl
from kerastl.distillation import distill
from .helpers import teacher_and_data

EPOCHS = 4


class _WreckLastDistillEpoch(keras.callbacks.Callback):
    """Wrecks the student's head at the start of the distillation stage's last epoch."""

    def __init__(self, student):
        super().__init__()
        self.student = student

    def on_epoch_begin(self, epoch, logs=None):
        if self.params.get("epochs") == EPOCHS and epoch == EPOCHS - 1:
            for v in kerastl.get_head(self.student).weights:
                v.assign(tf.random.normal(v.shape, stddev=50.0, seed=7))


@pytest.fixture(scope="module")
def data():
    teacher, train, val = teacher_and_data()
    # Some labels no student gets right, so no epoch is perfect and epochs differ.
    return teacher, train, (val[0], separable_images(24, 3, 32, seed=1, mislabeled=4)[1])


def _distill(data, **kwargs):
    teacher, train, val = data
    student = tiny_kerastl_model(3, size=24, seed=5)
    report = distill(teacher, student, train, val, trainable_blocks=1, views=2,
                     fine_tune_epochs=EPOCHS, learning_rate=1e-3, batch_size=8, seed=0,
                     callbacks=[_WreckLastDistillEpoch(student)], verbose=0, **kwargs)
    return student, report


def test_the_distillation_stage_after_fit_is_judged_at_its_last_epoch_by_default(data):
    student, report = _distill(data)
    fitted, tuned = report.stages
    assert fitted.name == "fit"
    assert tuned.epochs_run == EPOCHS and tuned.best_epoch == EPOCHS - 1
    assert tuned.best["val_accuracy"] == tuned.history["val_accuracy"][-1]
    assert tuned.selected_on == "none: last epoch, scored on validation"
    # The wrecked last epoch loses to the fitted student, which is kept.
    assert report.best_stage == 0
    val = data[2]
    x = tf.image.resize(val[0], (24, 24), antialias=True).numpy()
    accuracy = float((student.predict(x, verbose=0).argmax(1) == val[1]).mean())
    assert accuracy >= fitted.best["val_accuracy"] - 1 / len(val[1])


def test_restore_best_weights_true_ends_the_distillation_stage_at_its_best_epoch(data):
    _, report = _distill(data, restore_best_weights=True)
    tuned = report.stages[1]
    history = tuned.history["val_accuracy"]
    assert tuned.best_epoch < EPOCHS - 1  # not the wrecked epoch
    assert tuned.best["val_accuracy"] == max(history) > history[-1]
    assert tuned.selected_on == "validation"


def test_restore_best_weights_is_checked(data):
    teacher, train, val = data
    with pytest.raises(ValueError, match="`restore_best_weights` must be"):
        distill(teacher, tiny_kerastl_model(3, size=24), train, val, restore_best_weights="yes",
                verbose=0)
