"""Every registered Keras Applications spec checked against its real model (first half)."""

import pytest

from kerastl.backbones import list_backbones
from kerastl.backbones.keras_apps import KERAS_APPLICATION_SPECS

from .keras_apps_check import FIRST_HALF, NAMES, SECOND_HALF, check_spec_matches_real_model

FAMILIES = {"mobilenet", "mobilenet_v2", "mobilenet_v3", "efficientnet", "efficientnet_v2",
            "resnet", "resnet_v2", "inception_v3", "inception_resnet_v2", "xception",
            "densenet", "vgg", "nasnet", "convnext"}


def test_registry_covers_every_family():
    assert {s.family for s in KERAS_APPLICATION_SPECS} == FAMILIES
    names = list_backbones()
    assert len(names) == len(set(names)) == len(KERAS_APPLICATION_SPECS)
    for name in names:
        assert name == name.lower() and " " not in name and "-" not in name


def test_the_two_halves_cover_every_spec_once():
    assert sorted(FIRST_HALF + SECOND_HALF) == sorted(NAMES) and not set(FIRST_HALF) & set(
        SECOND_HALF)


@pytest.mark.parametrize("name", FIRST_HALF)
def test_spec_matches_real_model(name):
    check_spec_matches_real_model(name)
