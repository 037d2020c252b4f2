"""kerastl.fewshot.extend (kerastl.extend): growing a trained classifier by new classes."""

import numpy as np
import pytest

import kerastl
import kerastl.fewshot as fs
from harness import separable_images, tiny_kerastl_model


@pytest.fixture(scope="module")
def shared(task):
    """The new and old data as fixed objects, and one feature cache for every call."""
    _, x, y, old = task
    return {"new": (x[~old], y[~old] - 3), "old": (x[old], y[old]),
            "cache": kerastl.training.FeatureCache()}


def _renormalised_old(model, x, k=3):
    p = model.predict(x, verbose=0)[:, :k]
    return p / p.sum(axis=1, keepdims=True)


def test_grown_model_starts_from_the_old_head(task):
    model, x, y, old = task
    result = fs.extend(model, (x[~old], y[~old] - 3), method="naive", epochs=1,
                       learning_rate=1e-9, class_names=["d", "e"])
    assert result.class_names == ["a", "b", "c", "d", "e"]
    assert kerastl.model_info(result.model).num_outputs == 5
    assert kerastl.get_backbone(result.model) is kerastl.get_backbone(model)
    kernel = kerastl.get_head(result.model).output_layer.get_weights()[0]
    old_kernel = kerastl.get_head(model).output_layer.get_weights()[0]
    np.testing.assert_allclose(kernel[:, :3], old_kernel, atol=1e-6)
    assert kerastl.get_head(model).num_outputs == 3  # the original is not changed


def _lwf_vs_naive(task, shared, **options):
    model = task[0]
    out = {}
    for method in ("naive", "lwf"):
        out[method] = fs.extend(model, shared["new"], method=method, epochs=15,
                                learning_rate=1e-2, class_names=["d", "e"],
                                feature_cache=shared["cache"], **options).model
    return out


def test_lwf_keeps_old_outputs_closer_than_naive(task, shared):
    """distill_over="old": the old classes' outputs among themselves stay closer."""
    model, x, _, old = task
    reference = _renormalised_old(model, x[old])
    models = _lwf_vs_naive(task, shared, distill_over="old", distillation=10.0)
    gaps = {m: np.abs(_renormalised_old(net, x[old]) - reference).mean()
            for m, net in models.items()}
    assert gaps["lwf"] < gaps["naive"]


def test_lwf_over_all_outputs_keeps_old_images_on_old_classes(task, shared):
    """distill_over="all": old images keep more probability on the old classes."""
    _, x, _, old = task
    models = _lwf_vs_naive(task, shared, distillation=1.0)
    mass = {m: net.predict(x[old], verbose=0)[:, :3].sum(axis=1).mean()
            for m, net in models.items()}
    assert mass["lwf"] > mass["naive"]


def test_replay_and_ewc_report_old_and_new_accuracy(task, shared):
    model, x, y, old = task
    ex, ey = separable_images(60, 5, seed=4)
    for method in ("replay", "ewc"):
        result = fs.extend(model, shared["new"], old_data=shared["old"], method=method,
                           epochs=3, class_names=["d", "e"], eval_data=(ex, ey),
                           feature_cache=shared["cache"])
        for value in (result.old_accuracy, result.new_accuracy, result.accuracy,
                      result.old_accuracy_before):
            assert 0.0 <= value <= 1.0
        assert result.old_accuracy_drop == pytest.approx(result.old_accuracy_before
                                                         - result.old_accuracy)
        assert len(result.losses) == (0 if method == "replay" else 3)
        assert method in str(result)


def test_ewc_penalty_holds_old_weights_closer(task, shared):
    model, x, y, old = task
    before = kerastl.get_head(model).output_layer.get_weights()[0]
    moved = {}
    for strength in (0.0, 1e6):
        result = fs.extend(model, shared["new"], old_data=shared["old"], method="ewc",
                           ewc_strength=strength, epochs=5, learning_rate=1e-2,
                           class_names=["d", "e"], feature_cache=shared["cache"])
        kernel = kerastl.get_head(result.model).output_layer.get_weights()[0]
        moved[strength] = np.abs(kernel[:, :3] - before).sum()
    assert moved[1e6] < moved[0.0]


def test_methods_needing_old_data(task):
    model, x, y, old = task
    for method in ("ewc", "replay"):
        with pytest.raises(ValueError, match=f"method='{method}' needs `old_data`"):
            fs.extend(model, (x[~old], y[~old] - 3), method=method)


def test_bad_input(task):
    model, x, y, old = task
    new = (x[~old], y[~old] - 3)
    with pytest.raises(ValueError, match="`method`"):
        fs.extend(model, new, method="icarl")
    with pytest.raises(ValueError, match="'a' is already a class"):
        fs.extend(model, new, class_names=["a", "e"])
    with pytest.raises(ValueError, match="`new_data` has no examples of class 'e'"):
        fs.extend(model, {"d": x[y == 3], "e": x[:0]})
    with pytest.raises(ValueError, match="`distill_over`"):
        fs.extend(model, new, distill_over="new")
    with pytest.raises(ValueError, match="`epochs`"):
        fs.extend(model, new, epochs=0)
    binary = tiny_kerastl_model(task="binary")
    with pytest.raises(ValueError, match="multiclass"):
        fs.extend(binary, new)
