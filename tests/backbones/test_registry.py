import dataclasses

import pytest

import kerastl


def test_get_spec_forgives_case_and_dashes():
    assert kerastl.get_backbone_spec("MobileNet-V2").name == "mobilenet_v2"


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ValueError, match=r"Did you mean 'mobilenet_v2'"):
        kerastl.get_backbone_spec("mobilenetv2")


def test_list_backbones_filters():
    assert kerastl.list_backbones("mobilenet") == [
        "mobilenet", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"]
    assert kerastl.list_backbones("resnet*_v2") == ["resnet50_v2", "resnet101_v2",
                                                     "resnet152_v2"]
    assert kerastl.list_backbones("nothing-like-this") == []


def test_register_backbone_and_refuse_duplicates():
    spec = dataclasses.replace(kerastl.get_backbone_spec("mobilenet_v2"),
                               name="registered_tiny_net", kwargs={"alpha": 0.35})
    kerastl.register_backbone(spec)
    assert kerastl.get_backbone_spec("registered_tiny_net") is spec
    with pytest.raises(ValueError, match="already registered"):
        kerastl.register_backbone(spec)
    with pytest.raises(TypeError):
        kerastl.register_backbone({"name": "x"})


def test_spec_to_dict_is_json_friendly():
    import json

    out = kerastl.get_backbone_spec("resnet50").to_dict()
    assert out["constructor"].endswith("ResNet50")
    json.dumps(out)
