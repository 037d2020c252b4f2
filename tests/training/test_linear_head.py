"""Tests of kerastl.training.linear_head and the closed-form head stage of kerastl.fit."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import log_loss

import kerastl
from harness import separable_images, tiny_kerastl_model
from kerastl.training import fit
from kerastl.training.linear_head import L2_GRID, evaluate_linear, fit_linear
from kerastl.training.selection import clearly_better

# L-BFGS stops at a projected gradient of 1e-6; on these problems (curvature of
# order l2 >= 1e-2 on the kernel) that leaves the weights within about
# 1e-6 / 1e-2 = 1e-4 of the optimum, relative to weights of order 1: the
# comparisons with scikit-learn (which solves to its own tolerance) allow 1e-3.
SOLVER_TOLERANCE = 1e-3


def _blobs(n, d=20, k=3, seed=0, scale=0.6):
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(99).normal(size=(k, d))
    y = rng.integers(0, k, n)
    x = means[y] * scale + rng.normal(size=(n, d))
    return x.astype("float32"), y


def test_solution_equals_scikit_learn_at_the_same_strength():
    x, y = _blobs(200)
    xv, yv = _blobs(100, seed=1)
    fitted = fit_linear("multiclass", 3, x, y, validation_features=xv, validation_labels=yv,
                        selection="validation")
    reference = LogisticRegression(C=1.0 / (fitted.l2 * len(x)), max_iter=10000, tol=1e-10)
    reference.fit(x, y)
    np.testing.assert_allclose(fitted.kernel, reference.coef_.T, atol=SOLVER_TOLERANCE,
                               rtol=SOLVER_TOLERANCE)
    # scikit-learn's multinomial intercepts are defined up to a common shift.
    np.testing.assert_allclose(fitted.bias - fitted.bias.mean(),
                               reference.intercept_ - reference.intercept_.mean(),
                               atol=SOLVER_TOLERANCE)
    assert fitted.selection == "validation"


def test_validation_recovers_the_best_strength_within_a_factor_of_3():
    x, y = _blobs(150, d=40, seed=2, scale=0.4)
    xv, yv = _blobs(300, d=40, seed=3, scale=0.4)
    fine = np.logspace(-4, 0, 41)
    losses = [log_loss(yv, LogisticRegression(C=1.0 / (l2 * len(x)), max_iter=10000)
                       .fit(x, y).predict_proba(xv), labels=[0, 1, 2]) for l2 in fine]
    best = fine[int(np.argmin(losses))]
    # The search must find an interior optimum here, not an end of the grid.
    assert 1e-4 < best < 1.0
    fitted = fit_linear("multiclass", 3, x, y, validation_features=xv, validation_labels=yv,
                        selection="validation")
    assert best / 3 <= fitted.l2 <= best * 3


def test_without_validation_cross_validation_chooses_not_the_training_loss():
    x, y = _blobs(120, d=40, seed=4, scale=0.4)
    test_x, test_y = _blobs(2000, d=40, seed=5, scale=0.4)
    fitted = fit_linear("multiclass", 3, x, y, seed=0)
    assert fitted.selection == "5-fold cross-validation on training data"
    # The training loss alone always prefers the weakest regularisation.
    assert fitted.l2 > min(L2_GRID) * 10
    # And the choice generalises: within a factor of 3 of the strength that is
    # best on a large independent test set.
    held = {l2: evaluate_linear("multiclass", *_kernel(x, y, l2), test_x, test_y, 3)["loss"]
            for l2 in L2_GRID}
    best = min(held, key=held.get)
    assert best / 3.5 <= fitted.l2 <= best * 3.5


def _kernel(x, y, l2):
    fitted = fit_linear("multiclass", 3, x, y, validation_features=x, validation_labels=y,
                        grid=[l2], selection="validation")
    return fitted.kernel, fitted.bias


def test_sample_weights_equal_repeated_examples():
    x, y = _blobs(90, seed=6)
    xv, yv = _blobs(60, seed=7)
    weights = np.where(y == 1, 2.0, 1.0)
    weighted = fit_linear("multiclass", 3, x, y, sample_weight=weights, validation_features=xv,
                          validation_labels=yv, grid=[0.05], selection="validation")
    repeat = np.concatenate([np.arange(len(x)), np.flatnonzero(y == 1)])
    repeated = fit_linear("multiclass", 3, x[repeat], y[repeat], validation_features=xv,
                          validation_labels=yv, grid=[0.05], selection="validation")
    np.testing.assert_allclose(weighted.kernel, repeated.kernel, atol=SOLVER_TOLERANCE)


def test_ridge_regression_equals_scikit_learn():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(80, 10)).astype("float32")
    target = x @ rng.normal(size=(10, 1)) + 0.5 * rng.normal(size=(80, 1))
    fitted = fit_linear("regression", 1, x, target, validation_features=x[:20],
                        validation_labels=target[:20], grid=[0.1], selection="validation")
    # Mean squared error + l2/2 |w|^2  ==  (1/n) (|y - Xw|^2 + n l2/2 |w|^2).
    reference = Ridge(alpha=len(x) * 0.1 / 2).fit(x, target)
    np.testing.assert_allclose(fitted.kernel, reference.coef_.reshape(10, 1), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("task, outputs", [("binary", 1), ("multilabel", 2)])
def test_sigmoid_tasks(task, outputs):
    x, y = _blobs(150, seed=9)
    labels = (y == 1).astype("float32") if task == "binary" else np.stack(
        [y == 1, y == 2], axis=1).astype("float32")
    fitted = fit_linear(task, outputs, x, labels, seed=0)
    metrics = evaluate_linear(task, fitted.kernel, fitted.bias, x, labels, outputs)
    assert metrics["accuracy"] > 0.8 and fitted.kernel.shape == (20, outputs)


def test_cross_validation_pools_validation_examples_and_keeps_augmented_views_together():
    x, y = _blobs(60, seed=10)
    views = np.concatenate([x, x + 0.01])  # two cached passes of the same 60 examples
    xv, yv = _blobs(15, seed=11)
    fitted = fit_linear("multiclass", 3, views, np.concatenate([y, y]), passes=2,
                        validation_features=xv, validation_labels=yv, seed=0)
    assert fitted.selection == "5-fold cross-validation on training + validation data"
    # The head itself is fitted on the training rows only.
    only_train = fit_linear("multiclass", 3, views, np.concatenate([y, y]), passes=2,
                            validation_features=xv, validation_labels=yv, grid=[fitted.l2],
                            selection="validation")
    np.testing.assert_allclose(fitted.kernel, only_train.kernel, atol=SOLVER_TOLERANCE)
    with pytest.raises(ValueError, match="selection"):
        fit_linear("multiclass", 3, x, y, selection="train_loss")


def test_bad_weights_and_features_are_refused():
    x, y = _blobs(30)
    with pytest.raises(ValueError, match="weights"):
        fit_linear("multiclass", 3, x, y, sample_weight=np.zeros(len(x)))
    x[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_linear("multiclass", 3, x, y)


# kerastl.fit with the linear head.

def _data(n, seed, batch=16, mislabeled=0):
    x, y = separable_images(n, 3, seed=seed, mislabeled=mislabeled)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch), x, y


TRAIN, X, Y = _data(48, 0)
VAL, XV, YV = _data(24, 1, batch=12, mislabeled=4)


def test_fit_head_is_the_linear_solution_and_says_what_chose_it():
    model = tiny_kerastl_model(3)
    report = fit(model, TRAIN, VAL, recipe="feature_extraction", refit_head=False, seed=0, verbose=0)
    head = report.stages[0]
    assert (head.solver, head.cached, head.selected_on) == (
        "linear", "features", "5-fold cross-validation on training + validation data")
    features = kerastl.feature_extractor(model).predict(X, verbose=0)
    val_features = kerastl.feature_extractor(model).predict(XV, verbose=0)
    expected = fit_linear("multiclass", 3, features, Y, validation_features=val_features,
                          validation_labels=YV, seed=0)
    assert head.l2 == expected.l2
    output = kerastl.get_head(model).output_layer
    np.testing.assert_allclose(output.get_weights()[0], expected.kernel, atol=SOLVER_TOLERANCE)
    result = model.evaluate(XV, YV, verbose=0, return_dict=True)
    assert result["accuracy"] == pytest.approx(head.best["val_accuracy"])
    assert "chosen on: head: 5-fold cross-validation" in str(report)


def test_kept_head_is_refitted_on_training_and_validation_data():
    from kerastl.training.linear_head import solve_linear

    model = tiny_kerastl_model(3)
    report = fit(model, TRAIN, VAL, recipe="feature_extraction", seed=0, verbose=0)
    head = report.stages[0]
    assert head.refit_on == "training + validation data"
    fresh = tiny_kerastl_model(3)
    features = kerastl.feature_extractor(fresh).predict(np.concatenate([X, XV]), verbose=0)
    kernel, bias = solve_linear("multiclass", 3, features, np.concatenate([Y, YV]), l2=head.l2)
    # These separable images choose a weak strength, where the optimum is flat
    # and the solver's stopping point moves the weights by up to gtol / l2:
    # compare what the head computes, not its weights.
    logits = features @ kernel + bias
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    got = model.predict(np.concatenate([X, XV]), verbose=0)
    np.testing.assert_allclose(got, expected, atol=1e-2)
    assert (got.argmax(1) == expected.argmax(1)).all()
    # The reported validation score is the one the choices were made with (before the refit).
    alone = tiny_kerastl_model(3)
    before = fit(alone, TRAIN, VAL, recipe="feature_extraction", refit_head=False, seed=0, verbose=0)
    assert head.best == before.stages[0].best and before.stages[0].refit_on is None


def test_fit_without_validation_cross_validates_the_head():
    model = tiny_kerastl_model(3)
    report = fit(model, TRAIN, seed=0, verbose=0)
    assert report.recipe == "feature_extraction"
    assert report.stages[0].selected_on == "5-fold cross-validation on training data"
    assert len(report.stages[0].l2_scores) >= 4  # a search over held-out folds ran


def test_fine_tuning_worse_than_the_head_on_validation_is_discarded():
    class Wreck(keras.callbacks.Callback):
        """Makes the fine-tuning stage score below the head on every epoch."""

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None and "val_accuracy" in logs:
                logs["val_accuracy"] = -1.0

    model = tiny_kerastl_model(3)
    report = fit(model, TRAIN, VAL, recipe="two_stage", trainable_blocks=2, fine_tune_epochs=2,
                 learning_rate=0.5, callbacks=[Wreck()], refit_head=False, seed=0, verbose=0)
    head, tune = report.stages
    assert tune.epochs_run >= 1 and report.best_stage == 0
    # The head's weights (and the untouched backbone) are back.
    fresh = tiny_kerastl_model(3)
    kernel = kerastl.get_head(model).output_layer.get_weights()[0]
    features = kerastl.feature_extractor(fresh).predict(X, verbose=0)
    val_features = kerastl.feature_extractor(fresh).predict(XV, verbose=0)
    expected = fit_linear("multiclass", 3, features, Y, validation_features=val_features,
                          validation_labels=YV, seed=0)
    np.testing.assert_allclose(kernel, expected.kernel, atol=SOLVER_TOLERANCE)
    for a, b in zip(model.get_layer("backbone").get_weights(),
                    fresh.get_layer("backbone").get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("extra_correct", [0, 1, 2])
def test_fine_tuning_is_judged_on_its_predictions_not_on_its_logged_score(extra_correct):
    # The logged accuracy says the stage is `extra_correct` examples better;
    # the keep rule counts the validation examples each stage gets right
    # (kerastl.training.selection.keeps), so a faked score changes nothing.
    class Score(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_accuracy"] = float(head_accuracy) + extra_correct / len(YV)

    model = tiny_kerastl_model(3)
    first = fit(model, TRAIN, VAL, recipe="feature_extraction", seed=0, verbose=0)
    head_accuracy = first.best["val_accuracy"]
    model = tiny_kerastl_model(3)
    report = fit(model, TRAIN, VAL, recipe="two_stage", trainable_blocks=1, fine_tune_epochs=1,
                 callbacks=[Score()], seed=0, verbose=0)
    comparison = report.stages[1].comparison
    assert comparison["rule"] == "sign test" and comparison["against"] == 0
    kept = extra_correct > 0 and clearly_better(comparison["gained"], comparison["lost"])
    assert comparison["kept"] is kept
    assert report.best_stage == (1 if kept else 0) and report.selected_on == "validation"


def test_gradient_head_without_validation_keeps_the_last_epoch():
    model = tiny_kerastl_model(3)
    report = fit(model, TRAIN, recipe="feature_extraction", head_solver="gradient", epochs=3,
                 learning_rate=0.01, seed=0, verbose=0)
    stage = report.stages[0]
    assert stage.best_epoch == 2 and stage.stopped is None
    assert stage.selected_on.startswith("none")
