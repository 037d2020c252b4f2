import keras
import numpy as np
import pytest

import kerastl
from harness import assert_float32_close, random_images
from kerastl import peft
from kerastl.layers import ClassificationHead, ImagePreprocessing
from kerastl.peft.core import set_trainable
from tests.peft._models import mixed_model, perturb

pytestmark = pytest.mark.filterwarnings("ignore::kerastl.accessors.UnregisteredBackboneWarning")


@pytest.fixture(scope="module")
def images():
    return random_images(4, 16)


def _mobilenet():
    return kerastl.build("mobilenet_v2", 3, input_shape=(32, 32, 3), weights=None)


def test_lora_leaves_outputs_unchanged_at_initialisation(images):
    model = mixed_model()
    before = model(images)
    summary = peft.apply(model, "lora", rank=2)
    assert summary.layers == ["conv_a", "dense_b", "einsum_c", "conv_d"]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(images)),
                                  keras.ops.convert_to_numpy(before))
    assert [layer.name for layer in peft.lora_layers(model)] == summary.layers


def test_lora_trains_only_low_rank_factors_and_the_head():
    model = mixed_model()
    peft.apply(model, "lora", rank=2, blocks=2)
    set_trainable(model)
    assert [v.path for v in model.trainable_weights] == [
        "einsum_c/lora_kernel_a", "einsum_c/lora_kernel_b", "conv_d/lora_kernel_a",
        "conv_d/lora_kernel_b", "head/predictions/kernel", "head/predictions/bias"]


def test_lora_targets_the_1x1_convolutions_of_named_blocks():
    model = _mobilenet()
    summary = peft.apply(model, "lora", rank=4, blocks=["block_16", "Conv_1"])
    assert summary.layers == ["block_16_expand", "block_16_project", "Conv_1"]
    # 160 -> 960 -> 320 -> 1280, rank 4 each.
    assert summary.peft_params == 4 * (160 + 960) + 4 * (960 + 320) + 4 * (320 + 1280)
    assert summary.trainable_blocks == 2 and summary.blocks == ["block_16", "Conv_1"]
    assert 0 < summary.fraction < 0.01
    assert peft.summarize(model) == summary


def test_rank_larger_than_a_layer_is_refused():
    model = mixed_model()  # conv_d: 1x1x10 -> 6 allows rank 6 at most
    with pytest.raises(ValueError, match=r"`rank` must be between 1 and 6 .*'conv_d'.*rank=7"):
        peft.apply(model, "lora", rank=7)
    assert not peft.lora_layers(model) and peft.get_config(model) is None


def test_rank_zero_is_refused():
    with pytest.raises(ValueError, match="`rank` must be an integer >= 1"):
        peft.apply(mixed_model(), "lora", rank=0)


def test_unknown_block_and_too_many_blocks_are_refused():
    model = _mobilenet()
    with pytest.raises(ValueError, match=r"unknown blocks \['block_99'\]"):
        peft.apply(model, "lora", blocks=["block_99"])
    with pytest.raises(ValueError, match="`blocks` must be between 1 and 18"):
        peft.apply(model, "lora", blocks=19)


def test_bitfit_trains_only_biases_and_bn_offsets():
    model = mixed_model()
    summary = peft.apply(model, "bitfit")
    set_trainable(model)
    assert summary.layers == ["conv_a", "bn_a", "dense_b", "einsum_c", "conv_d"]
    assert [v.path for v in model.trainable_weights] == [
        "conv_a/bias", "bn_a/beta", "dense_b/bias", "einsum_c/bias", "conv_d/bias",
        "head/predictions/kernel", "head/predictions/bias"]


def test_bn_affine_trains_scale_and_offset():
    model = _mobilenet()
    peft.apply(model, "bn_affine", blocks=1)
    set_trainable(model)
    assert [v.path for v in model.trainable_weights][:2] == ["Conv_1_bn/gamma", "Conv_1_bn/beta"]
    assert len(model.trainable_weights) == 4


def test_hub_backbone_is_refused():
    image = keras.Input((8, 8, 3), name="image")
    x = ImagePreprocessing("unit", backbone="hub:some/model", name="preprocessing")(image)
    x = keras.layers.Conv2D(4, 1, name="backbone")(x)
    model = keras.Model(image, ClassificationHead(2, name="head")(x))
    with pytest.raises(ValueError, match="needs a Keras backbone.*TF Hub"):
        peft.apply(model, "lora")


def test_apply_twice():
    model = mixed_model()
    first = peft.apply(model, "lora", rank=2)
    assert peft.apply(model, peft.PeftConfig("lora", rank=2)) == first
    with pytest.raises(ValueError, match="already applied"):
        peft.apply(model, "lora", rank=4)
    with pytest.raises(ValueError, match="either a PeftConfig or"):
        peft.apply(mixed_model(), peft.PeftConfig("lora"), rank=4)


def test_merge_equals_the_unmerged_model(images):
    model = mixed_model()
    peft.apply(model, "lora", rank=3)
    perturb(peft.peft_variables(model))
    merged = peft.merge(model)
    assert not peft.lora_layers(merged)
    assert len(merged.weights) == len(model.weights) - 8
    expected = keras.ops.convert_to_numpy(model(images))
    assert np.abs(expected - keras.ops.convert_to_numpy(mixed_model()(images))).max() > 1e-3
    assert_float32_close(keras.ops.convert_to_numpy(merged(images)), expected, depth=8,
                         terms=72)
    assert kerastl.model_info(merged) == kerastl.model_info(model)


def test_merge_without_lora_is_the_model():
    model = mixed_model()
    assert peft.merge(model) is model
    peft.apply(model, "bitfit")
    assert peft.merge(model) is model
