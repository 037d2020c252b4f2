"""Tests of kerastl.training.FeatureCache and the cut points it caches at."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerastl
from harness import (assert_float32_close, calibrate_batch_norm, separable_images,
                     tiny_kerastl_model)
from kerastl.training import FeatureCache, graph


@pytest.fixture(scope="module")
def mobilenet():
    model = kerastl.build("mobilenet_v2", 3, input_shape=(32, 32, 3), weights=None,
                          backbone_kwargs={"alpha": 0.35}, head={"dropout": 0.0})
    images, _ = separable_images(32, 3, seed=0)
    calibrate_batch_norm(model, images)
    return model


def _dataset(n=20, batch=8, seed=0):
    images, labels = separable_images(n, 3, seed=seed)
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch), images, labels


def test_prefix_cut_is_the_single_tensor_below_the_top_blocks(mobilenet):
    blocks = kerastl.get_blocks(mobilenet)
    cut = graph.prefix_cut(mobilenet, blocks, 3)
    assert cut.name == blocks[-4].name
    prefix = {layer.name for b in blocks[:-3] for layer in b.layers}
    assert {layer.name for layer in cut.layers} == prefix
    suffix = graph.suffix_model(mobilenet, cut)
    expected = {v.path for b in blocks[-3:] for layer in b.layers for v in layer.weights}
    expected |= {v.path for v in kerastl.get_head(mobilenet).weights}
    assert {v.path for v in suffix.weights} == expected
    assert graph.prefix_cut(mobilenet, blocks, 0) is None
    assert graph.prefix_cut(mobilenet, blocks, len(blocks)) is None


def test_prefix_plus_suffix_equals_the_model(mobilenet):
    blocks = kerastl.get_blocks(mobilenet)
    cut = graph.prefix_cut(mobilenet, blocks, 5)
    images, _ = separable_images(4, 3, seed=3)
    prefix = graph.segment(mobilenet, None, cut)
    got = graph.suffix_model(mobilenet, cut)(prefix(images))
    # Same layers, cut in two graphs: float32 tolerance of MobileNetV2's depth.
    assert_float32_close(got, mobilenet(images), depth=len(mobilenet.layers) +
                         len(kerastl.get_backbone(mobilenet).layers), terms=960)


def test_no_cut_when_two_tensors_cross_the_boundary():
    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(4, 1, name="a")(inputs)
    b = keras.layers.Conv2D(4, 1, name="b")(a)
    c = keras.layers.Add(name="c")([a, keras.layers.Conv2D(4, 1, name="c_conv")(b)])
    backbone = keras.Model(inputs, c, name="two_paths")
    model = kerastl.build(backbone, 2, weights=None)
    blocks = kerastl.get_blocks(model)
    names = [b.name for b in blocks]
    depth = len(blocks) - names.index("b") - 1  # frozen: up to block "b"; "a" and "b" cross
    assert graph.prefix_cut(model, blocks, depth) is None
    assert graph.prefix_cut(model, blocks, len(blocks) - 1) is not None


def test_cache_computes_once_and_matches_the_feature_extractor():
    model = tiny_kerastl_model(3)
    ds, images, labels = _dataset()
    cache = FeatureCache()
    cut = graph.pooled_cut(model)
    data = cache.get(model, ds, cut)
    assert cache.backbone_batches == 3 and data.num_examples == 20 and data.passes == 1
    # The tiny backbone (2 x conv 3x3 + BN + ReLU, pooling): 8 layers, 3*3*8 terms.
    assert_float32_close(data.arrays[0], kerastl.feature_extractor(model)(images), depth=8,
                         terms=72)
    np.testing.assert_array_equal(data.labels, labels)
    again = cache.get(model, ds, graph.pooled_cut(model))
    assert again is data and cache.hits == 1 and cache.backbone_batches == 3
    clone = tiny_kerastl_model(3)  # same architecture and weights (same seed): a hit
    assert cache.get(clone, ds, graph.pooled_cut(clone)) is data
    other = cache.get(model, _dataset()[0], cut)  # another dataset object: new entry
    assert other is not data and cache.backbone_batches == 6


def test_pooled_features_derive_from_a_prefix_entry():
    model = tiny_kerastl_model(3)
    ds, images, _ = _dataset()
    cache = FeatureCache()
    blocks = kerastl.get_blocks(model)
    cache.get(model, ds, graph.prefix_cut(model, blocks, 2))
    assert cache.backbone_batches == 3
    pooled = cache.get(model, ds, graph.pooled_cut(model))
    assert cache.backbone_batches == 3 and cache.derived_batches >= 1
    assert_float32_close(pooled.arrays[0], kerastl.feature_extractor(model)(images), depth=8,
                         terms=72)


def test_changed_frozen_weights_invalidate_the_entry():
    model = tiny_kerastl_model(3)
    ds, _, _ = _dataset()
    cache = FeatureCache()
    first = cache.get(model, ds, graph.pooled_cut(model))
    conv = model.get_layer("backbone").layers[1]
    conv.kernel.assign(conv.kernel * 2.0)
    second = cache.get(model, ds, graph.pooled_cut(model))
    assert second is not first and cache.backbone_batches == 6 and len(cache) == 1


def test_the_traced_extractor_is_made_once_per_model_and_cut(monkeypatch):
    from kerastl.training import cache as cache_module

    made = []

    def counting(model, start, end):
        made.append((start, end.name))
        return graph.segment(model, start, end)

    monkeypatch.setattr(cache_module, "segment", counting)
    model = tiny_kerastl_model(3)
    cache = FeatureCache()
    (train, _, _), (val, val_images, _) = _dataset(seed=0), _dataset(n=12, seed=1)
    cache.get(model, train, graph.pooled_cut(model))
    cache.get(model, val, graph.pooled_cut(model))
    assert len(made) == 1 and cache.backbone_batches == 5
    # New frozen weights: recomputed by the same function, and it reads them.
    conv = model.get_layer("backbone").layers[1]
    conv.kernel.assign(conv.kernel * 2.0)
    data = cache.get(model, val, graph.pooled_cut(model))
    assert len(made) == 1 and cache.backbone_batches == 7
    assert_float32_close(data.arrays[0], kerastl.feature_extractor(model)(val_images),
                         depth=8, terms=72)
    # Another augmenter, another cut or another model: a function of its own.
    flip = keras.layers.RandomFlip("horizontal", seed=0)
    cache.get(model, train, graph.pooled_cut(model), augment_passes=1, augmenter=flip,
              augmenter_key="flip")
    assert len(made) == 2
    blocks = kerastl.get_blocks(model)
    cache.get(model, train, graph.prefix_cut(model, blocks, 1))
    other = tiny_kerastl_model(3)
    other.get_layer("backbone").layers[1].kernel.assign(conv.kernel * 3.0)
    cache.get(other, train, graph.pooled_cut(other))
    assert len(made) == 4


def test_namespaces_keep_the_entries_of_several_models_of_one_source():
    ds, _, _ = _dataset()
    cache = FeatureCache()
    a, b = tiny_kerastl_model(3), tiny_kerastl_model(3)
    first = cache.get(a, ds, graph.pooled_cut(a), namespace="a")
    cache.get(b, ds, graph.pooled_cut(b), namespace="b")
    assert len(cache) == 2 and cache.get(a, ds, graph.pooled_cut(a), namespace="a") is first
    cache.get(b, ds, graph.pooled_cut(b))  # no namespace: its own entry
    assert len(cache) == 3 and cache.backbone_batches == 9


def test_memory_limit_spills_to_disk(tmp_path):
    model = tiny_kerastl_model(3)
    ds, _, _ = _dataset()
    in_memory = FeatureCache().get(model, ds, graph.pooled_cut(model))
    cache = FeatureCache(memory_limit=0, directory=tmp_path)
    on_disk = cache.get(model, ds, graph.pooled_cut(model))
    assert on_disk.on_disk and isinstance(on_disk.arrays[0], np.memmap)
    assert list(tmp_path.iterdir())
    # Two runs of the tiny backbone (8 layers, 72-term sums) over the same images.
    assert_float32_close(on_disk.arrays[0], in_memory.arrays[0], depth=8, terms=72)
    batches = list(on_disk.dataset(batch_size=8, shuffle=False))
    assert_float32_close(np.concatenate([b[0] for b in batches]), in_memory.arrays[0], depth=8,
                         terms=72)


def test_augmented_passes_and_epoch_sampling():
    model = tiny_kerastl_model(3)
    ds, _, labels = _dataset(n=12, batch=4)
    cache = FeatureCache()
    flip = keras.layers.RandomFlip("horizontal", seed=1)
    data = cache.get(model, ds, graph.pooled_cut(model), augment_passes=2, augmenter=flip,
                     augmenter_key="flip")
    assert data.passes == 3 and len(data.arrays[0]) == 36 and cache.backbone_batches == 9
    np.testing.assert_array_equal(data.arrays[1], np.tile(labels, 3))
    assert not np.allclose(data.arrays[0][:12], data.arrays[0][12:24])
    epoch = list(data.dataset(batch_size=5, shuffle=True, seed=0))
    assert sum(len(b[1]) for b in epoch) == 12
    assert sorted(np.concatenate([b[1] for b in epoch]).tolist()) == sorted(labels.tolist())


def test_memory_limit_is_checked():
    with pytest.raises(ValueError, match="memory_limit"):
        FeatureCache(memory_limit=-1)


def test_cache_progress_is_one_line_outside_a_terminal(capsys):
    import tensorflow as tf

    from harness import separable_images, tiny_kerastl_model
    from kerastl.training import FeatureCache
    from kerastl.training.graph import pooled_cut

    x, y = separable_images(20, 2, seed=0)
    model = tiny_kerastl_model(2)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    FeatureCache().get(model, data, pooled_cut(model), progress=True)
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("Cached backbone outputs (pooled): 3 batches")
    FeatureCache().get(model, data, pooled_cut(model))  # progress off: silent
    assert capsys.readouterr().out == ""


def test_epochs_print_a_line_each_outside_a_terminal():
    from kerastl.training.stage import keras_verbose

    # pytest captures stdout: not a terminal.
    assert keras_verbose(1) == 2 and keras_verbose(0) == 0 and keras_verbose(2) == 2
