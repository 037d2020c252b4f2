"""`kerastl.multitask.cache`: the frozen part of the shared backbone runs once per dataset."""

import numpy as np
import pytest

import kerastl
from harness import assert_float32_close, separable_images
from kerastl.multitask import cache as mt_cache
from kerastl.training import FeatureCache
from tests.multitask._models import tiny_two_task_model_with_layers as _model


@pytest.fixture(scope="module")
def data():
    xa, ya = separable_images(24, 3, 32)
    xb, yb = separable_images(16, 2, 32, seed=2)
    train = {"species": (xa[:16], ya[:16]), "healthy": (xb[:10], yb[:10])}
    validation = {"species": (xa[16:], ya[16:]), "healthy": (xb[10:], yb[10:])}
    return train, validation


@pytest.mark.parametrize("depth, cut_name", [(0, "pooled"), (1, "conv_a")])
def test_cached_model_computes_what_the_model_computes(depth, cut_name):
    model = _model()
    heads = kerastl.multitask.get_heads(model)
    cut = mt_cache.cut_for(model, heads, depth)
    assert cut.name == cut_name
    images, labels = separable_images(6, 3, 32, seed=3)
    cached = FeatureCache().get(model, _batches(images, labels), cut)
    outputs = mt_cache.cached_model(model, heads, cut)(cached.arrays[0])
    for task, expected in model(images).items():
        assert_float32_close(np.asarray(outputs[task]), np.asarray(expected), depth=6, terms=72)


def _batches(images, labels):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)


@pytest.mark.parametrize("trainable_blocks, cut_name", [(0, "pooled"), (1, "conv_a")])
def test_fit_runs_the_frozen_part_once_per_dataset_and_trains_the_model(
        data, trainable_blocks, cut_name):
    train, validation = data
    model = _model()
    before = {t: np.asarray(v) for t, v in model(train["species"][0]).items()}
    cache = FeatureCache()
    epochs = 3
    report = kerastl.multitask.fit(model, train, validation, trainable_blocks=trainable_blocks,
                                   epochs=epochs, batch_size=4, learning_rate=0.05,
                                   early_stopping=False, feature_cache=cache, verbose=0, seed=0)
    assert report.cached == cut_name
    # One pass over each task's training and validation images, not one per epoch:
    # species 16 + 8 and healthy 10 + 6 images in batches of 4.
    assert cache.backbone_batches == 4 + 2 + 3 + 2
    after = model(train["species"][0])
    assert any(not np.allclose(before[t], np.asarray(after[t])) for t in before)
    # The model itself was left at the best epoch: its validation accuracy is the report's.
    for task, (x, y) in validation.items():
        accuracy = float((np.asarray(model(x)[task]).argmax(-1) == y).mean())
        assert accuracy == pytest.approx(report.best[f"val_{task}_accuracy"])


def test_without_the_cache_training_runs_on_images(data):
    train, validation = data
    report = kerastl.multitask.fit(_model(), train, validation, epochs=1, batch_size=4,
                                   cache_features=False, verbose=0, seed=0)
    assert report.cached is None
    with pytest.raises(ValueError, match="`feature_cache` must be"):
        kerastl.multitask.fit(_model(), train, feature_cache={}, verbose=0)
    with pytest.raises(ValueError, match="cache_features"):
        kerastl.multitask.fit(_model(), train, cache_features="yes", verbose=0)
