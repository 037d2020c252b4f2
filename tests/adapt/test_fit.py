"""`kerastl.adapt.fit`: auto, explicit methods, a plain model that saves and exports, bad input."""

from __future__ import annotations

import pytest
from harness import assert_keras_round_trip, separable_images, tiny_kerastl_model

import kerastl.adapt as adapt
from kerastl.training import FeatureCache

FIT = {"source_recipe": "feature_extraction", "seed": 0, "verbose": 0}


def test_auto_says_no_adaptation_is_needed_without_a_shift(shifted):
    model = tiny_kerastl_model(3)
    same, _ = separable_images(60, 3, seed=7)
    report = adapt.fit(model, shifted["source"], same, source_validation=shifted["validation"],
                       **FIT)
    assert report.method == "source_only" and not report.adaptation_needed
    assert "not needed" in report.message and report.candidates == []
    assert "no shift" in str(report)


def test_auto_adapts_and_keeps_the_source_within_one_point(shifted):
    model = tiny_kerastl_model(3)
    cache = FeatureCache()
    report = adapt.fit(model, shifted["source"], shifted["target"],
                       source_validation=shifted["validation"], feature_cache=cache,
                       auto_methods=("coral", "adabn"), **FIT)
    assert report.shift.shift and report.adaptation_needed
    base = report.source_only_validation_accuracy
    assert [c.method for c in report.candidates][:1] == ["coral"]
    assert report.candidates[0].details["coloured_weight"] == 1.0
    kept = [c for c in report.candidates if c.kept]
    assert len(kept) <= 1
    for c in report.candidates:
        within = c.source_validation_accuracy >= base - 0.01
        assert c.kept == (within and c is report.candidates[-1])
    final = adapt.evaluate(model, shifted["validation"], feature_cache=cache)
    assert final >= base - 0.01  # never worse than source-only by more than 1 point
    assert report.source_validation_accuracy == pytest.approx(final)
    assert set(report.to_dict()) >= {"method", "shift", "candidates", "message"}


def test_auto_tries_coral_at_each_weight_before_the_next_method():
    import importlib

    from kerastl.adapt.methods import CORAL_WEIGHTS

    fit_module = importlib.import_module("kerastl.adapt.fit")
    order = list(fit_module._auto_candidates(("coral", "adabn")))
    assert order == [("coral", {"coloured_weight": w}) for w in CORAL_WEIGHTS] + [("adabn", {})]
    assert CORAL_WEIGHTS[0] == 1.0 and list(CORAL_WEIGHTS) == sorted(CORAL_WEIGHTS, reverse=True)


def test_explicit_method_adapts_and_the_model_saves_and_exports(shifted, tmp_path):
    import kerastl

    model = tiny_kerastl_model(3)
    report = adapt.fit(model, shifted["source"], shifted["target"], method="adabn",
                       source_validation=shifted["validation"], **FIT)
    assert report.method == "adabn" and report.candidates[0].kept
    labelled = (shifted["target"], shifted["target_labels"])
    accuracy = adapt.evaluate(model, labelled)
    assert accuracy >= 0.9
    loaded = assert_keras_round_trip(model, shifted["target"][:8], tmp_path)
    assert adapt.evaluate(loaded, labelled) == pytest.approx(accuracy)
    export = kerastl.export(model, tmp_path / "export", formats=("keras", "tflite"),
                            quantization=("float32",), verbose=0)
    tflite = [a for a in export.artifacts if a.format == "tflite"]
    assert tflite and tflite[0].size_bytes > 0
    predictor = kerastl.load_predictor(f"{export.path}/{tflite[0].name}")
    scores = predictor.predict(shifted["target"][:16])
    agree = (scores.argmax(1) == model.predict(shifted["target"][:16], verbose=0).argmax(1))
    assert agree.mean() >= 0.9


def test_labelled_target_methods_need_labels(shifted):
    model = tiny_kerastl_model(3)
    with pytest.raises(ValueError, match="needs a few labelled target images"):
        adapt.fit(model, shifted["source"], shifted["target"], method="daume", **FIT)


def test_bad_method_and_options(shifted):
    model = tiny_kerastl_model(3)
    with pytest.raises(ValueError, match="`method` must be one of .* Did you mean 'coral'"):
        adapt.fit(model, shifted["source"], shifted["target"], method="corall", **FIT)
    with pytest.raises(ValueError, match="`epochs` must be an integer >= 1. Received: epochs=0"):
        adapt.fit(model, shifted["source"], shifted["target"], epochs=0, **FIT)
    with pytest.raises(ValueError, match="`auto_methods` must be one of"):
        adapt.fit(model, shifted["source"], shifted["target"], auto_methods=("daume",), **FIT)
    with pytest.raises(TypeError):
        adapt.fit(model, shifted["source"], shifted["target"], epoch=3, **FIT)


def test_kerastl_fit_stays_the_function_after_adapting(shifted):
    import kerastl

    adapt.fit(tiny_kerastl_model(3), shifted["source"], shifted["target"],
              method="source_only", **FIT)
    assert callable(kerastl.fit) and callable(kerastl.training.fit)
    assert callable(adapt.fit)
