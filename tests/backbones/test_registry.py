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


@pytest.fixture
def registry(monkeypatch):
    """The global registry, restored after the test (registrations do not leak)."""
    from kerastl.backbones import registry as registry_lib

    monkeypatch.setattr(registry_lib._REGISTRY, "_specs", dict(registry_lib._REGISTRY._specs))
    return registry_lib._REGISTRY


def test_register_backbone_and_refuse_duplicates(registry):
    before = kerastl.list_backbones()
    spec = dataclasses.replace(kerastl.get_backbone_spec("mobilenet_v2"),
                               name="registered_tiny_net", kwargs={"alpha": 0.35})
    kerastl.register_backbone(spec)
    assert kerastl.get_backbone_spec("registered_tiny_net") is spec
    assert kerastl.list_backbones() == before + ["registered_tiny_net"]
    with pytest.raises(ValueError, match="already registered"):
        kerastl.register_backbone(spec)
    with pytest.raises(TypeError):
        kerastl.register_backbone({"name": "x"})
    for bad in ("", "  ", "hub:mine", "custom:mine"):
        with pytest.raises(ValueError, match="`spec.name` must be a non-empty name"):
            kerastl.register_backbone(dataclasses.replace(spec, name=bad))


def test_registered_name_is_found_under_the_name_it_is_listed_by(registry):
    spec = dataclasses.replace(kerastl.get_backbone_spec("mobilenet_v2"), name="My-Net")
    kerastl.register_backbone(spec)
    assert "My-Net" in kerastl.list_backbones()
    assert kerastl.list_backbones("my-net") == kerastl.list_backbones("my_net") == ["My-Net"]
    for spelling in ("My-Net", "my_net", " MY-NET "):
        assert kerastl.get_backbone_spec(spelling) is spec
    with pytest.raises(ValueError, match="A backbone named 'My-Net' is already registered"):
        kerastl.register_backbone(dataclasses.replace(spec, name="my_net"))
    other = dataclasses.replace(spec, name="my_net", kwargs={"alpha": 0.5})
    assert kerastl.register_backbone(other, overwrite=True) is kerastl.get_backbone_spec("My-Net")
    assert kerastl.list_backbones("my*net") == ["my_net"]


def test_unregister_backbone(registry):
    from kerastl.backbones import unregister_backbone

    spec = dataclasses.replace(kerastl.get_backbone_spec("mobilenet_v2"), name="Gone-Net")
    kerastl.register_backbone(spec)
    assert unregister_backbone("gone_net") is spec
    assert "Gone-Net" not in kerastl.list_backbones()
    with pytest.raises(ValueError, match="Unknown backbone 'Gone-Net'"):
        unregister_backbone("Gone-Net")


def test_registry_fixture_restores_the_global_registry():
    # Runs after the tests above in this file: none of their names is left.
    names = kerastl.list_backbones()
    assert len(names) == 40
    assert not {"registered_tiny_net", "My-Net", "my_net", "Gone-Net"} & set(names)


def test_spec_to_dict_is_json_friendly():
    import json

    out = kerastl.get_backbone_spec("resnet50").to_dict()
    assert out["constructor"].endswith("ResNet50")
    json.dumps(out)
