"""`fine_tune_interpolation`: a fine-tuning stage ends between its start and its trained weights."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerastl
from harness import separable_images, tiny_kerastl_model
from kerastl.training import fit
from kerastl.training.stage import interpolate_weights


def _data(n, seed, batch, mislabeled=0):
    x, y = separable_images(n, 3, seed=seed, mislabeled=mislabeled)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch), x, y


TRAIN, X, Y = _data(48, 0, 16)
VAL, XV, YV = _data(24, 1, 12, mislabeled=4)


class Recorder(keras.callbacks.Callback):
    """The trained variables at the start and at the end of each Keras training run."""

    def __init__(self):
        super().__init__()
        self.runs = []

    def on_train_begin(self, logs=None):
        self.runs.append({"start": {v.path: v.numpy() for v in self.model.trainable_weights}})

    def on_train_end(self, logs=None):  # before kerastl's best-epoch restore
        self.runs[-1]["end"] = {v.path: v.numpy() for v in self.model.trainable_weights}


class Sabotage(keras.callbacks.Callback):
    """Sets the head to minus the fitted head after every step: the least likely class wins."""

    def __init__(self, model):
        super().__init__()
        self.output = kerastl.get_head(model).output_layer

    def on_train_begin(self, logs=None):
        self.start = [np.array(w) for w in self.output.get_weights()]

    def on_train_batch_end(self, batch, logs=None):
        self.output.set_weights([-w for w in self.start])


def _variables(model):
    return {v.path: v for v in model.weights}


def _two_stage(model, validation=None, **kwargs):
    return fit(model, TRAIN, validation, recipe="two_stage", fine_tune_epochs=2,
               trainable_blocks=2, learning_rate=0.01, seed=0, verbose=0, **kwargs)


def test_the_stage_ends_at_exactly_the_interpolation():
    model, recorder = tiny_kerastl_model(3), Recorder()
    report = _two_stage(model, fine_tune_interpolation=0.25, callbacks=[recorder])
    (run,) = recorder.runs  # the head is closed form: one Keras run, the fine-tuning
    variables = _variables(model)
    moved = 0
    for path, start in run["start"].items():
        end = run["end"][path]
        moved += not np.allclose(start, end)
        # float32 products and a sum: a few ulps of the operands.
        np.testing.assert_allclose(variables[path].numpy(), 0.75 * start + 0.25 * end,
                                   rtol=1e-6, atol=1e-7 * float(np.abs(end).max() + 1))
    assert moved > 0  # the fine-tuning did change the weights
    head, tune = report.stages
    assert head.interpolation is None and tune.interpolation == 0.25
    # No validation data: no choice was made, and the fine-tuned metrics are kept aside.
    assert tune.fine_tuned_best == tune.best


def test_the_default_keeps_the_fine_tuned_weights():
    model, recorder = tiny_kerastl_model(3), Recorder()
    report = _two_stage(model, callbacks=[recorder])  # fine_tune_interpolation=1.0
    variables = _variables(model)
    for path, end in recorder.runs[0]["end"].items():
        np.testing.assert_array_equal(variables[path].numpy(), end)
    assert report.stages[1].interpolation is None and report.stages[1].fine_tuned_best == {}


def test_validation_scores_the_interpolated_weights():
    model, recorder = tiny_kerastl_model(3), Recorder()
    # No label smoothing, to compare the loss with evaluate's.
    report = _two_stage(model, VAL, callbacks=[recorder], label_smoothing=0.0,
                        fine_tune_interpolation=0.5)
    tune = report.stages[1]
    assert tune.interpolation == 0.5
    variables = _variables(model)
    run = recorder.runs[0]
    for path, start in run["start"].items():  # score the interpolation whatever was kept
        variables[path].assign(0.5 * start + 0.5 * run["end"][path])
    result = kerastl.training.compile_for_evaluation(model).evaluate(XV, YV, verbose=0,
                                                                     return_dict=True)
    assert round(result["accuracy"] * 24) == round(tune.best["val_accuracy"] * 24)
    np.testing.assert_allclose(tune.best["val_loss"], result["loss"], rtol=1e-4)
    assert set(tune.fine_tuned_best) >= {"val_accuracy", "val_loss", "loss"}


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_a_fine_tuning_worse_on_validation_is_still_discarded(alpha):
    model = tiny_kerastl_model(3)
    backbone = kerastl.get_backbone(model).weights
    before = [v.numpy() for v in backbone]
    report = _two_stage(model, VAL, callbacks=[Sabotage(model)], fine_tune_interpolation=alpha)
    head, tune = report.stages
    assert tune.interpolation == (None if alpha == 1.0 else alpha)
    assert tune.best["val_accuracy"] < head.best["val_accuracy"]
    assert report.best_stage == 0 and report.best == head.best
    for value, start in zip(backbone, before):  # the backbone is back where it started
        np.testing.assert_array_equal(value.numpy(), start)
    assert head.refit_on == "training + validation data"
    accuracy = kerastl.training.compile_for_evaluation(model).evaluate(
        XV, YV, verbose=0, return_dict=True)["accuracy"]
    assert accuracy >= head.best["val_accuracy"] - 1.5 / 24  # the head, not the sabotage


def test_a_stage_with_a_new_head_is_not_mixed():
    report = fit(tiny_kerastl_model(3), TRAIN, recipe="fine_tune", epochs=1, trainable_blocks=1,
                 fine_tune_interpolation=0.5, seed=0, verbose=0)
    assert report.stages[0].interpolation is None


@pytest.mark.parametrize("value", [0, 0.0, -0.5, 1.5, "half", True, None, float("nan")])
def test_the_option_is_checked(value):
    with pytest.raises(ValueError, match="`fine_tune_interpolation` must be .*Received: "
                                         "fine_tune_interpolation="):
        fit(tiny_kerastl_model(3), TRAIN, fine_tune_interpolation=value, verbose=0)


def test_interpolate_weights_mixes_per_array_in_the_fine_tuned_dtype():
    start = [np.zeros((2, 2), "float32"), np.full(3, 4.0, "float16")]
    end = [np.ones((2, 2), "float32"), np.full(3, 8.0, "float16")]
    out = interpolate_weights(start, end, 0.25)
    np.testing.assert_array_equal(out[0], np.full((2, 2), 0.25, "float32"))
    np.testing.assert_array_equal(out[1], np.full(3, 5.0, "float16"))
    assert [a.dtype for a in out] == ["float32", "float16"]
