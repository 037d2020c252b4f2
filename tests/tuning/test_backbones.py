"""Tests of `kerastl.tune` over several backbones (`kerastl.tuning.backbones`)."""

from __future__ import annotations

import pytest
import tensorflow as tf
from harness import separable_images
from ranking.tiny import SIZE, registered

from kerastl.training import FeatureCache
from kerastl.tuning import SearchSpace, TuneResult, tune

NAMES = ("tiny_a", "tiny_b", "tiny_c")
SPACE = SearchSpace(trainable_blocks=[0], learning_rate=1e-2, dropout=0.0)


@pytest.fixture(scope="module", autouse=True)
def tiny_backbones():
    with registered(*NAMES) as specs:
        yield specs


@pytest.fixture(scope="module")
def data():
    x, y = separable_images(48, 3, SIZE, seed=2)
    return (tf.data.Dataset.from_tensor_slices((x[:36], y[:36])).batch(12),
            tf.data.Dataset.from_tensor_slices((x[36:], y[36:])).batch(12))


def _tune(data, tmp_path, **kwargs):
    train, val = data
    options = dict(num_classes=3, search_space=SPACE, algorithm="random", max_trials=1,
                   fine_tune_epochs=1, verbose=0, refit=False, seed=0, directory=tmp_path)
    options.update(kwargs)
    return tune(train, val, **options)


def test_ranking_prunes_backbones_before_the_search(data, tmp_path):
    cache = FeatureCache()
    result = _tune(data, tmp_path, backbone=list(NAMES), keep_backbones=2, feature_cache=cache,
                   build_kwargs={"backbone_kwargs": {"width": 8}})
    assert isinstance(result, TuneResult)
    ranked = [n.split("(")[0] for n in result.ranking.names]
    assert sorted(ranked) == sorted(NAMES) and result.ranking.reference is not None
    assert list(result.backbone_results) == ranked[:2]  # the two best, searched in rank order
    assert result.dropped_backbones == [ranked[2]]
    assert result.backbone in ranked[:2]
    best = max(result.backbone_results.values(), key=lambda r: r.best_score)
    assert result.best_score == best.best_score
    assert "dropped by the ranking (logme): " + ranked[2] in result.summary()
    assert result.to_dict()["dropped_backbones"] == [ranked[2]]
    # Each searched backbone has its own project.
    assert len({r.tuner.project_dir for r in result.backbone_results.values()}) == 2


def test_keep_one_with_the_linear_probe(data, tmp_path):
    result = _tune(data, tmp_path, backbone=["tiny_a", "tiny_b"], keep_backbones=1,
                   rank_metric="linear_probe", build_kwargs={"weights": None})
    assert result.ranking.metric == "linear_probe" and result.ranking.reference is None
    assert list(result.backbone_results) == [result.backbone]
    assert result.backbone == result.ranking.rows[0].backbone


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(backbone=["tiny_a", "Tiny-A"]), ValueError, "must not repeat a backbone"),
    (dict(backbone=["tiny_a"], keep_backbones=0), ValueError, "`keep_backbones` must be"),
    (dict(backbone=["tiny_a"], rank_metric="auc"), ValueError, "`rank_metric` must be one of"),
    (dict(backbone=["tiny_a"], build_kwargs={"weights": "/w.h5"}), ValueError,
     "a weights file fits one architecture"),
    (dict(backbone=["tiny_a", 3]), TypeError, "list of them"),
])
def test_bad_arguments(data, tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        _tune(data, tmp_path, **kwargs)
