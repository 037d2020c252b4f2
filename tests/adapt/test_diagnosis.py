"""`kerastl.adapt.shift_report`: no shift between halves of one set, a shift to the fog."""

from __future__ import annotations

from harness import separable_images, tiny_kerastl_model

from kerastl.adapt.diagnosis import domain_accuracy, shift_report
from kerastl.training import FeatureCache

from .conftest import source_trained


def test_two_halves_of_one_dataset_have_no_shift(shifted):
    model = source_trained(tiny_kerastl_model(3), shifted)
    x, y = separable_images(160, 3, seed=5)
    report = shift_report(model, (x[:80], y[:80]), x[80:], seed=0)
    assert not report.shift, str(report)
    assert "no shift" in report.verdict and "not needed" in report.verdict
    assert abs(report.domain_accuracy - 0.5) <= report.threshold - 0.5
    assert report.num_source == 80 and report.num_target == 80


def test_fog_is_a_shift(shifted):
    model = source_trained(tiny_kerastl_model(3), shifted)
    cache = FeatureCache()
    report = shift_report(model, shifted["source"], shifted["target"], feature_cache=cache)
    assert report.shift and report.domain_accuracy > 0.9
    assert report.mmd > 3 * report.mmd_within_source
    assert "domain shift" in str(report)
    assert set(report.to_dict()) >= {"domain_accuracy", "mmd", "verdict", "target_confidence"}
    batches = cache.backbone_batches
    shift_report(model, shifted["source"], shifted["target"], feature_cache=cache)
    # The target array is a new Target each call, the source array is the same object.
    assert cache.backbone_batches - batches <= 3


def test_domain_accuracy_of_identical_distributions_is_near_chance():
    import numpy as np

    rng = np.random.default_rng(0)
    accuracy, n = domain_accuracy(rng.normal(size=(200, 10)), rng.normal(size=(200, 10)))
    assert n == 400 and abs(accuracy - 0.5) < 0.1
    shifted_accuracy, _ = domain_accuracy(rng.normal(size=(200, 10)),
                                          rng.normal(1.0, size=(200, 10)))
    assert shifted_accuracy > 0.9
