"""Tests of `kerastl.backbones.hub`: TF Hub SavedModels as Keras 3 layers."""

from __future__ import annotations

import hashlib
import shutil
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub
from harness import (assert_float32_close, assert_serialization_round_trip, float32_tolerance,
                     run_python)

from kerastl.backbones import hub_handles
from kerastl.layers import ClassificationHead, ImagePreprocessing
from kerastl.backbones.hub import HubBackbone, resolve_hub_backbone

from .hub_fixtures import (
    REGULARIZATION,
    TRAINING_SHIFT,
    save_hub_model,
    save_signature_model,
    save_tf1_hub_module,
)

SIZE = 8
# The tiny hub models: conv 3x3x3 (27-term sums), batch norm, shift, pooling,
# plus a dense layer on top in some tests: float32 tolerances of that depth.
TINY = {"depth": 6, "terms": 27}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Paths of the tiny hub-format SavedModels, saved once for the module."""
    root = tmp_path_factory.mktemp("hub_models")
    return {
        "hub": str(save_hub_model(root / "hub")),
        "fixed": str(save_hub_model(root / "fixed", image_size=SIZE)),
        "dict": str(save_hub_model(root / "dict", dict_output=True)),
        "min6": str(save_hub_model(root / "min6", min_image_size=6)),
        "inference_only": str(save_hub_model(root / "inference_only", training_modes=(False,))),
        "signature": str(save_signature_model(root / "signature")),
        "tf1": str(save_tf1_hub_module(root / "tf1")),
    }


def _images(n=6, size=SIZE, seed=0):
    return np.random.default_rng(seed).random((n, size, size, 3)).astype("float32")


def _classifier(layer, size=SIZE):
    inputs = keras.Input((size, size, 3))
    outputs = keras.layers.Dense(2, name="dense")(layer(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.SGD(0.1),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _snapshot(layer):
    return {w.path: np.array(w.numpy()) for w in layer.weights}


def _changed(before, layer):
    return {w.path: not np.allclose(before[w.path], w.numpy()) for w in layer.weights}


def test_output_equals_hub_load(models):
    layer = HubBackbone(models["hub"], input_shape=(SIZE, SIZE, 3))
    x = _images()
    expected = hub.load(models["hub"])(tf.constant(x), training=False)
    assert_float32_close(layer(x), expected, **TINY)
    assert layer.feature_dim == 4


def test_variables_tracked_with_shared_storage(models):
    layer = HubBackbone(models["hub"], trainable=True)
    assert [w.path for w in layer.trainable_weights] == [
        f"{layer.name}/conv_kernel", f"{layer.name}/conv_bias"]
    assert [w.path for w in layer.non_trainable_weights] == [f"{layer.name}/bn_moving_mean"]
    assert layer.count_params() == 3 * 3 * 3 * 4 + 4 + 4
    x = _images(2)
    kernel = layer.trainable_weights[0]
    before = layer(x).numpy()
    kernel.assign(kernel.numpy() * 0.0)  # writes through to the SavedModel's own variable
    assert not np.allclose(layer(x), before)
    frozen = HubBackbone(models["hub"])
    assert frozen.trainable_weights == [] and len(frozen.non_trainable_weights) == 3
    frozen.trainable = True
    assert len(frozen.trainable_weights) == 2


def test_fit_trainable_updates_only_trainable_hub_variables(models):
    layer = HubBackbone(models["hub"], trainable=True, input_shape=(SIZE, SIZE, 3))
    model = _classifier(layer)
    before = _snapshot(layer)
    model.fit(_images(8), np.arange(8) % 2, epochs=2, batch_size=4, verbose=0)
    assert _changed(before, layer) == {f"{layer.name}/conv_kernel": True,
                                       f"{layer.name}/conv_bias": True,
                                       f"{layer.name}/bn_moving_mean": False}
    # The SavedModel computes with the updated variables.
    original = hub.load(models["hub"])(tf.constant(_images(2)), training=False)
    assert not np.allclose(layer(_images(2)), original)


def test_fit_frozen_changes_nothing_in_the_hub_model(models):
    layer = HubBackbone(models["hub"], trainable=False)
    model = _classifier(layer)
    assert [w.path for w in model.trainable_weights] == ["dense/kernel", "dense/bias"]
    before = _snapshot(layer)
    dense_before = model.get_layer("dense").get_weights()[0].copy()
    model.fit(_images(8), np.arange(8) % 2, epochs=2, batch_size=4, verbose=0)
    assert not any(_changed(before, layer).values())
    assert not np.allclose(model.get_layer("dense").get_weights()[0], dense_before)


def test_training_flag_reaches_the_savedmodel_only_when_trainable(models):
    x = _images(3)
    trainable = HubBackbone(models["hub"], trainable=True)
    shift = trainable(x, training=True) - trainable(x, training=False)
    assert_float32_close(shift, np.full((3, 4), TRAINING_SHIFT), **TINY)
    frozen = HubBackbone(models["hub"], trainable=False)
    np.testing.assert_allclose(frozen(x, training=True), frozen(x, training=False))
    inference = HubBackbone(models["hub"], trainable=True, bn_training=False)
    np.testing.assert_allclose(inference(x, training=True), inference(x, training=False))
    assert len(inference.trainable_weights) == 2 and not inference.get_config()["bn_training"]
    # A SavedModel traced for inference only is never called with training=True.
    untraced = HubBackbone(models["inference_only"], trainable=True)
    np.testing.assert_allclose(untraced(x, training=True), untraced(x, training=False))


def test_regularization_losses_collected_when_trainable(models):
    x = _images(2)
    layer = HubBackbone(models["hub"], trainable=True)
    layer(x)
    kernel = layer.trainable_weights[0].numpy()
    assert len(layer.losses) == 1
    assert_float32_close(layer.losses[0], REGULARIZATION * np.sum(kernel ** 2), depth=2,
                         terms=kernel.size)
    frozen = HubBackbone(models["hub"], trainable=False)
    frozen(x)
    assert frozen.losses == []
    # The model's loss includes the regularization term while the hub model trains.
    y = np.array([0, 1])
    model = _classifier(layer)
    with_reg = model.evaluate(x, y, verbose=0)
    layer.trainable = False
    model.compile(keras.optimizers.SGD(0.1),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    without = model.evaluate(x, y, verbose=0)
    # A difference of two losses: their float32 error is relative to the losses' size.
    assert_float32_close(with_reg - without, REGULARIZATION * np.sum(kernel ** 2),
                         scale=abs(with_reg), **TINY)


def test_dict_output_needs_output_key(models):
    x = _images(2)
    reference = hub.load(models["dict"])(tf.constant(x), training=False)
    default = HubBackbone(models["dict"], output_key="default")
    assert_float32_close(default(x), reference["default"], **TINY)
    logits = HubBackbone(models["dict"], output_key="logits")
    assert_float32_close(logits(x), reference["logits"], **TINY)
    with pytest.raises(ValueError, match="pass `output_key`, one of \\['default', 'logits'\\]"):
        HubBackbone(models["dict"])
    with pytest.raises(ValueError, match="`output_key` must be one of 'default', 'logits'"):
        HubBackbone(models["dict"], output_key="feature_vector")
    with pytest.raises(ValueError, match="returns a single tensor"):
        HubBackbone(models["hub"], output_key="default")


def test_signature_only_model(models):
    x = _images(3)
    signature = hub.load(models["signature"]).signatures["serving_default"]
    layer = HubBackbone(models["signature"], signature="serving_default", output_key="features",
                        trainable=True)
    assert_float32_close(layer(x, training=True),
                               signature(images=tf.constant(x))["features"], **TINY)
    assert [w.path for w in layer.trainable_weights] == [f"{layer.name}/dense_kernel"]
    assert [w.path for w in layer.non_trainable_weights] == [f"{layer.name}/scale"]
    before = _snapshot(layer)
    _classifier(layer).fit(x, np.array([0, 1, 0]), epochs=2, verbose=0)
    assert _changed(before, layer) == {f"{layer.name}/dense_kernel": True,
                                       f"{layer.name}/scale": False}
    with pytest.raises(ValueError, match="has no __call__.*'serving_default'"):
        HubBackbone(models["signature"])
    with pytest.raises(ValueError, match="`signature` must be one of 'masked', 'serving_default'"):
        HubBackbone(models["signature"], signature="serve")
    with pytest.raises(ValueError, match="takes inputs \\['images', 'mask'\\]; HubBackbone "
                                         "supports signatures with one image input"):
        HubBackbone(models["signature"], signature="masked", output_key="features")


def test_keras_round_trip_restores_fine_tuned_weights(models, tmp_path):
    layer = HubBackbone(models["hub"], trainable=True, input_shape=(SIZE, SIZE, 3))
    model = _classifier(layer)
    x = _images(8)
    model.fit(x, np.arange(8) % 2, epochs=2, batch_size=4, verbose=0)
    path = tmp_path / "hub.keras"
    model.save(path)
    with pytest.raises(ValueError, match="disallowed in safe mode"):  # not trusted yet
        keras.saving.load_model(path)
    with hub_handles.trusted_hub_models(models["hub"]):
        loaded = keras.saving.load_model(path)
    assert_float32_close(loaded.predict(x, verbose=0), model.predict(x, verbose=0), **TINY)
    reloaded = loaded.layers[1]
    assert isinstance(reloaded, HubBackbone) and reloaded.trainable
    assert reloaded.get_config() == layer.get_config()
    fresh = HubBackbone(models["hub"])  # the handle's own, not fine-tuned, weights
    assert not np.allclose(reloaded(x), fresh(x))
    with hub_handles.trusted_hub_models(models["hub"]):
        assert_serialization_round_trip(layer)


def test_export_and_tflite_match_predictions(models, tmp_path):
    """The kerastl layout: image in [0, 255] -> preprocessing -> backbone -> head."""
    from ai_edge_litert.interpreter import Interpreter

    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = ImagePreprocessing("unit", backbone=f"hub:{models['hub']}", name="preprocessing")(inputs)
    x = HubBackbone(models["hub"], input_shape=(SIZE, SIZE, 3), name="backbone")(x)
    model = keras.Model(inputs, ClassificationHead(3, name="head")(x))
    x = _images(3) * 255.0
    expected = model.predict(x, verbose=0)
    model.export(str(tmp_path / "export"), verbose=False)
    exported = tf.saved_model.load(str(tmp_path / "export"))  # keep: it owns the variables
    assert_float32_close(exported.serve(tf.constant(x)), expected, **TINY)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "export"))
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    for i in range(len(x)):
        interpreter.set_tensor(inp["index"], x[i:i + 1])
        interpreter.invoke()
        assert_float32_close(interpreter.get_tensor(out["index"])[0], expected[i], **TINY)


def test_mixed_precision_policy(models):
    layer = HubBackbone(models["hub"], dtype="mixed_float16")
    out = layer(_images(2))
    assert out.dtype == tf.float16
    expected = hub.load(models["hub"])(tf.constant(_images(2)), training=False)
    # float16 eps is 2**-10 (about 1e-3); a few layers of it, relative + absolute.
    np.testing.assert_allclose(out.numpy().astype("float32"), expected, rtol=1e-2, atol=1e-2)


@pytest.mark.slow
def test_mirrored_strategy_with_two_replicas(models):
    code = textwrap.dedent(f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras, numpy as np, tensorflow_hub as hub
        from kerastl.backbones.hub import HubBackbone
        path = {models["hub"]!r}
        x = np.random.default_rng(0).random((8, 8, 8, 3)).astype("float32")
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            layer = HubBackbone(path, trainable=True, input_shape=(8, 8, 3))
            inputs = keras.Input((8, 8, 3))
            model = keras.Model(inputs, keras.layers.Dense(2)(layer(inputs)))
            model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        reference = hub.load(path)(tf.constant(x), training=False)
        tol = {float32_tolerance(**TINY)!r}
        np.testing.assert_allclose(layer(x), reference, rtol=tol,
                                   atol=tol * float(np.abs(reference).max()))
        before = [w.numpy().copy() for w in layer.weights]
        model.fit(x, np.arange(8) % 2, batch_size=8, epochs=1, verbose=0)
        print(type(layer.weights[0].value).__name__,
              [bool(not np.allclose(b, w.numpy())) for b, w in zip(before, layer.weights)])
    """)
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "MirroredVariable [True, True, False]"


def test_missing_local_handle():
    with pytest.raises(FileNotFoundError, match="not a URL and no such directory"):
        HubBackbone("/nonexistent/hub/model")


def test_url_not_cached_offline_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "cache"))
    handle = "https://127.0.0.1:9/google/some_model/feature_vector/1"  # refused at once
    digest = hashlib.sha1(handle.encode("utf8")).hexdigest()
    with pytest.raises(OSError, match="Could not resolve the TF Hub handle") as info:
        HubBackbone(handle)
    message = str(info.value)
    assert str(tmp_path / "cache" / digest) in message
    assert "TFHUB_CACHE_DIR" in message and "local directory" in message


def test_cached_url_handle_loads_offline(models, tmp_path, monkeypatch):
    handle = "https://tfhub.dev/kerastl/tests/tiny_feature_vector/1"
    cache = tmp_path / "cache"
    shutil.copytree(models["hub"], cache / hashlib.sha1(handle.encode("utf8")).hexdigest())
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))
    layer = HubBackbone(handle, input_shape=(SIZE, SIZE, 3))
    expected = hub.load(models["hub"])(tf.constant(_images(2)), training=False)
    assert_float32_close(layer(_images(2)), expected, **TINY)


def test_tf1_hub_module_and_non_savedmodel_rejected(models, tmp_path):
    with pytest.raises(ValueError, match="TF1 Hub format .*not support"):
        HubBackbone(models["tf1"], signature="serving_default")
    with pytest.raises(ValueError, match="has no saved_model.pb: it is not a TF2 SavedModel"):
        HubBackbone(str(tmp_path))


def test_wrong_input_shape(models):
    with pytest.raises(ValueError, match=r"does not accept images of shape \(None, 16, 16, 3\)"
                                         r": it accepts \(None, 8, 8, 3\)"):
        HubBackbone(models["fixed"], input_shape=(16, 16, 3))
    with pytest.raises(ValueError, match=r"does not accept images of shape \(None, 8, 8, 1\)"):
        HubBackbone(models["hub"], input_shape=(SIZE, SIZE, 1))
    layer = HubBackbone(models["fixed"])  # probed at the SavedModel's own fixed shape
    assert layer.saved_input_shape == (SIZE, SIZE, 3) and layer.feature_dim == 4
    with pytest.raises(ValueError, match="does not accept images of shape"):
        layer(keras.Input((SIZE, SIZE, 2)))
    with pytest.raises(ValueError, match="`input_shape` must be an int or \\(height, width"):
        HubBackbone(models["hub"], input_shape=(1, SIZE, SIZE, 3))
    with pytest.raises(ValueError, match=r"shape \(None, 2, 2, 3\).*Negative dimension size"):
        HubBackbone(models["hub"], input_shape=(2, 2, 3))  # too small for its 3x3 VALID conv
    with pytest.raises(ValueError, match=r"failed on a zero batch of images of shape "
                                         r"\(1, 4, 4, 3\).*image too small"):
        HubBackbone(models["min6"], input_shape=(4, 4, 3))


def test_arguments_are_passed_to_every_call(models):
    x = _images(2)
    reference = hub.load(models["hub"])
    layer = HubBackbone(models["hub"], arguments={"feature_scale": 2.0})
    assert_float32_close(layer(x), reference(tf.constant(x), training=False,
                                                   feature_scale=2.0), **TINY)
    assert not np.allclose(layer(x), reference(tf.constant(x), training=False))
    assert layer.get_config()["arguments"] == {"feature_scale": 2.0}


def test_untrusted_url_refused_in_safe_mode(models):
    config = keras.saving.serialize_keras_object(HubBackbone(models["hub"]))
    config["config"]["handle"] = "https://example.com/model.tar.gz"
    with pytest.raises(ValueError, match="disallowed in safe mode"):
        keras.saving.deserialize_keras_object(config)


def test_resolve_hub_backbone_unknown_handle(models):
    layer, spec = resolve_hub_backbone(models["hub"], input_shape=(16, 16, 3), trainable=True,
                                       backbone_kwargs={"input_range": (-1, 1)},
                                       bn_training=False)
    assert isinstance(layer, HubBackbone) and layer.name == "backbone" and layer.trainable
    assert not layer.bn_training and layer.hub_input_shape == (16, 16, 3)
    assert (spec.name, spec.source, spec.preprocessing) == (f"hub:{models['hub']}", "hub", "tf")
    assert (spec.default_input_size, spec.min_input_size, spec.fixed_input_size) == (16, 16, ())
    assert (spec.feature_dim, spec.num_blocks, spec.block_pattern) == (4, 1, "")
    assert spec.constructor is None and spec.num_params == layer.count_params() == 116
    with pytest.raises(ValueError, match="`input_shape` is required for the TF Hub handle"):
        resolve_hub_backbone(models["hub"])
    for short in (12, (12, 12)):  # the forms `kerastl.build` accepts
        assert resolve_hub_backbone(models["hub"], input_shape=short)[0].hub_input_shape == (
            12, 12, 3)


def test_resolve_hub_backbone_fixed_and_signature_models(models):
    layer, spec = resolve_hub_backbone(models["fixed"])
    assert layer.hub_input_shape is None and spec.preprocessing == "unit"
    assert (spec.default_input_size, spec.min_input_size, spec.fixed_input_size) == (
        SIZE, SIZE, (SIZE,))
    layer, spec = resolve_hub_backbone(
        models["signature"], input_shape=(SIZE, SIZE, 3),
        backbone_kwargs={"signature": "serving_default", "output_key": "mean_color",
                         "input_range": (0, 255)})
    assert (spec.feature_dim, spec.preprocessing) == (3, "none")


def test_resolve_hub_backbone_known_handle_from_cache(models, tmp_path, monkeypatch):
    handle = "https://www.kaggle.com/models/google/mobilenet-v2/TensorFlow2/100-224-feature-vector/2"
    cache = tmp_path / "cache"
    shutil.copytree(models["hub"], cache / hashlib.sha1(handle.encode("utf8")).hexdigest())
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))
    layer, spec = resolve_hub_backbone(handle)
    assert layer.hub_input_shape == (224, 224, 3)
    assert (spec.family, spec.default_input_size, spec.min_input_size) == ("mobilenet_v2", 224, 32)
    assert spec.feature_dim == 4  # what the SavedModel returns, not the table's 1280


def test_resolve_hub_backbone_bad_kwargs(models):
    with pytest.raises(ValueError, match="Unknown key\\(s\\) in `backbone_kwargs`: 'ouput_key' "
                                         "\\(did you mean 'output_key'\\?\\)"):
        resolve_hub_backbone(models["hub"], backbone_kwargs={"ouput_key": "default"})
    with pytest.raises(ValueError, match="`input_range` must be one of \\(0, 1\\), \\(-1, 1\\), "
                                         "\\(0, 255\\). Received: input_range=\\(0, 2\\)"):
        resolve_hub_backbone(models["hub"], backbone_kwargs={"input_range": (0, 2)})
    with pytest.raises(TypeError, match="`arguments` must be a dict"):
        HubBackbone(models["hub"], arguments=["x"])


def test_known_handles_table():
    models = hub_handles.KNOWN_HUB_MODELS
    assert len({m.name for m in models}) == len(models)
    for model in models:
        assert hub_handles.find_hub_model(model.tfhub) is model
        assert hub_handles.find_hub_model(model.kaggle) is model
        assert model.input_range == (0.0, 1.0) and model.input_size >= model.min_input_size
    families = {m.family for m in models}
    assert {"mobilenet_v2", "mobilenet_v3", "efficientnet", "efficientnet_v2", "resnet_v1",
            "resnet_v2", "bit", "inception_v3"} <= families


@pytest.mark.parametrize("handle", [
    "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/4",
    "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5/",
    "https://hub.tensorflow.google.cn/google/imagenet/mobilenet_v2_100_224/feature_vector/5",
    "https://www.kaggle.com/models/google/mobilenet-v2/TensorFlow2/100-224-feature-vector/2",
    "https://www.kaggle.com/models/google/mobilenet-v2/frameworks/tensorFlow2/variations/"
    "100-224-feature-vector/versions/1?tfhub-redirect=true",
])
def test_handle_spellings_find_the_same_model(handle):
    assert hub_handles.find_hub_model(handle).name == "mobilenet_v2_100_224"


@pytest.mark.parametrize("handle", [
    "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/classification/5",
    "/models/mobilenet_v2_100_224/feature_vector",
    "https://example.com/model.tar.gz",
])
def test_unknown_handles(handle):
    assert hub_handles.find_hub_model(handle) is None


@pytest.mark.integration
def test_real_mobilenet_v2_feature_vector(assets):
    path = str(assets / "hub" / "mobilenet_v2_100_224_feature_vector")
    layer, spec = resolve_hub_backbone(path, trainable=True)
    assert (spec.feature_dim, spec.fixed_input_size, spec.preprocessing) == (1280, (224,), "unit")
    assert len(layer.trainable_weights) == 156 and len(layer.weights) == 260
    reference = keras.applications.MobileNetV2(include_top=False, weights=None,
                                               input_shape=(224, 224, 3))
    assert spec.num_params == reference.count_params()
    x = _images(4, size=224, seed=1)
    expected = hub.load(path)(tf.constant(x), training=False)
    # MobileNetV2 (155 layers, longest sum a 1x1 conv over 960 channels), other graph.
    assert_float32_close(layer(x), expected, depth=155, terms=960)

    model = _classifier(layer, size=224)
    trainable_before = [w.numpy().copy() for w in layer.trainable_weights]
    model.fit(x, np.array([0, 1, 0, 1]), epochs=1, batch_size=4, verbose=0)
    changed = [not np.allclose(b, w.numpy()) for b, w in zip(trainable_before,
                                                             layer.trainable_weights)]
    assert sum(changed) > 0.9 * len(changed)
    assert not np.allclose(layer(x), expected, atol=1e-4)
