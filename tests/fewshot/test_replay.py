"""kerastl.fewshot.replay: the new columns fitted against a buffer, bias-corrected by a cross-fit."""

import numpy as np
import pytest

import kerastl
import kerastl.fewshot as fs
from harness import separable_images
from kerastl.fewshot import replay


def test_one_new_column_against_a_zero_logit_is_binary_logistic_regression():
    """k=1 fixed logit 0, m=1 free column: exactly scikit-learn's L2 logistic regression."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    h = rng.normal(size=(200, 6)).astype("float32")
    y = (h @ rng.normal(size=6) + 0.5 * rng.normal(size=200) > 0).astype("int64")
    l2 = 0.05
    theta = replay._solve(h, y, np.ones(200), np.zeros((200, 1)), l2, np.zeros(7))
    ref = LogisticRegression(C=1.0 / (l2 * 200), tol=1e-10, max_iter=10_000).fit(h, y)
    # Both minimise the same smooth convex objective to gradient ~1e-6; the
    # weights agree to that over the curvature (>= l2), far below 1e-3.
    np.testing.assert_allclose(theta[:6], ref.coef_[0], atol=1e-3)
    np.testing.assert_allclose(theta[6], ref.intercept_[0], atol=1e-3)


def test_correction_recovers_a_known_scale_and_offset():
    """Labels drawn from softmax([0, t]); given logits 2t + 3 the correction finds 1/2, -3/2."""
    rng = np.random.default_rng(1)
    t = rng.normal(scale=2.0, size=(20_000, 1))
    p_new = 1.0 / (1.0 + np.exp(-t[:, 0]))
    y = (rng.random(20_000) < p_new).astype("int64")
    (scale, offset), _ = replay._correction(np.zeros((20_000, 1)), 2.0 * t + 3.0, y,
                                            np.ones(20_000))
    # Maximum likelihood on 20 000 draws: standard errors ~0.01-0.02.
    assert scale == pytest.approx(0.5, abs=0.05)
    assert offset == pytest.approx(-1.5, abs=0.1)


def test_fit_new_columns_needs_two_rows_per_class():
    h = np.ones((5, 2), "float32")
    with pytest.raises(ValueError, match="at least 2 images"):
        replay.fit_new_columns(h, np.array([0, 0, 1, 1, 2]), np.zeros((5, 1)), 2)


def test_buffer_rows_keep_per_class_of_every_old_class():
    y = np.repeat(np.arange(3), [10, 4, 7])
    rows = replay.buffer_rows(y, 5, seed=0)
    assert np.bincount(y[rows]).tolist() == [5, 4, 5]
    assert len(set(rows.tolist())) == len(rows)


def test_replay_keeps_the_old_columns_and_classifies_both(task):
    model, x, y, old = task
    ex, ey = separable_images(100, 5, seed=7)
    result = fs.extend(model, (x[~old], y[~old] - 3), old_data=(x[old], y[old]),
                       method="replay", replay_per_class=5, class_names=["d", "e"],
                       eval_data=(ex, ey))
    kernel, bias = kerastl.get_head(result.model).output_layer.get_weights()
    old_kernel, old_bias = kerastl.get_head(model).output_layer.get_weights()
    np.testing.assert_array_equal(kernel[:, :3], old_kernel)
    np.testing.assert_array_equal(bias[:3], old_bias)
    assert result.replay["buffer"] == 15 and result.replay["folds"] == 5
    assert result.replay["scale"] > 0
    # The new classes are separable by mean colour: they are learned, and the
    # old images keep the old model's accuracy (within one of 60 images),
    # while naive fine-tuning loses it.
    assert result.new_accuracy >= 0.9
    assert result.old_accuracy >= result.old_accuracy_before - 1 / 60
    naive = fs.extend(model, (x[~old], y[~old] - 3), method="naive", epochs=10,
                      learning_rate=1e-2, class_names=["d", "e"], eval_data=(ex, ey))
    assert naive.old_accuracy < result.old_accuracy


def test_replay_buffer_of_one_is_refused(task):
    model, x, y, old = task
    with pytest.raises(ValueError, match="`replay_per_class`"):
        fs.extend(model, (x[~old], y[~old] - 3), old_data=(x[old], y[old]),
                  method="replay", replay_per_class=1)
