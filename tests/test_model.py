import os

import keras
import numpy as np
import pytest

import kerastl
from harness import TINY_MODEL, assert_float32_close, assert_keras_round_trip, random_images

TINY = dict(input_shape=(32, 32, 3), weights=None, backbone_kwargs={"alpha": 0.35})


def tiny(num_classes=3, **kwargs):
    return kerastl.build("mobilenet_v2", num_classes, **{**TINY, **kwargs})


def test_layout_and_model_info():
    model = tiny(class_names=["a", "b", "c"], augmentation="default")
    assert [layer.name for layer in model.layers] == [
        "image", "augmentation", "preprocessing", "backbone", "head"]
    info = kerastl.model_info(model)
    assert info.to_dict() == {"backbone": "mobilenet_v2", "task": "multiclass", "num_outputs": 3,
                              "class_names": ["a", "b", "c"], "input_shape": [32, 32, 3],
                              "preprocessing": "tf"}
    assert kerastl.get_backbone(model) is model.get_layer("backbone")
    assert kerastl.get_head(model) is model.get_layer("head")


@pytest.mark.parametrize("task,num_classes,units", [
    (None, 4, 4), ("binary", None, 1), ("binary", 2, 1), ("multilabel", 3, 3),
    ("regression", None, 1), ("regression", 2, 2)])
def test_task_outputs(task, num_classes, units):
    model = tiny(num_classes, task=task)
    assert model.output.shape == (None, units)


def test_keras_round_trip_identical_predictions(tmp_path):
    model = tiny(class_names=["x", "y", "z"], head={"hidden_units": (8,), "dropout": 0.1},
                 trainable_blocks=3, augmentation="default")
    loaded = assert_keras_round_trip(model, random_images(4), tmp_path, atol=0)
    assert kerastl.model_info(loaded) == kerastl.model_info(model)
    assert [w.trainable for w in loaded.weights] == [w.trainable for w in model.weights]


def test_plain_keras_workflow_and_export(tmp_path):
    model = tiny(2)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = random_images(8), np.arange(8) % 2
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert len(model.evaluate(x, y, verbose=0)) == 2
    model.export(str(tmp_path / "sm"), verbose=False)
    import tensorflow as tf

    loaded = tf.saved_model.load(str(tmp_path / "sm"))  # keep a reference while serving
    served = loaded.serve(x)
    assert_float32_close(served.numpy(), model.predict(x, verbose=0), **TINY_MODEL)


def test_custom_keras_model_backbone():
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="c1")(inp)
    x = keras.layers.Conv2D(6, 3, name="c2")(x)
    feat = keras.Model(inp, x, name="mine")
    model = kerastl.build(feat, 2, backbone_kwargs={"preprocessing": "unit"})
    assert kerastl.model_info(model).backbone == "custom:mine"
    assert [b.name for b in kerastl.get_blocks(model)] == ["c1", "c2"]
    summary = kerastl.set_trainable_blocks(model, 1)
    assert summary.trainable_block_names == ["c2"]
    assert not model.get_layer("backbone").get_layer("c1").trainable
    assert feat.get_layer("c1").trainable  # the caller's model is a copy's source only


def test_build_copies_a_keras_model_backbone_and_leaves_it_unchanged():
    inp = keras.Input((16, 16, 3))
    feat = keras.Model(inp, keras.layers.Conv2D(4, 3, name="c1")(inp), name="mine")
    original = [w.copy() for w in feat.get_weights()]
    first = kerastl.build(feat, 2, backbone_kwargs={"preprocessing": "unit"})
    second = kerastl.build(feat, 2, backbone_kwargs={"preprocessing": "unit"})
    assert feat.name == "mine" and feat.trainable
    assert kerastl.model_info(second).backbone == "custom:mine"
    copies = [kerastl.get_backbone(m) for m in (first, second)]
    assert all(c.name == "backbone" and c is not feat for c in copies)
    # The copies start from the caller's weights and own them: training one
    # (here: changing a kernel) changes neither the other nor the caller's model.
    for c in copies:
        np.testing.assert_array_equal(c.get_weights()[0], original[0])
    copies[0].get_layer("c1").kernel.assign(np.ones_like(original[0]))
    np.testing.assert_array_equal(copies[1].get_weights()[0], original[0])
    np.testing.assert_array_equal(feat.get_weights()[0], original[0])


def test_dtype_policy_is_scoped_and_output_float32():
    model = tiny(2, dtype_policy="mixed_float16")
    assert keras.config.dtype_policy().name == "float32"
    assert model.get_layer("backbone").layers[1].compute_dtype == "float16"
    assert keras.backend.standardize_dtype(model(random_images(1)).dtype) == "float32"


def test_strategy_scope():
    import tensorflow as tf

    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    model = tiny(2, strategy=strategy)
    assert model.distribute_strategy is strategy


@pytest.mark.parametrize("kwargs,error,pattern", [
    (dict(backbone="mobilenetv2"), ValueError, r"Did you mean 'mobilenet_v2'"),
    (dict(input_shape=(16, 16, 3)), ValueError, r"at least 32x32 for backbone 'mobilenet_v2'"),
    (dict(input_shape=(32, 32, 1), weights="imagenet"), ValueError, r"3 channels"),
    (dict(input_shape=(32, 32, 1)), ValueError,
     r"^`input_shape` must have 3 channels for backbone 'mobilenet_v2': kerastl models take "
     r"RGB images in \[0, 255\] .*Received: input_shape=\(32, 32, 1\)$"),
    (dict(strategy="quantum"), ValueError,
     r"^`strategy` must be one of 'auto', 'tpu', 'mirrored', 'multi_worker', 'gpu', 'cpu'.* "
     r"Received: strategy='quantum'$"),
    (dict(strategy=3), TypeError, r"^`strategy` must be None, a tf.distribute.Strategy"),
    (dict(num_classes=1), ValueError, r"`num_classes` must be an integer >= 2"),
    (dict(num_classes=3, task="binary"), ValueError, r"must be 2 \(or None\) for task='binary'"),
    (dict(num_classes=None), ValueError, r"Pass `num_classes`"),
    (dict(task="segmentation"), ValueError, r"`task` must be one of"),
    (dict(trainable_blocks=20), ValueError,
     r"^`trainable_blocks` must be an integer between 0 and 18 or 'all'. "
     r"Received: trainable_blocks=20$"),
    (dict(trainable_blocks="some"), ValueError, r"between 0 and 18 or 'all'"),
    (dict(backbone_kwargs={"alhpa": 0.35}), ValueError, r"'alhpa' \(did you mean 'alpha'\?\)"),
    (dict(head={"droput": 0.1}), ValueError, r"'droput' \(did you mean 'dropout'\?\)"),
    (dict(head={"pooling": "mean"}), ValueError, r"`head.pooling` must be one of"),
    (dict(augmentation="heavy"), ValueError, r"`augmentation` must be one of"),
    (dict(weights="/no/such/file.h5"), FileNotFoundError, r"`weights` file not found"),
    (dict(weights=3), ValueError, r"`weights` must be 'imagenet', None, or a path"),
    (dict(bn_training="yes"), ValueError, r"`bn_training` must be True or False"),
    (dict(dtype_policy="float64"), ValueError, r"`dtype_policy` must be one of"),
    (dict(backbone=42), TypeError, r"`backbone` must be a registry name"),
])
def test_bad_input_gets_clear_error(kwargs, error, pattern):
    args = {"backbone": "mobilenet_v2", "num_classes": 3, **TINY}
    args.update(kwargs)
    with pytest.raises(error, match=pattern):
        kerastl.build(args.pop("backbone"), args.pop("num_classes"), **args)


# Keras warns once per nested container of a weights file that does not fit.
@pytest.mark.filterwarnings("ignore:Skipping nested container:UserWarning")
def test_weights_file_that_does_not_fit(tmp_path):
    other = keras.applications.MobileNetV2(include_top=False, weights=None, alpha=0.5,
                                           input_shape=(32, 32, 3))
    path = tmp_path / "alpha05.weights.h5"
    other.save_weights(path)
    with pytest.raises(ValueError, match=r"does not fit backbone 'mobilenet_v2'"):
        tiny(weights=str(path))
    model = tiny(weights=str(path), backbone_kwargs={"alpha": 0.5})
    np.testing.assert_array_equal(model.get_layer("backbone").get_weights()[0],
                                  other.get_weights()[0])


def test_missing_imagenet_weights_offline_says_how(tmp_path, monkeypatch):
    # In this process, with an empty Keras cache (tmp_path) and no network. Keras reads
    # $KERAS_HOME once, at import, into keras.src.backend.config; a fresh process with
    # KERAS_HOME set runs the same path (tests/cli/test_main.py, through the CLI).
    import urllib.error

    from keras.src.backend import config
    from keras.src.utils import file_utils

    def no_net(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(file_utils, "urlretrieve", no_net)
    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path))
    assert config.keras_home() == str(tmp_path)
    with pytest.raises(OSError) as caught:
        kerastl.build("resnet50", 2, input_shape=(32, 32, 3))
    message = str(caught.value)
    assert "Could not get the ImageNet weights of 'resnet50'" in message, message
    assert "weights='/path/to/weights.h5'" in message
    assert os.path.join(str(tmp_path), "models") in message
    assert list(tmp_path.rglob("*.h5")) == []  # nothing was downloaded


def test_accessors_do_not_import_build():
    # kerastl.freezing and kerastl.accessors read models; kerastl.model builds them and
    # imports both: neither may import kerastl.model back (no import cycle).
    import ast
    import inspect

    import kerastl.accessors
    import kerastl.freezing

    for module in (kerastl.accessors, kerastl.freezing):
        tree = ast.parse(inspect.getsource(module))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                     for a in node.names}
        imported |= {f"{node.module}.{a.name}" for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module == "kerastl"
                     for a in node.names}
        assert "kerastl.model" not in imported, module.__name__
    # The old import paths keep working.
    from kerastl.model import ModelInfo, get_backbone, get_blocks, get_head, model_info, model_spec

    assert get_head is kerastl.accessors.get_head and ModelInfo is kerastl.accessors.ModelInfo
    for fn in (get_backbone, get_blocks, model_info, model_spec):
        assert getattr(kerastl.accessors, fn.__name__) is fn


def test_unregistered_backbone_of_a_reloaded_model_warns(tmp_path, monkeypatch):
    import dataclasses

    from kerastl.accessors import UnregisteredBackboneWarning, spec_for_name
    from kerastl.backbones import registry

    monkeypatch.setattr(registry._REGISTRY, "_specs", dict(registry._REGISTRY._specs))
    spec = dataclasses.replace(kerastl.get_backbone_spec("mobilenet_v2"), name="My-Net")
    kerastl.register_backbone(spec)
    model = kerastl.build("My-Net", 3, **TINY)
    assert [b.name for b in kerastl.get_blocks(model)][-2:] == ["block_16", "Conv_1"]
    model.save(tmp_path / "m.keras")
    kerastl.backbones.unregister_backbone("My-Net")  # a new session, without the registration
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    with pytest.warns(UnregisteredBackboneWarning, match=r"Backbone 'My-Net' is not registered "
                                                         r".*kerastl.register_backbone"):
        blocks = kerastl.get_blocks(loaded)
    assert len(blocks) != 18  # without its spec the named blocks are unknown
    kerastl.register_backbone(spec)
    assert len(kerastl.get_blocks(loaded)) == 18
    # Custom and hub names are known kinds: no warning.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert spec_for_name("custom:mine").source == "custom"
        assert spec_for_name("hub:/some/model").source == "hub"

