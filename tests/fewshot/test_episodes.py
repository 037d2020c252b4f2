"""Episodic evaluation: episode sampling, mean and 95% confidence interval."""

import math

import numpy as np
import pytest

import kerastl.fewshot as fs
from harness import separable_images, tiny_kerastl_model
from kerastl.fewshot.episodes import run_episodes, sample_episode
from kerastl.training import FeatureCache


def _embeddings(num_classes=6, per_class=30, width=16, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(num_classes), per_class)
    return (np.eye(width)[y] + noise * rng.random((len(y), width))).astype("float32"), y


def test_confidence_interval_matches_numpy_reference():
    acc = np.random.default_rng(0).random(37)
    mean, ci, std = fs.mean_ci(acc)
    assert mean == pytest.approx(np.mean(acc))
    assert std == pytest.approx(np.std(acc, ddof=1))
    assert ci == pytest.approx(1.959963984540054 * np.std(acc, ddof=1) / math.sqrt(37))


def test_episode_result_reports_ci_of_its_accuracies():
    x, y = _embeddings(noise=2.0)
    result = run_episodes(x, y, ways=3, shots=2, queries=4, episodes=25, seed=3)
    mean, ci, _ = fs.mean_ci(result.accuracies)
    assert (result.mean, result.ci95) == (pytest.approx(mean), pytest.approx(ci))
    assert len(result.accuracies) == 25 and 0 < result.ci95
    assert "3-way 2-shot prototypes" in str(result)


@pytest.mark.parametrize("method", ["prototypes", "baseline++", "logistic"])
def test_every_method_is_exact_on_separated_embeddings(method):
    x, y = _embeddings()
    result = run_episodes(x, y, ways=5, shots=1, queries=5, episodes=20, method=method,
                          fine_tune_steps=5, l2=1e-3)
    assert result.mean == 1.0 and result.ci95 == 0.0


def test_episodes_are_disjoint_and_balanced():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 10)
    by_class = {c: np.flatnonzero(y == c) for c in range(4)}
    s, sy, q, qy = sample_episode(rng, by_class, np.arange(4), ways=3, shots=2, queries=3)
    assert not set(s) & set(q)
    assert np.bincount(sy).tolist() == [2, 2, 2] and np.bincount(qy).tolist() == [3, 3, 3]
    for i, label in zip(s, sy):  # the episode's classes are consistent
        assert y[i] == y[s[sy == label][0]]


def test_same_seed_same_episodes():
    x, y = _embeddings(noise=3.0)
    a = run_episodes(x, y, ways=4, shots=1, episodes=10, seed=5)
    b = run_episodes(x, y, ways=4, shots=1, episodes=10, seed=5)
    np.testing.assert_array_equal(a.accuracies, b.accuracies)


def test_transductive_refinement_runs():
    x, y = _embeddings(noise=1.0)
    result = run_episodes(x, y, ways=3, shots=1, episodes=5, transductive=True)
    assert 0.0 <= result.mean <= 1.0


def test_more_ways_than_classes():
    x, y = _embeddings(num_classes=3)
    with pytest.raises(ValueError, match="`ways` must be at most the number of classes"):
        run_episodes(x, y, ways=4, shots=1)


def test_too_few_examples_per_class():
    x, y = _embeddings(num_classes=3, per_class=10)
    with pytest.raises(ValueError, match="Received: shots=5, queries=15"):
        run_episodes(x, y, ways=3, shots=5)


@pytest.mark.parametrize("kwargs, word", [({"shots": 0}, "shots"), ({"ways": 1}, "ways"),
                                          ({"method": "svm"}, "method"),
                                          ({"episodes": 0}, "episodes")])
def test_bad_options(kwargs, word):
    x, y = _embeddings()
    options = {"ways": 2, "shots": 1, **kwargs}
    with pytest.raises(ValueError, match=f"`{word}`"):
        run_episodes(x, y, **options)


def test_evaluate_on_images_computes_features_once():
    model = tiny_kerastl_model(3)
    x, y = separable_images(60, 3, seed=2)
    cache = FeatureCache()
    data = (x, y)
    first = fs.evaluate(model, data, ways=3, shots=2, queries=5, episodes=30, seed=0,
                        feature_cache=cache)
    batches = cache.backbone_batches
    second = fs.evaluate(model, data, ways=3, shots=2, queries=5, episodes=30, seed=0,
                         feature_cache=cache, method="logistic")
    assert cache.backbone_batches == batches  # the second call reused the features
    assert first.mean > 1 / 3 and second.episodes == 30


def test_eligible_classes_are_those_with_enough_examples_for_an_episode():
    from kerastl.fewshot.episodes import eligible_classes

    y = np.repeat([0, 1, 2], [20, 19, 25])
    np.testing.assert_array_equal(eligible_classes(y, 5, 15, 2), [0, 2])
    with pytest.raises(ValueError, match="only 2 classes of `data` have that many"):
        eligible_classes(y, 5, 15, 3)
    with pytest.raises(ValueError, match="`ways` must be at most the number of classes"):
        eligible_classes(y, 1, 1, 4)
