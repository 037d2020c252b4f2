"""Tests of `kerastl.backbones.kerashub`: KerasHub presets as kerastl backbones.

The presets are tiny random-weight models saved with KerasHub's own
``save_to_preset`` (a ResNet, a CNN, and a ViT), so everything runs offline.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from harness import (assert_float32_close, assert_keras_round_trip,
                     assert_serialization_round_trip)

import kerastl
from kerastl.backbones import kerashub
from kerastl.backbones.blocks import resolve_blocks

keras_hub = pytest.importorskip("keras_hub")

SIZE = 32
_STD = np.array([0.229, 0.224, 0.225])
_MEAN = np.array([0.485, 0.456, 0.406])


@pytest.fixture(scope="module")
def presets(tmp_path_factory):
    """Folders of a tiny ResNet (torch scaling) and a tiny ViT (tf scaling) preset."""
    root = tmp_path_factory.mktemp("kerashub_presets")
    keras.utils.set_random_seed(0)
    vit = keras_hub.models.ViTBackbone(image_shape=(SIZE, SIZE, 3), patch_size=8, num_layers=3,
                                       num_heads=2, hidden_dim=16, mlp_dim=32)
    vit.save_to_preset(str(root / "vit"))
    keras_hub.layers.ViTImageConverter(image_size=(SIZE, SIZE), scale=1 / 127.5,
                                       offset=-1.0).save_to_preset(str(root / "vit"))
    resnet = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 16],
        stackwise_num_blocks=[2, 2], stackwise_num_strides=[1, 2], block_type="basic_block",
        use_pre_activation=False, image_shape=(None, None, 3))
    resnet.save_to_preset(str(root / "resnet"))
    keras_hub.layers.ResNetImageConverter(
        image_size=(SIZE, SIZE), scale=list(1 / (255 * _STD)),
        offset=list(-_MEAN / _STD)).save_to_preset(str(root / "resnet"))
    bert = keras_hub.models.BertBackbone(vocabulary_size=20, num_layers=1, num_heads=1,
                                         hidden_dim=4, intermediate_dim=8, max_sequence_length=8)
    bert.save_to_preset(str(root / "bert"))
    return {"vit": str(root / "vit"), "resnet": str(root / "resnet"), "bert": str(root / "bert"),
            "vit_model": vit}


def _data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (n, SIZE, SIZE, 3)).astype("float32"), np.arange(n) % 3


def test_resnet_preset_builds_with_stage_blocks_and_torch_scaling(presets):
    model = kerastl.build("kerashub:" + presets["resnet"], 3)
    info = kerastl.model_info(model)
    assert info.preprocessing == "torch"
    assert info.input_shape == (SIZE, SIZE, 3)  # the converter's image size
    spec, layer, _ = kerashub.resolve_kerashub_backbone(presets["resnet"])
    names = [b.name for b in resolve_blocks(spec, layer)]
    assert names == ["stem", "stack0_block0", "stack0_block1", "stack1_block0", "stack1_block1"]
    assert spec.num_blocks == 5 and spec.source == "kerashub" and spec.family == "res_net"
    assert spec.feature_dim == 16 and spec.num_params == layer.count_params()


def test_vit_preset_blocks_are_transformer_blocks(presets):
    spec, layer, shape = kerashub.resolve_kerashub_backbone(presets["vit"])
    assert shape == (SIZE, SIZE, 3) and spec.preprocessing == "tf"
    blocks = resolve_blocks(spec, layer)
    assert [b.name for b in blocks] == ["stem", "transformer_block_1", "transformer_block_2",
                                        "transformer_block_3"]
    # The final layer norm and the token pooling belong to the top block.
    assert [x.name for x in blocks[-1].layers][-3:] == ["dropout", "ln", "token_pooling"]
    assert layer.output.shape == (None, 16)
    assert spec.fixed_input_size == (SIZE,)


def test_vit_features_are_the_class_token_of_the_preset(presets):
    _, layer, _ = kerashub.resolve_kerashub_backbone(presets["vit"])
    x = np.random.default_rng(1).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype("float32")
    tokens = presets["vit_model"](x)
    np.testing.assert_allclose(layer(x), tokens[:, 0, :], rtol=1e-5, atol=1e-5)
    _, mean_layer, _ = kerashub.resolve_kerashub_backbone(
        presets["vit"], backbone_kwargs={"pooling": "mean"})
    np.testing.assert_allclose(mean_layer(x), keras.ops.mean(tokens, axis=1), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("family", ["resnet", "vit"])
def test_freeze_by_blocks_fit_round_trip(presets, family, tmp_path):
    model = kerastl.build("kerashub:" + presets[family], 3, trainable_blocks=1)
    spec, _, _ = kerashub.resolve_kerashub_backbone(presets[family])
    blocks = resolve_blocks(spec, kerastl.get_backbone(model))
    top = {id(w) for layer in blocks[-1].layers for w in layer.trainable_weights}
    backbone_trainable = kerastl.get_backbone(model).trainable_weights
    assert backbone_trainable and {id(w) for w in backbone_trainable} <= top
    frozen_before = [w.numpy().copy() for w in blocks[0].layers[-1].weights]
    x, y = _data()
    if family == "resnet":  # kerastl.fit (prefix cache below the trained block)
        report = kerastl.fit(model, (x, y), (x, y), recipe="fine_tune", trainable_blocks=1,
                             epochs=1, batch_size=12, verbose=0)
        assert report.stages
    else:  # one plain Keras step: the same trainable flags, less tracing
        model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
        model.train_on_batch(x, y)
    for before, w in zip(frozen_before, blocks[0].layers[-1].weights):
        np.testing.assert_array_equal(before, w.numpy())  # the stem stayed frozen
    loaded = assert_keras_round_trip(model, x, tmp_path)
    assert kerastl.model_info(loaded).backbone == "kerashub:" + presets[family]


def test_set_trainable_blocks_counts_kerashub_blocks(presets):
    model = kerastl.build("kerashub:" + presets["vit"], 3)
    from kerastl.freezing import apply_trainable_blocks

    spec, _, _ = kerashub.resolve_kerashub_backbone(presets["vit"])
    backbone = kerastl.get_backbone(model)
    blocks = resolve_blocks(spec, backbone)
    apply_trainable_blocks(backbone, blocks, 2)
    trained = {w.path.split("/")[1] for w in backbone.trainable_weights if "/" in w.path}
    assert trained == {"transformer_block_2", "transformer_block_3", "ln"}
    with pytest.raises(ValueError, match="between 0 and 4"):
        kerastl.build("kerashub:" + presets["vit"], 3, trainable_blocks=5)


@pytest.mark.parametrize("family", ["resnet", "vit"])
def test_export_tflite_matches_keras(presets, family, tmp_path):
    model = kerastl.build("kerashub:" + presets[family], 3)
    report = kerastl.export(model, tmp_path / "export", formats=("saved_model", "tflite"),
                            quantization=("float32",), verbose=0)
    text = str(report)
    assert "model_float32.tflite" in text
    x, _ = _data(4)
    got = kerastl.predict_tflite(str(next((tmp_path / "export").glob("*/model_float32.tflite"))),
                                 x)
    np.testing.assert_allclose(got, model.predict(x, verbose=0), atol=1e-4)


def test_random_init_and_lora(presets):
    pretrained = kerastl.build("kerashub:" + presets["vit"], 3)
    random = kerastl.build("kerashub:" + presets["vit"], 3, weights=None, input_shape=48)
    assert kerastl.model_info(random).input_shape == (48, 48, 3)
    with pytest.raises(ValueError, match="must be \\(32, 32, 3\\)"):
        kerastl.build("kerashub:" + presets["vit"], 3, input_shape=48)
    x, _ = _data(2)
    before = pretrained.predict(x, verbose=0)
    names = kerashub.enable_lora(pretrained, 2)
    assert set(names) == {"query", "value"} and len(names) == 6
    # LoRA's update is zero at first, but the layers now sum kernel + A @ B: another
    # float32 path through the tiny ViT (3 layers of about 8 stages, 192-term patch sums).
    assert_float32_close(pretrained.predict(x, verbose=0), before, depth=28, terms=192)
    trainable = [w.path for w in kerastl.get_backbone(pretrained).trainable_weights]
    assert trainable and all("lora" in p or p.endswith("bias") for p in trainable)
    resnet = kerastl.build("kerashub:" + presets["resnet"], 3)
    with pytest.raises(ValueError, match="no attention layer"):
        kerashub.enable_lora(resnet, 2)


def test_token_pooling_serializes():
    layer = kerashub.TokenPooling("mean", name="pool")
    assert assert_serialization_round_trip(layer).mode == "mean"
    with pytest.raises(ValueError, match="`mode` must be one of"):
        kerashub.TokenPooling("max")


def test_preprocessing_mode_matches_converter_scalings():
    assert kerashub.preprocessing_mode(None, None) == "none"
    assert kerashub.preprocessing_mode(1 / 255, None) == "unit"
    assert kerashub.preprocessing_mode(list(1 / (255 * _STD)), list(-_MEAN / _STD)) == "torch"
    with pytest.raises(ValueError, match="scale=.*offset="):
        kerashub.preprocessing_mode(1 / 255, -0.5)


def test_spec_from_name_alone_finds_the_same_blocks(presets):
    model = kerastl.build("kerashub:" + presets["resnet"], 3)
    spec = kerashub.kerashub_spec(kerastl.model_info(model).backbone)
    names = [b.name for b in resolve_blocks(spec, kerastl.get_backbone(model))]
    assert names[1:3] == ["stack0_block0", "stack0_block1"] and len(names) == 5
    with pytest.raises(ValueError, match="must start with 'kerashub:'"):
        kerashub.kerashub_spec("resnet")


def test_bad_presets_have_clear_errors(presets, tmp_path):
    with pytest.raises(ValueError, match="Unknown KerasHub preset 'resnet_50_imagenett'.*"
                                         "resnet_50_imagenet"):
        kerastl.build("kerashub:resnet_50_imagenett", 3)
    with pytest.raises(ValueError, match="Unknown KerasHub preset"):
        kerastl.build(f"kerashub:{tmp_path}", 3)  # a folder without config.json
    with pytest.raises(ValueError, match="not an image model.*BertBackbone"):
        kerastl.build("kerashub:" + presets["bert"], 3)
    with pytest.raises(ValueError, match="`weights` must be 'imagenet'.*or None"):
        kerastl.build("kerashub:" + presets["resnet"], 3, weights="/x.h5")
    with pytest.raises(ValueError, match="backbone_kwargs"):
        kerastl.build("kerashub:" + presets["resnet"], 3, backbone_kwargs={"alpha": 1})
    with pytest.raises(ValueError, match="name a KerasHub preset"):
        kerastl.build("kerashub:", 3)


def test_saved_models_read_their_kerashub_blocks(presets, tmp_path):
    model = kerastl.build("kerashub:" + presets["resnet"], 3)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    names = [b.name for b in kerastl.get_blocks(loaded)]
    assert names == ["stem", "stack0_block0", "stack0_block1", "stack1_block0", "stack1_block1"]
    summary = kerastl.set_trainable_blocks(loaded, 2)
    assert summary.trainable_block_names == ["stack1_block0", "stack1_block1"]
