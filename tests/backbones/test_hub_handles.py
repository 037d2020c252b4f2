"""Tests of `kerastl.backbones.hub_handles`: Kaggle Models handles, offline from the cache."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from kerastl.backbones import hub_handles
from kerastl.backbones.hub import resolve_hub_backbone

from .hub_fixtures import save_hub_model

TFHUB = "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5"
KAGGLE = "https://www.kaggle.com/models/google/mobilenet-v2/TensorFlow2/100-224-feature-vector/2"
KAGGLE_LONG = ("https://www.kaggle.com/models/google/mobilenet-v2/frameworks/TensorFlow2/"
               "variations/100-224-feature-vector/versions/2")


def _cache(tmp_path, handle):
    """A TFHUB_CACHE_DIR holding a tiny hub model downloaded as `handle`."""
    cache = tmp_path / "cache"
    model = save_hub_model(tmp_path / "model")
    shutil.copytree(model, cache / hashlib.sha1(handle.encode("utf8")).hexdigest())
    return cache


def test_moved_to_reads_the_table():
    assert hub_handles.moved_to(TFHUB) == KAGGLE
    assert hub_handles.moved_to(TFHUB.replace("/5", "/4")) is None  # another version
    assert hub_handles.moved_to("https://example.com/m/1") is None


def test_equivalent_handles():
    handles = hub_handles.equivalent_handles(KAGGLE)
    assert handles[0] == KAGGLE and KAGGLE_LONG in handles and TFHUB in handles
    assert TFHUB.replace("tfhub.dev", "hub.tensorflow.google.cn") in handles
    assert KAGGLE in hub_handles.equivalent_handles(KAGGLE_LONG)
    # Version 4 on tfhub.dev is another SavedModel than the Kaggle copy of version 5.
    v4 = hub_handles.equivalent_handles(TFHUB.replace("/5", "/4"))
    assert all("kaggle" not in h for h in v4) and len(v4) == 2
    assert hub_handles.equivalent_handles("/models/x") == ["/models/x"]


@pytest.mark.parametrize("cached,asked", [(TFHUB, KAGGLE), (KAGGLE, KAGGLE_LONG),
                                          (KAGGLE_LONG, TFHUB)])
def test_resolves_offline_from_an_equivalent_cached_handle(tmp_path, monkeypatch, cached, asked):
    cache = _cache(tmp_path, cached)
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))
    expected = str(cache / hashlib.sha1(cached.encode("utf8")).hexdigest())
    assert hub_handles.cached_model_dir(asked) == expected
    assert hub_handles.resolve_handle(asked) == expected
    layer, spec = resolve_hub_backbone(asked)
    assert spec.family == "mobilenet_v2" and layer.hub_input_shape == (224, 224, 3)


def test_other_version_is_not_substituted(tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(_cache(tmp_path, TFHUB)))
    assert hub_handles.cached_model_dir(TFHUB.replace("/5", "/4")) is None
