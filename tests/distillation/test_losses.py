"""MaskedCategoricalCrossentropy, the logits switch and the Distiller's models."""

import keras
import numpy as np
import pytest
from harness import (TINY_MODEL, assert_float32_close, assert_serialization_round_trip,
                     float32_tolerance, tiny_kerastl_model)

from kerastl.distillation import MaskedCategoricalCrossentropy
from kerastl.distillation.losses import distiller_models, logits_output


def _ce(y, logits, smoothing=0.0):
    k = y.shape[-1]
    y = y * (1 - smoothing) + smoothing / k
    z = logits - logits.max(-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return -(y * log_p).sum(-1)


def test_unlabelled_rows_add_nothing():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 4)).astype("float32")
    y = np.eye(4, dtype="float32")[[0, 1, 2, 3, 0, 1]]
    y[[1, 4]] = 0.0  # two unlabelled rows
    loss = MaskedCategoricalCrossentropy(label_smoothing=0.1)
    labelled = [0, 2, 3, 5]
    expected = _ce(y[labelled], logits[labelled], 0.1).mean()
    np.testing.assert_allclose(float(loss(y, logits)), expected,
                               rtol=float32_tolerance(depth=3, terms=4))
    # Their logits do not matter.
    other = logits.copy()
    other[[1, 4]] = 50.0
    assert float(loss(y, other)) == pytest.approx(float(loss(y, logits)), rel=1e-6)
    # A batch of unlabelled rows: 0.
    assert float(loss(np.zeros_like(y), logits)) == 0.0


def test_loss_round_trip_and_checks():
    loss = MaskedCategoricalCrossentropy(label_smoothing=0.2)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, MaskedCategoricalCrossentropy) and again.label_smoothing == 0.2
    assert_serialization_round_trip(loss)
    with pytest.raises(ValueError, match="label_smoothing"):
        MaskedCategoricalCrossentropy(label_smoothing=1.0)


def test_logits_output_restores_softmax_and_models_share_layers():
    model = tiny_kerastl_model(3, size=16)
    x = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    probs = np.asarray(model(x))
    teacher, student = distiller_models(model, 3)
    with logits_output(model):
        logits = np.asarray(student({"image": x, "teacher_logits": np.zeros((2, 3))}))
    z = np.exp(logits - logits.max(-1, keepdims=True))
    # The softmax redone in NumPy from the logits: an exp and a 3-term sum.
    assert_float32_close(z / z.sum(-1, keepdims=True), probs, depth=2, terms=3)
    assert_float32_close(np.asarray(model(x)), probs, **TINY_MODEL)
    targets = np.arange(6, dtype="float32").reshape(2, 3)
    np.testing.assert_array_equal(np.asarray(teacher({"image": x, "teacher_logits": targets})),
                                  targets)
    assert {v.path for v in student.trainable_weights} == {
        v.path for v in model.trainable_weights}
