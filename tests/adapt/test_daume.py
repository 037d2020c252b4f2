"""Daumé's feature augmentation with a few labelled target images, and its fine-tuning baseline."""

from __future__ import annotations

import numpy as np
import pytest
from harness import tiny_kerastl_model

from kerastl.adapt import daume as daume_module
from kerastl.adapt.daume import augment_features, daume, fine_tune_target
from kerastl.adapt.features import cached, evaluate, predict_features
from kerastl.adapt.data import as_source
from kerastl.training import FeatureCache

from .conftest import source_trained


def _few(shifted, per_class=3):
    y = shifted["target_labels"]
    idx = np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(3)])
    rest = np.setdiff1d(np.arange(len(y)), idx)
    return (shifted["target"][idx], y[idx]), (shifted["target"][rest], y[rest])


def test_augment_features_layout():
    x = np.arange(4, dtype="float32").reshape(2, 2)
    np.testing.assert_array_equal(augment_features(x, "source"), np.concatenate([x, x, 0 * x], 1))
    np.testing.assert_array_equal(augment_features(x, "target"), np.concatenate([x, 0 * x, x], 1))
    with pytest.raises(ValueError, match="`domain` must be one of 'source', 'target'"):
        augment_features(x, "other")


def test_daume_folds_into_one_dense_layer_and_uses_the_labels(shifted):
    model = source_trained(tiny_kerastl_model(3), shifted)
    few, rest = _few(shifted)
    cache = FeatureCache()
    assert evaluate(model, rest, feature_cache=cache) <= 0.45
    result = daume(model, shifted["source"], few, feature_cache=cache, seed=0)
    assert result["target_examples"] == 9
    assert evaluate(model, rest, feature_cache=cache) >= 0.9
    # The folded head is x (W_shared + W_target) + b: the same probabilities as the model.
    features, _ = cached(cache, model, as_source("rest", rest, model=model))
    kernel, bias = model.get_layer("head").output_layer.get_weights()
    logits = features @ kernel + bias
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(predict_features(model, features), expected, rtol=1e-4, atol=1e-5)


def test_fine_tune_target_baseline_runs(shifted):
    model = source_trained(tiny_kerastl_model(3), shifted)
    few, rest = _few(shifted)
    result = fine_tune_target(model, few, epochs=5, seed=0)
    assert result == {"epochs": 5, "target_examples": 9}
    assert 0.0 <= evaluate(model, rest) <= 1.0


def test_module_is_callable_as_the_function():
    assert callable(daume_module)
