"""Tests of per-variable learning rates (ScaledAdamW), block multipliers and schedules."""

import keras
import numpy as np
import pytest

import kerastl
from kerastl.training import ScaledAdamW, block_multipliers, warmup_cosine


def _two_layer_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, name="first")(inputs)
    return keras.Model(inputs, keras.layers.Dense(1, name="second")(x))


def _one_step(model, optimizer):
    model.compile(optimizer, "mse")
    x = np.random.default_rng(0).random((8, 4)).astype("float32")
    before = {v.path: keras.ops.convert_to_numpy(v) for v in model.trainable_weights}
    model.fit(x, np.ones((8, 1)), batch_size=8, epochs=1, verbose=0, shuffle=False)
    return {v.path: np.abs(keras.ops.convert_to_numpy(v) - before[v.path]).max()
            for v in model.trainable_weights}


def test_multiplier_zero_freezes_a_variable_even_with_weight_decay():
    model = _two_layer_model()
    opt = ScaledAdamW(lr_multipliers={"first/kernel": 0.0, "first/bias": 0.5},
                      learning_rate=0.1, weight_decay=0.1)
    moved = _one_step(model, opt)
    assert moved["first/kernel"] == 0.0
    assert moved["second/kernel"] > 0.0
    # Adam's first step moves each variable by about lr * scale.
    assert moved["first/bias"] == pytest.approx(0.05, rel=0.05)
    assert moved["second/bias"] == pytest.approx(0.1, rel=0.05)


def test_scaled_adamw_serializes():
    opt = ScaledAdamW(lr_multipliers={"a/kernel": 0.25}, default_multiplier=0.5,
                      learning_rate=0.01, weight_decay=0.0)
    config = keras.optimizers.serialize(opt)
    clone = keras.optimizers.deserialize(config)
    assert isinstance(clone, ScaledAdamW)
    assert clone.lr_multipliers == {"a/kernel": 0.25}
    assert clone.default_multiplier == 0.5


def test_block_multipliers_apply_backbone_rate_and_layer_decay():
    model = kerastl.build("mobilenet_v2", 3, input_shape=(32, 32, 3), weights=None,
                          backbone_kwargs={"alpha": 0.35})
    blocks = kerastl.get_blocks(model)
    mult = block_multipliers(blocks, 3, learning_rate=1e-3, backbone_learning_rate=1e-4,
                             layer_decay=0.5)
    top, second, third = blocks[-1], blocks[-2], blocks[-3]
    expected = {top.name: 0.1, second.name: 0.05, third.name: 0.025}
    for block in (top, second, third):
        for layer in block.layers:
            for v in layer.trainable_weights:
                assert mult[v.path] == pytest.approx(expected[block.name])
    frozen = {v.path for layer in blocks[-4].layers for v in layer.weights}
    assert not frozen & set(mult)
    assert not any(p.startswith("head/") for p in mult)
    assert block_multipliers(blocks, 0, learning_rate=1e-3, backbone_learning_rate=None,
                             layer_decay=None) == {}


def test_warmup_cosine_schedule():
    schedule = warmup_cosine(1e-3, total_steps=100, warmup_steps=10)
    assert float(schedule(0)) == pytest.approx(1e-4)
    assert float(schedule(10)) == pytest.approx(1e-3)
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-9)
    plain = warmup_cosine(1e-3, total_steps=10, warmup_steps=0)
    assert float(plain(0)) == pytest.approx(1e-3)
