import keras
import numpy as np
import pytest

import kerastl
from harness import random_images

TINY = dict(input_shape=(32, 32, 3), weights=None, backbone_kwargs={"alpha": 0.35})


def _trainable_names(model):
    return {w.path for w in model.trainable_weights}


def _block_weight_paths(block):
    return {w.path for layer in block.layers for w in layer.weights}


@pytest.mark.parametrize("depth", [0, 1, 3, "all"])
def test_depth_makes_exactly_top_blocks_trainable(depth):
    model = kerastl.build("mobilenet_v2", 2, trainable_blocks=depth, **TINY)
    blocks = kerastl.get_blocks(model)
    k = len(blocks) if depth == "all" else depth
    expected = set()
    for block in blocks[len(blocks) - k:] if k else []:
        expected |= {w.path for layer in block.layers for w in layer.trainable_weights}
    head = {w.path for w in kerastl.get_head(model).trainable_weights}
    assert _trainable_names(model) == expected | head
    # BatchNormalization stays frozen (inference mode) by default.
    for layer in model.get_layer("backbone").layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            assert not layer.trainable


def test_bn_training_option_unfreezes_bn_in_trainable_blocks_only():
    model = kerastl.build("mobilenet_v2", 2, trainable_blocks=1, bn_training=True, **TINY)
    blocks = kerastl.get_blocks(model)
    top_bn = [l for l in blocks[-1].layers if isinstance(l, keras.layers.BatchNormalization)]
    low_bn = [l for l in blocks[0].layers if isinstance(l, keras.layers.BatchNormalization)]
    assert top_bn and all(l.trainable for l in top_bn)
    assert low_bn and not any(l.trainable for l in low_bn)


def test_set_trainable_blocks_recompiles_and_training_respects_it():
    model = kerastl.build("mobilenet_v2", 2, **TINY)
    model.compile(keras.optimizers.SGD(0.5), "sparse_categorical_crossentropy")
    summary = kerastl.set_trainable_blocks(model, 2)
    assert summary.recompiled and summary.trainable_blocks == 2 and summary.num_blocks == 18
    assert summary.trainable_block_names == ["block_16", "Conv_1"]
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.5)
    blocks = kerastl.get_blocks(model)
    before = {w.path: w.numpy().copy() for w in model.weights}
    model.fit(random_images(8), np.arange(8) % 2, epochs=1, batch_size=8, verbose=0)
    changed = {w.path for w in model.weights if not np.array_equal(before[w.path], w.numpy())}
    top = _block_weight_paths(blocks[-1]) | _block_weight_paths(blocks[-2])
    head = {w.path for w in kerastl.get_head(model).weights}
    assert changed <= top | head
    assert changed & top, "the unfrozen blocks did not train after set_trainable_blocks"
    assert "trainable blocks: 2/18" in str(summary)


def test_set_trainable_blocks_errors():
    model = kerastl.build("mobilenet_v2", 2, **TINY)
    with pytest.raises(ValueError, match=r"between 0 and 18 or 'all'. Received: "
                                         r"trainable_blocks=-1"):
        kerastl.set_trainable_blocks(model, -1)
    with pytest.raises(ValueError, match="is not a kerastl model"):
        kerastl.set_trainable_blocks(keras.Sequential([keras.layers.Dense(1)]), 1)
    summary = kerastl.set_trainable_blocks(model, "all")
    assert not summary.recompiled and summary.trainable_blocks == 18
