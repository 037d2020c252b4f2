"""AdaBN and TENT: BatchNormalization statistics and affine parameters on target images."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import float32_tolerance, tiny_kerastl_model

from kerastl.adapt import batchnorm
from kerastl.adapt.data import as_target
from kerastl.adapt.features import evaluate
from kerastl.training import FeatureCache

from .conftest import source_trained


def test_statistics_are_the_running_average_of_batch_statistics(shifted):
    model = tiny_kerastl_model(3)
    backbone = model.get_layer("backbone")
    first = batchnorm.batch_norm_layers([backbone])[0]
    images = shifted["target"]
    target = as_target(images, input_shape=model.input_shape, batch_size=40)
    probe = keras.Model(backbone.inputs, first.input)
    inputs = probe(model.get_layer("preprocessing")(images)).numpy().astype("float64")
    batches = [inputs[i:i + 40] for i in range(0, len(inputs), 40)]
    sizes = np.array([len(b) for b in batches], "float64")
    mean = sum(s * b.mean(axis=(0, 1, 2)) for s, b in zip(sizes, batches)) / sizes.sum()
    var = sum(s * b.var(axis=(0, 1, 2)) for s, b in zip(sizes, batches)) / sizes.sum()
    momentum, trainable = first.momentum, first.trainable
    assert batchnorm.estimate_batch_norm(model, target) == 2
    tol = float32_tolerance(depth=3, terms=27)
    np.testing.assert_allclose(first.moving_mean.numpy(), mean, rtol=tol,
                               atol=tol * np.abs(mean).max())
    np.testing.assert_allclose(first.moving_variance.numpy(), var, rtol=10 * tol)
    assert (first.momentum, first.trainable) == (momentum, trainable)  # put back


def test_new_statistics_invalidate_the_feature_cache(shifted):
    model = source_trained(tiny_kerastl_model(3), shifted)
    cache = FeatureCache()
    before = evaluate(model, shifted["validation"], feature_cache=cache)
    batches = cache.backbone_batches
    assert evaluate(model, shifted["validation"], feature_cache=cache) == before
    assert cache.backbone_batches == batches  # a hit
    batchnorm.estimate_batch_norm(model, as_target(shifted["target"],
                                                   input_shape=model.input_shape))
    evaluate(model, shifted["validation"], feature_cache=cache)
    assert cache.backbone_batches > batches  # recomputed with the new statistics


def test_adabn_recovers_the_fogged_target(shifted):
    model = source_trained(tiny_kerastl_model(3), shifted)
    labelled = (shifted["target"], shifted["target_labels"])
    cache = FeatureCache()
    source_only = evaluate(model, labelled, feature_cache=cache)
    assert source_only <= 0.45  # chance is 1/3
    result = batchnorm.adabn(model, shifted["target"], source=shifted["source"],
                             source_validation=shifted["validation"], feature_cache=cache, seed=0)
    assert result["batch_norm_layers"] == 2 and result["head"]["l2"] > 0
    assert evaluate(model, labelled, feature_cache=cache) >= 0.9


def test_adabn_needs_batch_norm(shifted):
    from .conftest import adapter_model

    model = source_trained(adapter_model(batch_norm=False), shifted)
    with pytest.raises(ValueError, match="AdaBN needs BatchNormalization layers"):
        batchnorm.adabn(model, shifted["target"])


def test_tent_lowers_the_target_entropy_and_keeps_the_model_plain(shifted, tmp_path):
    model = source_trained(tiny_kerastl_model(3), shifted)
    names = [w.path for w in model.weights]
    output = model.get_layer("head").output_layer
    kernel, bias = output.get_weights()
    output.set_weights([kernel * 0.02, bias * 0.02])  # an unsure head: entropy to lower
    result = batchnorm.tent(model, shifted["target"], trainable_blocks=2, epochs=4,
                            learning_rate=1e-2, seed=0)
    assert result["variables"] == 2  # gamma and beta of the top BatchNormalization
    assert result["entropy"][-1] < result["entropy"][0]
    assert [w.path for w in model.weights] == names
    labelled = (shifted["target"], shifted["target_labels"])
    assert evaluate(model, labelled) >= 0.9  # AdaBN first, then TENT
    from harness import assert_keras_round_trip

    assert_keras_round_trip(model, shifted["target"][:4], tmp_path)


def test_tent_loss_matches_numpy():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]], "float32")

    def entropy(p):
        return -(p * np.log(p)).sum(axis=-1)

    for weight in (0.0, 1.0, 0.5):
        expected = entropy(probs).mean() - weight * entropy(probs.mean(axis=0))
        np.testing.assert_allclose(
            float(batchnorm.tent_loss("multiclass", tf.constant(probs), weight)), expected,
            rtol=1e-5)
    # Confident and diverse beats confident on one class (which TENT's loss alone cannot tell).
    one_class = tf.constant([[1.0, 0.0], [1.0, 0.0]])
    diverse = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    assert float(batchnorm.tent_loss("multiclass", one_class, 0.0)) == pytest.approx(
        float(batchnorm.tent_loss("multiclass", diverse, 0.0)), abs=1e-5)
    assert float(batchnorm.tent_loss("multiclass", diverse, 1.0)) < float(
        batchnorm.tent_loss("multiclass", one_class, 1.0)) - 0.6  # log 2 = 0.69
    binary = tf.constant([[0.9], [0.2]])
    p = np.array([0.9, 0.2])
    expected = (-(p * np.log(p) + (1 - p) * np.log(1 - p))).mean()
    np.testing.assert_allclose(float(batchnorm.tent_loss("binary", binary)), expected, rtol=1e-5)


def test_tent_with_source_refits_the_head_first(shifted):
    model = source_trained(tiny_kerastl_model(3), shifted)
    cache = FeatureCache()
    result = batchnorm.tent(model, shifted["target"], source=shifted["source"],
                            source_validation=shifted["validation"], trainable_blocks=2,
                            epochs=2, feature_cache=cache, seed=0)
    assert result["head"]["l2"] > 0 and len(result["loss"]) == 2
    labelled = (shifted["target"], shifted["target_labels"])
    assert evaluate(model, labelled, feature_cache=cache) >= 0.9


def test_tent_bad_arguments(shifted):
    model = tiny_kerastl_model(3)
    with pytest.raises(ValueError, match="`trainable_blocks` must be an integer between 1 and 4"):
        batchnorm.tent(model, shifted["target"], trainable_blocks=9)
    with pytest.raises(ValueError, match="`epochs` must be an integer >= 1"):
        batchnorm.tent(model, shifted["target"], epochs=0)
    with pytest.raises(ValueError, match="`diversity_weight` must be a number >= 0.0"):
        batchnorm.tent(model, shifted["target"], diversity_weight=-1.0)
