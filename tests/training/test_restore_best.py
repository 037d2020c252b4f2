"""`kerastl.fit(restore_best_weights=)`: which epoch each stage ends at."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerastl
from harness import separable_images, tiny_kerastl_model
from kerastl.training import fit

FINE_TUNE_EPOCHS = 4


def _arrays(n, seed, mislabeled=0):
    x, y = separable_images(n, 3, 32, seed=seed, mislabeled=mislabeled)
    return x, y


TRAIN, VAL = _arrays(48, 0), _arrays(24, 1, mislabeled=4)


class _CorruptLastFineTuneEpoch(keras.callbacks.Callback):
    """Wrecks the head at the start of the fine-tuning stage's last epoch."""

    def __init__(self, model):
        super().__init__()
        self.target = model

    def on_epoch_begin(self, epoch, logs=None):
        if self.params.get("epochs") == FINE_TUNE_EPOCHS and epoch == FINE_TUNE_EPOCHS - 1:
            for v in kerastl.get_head(self.target).weights:
                v.assign(tf.random.normal(v.shape, stddev=50.0, seed=7))


def _fit(**kwargs):
    model = tiny_kerastl_model(3)
    report = fit(model, TRAIN, VAL, recipe="two_stage", trainable_blocks=1,
                 fine_tune_epochs=FINE_TUNE_EPOCHS, learning_rate=1e-3,
                 callbacks=[_CorruptLastFineTuneEpoch(model)], seed=0, verbose=0, **kwargs)
    return model, report


def test_a_stage_after_the_head_is_judged_at_its_last_epoch_by_default():
    model, report = _fit()
    head, tune = report.stages
    assert head.selected_on.endswith("cross-validation on training + validation data")
    assert tune.epochs_run == FINE_TUNE_EPOCHS and tune.best_epoch == FINE_TUNE_EPOCHS - 1
    assert tune.best["val_accuracy"] == tune.history["val_accuracy"][-1]
    assert tune.selected_on == "none: last epoch, scored on validation"
    # The wrecked last epoch loses to the head, so the head's weights come back.
    assert report.best_stage == 0
    accuracy = float((model.predict(VAL[0], verbose=0).argmax(1) == VAL[1]).mean())
    assert accuracy >= head.best["val_accuracy"] - 1e-6


def test_restore_best_weights_true_ends_every_stage_at_its_best_epoch():
    _, report = _fit(restore_best_weights=True)
    tune = report.stages[1]
    history = tune.history["val_accuracy"]
    assert tune.best_epoch < FINE_TUNE_EPOCHS - 1  # not the wrecked epoch
    assert tune.best["val_accuracy"] == max(history) > history[-1]
    assert tune.selected_on == "validation"


def test_restore_best_weights_false_ends_the_first_stage_at_its_last_epoch_too():
    model = tiny_kerastl_model(3)
    report = fit(model, TRAIN, VAL, recipe="feature_extraction", head_solver="gradient",
                 epochs=3, learning_rate=0.01, restore_best_weights=False, seed=0, verbose=0)
    stage = report.stages[0]
    assert stage.best_epoch == 2 and stage.stopped is None
    assert stage.best["val_accuracy"] == stage.history["val_accuracy"][-1]


@pytest.mark.parametrize("value", ["yes", 1, np.bool_(True)])
def test_restore_best_weights_must_be_a_bool_or_none(value):
    with pytest.raises(ValueError, match="`restore_best_weights` must be"):
        fit(tiny_kerastl_model(3), TRAIN, VAL, restore_best_weights=value, verbose=0)
