import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerastl
from harness import separable_images
from kerastl import multitask
from kerastl.multitask.weighting import MultiTaskTrainer
from tests.multitask._models import tiny_two_task_model as _model


@pytest.fixture(scope="module")
def data():
    xa, ya = separable_images(24, 3, 32)
    xb, yb = separable_images(16, 2, 32, seed=2)
    return {"species": (xa, ya), "healthy": (xb, yb)}


def test_fit_reports_per_task_losses_metrics_and_learned_uncertainty_weights(data):
    model = _model()
    validation = {t: (x[:8], y[:8]) for t, (x, y) in data.items()}
    report = kerastl.multitask.fit(model, data, validation, loss_weighting="uncertainty",
                                   trainable_blocks="all", epochs=2, batch_size=8,
                                   learning_rate=0.05, verbose=0, seed=0)
    assert report.monitor == "val_mean_accuracy" and report.num_examples == {
        "species": 24, "healthy": 16}
    for task in ("species", "healthy"):
        for key in (f"{task}_loss", f"val_{task}_accuracy", f"weight_{task}"):
            assert len(report.history[key]) == 2, key
        row = report.per_task()[task]
        assert set(row) == {"loss", "accuracy", "val_loss", "val_accuracy", "weight"}
    # The log-variances trained: the weights moved away from exp(0) = 1.
    assert all(abs(w - 1.0) > 1e-4 for w in report.task_weights.values())
    # Keras numbers the trainers of one process: "multi_task_trainer" is "multi_task_trainer_1"
    # when another test of this worker built one first.
    names = set(report.trainable_weights)
    assert "conv_a/kernel" in names
    assert any(re.fullmatch(r"multi_task_trainer(_\d+)?/log_var_species", n) for n in names), names
    mean = np.mean([report.best["val_species_accuracy"], report.best["val_healthy_accuracy"]])
    assert report.best["val_mean_accuracy"] == pytest.approx(mean)
    assert "species: loss" in str(report)


def test_kerastl_fit_takes_one_dataset_per_task(data):
    report = kerastl.fit(_model(), data, epochs=1, verbose=0, seed=0)
    assert isinstance(report, multitask.MultiTaskReport)
    assert report.loss_weighting == "equal" and report.task_weights == {"species": 1.0,
                                                                        "healthy": 1.0}


def test_a_task_missing_from_a_batch_contributes_nothing():
    model = _model()
    trainer = MultiTaskTrainer(model, {"species": 1.0, "healthy": 3.0})
    x = tf.constant(separable_images(4, 3, 32)[0])
    y = {"species": tf.constant([0, 1, 2, 0]), "healthy": tf.constant([1, 1, 1, 1])}
    only_species = {"species": tf.ones(4), "healthy": tf.zeros(4)}
    heads = multitask.get_heads(model)
    with tf.GradientTape() as tape:
        loss = trainer.compute_loss(x, y, trainer(x), only_species)
    grads = tape.gradient(loss, heads["healthy"].trainable_weights)
    assert all(g is None or float(tf.reduce_max(tf.abs(g))) == 0.0 for g in grads)
    species = keras.losses.categorical_crossentropy(
        tf.one_hot(y["species"], 3), model(x)["species"])
    assert float(loss) == pytest.approx(float(tf.reduce_mean(species)), rel=1e-5)


def test_unknown_task_in_the_data_is_refused(data):
    with pytest.raises(ValueError, match=r"names unknown tasks \['colour'\]"):
        kerastl.multitask.fit(_model(), dict(data, colour=data["healthy"]), verbose=0)
    with pytest.raises(ValueError, match=r"no data for tasks \['healthy'\]"):
        kerastl.multitask.fit(_model(), {"species": data["species"]}, verbose=0)
    with pytest.raises(ValueError, match="a weight for each task"):
        kerastl.multitask.fit(_model(), data, loss_weighting={"species": 1.0}, verbose=0)
    with pytest.raises(ValueError, match="`loss_weighting` must be"):
        kerastl.multitask.fit(_model(), data, loss_weighting="learned", verbose=0)


def test_fit_with_a_peft_backbone_trains_lora_and_every_head(data, tmp_path):
    from kerastl import peft

    model = _model()
    report = kerastl.multitask.fit(model, data, peft={"method": "lora", "rank": 2}, epochs=1,
                                   batch_size=8, verbose=0, seed=0)
    assert sorted(report.trainable_weights) == sorted([
        "conv_a/lora_kernel_a", "conv_a/lora_kernel_b", "conv_b/lora_kernel_a",
        "conv_b/lora_kernel_b", "healthy/predictions/kernel", "healthy/predictions/bias",
        "species/predictions/kernel", "species/predictions/bias"])
    images = separable_images(3, 3, 32, seed=5)[0]
    path = peft.save(model, tmp_path / "two_tasks.peft.weights.h5")
    fresh = _model()
    peft.load(fresh, path)
    for task in ("healthy", "species"):
        np.testing.assert_array_equal(np.asarray(fresh(images)[task]),
                                      np.asarray(model(images)[task]))


def test_the_backbone_trains_at_its_own_rate_default_a_tenth_of_the_heads(data):
    model = _model()
    conv = model.get_layer("backbone").get_layer("conv_a").kernel
    head = multitask.get_heads(model)["species"].output_layer.kernel
    before_conv, before_head = np.asarray(conv), np.asarray(head)
    kerastl.multitask.fit(model, data, trainable_blocks="all", backbone_learning_rate=0.0,
                          epochs=1, batch_size=8, learning_rate=0.05, verbose=0, seed=0)
    np.testing.assert_array_equal(np.asarray(conv), before_conv)  # rate 0: not one step
    assert not np.allclose(np.asarray(head), before_head)
    with pytest.raises(ValueError, match="backbone_learning_rate"):
        kerastl.multitask.fit(_model(), data, backbone_learning_rate=-1.0, verbose=0)
