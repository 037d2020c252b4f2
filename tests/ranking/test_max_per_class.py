"""`kerastl.rank_backbones(max_per_class=...)`: ranking on a seeded per-class sample."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tensorflow as tf
from harness import separable_images
from ranking.tiny import SIZE, registered

import kerastl
from kerastl.ranking import rank_backbones
from kerastl.ranking import NegativeTransferWarning
from kerastl.ranking.rank import per_class_sample, sample_per_class


@pytest.fixture(scope="module", autouse=True)
def tiny_backbones():
    with registered("rank_tiny_sample") as specs:
        yield specs


def _splits(y, batch=5):
    x = np.arange(len(y), dtype="float32")[:, None]  # each "image" is its own index
    ds = tf.data.Dataset.from_tensor_slices((x, np.asarray(y, "int64"))).batch(batch)
    return [(ds, ds)]


def test_sample_keeps_at_most_k_per_class_uniformly_and_reproducibly():
    y = np.array([0] * 30 + [1] * 4 + [2] * 12)
    (sample, _), = per_class_sample(_splits(y), 5, seed=3)
    xs, ys = map(np.concatenate, zip(*[(a.numpy(), b.numpy()) for a, b in sample]))
    assert np.bincount(ys).tolist() == [5, 4, 5]  # a class with fewer images keeps all
    assert (y[xs[:, 0].astype(int)] == ys).all()  # every image keeps its own label
    assert len(set(xs[:, 0])) == 14  # no image twice
    (again, _), = per_class_sample(_splits(y), 5, seed=3)
    assert np.array_equal(np.concatenate([a.numpy() for a, _ in again]), xs)
    # Uniform over each class: over seeds, every image of class 0 is drawn about 5/30 of the time.
    batches = [(np.arange(i, min(i + 5, len(y)), dtype="float32")[:, None], y[i:i + 5])
               for i in range(0, len(y), 5)]
    counts = np.zeros(len(y))
    for seed in range(600):
        xs_seed, ys_seed = sample_per_class(batches, 5, seed=seed)
        assert np.bincount(ys_seed).tolist() == [5, 4, 5]
        counts[xs_seed[:, 0].astype(int)] += 1
    share = counts[:30] / 600
    # Binomial(600, 1/6): std 0.015 per image; 5 std either side.
    assert np.abs(share - 5 / 30).max() < 0.08, share


def test_sample_refuses_labels_that_are_not_classes():
    x = np.zeros((4, 1), "float32")
    ds = tf.data.Dataset.from_tensor_slices((x, np.zeros((4, 2), "float32"))).batch(2)
    with pytest.raises(ValueError, match="`max_per_class` needs integer class labels"):
        per_class_sample([(ds, ds)], 2, seed=0)


def test_ranking_on_a_sample_scores_every_candidate_on_the_same_images():
    x, y = separable_images(60, 3, SIZE, seed=0)
    data = kerastl.data.from_arrays(x, y, validation_split=0.25, batch_size=16, shuffle=False)
    with warnings.catch_warnings():  # random tiny backbones: no transfer to speak of
        warnings.simplefilter("ignore", NegativeTransferWarning)
        ranking = rank_backbones(data, ["rank_tiny_sample", "rank_tiny_sample(width=4)"],
                                 max_per_class=6)
    assert {r.num_examples for r in ranking.rows} == {18}  # 3 classes x 6, reference too
    full = rank_backbones(data, ["rank_tiny_sample"], reference=False)
    assert full.num_examples == 60
    with pytest.raises(ValueError, match="`max_per_class`"):
        rank_backbones(data, ["rank_tiny_sample"], max_per_class=0)


def test_cli_max_per_class(tmp_path):
    import json

    from click.testing import CliRunner
    from harness import make_image_folder

    from kerastl.cli import main

    folder = make_image_folder(tmp_path / "photos", classes=("a", "b", "c"), per_class=5,
                               size=SIZE)
    result = CliRunner().invoke(main, ["rank", str(folder), "--candidates", "rank_tiny_sample",
                                       "--image-size", str(SIZE), "--weights", "none",
                                       "--no-reference", "--max-per-class", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["num_examples"] == 6
    bad = CliRunner().invoke(main, ["rank", str(folder), "--candidates", "rank_tiny_sample",
                                    "--max-per-class", "0"])
    assert bad.exit_code == 2 and "--max-per-class" in bad.output
