"""kerastl.fewshot.ClassStatistics and kerastl.extend(method="slda")."""

import numpy as np
import pytest
from sklearn.covariance import ledoit_wolf, ledoit_wolf_shrinkage

import kerastl
import kerastl.fewshot as fs
from harness import tiny_kerastl_model
from kerastl.fewshot.statistics import ClassStatistics


def _gaussian_features(seed=0, n=(30, 12, 7), width=6):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(width, width))
    xs, ys = [], []
    for c, count in enumerate(n):
        xs.append(rng.normal(size=(count, width)) @ mix + 3.0 * rng.normal(size=width))
        ys.append(np.full(count, c))
    return np.concatenate(xs), np.concatenate(ys)


def _centred(x, y):
    means = np.stack([x[y == c].mean(0) for c in range(y.max() + 1)])
    return x - means[y]


def test_statistics_are_counts_sums_and_the_pooled_scatter():
    x, y = _gaussian_features()
    stats = ClassStatistics.from_features(x, y, ["a", "b", "c"])
    np.testing.assert_array_equal(stats.counts, [30, 12, 7])
    np.testing.assert_allclose(stats.sums[1], x[y == 1].sum(0), rtol=1e-12)
    centred = _centred(x, y)
    np.testing.assert_allclose(stats.scatter, centred.T @ centred, rtol=1e-10)
    # The shrinkage and the shrunk covariance are scikit-learn's Ledoit-Wolf on
    # the class-centred features (float64 sums of 49 rows: 1e-10 relative).
    assert stats.shrinkage() == pytest.approx(
        ledoit_wolf_shrinkage(centred, assume_centered=True), rel=1e-9)
    np.testing.assert_allclose(stats.covariance(), ledoit_wolf(centred, assume_centered=True)[0],
                               rtol=1e-9, atol=1e-12)


def test_adding_classes_equals_computing_them_all_at_once():
    x, y = _gaussian_features(seed=1, n=(20, 15, 9, 11))
    old, new = y < 2, y >= 2
    grown = ClassStatistics.from_features(x[old], y[old], ["a", "b"]).add(
        ClassStatistics.from_features(x[new], y[new] - 2, ["c", "d"]))
    whole = ClassStatistics.from_features(x, y, ["a", "b", "c", "d"])
    assert grown.class_names == whole.class_names
    for a, b in zip(grown.linear_head(), whole.linear_head()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # float32 outputs
    with pytest.raises(ValueError, match="'a' is already a class"):
        grown.add(ClassStatistics.from_features(x[:5], np.zeros(5, int), ["a"]))
    with pytest.raises(ValueError, match="features are 3 wide"):
        grown.add(ClassStatistics.from_features(x[:5, :3], np.zeros(5, int), ["e"]))


def test_the_head_is_the_gaussian_posterior_with_equal_priors():
    x, y = _gaussian_features(seed=2)
    stats = ClassStatistics.from_features(x, y, ["a", "b", "c"])
    kernel, bias = stats.linear_head()
    cov = stats.covariance()
    means = stats.sums / stats.counts[:, None]
    inverse = np.linalg.inv(cov)
    log_density = np.stack([-0.5 * np.einsum("nd,de,ne->n", x - m, inverse, x - m)
                            for m in means], axis=1)
    expected = np.exp(log_density - log_density.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    logits = x @ kernel.astype("float64") + bias
    got = np.exp(logits - logits.max(1, keepdims=True))
    got /= got.sum(1, keepdims=True)
    np.testing.assert_allclose(got, expected, atol=1e-4)  # float32 kernel and bias


def test_one_example_per_class_gives_the_nearest_mean_head():
    """No within-class spread: identity covariance (no singular solve), Euclidean nearest mean."""
    x, y = _gaussian_features(seed=4, n=(1, 1, 1))
    stats = ClassStatistics.from_features(x, y, ["a", "b", "c"])
    np.testing.assert_array_equal(stats.covariance(), np.eye(stats.width))
    kernel, bias = stats.linear_head()
    query, _ = _gaussian_features(seed=5, n=(20, 20, 20))
    distances = ((query[:, None, :] - x[None]) ** 2).sum(-1)
    np.testing.assert_array_equal((query @ kernel + bias).argmax(1), distances.argmin(1))


def test_save_and_load_round_trip_and_refuse_other_files(tmp_path):
    x, y = _gaussian_features(seed=3)
    stats = ClassStatistics.from_features(x, y, ["a", "b", "c"])
    stats.save(tmp_path / "s.npz")
    back = ClassStatistics.load(tmp_path / "s.npz")
    assert back.class_names == ["a", "b", "c"] and back.fourth == stats.fourth
    np.testing.assert_array_equal(back.scatter, stats.scatter)
    np.savez(tmp_path / "other.npz", counts=np.ones(3))
    with pytest.raises(ValueError, match="not a kerastl ClassStatistics file"):
        ClassStatistics.load(tmp_path / "other.npz")
    np.savez(tmp_path / "pickled.npz", class_names=np.array([{"a": 1}], dtype=object),
             counts=np.ones(1), sums=np.ones((1, 2)), scatter=np.eye(2), fourth=1.0)
    with pytest.raises(ValueError, match="allow_pickle"):
        ClassStatistics.load(tmp_path / "pickled.npz")
    np.savez(tmp_path / "bad.npz", class_names=np.array(["a", "b"]), counts=np.ones(2),
             sums=np.ones((2, 3)), scatter=np.eye(2), fourth=1.0)
    with pytest.raises(ValueError, match="inconsistent statistics"):
        ClassStatistics.load(tmp_path / "bad.npz")


def test_slda_extend_gives_the_discriminant_of_all_the_images(task):
    model, x, y, old = task
    stats = fs.class_statistics(model, (x[old], y[old]))
    assert stats.class_names == ["a", "b", "c"] and stats.width == 16
    first = (y == 3)
    result = kerastl.extend(model, (x[first], y[first] - 3), method="slda",
                            statistics=stats, class_names=["d"])
    assert result.losses == [] and result.statistics.class_names == ["a", "b", "c", "d"]
    # Once more, from the returned statistics: no old image passed.
    second = (y == 4)
    again = kerastl.extend(result.model, (x[second], y[second] - 4), method="slda",
                           statistics=result.statistics, class_names=["e"])
    features = kerastl.feature_extractor(model).predict(x, verbose=0)
    whole = ClassStatistics.from_features(features, y, ["a", "b", "c", "d", "e"])
    for got, expected in zip(kerastl.get_head(again.model).output_layer.get_weights(),
                             whole.linear_head()):
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)
    assert again.class_names == ["a", "b", "c", "d", "e"]
    # old_data instead of statistics: the same head.
    direct = kerastl.extend(model, (x[first], y[first] - 3), method="slda",
                            old_data=(x[old], y[old]), class_names=["d"])
    for a, b in zip(kerastl.get_head(direct.model).output_layer.get_weights(),
                    kerastl.get_head(result.model).output_layer.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_slda_bad_input(task):
    model, x, y, old = task
    new = (x[~old], y[~old] - 3)
    with pytest.raises(ValueError, match="method='slda' needs the old classes' `statistics`"):
        kerastl.extend(model, new, method="slda")
    with pytest.raises(TypeError, match="`statistics` must be a kerastl.fewshot"):
        kerastl.extend(model, new, method="slda", statistics={"counts": [1]})
    stats = fs.class_statistics(model, (x[old], y[old]))
    with pytest.raises(ValueError, match="used by method='slda' only"):
        kerastl.extend(model, new, method="lwf", statistics=stats)
    two = ClassStatistics.from_features(np.ones((2, 16)), np.array([0, 1]), ["a", "b"])
    with pytest.raises(ValueError, match="must describe the model's 3 classes"):
        kerastl.extend(model, new, method="slda", statistics=two)
    with pytest.raises(ValueError, match="`class_names` must name the model's 3 classes"):
        fs.class_statistics(model, (x[old], y[old]), class_names=["a"])
    backbone = kerastl.get_backbone(tiny_kerastl_model(3))
    hidden = kerastl.build(backbone, 3, weights=None, head={"hidden_units": [4]})
    with pytest.raises(ValueError, match="this head has hidden layers"):
        kerastl.extend(hidden, new, method="slda", statistics=stats)
