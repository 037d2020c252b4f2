"""Every registered Keras Applications spec checked against its real model."""

import keras
import pytest

from kerastl.backbones import get_backbone_spec, list_backbones, resolve_blocks
from kerastl.backbones.keras_apps import KERAS_APPLICATION_SPECS

FAMILIES = {"mobilenet", "mobilenet_v2", "mobilenet_v3", "efficientnet", "efficientnet_v2",
            "resnet", "resnet_v2", "inception_v3", "inception_resnet_v2", "xception",
            "densenet", "vgg", "nasnet", "convnext"}


def test_registry_covers_every_family():
    assert {s.family for s in KERAS_APPLICATION_SPECS} == FAMILIES
    names = list_backbones()
    assert len(names) == len(set(names)) == len(KERAS_APPLICATION_SPECS)
    for name in names:
        assert name == name.lower() and " " not in name and "-" not in name


@pytest.mark.parametrize("name", [s.name for s in KERAS_APPLICATION_SPECS])
def test_spec_matches_real_model(name):
    spec = get_backbone_spec(name)
    size = spec.min_input_size
    model = spec.constructor(include_top=False, weights=None, input_shape=(size, size, 3))
    try:
        assert model.output.shape[-1] == spec.feature_dim
        assert model.count_params() == spec.num_params
        blocks = resolve_blocks(spec, model)
        assert len(blocks) == spec.num_blocks
        names = [b.name for b in blocks]
        assert len(set(names)) == len(names)
        # Blocks cover every layer exactly once, in the model's layer order.
        flat = [layer for block in blocks for layer in block.layers]
        assert [id(x) for x in flat] == [id(x) for x in model.layers]
        # Every block holds weights, and the last block ends at the output layer.
        assert all(block.num_params > 0 for block in blocks)
        assert blocks[-1].layers[-1] is model.layers[-1]
        assert spec.default_input_size >= spec.min_input_size
    finally:
        del model
        keras.backend.clear_session()
