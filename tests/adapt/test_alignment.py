"""CORAL (closed form), Deep CORAL, MMD and DANN on the fogged synthetic target."""

from __future__ import annotations

import numpy as np
import pytest
from harness import tiny_kerastl_model

from kerastl.adapt import alignment
from kerastl.adapt.features import evaluate
from kerastl.training import FeatureCache

from .conftest import adapter_model, source_trained


def test_coral_transform_colours_source_like_the_target():
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(400, 3))
    xt = rng.normal(size=(400, 3)) @ np.array([[2.0, 0.5, 0.0], [0.0, 1.0, 0.3],
                                               [0.0, 0.0, 0.5]]) + 4.0
    moved = alignment.coral_transform(xs, xt, regularization=1e-6)(xs)
    np.testing.assert_allclose(moved.mean(axis=0), xt.mean(axis=0), atol=1e-4)
    np.testing.assert_allclose(np.cov(moved, rowvar=False), np.cov(xt, rowvar=False),
                               rtol=1e-3, atol=1e-3)


def test_coral_transform_bad_input():
    with pytest.raises(ValueError, match="at least 2 source and 2 target"):
        alignment.coral_transform(np.ones((1, 3)), np.ones((5, 3)))
    with pytest.raises(ValueError, match="`regularization` must be a number > 0.0"):
        alignment.coral_transform(np.ones((4, 3)), np.ones((5, 3)), regularization=0)


def test_coral_recovers_part_of_the_fogged_target(shifted):
    model = source_trained(tiny_kerastl_model(3), shifted)
    cache = FeatureCache()
    labelled = (shifted["target"], shifted["target_labels"])
    assert evaluate(model, labelled, feature_cache=cache) <= 0.45
    weights = [w.path for w in model.weights]
    result = alignment.coral(model, shifted["source"], shifted["target"],
                             source_validation=shifted["validation"], feature_cache=cache, seed=0)
    assert result["l2"] > 0
    assert evaluate(model, labelled, feature_cache=cache) >= 0.6
    assert [w.path for w in model.weights] == weights  # a plain kerastl model


def test_coral_head_data_both_keeps_the_source_accuracy(shifted):
    scores = {}
    for head_data in ("coloured", "both"):
        model = source_trained(tiny_kerastl_model(3), shifted)
        cache = FeatureCache()
        result = alignment.coral(model, shifted["source"], shifted["target"],
                                 source_validation=shifted["validation"], head_data=head_data,
                                 feature_cache=cache, seed=0)
        assert result["head_data"] == head_data
        scores[head_data] = (
            evaluate(model, (shifted["target"], shifted["target_labels"]), feature_cache=cache),
            evaluate(model, shifted["validation"], feature_cache=cache))
    # Fitted on the coloured copies only, the head no longer separates the clean source
    # images (source-only: 1.0 on them); fitted on both, it serves both domains.
    assert scores["coloured"][1] <= 0.9
    assert scores["both"][1] >= 0.95
    assert min(scores["coloured"][0], scores["both"][0]) >= 0.6


def test_coral_bad_head_data(shifted):
    model = source_trained(tiny_kerastl_model(3), shifted)
    with pytest.raises(ValueError, match="`head_data` must be one of"):
        alignment.coral(model, shifted["source"], shifted["target"], head_data="target")
    with pytest.raises(ValueError, match="`coloured_weight` must be a number > 0.0"):
        alignment.coral(model, shifted["source"], shifted["target"], coloured_weight=0)
    with pytest.raises(ValueError, match="head_data='coloured' leaves out"):
        alignment.coral(model, shifted["source"], shifted["target"], head_data="coloured",
                        coloured_weight=0.5)


def test_coral_coloured_weight_goes_from_the_source_head_to_coral(shifted):
    """Towards weight 0 the head is the closed-form head of the source features alone."""
    from kerastl.adapt import features as feats
    from kerastl.adapt.data import as_source
    from kerastl.training import linear_head

    labelled = (shifted["target"], shifted["target_labels"])
    target_acc = {}
    for weight in (1.0, 1e-6):
        model = source_trained(tiny_kerastl_model(3), shifted)
        cache = FeatureCache()
        result = alignment.coral(model, shifted["source"], shifted["target"],
                                 coloured_weight=weight, feature_cache=cache, seed=0)
        assert result["coloured_weight"] == weight
        target_acc[weight] = evaluate(model, labelled, feature_cache=cache)
    # The last model (weight 1e-6) against the head fitted on its source features alone.
    xt, _ = feats.cached(cache, model, as_source("t", labelled, model=model))
    xs, ys = feats.cached(cache, model, as_source("s", shifted["source"], model=model))
    plain = linear_head.fit_linear("multiclass", 3, xs, ys, seed=0)
    expected = np.exp(linear_head.log_softmax(xt @ plain.kernel + plain.bias))
    probs = np.asarray(feats.predict_features(model, xt))
    # Same strength chosen (the folds score the uncoloured rows); the solver stops at
    # float32-level gradients, so the probabilities agree to ~1e-3, not to rounding.
    np.testing.assert_allclose(probs, expected, atol=2e-2)
    assert target_acc[1e-6] <= 0.45 < 0.6 <= target_acc[1.0]


def test_dann_recovers_part_of_the_fogged_target(shifted):
    model = source_trained(adapter_model(), shifted)
    labelled = (shifted["target"], shifted["target_labels"])
    cache = FeatureCache()
    assert evaluate(model, labelled, feature_cache=cache) <= 0.45
    result = alignment.dann(model, shifted["source"], shifted["target"], trainable_blocks=2,
                            epochs=30, learning_rate=1e-3, feature_cache=cache, seed=0)
    assert result["aligned_on"] == "features" and result["trainable_blocks"] == 2
    # The domain classifier is confused (loss near log 2), not winning (loss near 0).
    assert result["history"]["alignment"][-1] > 0.3
    assert evaluate(model, labelled, feature_cache=cache) >= 0.55
    assert evaluate(model, shifted["validation"], feature_cache=cache) >= 0.9


def test_dann_discriminator_learning_rate(shifted):
    # Ten times faster than the blocks, the domain classifier wins outright on this data
    # (its loss goes to 0) where at the blocks' rate it stays confused (test above).
    model = source_trained(adapter_model(), shifted)
    result = alignment.dann(model, shifted["source"], shifted["target"], trainable_blocks=2,
                            epochs=30, learning_rate=1e-3, discriminator_learning_rate=1e-2,
                            seed=0)
    assert result["history"]["alignment"][-1] < 0.05
    with pytest.raises(ValueError, match="`discriminator_learning_rate` must be a number > 0"):
        alignment.dann(model, shifted["source"], shifted["target"],
                       discriminator_learning_rate=0.0)


def test_dann_domain_confusion(shifted):
    model = source_trained(adapter_model(), shifted)
    labelled = (shifted["target"], shifted["target_labels"])
    cache = FeatureCache()
    result = alignment.dann(model, shifted["source"], shifted["target"], trainable_blocks=2,
                            epochs=30, learning_rate=1e-3, adversary="confusion",
                            feature_cache=cache, seed=0)
    # The classifier's own loss: it keeps learning the domains, never pushed far above
    # log 2 = 0.69 as reversal can push it.
    assert max(result["history"]["alignment"]) < 0.8
    assert evaluate(model, labelled, feature_cache=cache) >= 0.5  # chance 1/3
    assert evaluate(model, shifted["validation"], feature_cache=cache) >= 0.9
    with pytest.raises(ValueError, match="`adversary` must be one of"):
        alignment.dann(model, shifted["source"], shifted["target"], adversary="grl")


@pytest.mark.parametrize("method", ["deep_coral", "mmd"])
def test_deep_alignment_trains_on_cached_activations(shifted, method):
    model = source_trained(adapter_model(), shifted)
    cache = FeatureCache()
    fn = getattr(alignment, method)
    result = fn(model, shifted["source"], shifted["target"], trainable_blocks=2, epochs=6,
                learning_rate=1e-3, feature_cache=cache, seed=0)
    batches = cache.backbone_batches
    assert len(result["history"]["loss"]) == 6 and result["scale"] > 0
    assert all(np.isfinite(result["history"]["alignment"]))
    assert evaluate(model, shifted["validation"], feature_cache=cache) >= 0.9
    assert cache.backbone_batches > batches  # the top blocks changed: pooled features recomputed


def test_head_only_alignment_aligns_the_predictions(shifted):
    model = source_trained(tiny_kerastl_model(3), shifted)
    result = alignment.mmd(model, shifted["source"], shifted["target"], trainable_blocks=0,
                           epochs=2, seed=0)
    assert result["aligned_on"] == "predictions"


def test_deep_bad_arguments(shifted):
    model = tiny_kerastl_model(3)
    with pytest.raises(ValueError, match="`trainable_blocks` must be an integer between 0 and 3"):
        alignment.dann(model, shifted["source"], shifted["target"], trainable_blocks=4)
    with pytest.raises(ValueError, match="`learning_rate` must be a number > 0.0"):
        alignment.deep_coral(model, shifted["source"], shifted["target"], learning_rate=0)


def test_deep_methods_do_not_depend_on_what_ran_before(shifted):
    """`seed` fixes the domain classifier's initial weights, whatever drew random numbers first."""
    import keras

    weights = []
    for draws in (0, 3):
        model = source_trained(adapter_model(), shifted)
        keras.utils.set_random_seed(draws)
        for _ in range(draws):  # another method run first: layers built, numbers drawn
            keras.layers.Dense(4).build((None, 4))
        alignment.dann(model, shifted["source"], shifted["target"], trainable_blocks=2,
                       epochs=2, learning_rate=1e-3, seed=0)
        weights.append(model.get_layer("head").get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
