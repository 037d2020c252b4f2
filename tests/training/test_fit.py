"""Tests of kerastl.fit: recipes, caching, rates, regularization, guards and reports."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerastl
import kerastl.data
from harness import (assert_float32_close, assert_keras_round_trip, calibrate_batch_norm,
                     separable_images, tiny_kerastl_model)
from kerastl.training import FeatureCache, fit


def _data(n=48, seed=0, batch=16, mislabeled=0):
    x, y = separable_images(n, 3, seed=seed, mislabeled=mislabeled)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch), x, y


TRAIN, X, Y = _data()
VAL, XV, YV = _data(24, seed=1, batch=12)
# No head gets these all right: the stages after it run (see `can_be_beaten`).
NOISY_VAL = _data(24, seed=1, batch=12, mislabeled=4)[0]


def _trainable_paths(model, blocks, depth):
    """Variables a stage of depth `depth` must train: the head + non-BN weights of top blocks."""
    paths = {v.path for v in kerastl.get_head(model).trainable_weights}
    for block in blocks[len(blocks) - depth:] if depth else []:
        for layer in block.layers:
            for sub in layer._flatten_layers(include_self=True):
                if not isinstance(sub, keras.layers.BatchNormalization):
                    paths |= {v.path for v in sub._trainable_variables}
    return paths


def _weights(layers):
    return [keras.ops.convert_to_numpy(v.value) for layer in layers for v in layer.weights]


def test_two_stage_on_mobilenet_trains_what_each_stage_says():
    model = kerastl.build("mobilenet_v2", 3, input_shape=(32, 32, 3), weights=None,
                          backbone_kwargs={"alpha": 0.35}, head={"dropout": 0.0})
    calibrate_batch_norm(model, X)
    blocks = kerastl.get_blocks(model)
    frozen = _weights(layer for b in blocks[:-2] for layer in b.layers)
    top = _weights(layer for b in blocks[-2:] for layer in b.layers)
    # No validation data: the model keeps the last stage's weights.
    report = fit(model, TRAIN, recipe="two_stage", epochs=2, fine_tune_epochs=1,
                 trainable_blocks=2, learning_rate=0.01, seed=0, verbose=0)
    head, tune = report.stages
    assert (head.cached, tune.cached) == ("features", "prefix")
    assert set(head.trainable_weights) == _trainable_paths(model, blocks, 0)
    assert set(tune.trainable_weights) == _trainable_paths(model, blocks, 2)
    assert tune.trainable_block_names == ["block_16", "Conv_1"]
    for before, after in zip(frozen, _weights(layer for b in blocks[:-2] for layer in b.layers)):
        np.testing.assert_array_equal(before, after)
    assert any(not np.array_equal(b, a) for b, a in
               zip(top, _weights(layer for b in blocks[-2:] for layer in b.layers)))
    assert report.recipe == "two_stage" and report.backbone_batches == 3


def test_progressive_unfreezes_one_group_per_stage():
    model = tiny_kerastl_model(3)
    blocks = kerastl.get_blocks(model)
    report = fit(model, TRAIN, NOISY_VAL, recipe="progressive", epochs=1, fine_tune_epochs=1,
                 trainable_blocks=3, seed=0, verbose=0)
    assert [s.trainable_blocks for s in report.stages] == [0, 1, 2, 3]
    for stage in report.stages:
        assert set(stage.trainable_weights) == _trainable_paths(model, blocks,
                                                                stage.trainable_blocks)
        assert stage.cached in ("features", "prefix")
    # One pass over the images for the whole run: later cuts derive from the first.
    assert report.backbone_batches == 3 + 2


def _head_after(cache_features, recipe="feature_extraction", **kwargs):
    model = tiny_kerastl_model(3)
    report = fit(model, TRAIN, VAL, recipe=recipe, epochs=3, learning_rate=0.01, seed=0,
                 shuffle=False, cache_features=cache_features, head_solver="gradient",
                 verbose=0, **kwargs)
    return model, report


def test_cached_and_uncached_head_training_give_the_same_weights():
    cached, report_cached = _head_after(True)
    plain, report_plain = _head_after(False)
    assert report_cached.stages[0].cached == "features"
    assert report_plain.stages[0].cached is None
    # Same steps on features computed by another graph: the float32 error of the
    # tiny model (8 layers) grows through 3 epochs x 3 steps of Adam (3 passes each).
    depth = 8 * 3 * 3 * 3
    for a, b in zip(cached.get_weights(), plain.get_weights()):
        assert_float32_close(a, b, depth=depth, terms=72)
    assert_float32_close(report_cached.stages[0].history["loss"],
                         report_plain.stages[0].history["loss"], depth=depth, terms=72)


def test_prefix_cache_trains_exactly_the_suffix_like_uncached():
    cached, report = _head_after(True, recipe="fine_tune", trainable_blocks=2)
    plain, _ = _head_after(False, recipe="fine_tune", trainable_blocks=2)
    assert report.stages[0].cached == "prefix"
    for a, b in zip(cached.get_weights(), plain.get_weights()):
        assert_float32_close(a, b, depth=8 * 3 * 3 * 3, terms=72)  # as above
    fresh = tiny_kerastl_model(3)  # the initial weights
    bottom = [len(b.layers) for b in kerastl.get_blocks(cached)[:2]]
    for layer, initial in zip(cached.get_layer("backbone").layers[:sum(bottom)],
                              fresh.get_layer("backbone").layers[:sum(bottom)]):
        for a, b in zip(layer.get_weights(), initial.get_weights()):
            np.testing.assert_array_equal(a, b)


def test_backbone_learning_rate_reaches_the_blocks():
    model = tiny_kerastl_model(3)
    backbone = model.get_layer("backbone")
    top_conv = backbone.layers[4]  # conv2d of the block below the top one
    before_top = keras.ops.convert_to_numpy(top_conv.kernel.value).copy()
    before_head = kerastl.get_head(model).get_weights()
    report = fit(model, TRAIN, recipe="fine_tune", trainable_blocks=2, epochs=2,
                 learning_rate=0.01, backbone_learning_rate=1e-5, seed=0, verbose=0)
    assert top_conv.kernel.path in report.stages[0].trainable_weights
    moved = np.abs(keras.ops.convert_to_numpy(top_conv.kernel.value) - before_top).max()
    # Adam moves a variable by at most about its rate per step (6 steps here).
    assert 0 < moved < 1e-4
    head_moved = max(np.abs(a - b).max() for a, b in
                     zip(kerastl.get_head(model).get_weights(), before_head))
    assert head_moved > 1e-3


def test_model_ends_at_best_epoch_and_is_compiled_for_plain_labels(tmp_path):
    class Corrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch >= 3:
                for v in kerastl.get_head(model).weights:
                    v.assign(tf.random.normal(v.shape, stddev=5.0, seed=epoch))

    model = tiny_kerastl_model(3)
    report = fit(model, TRAIN, VAL, recipe="feature_extraction", epochs=8, learning_rate=0.05,
                 early_stopping=2, callbacks=[Corrupt()], head_solver="gradient", seed=0,
                 verbose=0)
    stage = report.stages[0]
    assert stage.stopped == "early_stopping" and stage.epochs_run < 8
    assert stage.best_epoch <= 2
    result = model.evaluate(XV, YV, verbose=0, return_dict=True)
    assert result["accuracy"] == pytest.approx(report.best["val_accuracy"])
    assert report.best["val_accuracy"] > 0.6
    assert_keras_round_trip(model, XV[:4], tmp_path)  # extra graph nodes do not break saving


def test_nan_guard_stops_the_stage_and_restores_finite_weights():
    class Poison(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if self.params and getattr(self, "epoch", 0) == 1:
                kerastl.get_head(model).output_layer.kernel.assign(
                    tf.fill(kerastl.get_head(model).output_layer.kernel.shape, np.nan))

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

    model = tiny_kerastl_model(3)
    report = fit(model, TRAIN, VAL, recipe="two_stage", epochs=4, fine_tune_epochs=1,
                 trainable_blocks=1, callbacks=[Poison()], head_solver="gradient", seed=0,
                 verbose=0)
    head = report.stages[0]
    assert head.stopped == "nan" and head.epochs_run == 2
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert len(report.stages) == 2


def test_label_smoothing_caps_confidence():
    model = tiny_kerastl_model(3)
    report = fit(model, TRAIN, recipe="feature_extraction", epochs=25, learning_rate=0.1,
                 label_smoothing=0.6, early_stopping=False, head_solver="gradient", seed=0,
                 verbose=0)
    probs = model.predict(X, verbose=0)
    assert report.stages[0].best["accuracy"] > 0.9
    # The smoothed target of the true class is 0.4 + 0.6 / 3 = 0.6.
    assert probs.max(axis=1).mean() < 0.7


def test_class_weights_reach_the_loss():
    model = tiny_kerastl_model(3)
    before = model.get_weights()
    fit(model, TRAIN, None, recipe="feature_extraction", epochs=2, head_solver="gradient",
        class_weight={0: 0.0, 1: 0.0, 2: 0.0}, seed=0, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_class_weight_vector_and_label_encoding():
    from kerastl.training.inputs import class_weight_vector, label_transform

    labels = np.array([0, 0, 0, 1])
    vector = class_weight_vector("balanced", "multiclass", 3, labels)
    np.testing.assert_allclose(vector, [2 / 3, 2.0, 1.0])
    x, y, w = label_transform("multiclass", 3, vector)(tf.zeros((4, 1)), tf.constant(labels))
    np.testing.assert_allclose(y, np.eye(3)[labels])
    np.testing.assert_allclose(w, [2 / 3, 2 / 3, 2 / 3, 2.0])
    _, yb = label_transform("binary", 1)(tf.zeros((2, 1)), tf.constant([0, 1]))
    assert yb.shape == (2, 1) and yb.dtype == tf.float32
    with pytest.raises(ValueError, match="class_weight"):
        class_weight_vector({5: 1.0}, "multiclass", 3)
    with pytest.raises(ValueError, match="class_weight"):
        class_weight_vector("balanced", "regression", 1, labels)


def test_feature_cache_is_reused_between_calls():
    cache = FeatureCache()
    model = tiny_kerastl_model(3)
    fit(model, TRAIN, VAL, recipe="feature_extraction", epochs=1, feature_cache=cache, verbose=0)
    first = cache.backbone_batches
    assert first == 3 + 2
    other = tiny_kerastl_model(3)  # same backbone weights, a new head: tune's case
    fit(other, TRAIN, VAL, recipe="feature_extraction", epochs=1, feature_cache=cache,
        learning_rate=0.01, verbose=0)
    assert cache.backbone_batches == first and cache.hits >= 2


def test_array_and_image_data_inputs_and_report():
    model = tiny_kerastl_model(3)
    data = kerastl.data.from_arrays(X, Y, validation_split=0.25, batch_size=8, seed=0)
    report = fit(model, data, epochs=1, verbose=0)
    assert report.monitor == "val_accuracy" and report.num_examples == 36
    report = fit(model, (X, Y), (XV, YV), recipe="feature_extraction", epochs=1, batch_size=10,
                 head_solver="gradient", verbose=0)
    assert report.num_examples == 48
    text = str(report)
    assert "head" in text and "val_accuracy" in text
    as_dict = json.loads(report.to_json())
    stage = report.stages[0]
    assert as_dict["stages"][0]["epochs_run"] == 1
    assert as_dict["stages"][0]["seconds"] == stage.cache_seconds + stage.train_seconds > 0
    assert as_dict["best"]["val_accuracy"] == report.best["val_accuracy"]
    no_val = fit(model, TRAIN.unbatch(), recipe="feature_extraction", epochs=1, verbose=0)
    assert no_val.monitor == "loss" and no_val.num_examples == 48


def test_mixed_precision_runs_and_restores_policies():
    seen = {}

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            backbone = model.get_layer("backbone")
            seen["compute"] = backbone.layers[1].compute_dtype
            seen["output"] = kerastl.get_head(model).output_layer.compute_dtype

    model = tiny_kerastl_model(3)
    report = fit(model, TRAIN, VAL, recipe="fine_tune", trainable_blocks=2, epochs=1,
                 dtype_policy="mixed_bfloat16", cache_features=False, callbacks=[Record()],
                 verbose=0)
    assert seen == {"compute": "bfloat16", "output": "float32"}
    assert np.isfinite(report.stages[0].history["loss"][0])
    assert model.get_layer("backbone").layers[1].compute_dtype == "float32"
    assert model.predict(X[:2], verbose=0).dtype == np.float32


def test_strategy_defaults_to_the_models_own():
    from kerastl.distribute import get_strategy

    strategy = get_strategy("cpu")
    with strategy.scope():
        model = tiny_kerastl_model(3)
    # Optimizer and metric variables must be made in the model's strategy scope.
    report = fit(model, TRAIN, NOISY_VAL, recipe="two_stage", epochs=1, fine_tune_epochs=1,
                 trainable_blocks=1, verbose=0)
    # The head is fitted in closed form (no epochs), the fine-tuning stage trains one.
    assert [(s.solver, s.epochs_run) for s in report.stages] == [("linear", 0), ("gradient", 1)]


@pytest.mark.parametrize("kwargs, match", [
    ({"recipe": "two_stages"}, "Did you mean 'two_stage'"),
    ({"epochs": 0}, "epochs"),
    ({"learning_rate": -1.0}, "learning_rate"),
    ({"layer_decay": 1.5}, "layer_decay"),
    ({"trainable_blocks": 9}, "trainable_blocks"),
    ({"trainable_blocks": "most"}, "trainable_blocks"),
    ({"label_smoothing": 1.0}, "label_smoothing"),
    ({"early_stopping": 0}, "early_stopping"),
    ({"dtype_policy": "float16"}, "dtype_policy"),
    ({"head_solver": "lbfgs"}, "head_solver"),
    ({"head_solver": "linear", "cache_features": False}, "head_solver"),
    ({"augment_passes": -1}, "augment_passes"),
    ({"verbose": 3, "seed": None}, "verbose"),
    ({"callbacks": [print]}, "callbacks"),
    ({"feature_cache": {}}, "feature_cache"),
    ({"cache_features": "yes"}, "cache_features"),
    ({"class_weight": "equal"}, "class_weight"),
    ({"recipe": "feature_extraction", "trainable_blocks": 2}, "trainable_blocks"),
    ({"recipe": "fine_tune", "fine_tune_epochs": 2}, "fine_tune_epochs"),
])
def test_bad_arguments_give_clear_errors(kwargs, match):
    model = tiny_kerastl_model(3)
    kwargs = {"verbose": 0, **kwargs}
    with pytest.raises(ValueError, match=match) as info:
        fit(model, TRAIN, VAL, **kwargs)
    assert "Received:" in str(info.value)


def test_bad_data_gives_clear_errors():
    model = tiny_kerastl_model(3)
    with pytest.raises(TypeError, match="strategy"):
        fit(model, TRAIN, VAL, strategy=3, verbose=0)
    with pytest.raises(TypeError, match="train"):
        fit(model, "photos/", verbose=0)
    with pytest.raises(ValueError, match="same length"):
        fit(model, (X, Y[:5]), verbose=0)
    with pytest.raises(ValueError, match="finite"):
        fit(model, TRAIN.repeat(), verbose=0)
