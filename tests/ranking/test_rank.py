"""Tests of `kerastl.ranking.rank_backbones` on tiny registered backbones."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from harness import separable_images
from ranking.tiny import SIZE, registered

import kerastl
from kerastl.ranking import (Candidate, NegativeTransferWarning, as_candidates, rank_backbones,
                             score_features, split_candidates)
from kerastl.training import FeatureCache
from kerastl.training.linear_head import fit_linear


@pytest.fixture(scope="module", autouse=True)
def tiny_backbones():
    with registered("rank_tiny") as specs:
        yield specs


@pytest.fixture(scope="module")
def data():
    x, y = separable_images(48, 3, SIZE, seed=0)
    return kerastl.data.from_arrays(x, y, validation_split=0.25, batch_size=16, shuffle=False)


def test_ranks_candidates_best_first_with_a_random_init_reference(data):
    ranking = rank_backbones(data, ["rank_tiny", "rank_tiny(width=4)@12"])
    scores = [r.score for r in ranking.rows]
    assert scores == sorted(scores, reverse=True)
    assert len(ranking.rows) == 3 and ranking.reference is not None
    best = max((r for r in ranking.rows if not r.reference), key=lambda r: r.score)
    assert ranking.best is best
    assert ranking.reference.name == best.name.split(" ")[0] + " (random init)"
    assert ranking.num_examples == 48  # training + validation, every example once
    sizes = {r.name: r.image_size for r in ranking.rows}
    assert sizes["rank_tiny@16"] == 16 and sizes["rank_tiny(width=4)@12"] == 12
    text = str(ranking)
    assert "random-init reference" in text and "LogME" in text
    assert ranking.to_dict()["rows"][0]["score"] == scores[0]
    row = ranking.rows[0]
    assert row.tflite_bytes == 4 * row.tflite_int8_bytes and row.num_params > 0


def test_scores_are_the_metric_of_the_cached_features(data):
    cache = FeatureCache()
    ranking = rank_backbones(data, ["rank_tiny"], metric="linear_probe", reference=False,
                             feature_cache=cache)
    model = kerastl.build("rank_tiny", 3, input_shape=SIZE)
    features = kerastl.feature_extractor(model).predict(
        np.concatenate([x for x, _ in data.train.concatenate(data.validation)]), verbose=0)
    labels = np.concatenate([y for _, y in data.train.concatenate(data.validation)])
    fit = fit_linear("multiclass", 3, features, labels, seed=0)
    np.testing.assert_allclose(ranking.rows[0].score, -fit.scores[fit.l2], rtol=1e-3)
    assert ranking.metric == "linear_probe" and ranking.reference is None


def test_ranking_reuses_the_feature_cache(data):
    cache = FeatureCache()
    first = rank_backbones(data, ["rank_tiny", "rank_tiny(width=4)"], feature_cache=cache)
    batches = cache.backbone_batches
    per_candidate = int(data.train.cardinality()) + int(data.validation.cardinality())
    # 3 candidates (reference included), one pass over training + validation each.
    assert per_candidate == 4 and batches == 3 * per_candidate
    assert [r.backbone_batches for r in first.rows] == [per_candidate] * 3
    second = rank_backbones(data, ["rank_tiny", "rank_tiny(width=4)"], feature_cache=cache,
                            metric="linear_probe")
    assert cache.backbone_batches == batches  # every feature came from the cache
    assert cache.hits >= 6 and all(r.backbone_batches == 0 for r in second.rows)


def test_negative_transfer_warns(data):
    with pytest.warns(NegativeTransferWarning, match="negative transfer"):
        ranking = rank_backbones(data, ["rank_tiny(dead=true)"])
    assert ranking.rows[0].reference and ranking.rows[1].negative_transfer
    assert "warning: no pretrained backbone beats" in str(ranking)


def test_dataset_input_and_resizing(data):
    x, y = separable_images(24, 2, 20, seed=1)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    ranking = rank_backbones(dataset, ["rank_tiny"], image_size=SIZE, reference=False)
    assert ranking.rows[0].image_size == SIZE and ranking.num_examples == 24


def test_candidate_parsing():
    c = Candidate.parse("mobilenet(alpha=0.25)@128")
    assert (c.backbone, c.backbone_kwargs, c.image_size) == ("mobilenet", {"alpha": 0.25}, 128)
    assert c.name == "mobilenet(alpha=0.25)@128"
    assert Candidate.parse("hub:/models/x_y").backbone == "hub:/models/x_y"
    assert split_candidates("a,b(x=1,y=2)@3, hub:/m") == ["a", "b(x=1,y=2)@3", "hub:/m"]
    assert Candidate("a", weights=None).name == "a (random init)"


def test_bad_input(data):
    with pytest.raises(ValueError, match="must not repeat a backbone: 'mobilenet_v2'"):
        as_candidates(["mobilenet_v2", "MobileNet-V2"])
    with pytest.raises(ValueError, match="must not repeat a backbone: 'rank_tiny@16'"):
        rank_backbones(data, ["rank_tiny", "rank_tiny@16"])
    with pytest.raises(ValueError, match="at least one backbone"):
        as_candidates([])
    with pytest.raises(ValueError, match="`metric` must be one of"):
        rank_backbones(data, ["rank_tiny"], metric="accuracy")
    with pytest.raises(ValueError, match="key=value"):
        Candidate.parse("mobilenet(alpha)")
    with pytest.raises(ValueError, match="Unknown backbone 'nope'"):
        rank_backbones(data, ["nope"])
    with pytest.raises(TypeError, match="`data` must be"):
        rank_backbones([1, 2], ["rank_tiny"])
    with pytest.raises(ValueError, match="`metric` must be one of"):
        score_features(np.zeros((4, 2)), [0, 1, 0, 1], "auc")
