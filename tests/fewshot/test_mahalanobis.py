"""The "mahalanobis" prototype metric: a shrunk shared-covariance discriminant on the support."""

import keras
import numpy as np
import pytest

import kerastl
import kerastl.fewshot as fs
from harness import separable_images, tiny_kerastl_model
from kerastl.fewshot import ondevice
from kerastl.fewshot.prototypes import class_prototypes, fit_whitening, whiten
from kerastl.fewshot.statistics import ClassStatistics


def _reference_probabilities(xs, ys, xq, ways):
    """NumPy LDA: centred, normalised features; Ledoit-Wolf shrunk pooled covariance."""
    center = xs.mean(axis=0)

    def prep(a):
        a = a - center
        return a / np.linalg.norm(a, axis=1, keepdims=True)

    zs, zq = prep(xs.astype("float64")), prep(xq.astype("float64"))
    means = np.stack([zs[ys == k].mean(axis=0) for k in range(ways)])
    residual = zs - means[ys]
    n, d = residual.shape
    cov = residual.T @ residual / n
    mu = np.trace(cov) / d
    delta = ClassStatistics.from_features(zs, ys, [str(k) for k in range(ways)]).shrinkage()
    sigma = (1 - delta) * cov + delta * mu * np.eye(d)
    kernel = np.linalg.solve(sigma, means.T)
    logits = zq @ kernel - 0.5 * np.sum(means.T * kernel, axis=0)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def _gaussian_classes(ways, per_class, dim, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(ways, dim)) * 0.6 + 2.0
    mixing = rng.normal(size=(dim, dim)) * 0.5  # correlated, so the metric matters
    x = np.concatenate([c + rng.normal(size=(per_class, dim)) @ mixing for c in centres])
    return x.astype("float32"), np.repeat(np.arange(ways), per_class)


def test_whitened_euclidean_prototypes_are_the_numpy_discriminant():
    xs, ys = _gaussian_classes(3, 5, 8, seed=0)
    xq, _ = _gaussian_classes(3, 20, 8, seed=1)
    whitening = fit_whitening(xs, ys, 3)
    prototypes = class_prototypes(whiten(xs, whitening), ys, 3, metric="euclidean")
    probs = fs.prototypes.predict_proba(whiten(xq, whitening), prototypes, metric="mahalanobis",
                                        scale=0.5)
    expected = _reference_probabilities(xs, ys, xq, 3)
    # The discriminant's logits and ours differ by a per-row constant (-|w(x)|^2 / 2), which
    # the softmax removes; float32 whitening of unit vectors: ~1e-6 relative per logit.
    np.testing.assert_allclose(probs, expected, atol=1e-3)
    np.testing.assert_array_equal(probs.argmax(1), expected.argmax(1))
    basis = whitening.basis
    np.testing.assert_allclose(basis.T @ basis, np.eye(basis.shape[1]), atol=1e-5)
    assert basis.shape[1] <= len(xs) - 3  # the rank of the class-centred support


def test_one_shot_whitening_is_centring_and_normalising():
    xs, ys = _gaussian_classes(4, 1, 8, seed=2)
    whitening = fit_whitening(xs, ys, 4)
    assert float(whitening.isotropic) == 1.0 and not np.any(whitening.gains)
    z = xs - xs.mean(axis=0)
    # float32 normalisation of 8-wide rows: ~1e-6 relative, 1e-4 leaves other CPUs' kernels room.
    np.testing.assert_allclose(whiten(xs, whitening), z / np.linalg.norm(z, axis=1)[:, None],
                               rtol=1e-4, atol=1e-5)


def test_the_metric_separates_correlated_classes_better_than_cosine():
    xs, ys = _gaussian_classes(3, 10, 8, seed=3)
    xq, yq = _gaussian_classes(3, 100, 8, seed=3)  # same centres and mixing, new draws
    acc = {}
    for metric in ("cosine", "mahalanobis"):
        result = fs.episodes.classify_episode(xs, ys, xq, ways=3, method="prototypes",
                                              metric=metric, scale=fs.layers.default_scale(metric))
        acc[metric] = float(np.mean(result == yq))
    assert acc["mahalanobis"] > acc["cosine"] + 0.05, acc


@pytest.fixture(scope="module")
def built():
    x, y = separable_images(48, 4, seed=1)
    support = {name: x[y == c] for name, c in {"a": 0, "b": 1, "c": 2}.items()}
    base = tiny_kerastl_model(3)
    return base, fs.build(base, support, metric="mahalanobis"), x, y


def test_build_stores_the_whitening_and_predicts_the_discriminant(built):
    base, model, x, y = built
    head = kerastl.get_head(model)
    assert head.metric == "mahalanobis" and head.scale == 0.5
    feats = kerastl.feature_extractor(base).predict(x, verbose=0)
    keep = y < 3
    expected = _reference_probabilities(feats[keep], y[keep], feats, 3)
    np.testing.assert_array_equal(model.predict(x, verbose=0).argmax(1), expected.argmax(1))
    assert head.rank == len(head.whitening.gains) >= 1


def test_add_classes_keeps_the_whitening_and_old_scores(built):
    _, model, x, y = built
    before = model.predict(x, verbose=0)
    grown = fs.add_classes(model, {"d": x[y == 3]})
    old, new = kerastl.get_head(model), kerastl.get_head(grown)
    for a, b in zip(old.whitening, new.whitening):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(new.prototypes[:3], old.prototypes)
    after = grown.predict(x, verbose=0)
    # Old classes' scores unchanged (the Gaussian posterior saturates, so compare the logits).
    feats = kerastl.feature_extractor(model).predict(x, verbose=0)

    def logits(head):
        return keras.ops.convert_to_numpy(fs.layers.prototype_scores(
            head.output_layer.embed(feats), head.output_layer.prototypes,
            metric="mahalanobis", scale=head.scale))

    np.testing.assert_array_equal(logits(new)[:, :3], logits(old))
    np.testing.assert_array_equal(after[:, :3].argmax(1), before.argmax(1))
    assert np.mean(after.argmax(1)[y == 3] == 3) >= 0.9


def test_safe_mode_round_trip(built, tmp_path):
    _, model, x, _ = built
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = kerastl.load(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-5)
    assert kerastl.get_head(loaded).rank == kerastl.get_head(model).rank


def test_export_embeds_whitened_features_an_app_can_average(built, tmp_path):
    _, model, x, y = built
    keep = y < 3
    report = fs.export(model, tmp_path, quantization="float32", support_data=(x[keep], y[keep]),
                       eval_data=(x[keep], y[keep]), verbose=0)
    path = tmp_path / report.version / "embedding_float32.tflite"
    emb = ondevice.embed_tflite(path, x[keep])
    own = class_prototypes(emb, y[keep], 3, metric="euclidean")
    probs = ondevice.classify_tflite(path, emb, own)
    np.testing.assert_array_equal(probs.argmax(1), model.predict(x[keep], verbose=0).argmax(1))
    assert report.artifact("embedding_float32.tflite").on_device_agreement == 1.0


def test_ledoit_wolf_from_the_gram_matrix_equals_it_from_the_scatter():
    from kerastl.fewshot.statistics import ClassStatistics, ledoit_wolf

    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 12)) * rng.uniform(0.1, 3.0, size=12)
    y = np.repeat(np.arange(3), 10)
    stats = ClassStatistics.from_features(x, y, ["a", "b", "c"])
    r = x - (stats.sums / stats.counts[:, None])[y]
    gram = r @ r.T
    from_gram = ledoit_wolf(30, 12, np.trace(gram), np.sum(gram * gram), np.sum(np.diag(gram) ** 2))
    assert 0.0 < from_gram < 1.0
    np.testing.assert_allclose(from_gram, stats.shrinkage(), rtol=1e-9)
    # sklearn's Ledoit-Wolf on the pooled residuals (assume_centered: they are).
    from sklearn.covariance import ledoit_wolf_shrinkage

    np.testing.assert_allclose(from_gram, ledoit_wolf_shrinkage(r, assume_centered=True),
                               rtol=1e-9)
