"""Tests of kerastl.tune on a tiny backbone (alpha=0.35 MobileNetV2, 32x32, random init).

Trials are 1-2 epochs on 48 images; each search runs 3-4 trials. Pruning of fine-tuning
trials: test_tune_pruning.py.
"""

import json
import re

import keras
import pytest
import tensorflow as tf

import kerastl
import kerastl.data
import kerastl.training
from harness import separable_images
from kerastl.tuning import SearchSpace, TuneResult, tune

from .helpers import BATCH, TINY, Counting, tiny_data

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data():
    return tiny_data()


def _batches_per_pass():
    return 48 // BATCH + -(-24 // BATCH)  # 3 train + 2 validation batches


@pytest.fixture(scope="module")
def search(data, tmp_path_factory):
    """Depth 0 and 2, two backbone learning rates: 2 frozen and 2 fine-tuned trials."""
    train, val = data
    space = SearchSpace(trainable_blocks=[0, 2], learning_rate=1e-2,
                        backbone_learning_rate=[1e-4, 1e-3], dropout=0.1)
    return tune(train, val, backbone="mobilenet_v2", num_classes=3, search_space=space,
                algorithm="random", max_trials=4, fine_tune_epochs=2, epochs=3, prune=False,
                seed=0, verbose=0, refit=False, directory=tmp_path_factory.mktemp("tune"),
                build_kwargs=TINY)


def test_every_setting_runs_once_with_its_cost(search):
    assert isinstance(search, TuneResult)
    assert [t["status"] for t in search.trials] == ["COMPLETED"] * 4
    settings = {(t["hyperparameters"]["trainable_blocks"],
                 t["hyperparameters"]["backbone_learning_rate"]) for t in search.trials}
    assert settings == {(0, 1e-4), (0, 1e-3), (2, 1e-4), (2, 1e-3)}
    for t in search.trials:
        # The epoch budget is fine-tuning epochs: frozen trials are the head warm-up alone.
        fine_tune = t["hyperparameters"]["trainable_blocks"] != 0
        assert t["epochs"] == (2 if fine_tune else 0)
        assert t["seconds"] > 0 and 0.0 <= t["score"] <= 1.0 and t["pruned"] is False
    assert search.best_score == max(t["score"] for t in search.trials)


def test_unfreeze_depth_changes_trainable_parameters(search):
    model = kerastl.build("mobilenet_v2", 3, **TINY)
    head_only = kerastl.set_trainable_blocks(model, 0).trainable_params
    two_blocks = kerastl.set_trainable_blocks(model, 2).trainable_params
    assert head_only < two_blocks
    for t in search.trials:
        expected = head_only if t["hyperparameters"]["trainable_blocks"] == 0 else two_blocks
        assert t["trainable_params"] == expected


def test_trials_share_one_feature_cache(search):
    # One image pass for the pooled features (the one head warm-up) and one for
    # the frozen prefix below the top 2 blocks, which the second fine-tuning
    # trial reads back (train + validation: 2 hits). Without sharing, the 4
    # trials would run 6 passes (1 + 1 + 2 + 2).
    counters = search.feature_cache
    assert counters["backbone_batches"] == 2 * _batches_per_pass()
    assert counters["hits"] == 2


def test_all_trials_share_one_head_warmup(search):
    # Same head learning rate and dropout: the first trial fits the head (in
    # closed form: no epochs), the other three load its head weights.
    first, *others = search.trials
    assert first["shared_head_warmup"] is False and first["head_epochs"] == 0
    assert all(t["shared_head_warmup"] and t["head_epochs"] == 0 for t in others)


@pytest.fixture(scope="module")
def frozen_cache():
    """One feature cache for the frozen searches below (same data, same seed)."""
    return kerastl.training.FeatureCache()


def _frozen_search(data, directory, cache, **kwargs):
    space = SearchSpace(trainable_blocks=[0], learning_rate=(1e-3, 3e-2), dropout=0.0)
    args = dict(fine_tune_epochs=3, epochs=3, seed=1, verbose=0, refit=False,
                project_name="frozen")
    args.update(kwargs)
    return tune(data[0], data[1], backbone="mobilenet_v2", num_classes=3, search_space=space,
                directory=directory, feature_cache=cache, build_kwargs=TINY, **args)


def test_resume_never_redoes_finished_trials(data, tmp_path, monkeypatch, frozen_cache):
    # Hyperband, fine_tune_epochs=3: three 1-epoch trials, then the best one continued.
    counter = Counting(monkeypatch)
    first = _frozen_search(data, tmp_path, frozen_cache, max_trials=2)
    assert counter.builds == 2 and len(first.trials) == 2
    done = {t["trial_id"]: t["seconds"] for t in first.trials}

    # Interrupted in the next trial (Ctrl-C): the search stops there.
    counter.fail_at, counter.error = counter.fits + 1, KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        _frozen_search(data, tmp_path, frozen_cache, max_trials=4)

    counter.builds, counter.fail_at = 0, None
    again = _frozen_search(data, tmp_path, frozen_cache, max_trials=4)
    # The interrupted trial only: the continuation of a frozen (depth 0) trial
    # has no fine-tuning epochs, so the oracle settles it without a build.
    assert counter.builds == 1
    assert [t["status"] for t in again.trials] == ["COMPLETED"] * 4
    assert {t["trial_id"]: t["seconds"] for t in again.trials[:2]} == done
    last = again.trials[3]
    assert last["continued_from"] in {t["trial_id"] for t in again.trials[:3]}
    assert last["epochs"] == 0 and last["settled"] is True


def test_failing_trial_is_recorded_and_skipped_then_best_is_refit(data, tmp_path, monkeypatch,
                                                                   frozen_cache, capsys):
    error = tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
    counter = Counting(monkeypatch, fail_at=1, error=error)
    result = _frozen_search(data, tmp_path, frozen_cache, algorithm="random", max_trials=2,
                            refit=True, verbose=1)
    assert "Trial" in capsys.readouterr().out  # keras-tuner's trial log
    assert [t["status"] for t in result.trials] == ["FAILED", "COMPLETED"]
    failed = result.trials[0]
    assert failed["error"].startswith("ResourceExhaustedError") and "OOM" in failed["error"]
    assert failed["seconds"] is not None and failed["score"] is None
    assert result.best_trial["trial_id"] == "1"
    assert "trial 0 failed: ResourceExhaustedError" in result.summary()
    # refit=True: the best setting rebuilt and trained with kerastl.fit.
    assert counter.builds == 3
    assert result.refit_metrics["seconds"] > 0
    stages = kerastl.report.stages_from(result.best_report)  # the refit's history
    assert [s["name"] for s in stages] == ["head"] and stages[0]["history"]["val_accuracy"]
    _, accuracy = result.best_model.evaluate(data[1], verbose=0)
    assert accuracy == pytest.approx(result.refit_metrics["val_accuracy"], abs=1e-6)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"algorithm": "grid"}, ValueError, "`algorithm` must be one of 'hyperband', 'bayesian'"),
    ({"input_shap": (32, 32, 3)}, ValueError, "'input_shap' (did you mean 'input_shape'?)"),
    ({"trainable_blocks": 2}, ValueError, "'trainable_blocks' (set by tune itself)"),
    ({"fit_kwargs": {"lable_smoothing": 0.0}}, ValueError, "did you mean 'label_smoothing'"),
    ({"search_space": SearchSpace(trainable_blocks=[0, 19])}, ValueError,
     "between 0 and 18 or 'all'. Received: trainable_blocks=19"),
    ({"search_space": {"learning_rate": -0.1}}, ValueError, "positive number"),
    ({"fine_tune_epochs": 0}, ValueError, "`fine_tune_epochs` must be an integer >= 1"),
    ({"epochs": 0}, ValueError, "`epochs` must be an integer >= 1"),
    ({"backbone": "mobilenet_v9"}, ValueError, "Unknown backbone 'mobilenet_v9'"),
    ({"validation_data": None}, ValueError, "needs `validation_data`"),
    ({"objective": "val_f1"}, ValueError,
     "`objective` must be a metric kerastl.fit reports for task='multiclass': 'val_loss', "
     "'val_accuracy', 'loss', 'accuracy'. Received: objective='val_f1'"),
    ({"objective": "val_acuracy"}, ValueError, "Did you mean 'val_accuracy'?"),
    ({"build_kwargs": {"input_shape": (64, 64, 3)}}, ValueError,
     "`build_kwargs['input_shape']` must match the training images (32, 32, 3)"),
    ({"build_kwargs": {"input_shape": (16, 16, 3)}}, ValueError,
     "`input_shape` must be at least 32x32 for backbone 'mobilenet_v2'"),
    ({"strategy": "quantum"}, ValueError, "`strategy` must be one of 'auto'"),
    ({"cache_features": 1}, ValueError, "`cache_features` must be True or False"),
])
def test_bad_arguments_fail_before_any_trial(data, tmp_path, kwargs, error, message):
    args = dict(backbone="mobilenet_v2", num_classes=3, directory=tmp_path, verbose=0)
    args.update(kwargs)
    validation = args.pop("validation_data", data[1])
    with pytest.raises(error) as info:
        tune(data[0], validation, **args)
    assert message in str(info.value)
    assert not list(tmp_path.glob("*/trial_*"))
    assert not list(tmp_path.glob("*/kerastl_project.json"))  # nothing saved either


def test_num_classes_must_match_the_data(tmp_path):
    images, labels = separable_images(12, 3, seed=1)
    data = kerastl.data.from_arrays(images, labels, class_names=["r", "g", "b"],
                                    validation_split=0.5, batch_size=4)
    with pytest.raises(ValueError, match=r"^`num_classes` must be 3, the number of classes of "
                                         r"the training data \(r, g, b\). Received: "
                                         r"num_classes=5$"):
        tune(data, backbone="mobilenet_v2", num_classes=5, directory=tmp_path)
    assert not list(tmp_path.iterdir())


def test_input_shape_comes_from_the_data(data):
    from kerastl.tuning import arguments

    got = arguments.input_shape({"weights": None}, data[0], "mobilenet_v2")
    assert got == {"weights": None, "input_shape": (32, 32, 3)}
    # Unknown image sizes (a dataset of ragged images) leave the backbone's default.
    ragged = tf.data.Dataset.from_generator(
        lambda: iter(()), output_signature=(tf.TensorSpec((None, None, 3)),
                                            tf.TensorSpec((), tf.int64)))
    assert arguments.input_shape({}, ragged, "mobilenet_v2") == {}


@pytest.mark.parametrize("old, value, new", [
    ("max_epochs", 0, "fine_tune_epochs"),
    ("warmup_epochs", 0, "epochs"),
])
def test_renamed_keywords_still_work_with_a_warning(data, tmp_path, old, value, new):
    with pytest.warns(FutureWarning,
                      match=re.escape(f"`{old}`=...) is deprecated; use `{new}`=... instead")):
        with pytest.raises(ValueError, match=f"`{new}` must be an integer >= 1"):
            tune(data[0], data[1], backbone="mobilenet_v2", num_classes=3,
                 directory=tmp_path, **{old: value})
    with pytest.raises(ValueError, match=f"Pass `{new}` only"):
        with pytest.warns(FutureWarning):
            tune(data[0], data[1], backbone="mobilenet_v2", num_classes=3,
                 directory=tmp_path, **{old: 2, new: 2})


def test_flat_build_arguments_and_cache_still_work_with_a_warning(data, tmp_path):
    with pytest.warns(FutureWarning, match=r"\(input_shape\) is deprecated; pass them in "
                                           r"`build_kwargs`"):
        with pytest.raises(ValueError, match="`algorithm` must be one of"):
            tune(data[0], data[1], backbone="mobilenet_v2", num_classes=3,
                 input_shape=(32, 32, 3), algorithm="grid", directory=tmp_path)
    with pytest.raises(ValueError, match="`input_shape` is given twice"):
        with pytest.warns(FutureWarning):
            tune(data[0], data[1], backbone="mobilenet_v2", num_classes=3,
                 input_shape=(32, 32, 3), build_kwargs={"input_shape": (32, 32, 3)},
                 directory=tmp_path)
    cache = kerastl.training.FeatureCache()
    with pytest.warns(FutureWarning, match="use feature_cache=<FeatureCache> instead"):
        with pytest.raises(ValueError, match="`algorithm` must be one of"):
            tune(data[0], data[1], backbone="mobilenet_v2", num_classes=3,
                 cache_features=cache, algorithm="grid", directory=tmp_path)


def test_resuming_with_other_settings_is_refused(tmp_path):
    from kerastl.tuning.tune import _project_config

    config = {"backbone": "mobilenet_v2", "num_classes": 3, "algorithm": "random",
              "objective": "val_accuracy", "fine_tune_epochs": 2, "build_seed": 5,
              "search_space": SearchSpace(learning_rate=1e-2).to_dict(), "build_kwargs": {}}
    assert _project_config(tmp_path / "p", config, overwrite=False) == config
    # Resuming reads the saved build seed back.
    assert _project_config(tmp_path / "p", dict(config, build_seed=9), overwrite=False) == config
    other = dict(config, search_space=SearchSpace(learning_rate=1e-3).to_dict(),
                 fine_tune_epochs=3)
    with pytest.raises(ValueError,
                       match="other settings \\(fine_tune_epochs, search_space\\)"):
        _project_config(tmp_path / "p", other, overwrite=False)
    assert _project_config(tmp_path / "p", other, overwrite=True) == other
    saved = json.loads((tmp_path / "p" / "kerastl_project.json").read_text())
    assert saved["fine_tune_epochs"] == 3
    # A project written with the earlier key name resumes.
    old = {k: v for k, v in saved.items() if k != "fine_tune_epochs"}
    (tmp_path / "p" / "kerastl_project.json").write_text(json.dumps(dict(old, max_epochs=3)))
    assert _project_config(tmp_path / "p", other, overwrite=False)["fine_tune_epochs"] == 3


def test_resume_check_ignores_layer_names(tmp_path):
    from kerastl.tuning.tune import _project_config

    def config():  # new layer objects get new auto names (random_flip, random_flip_1, ...)
        return {"backbone": "mobilenet_v2", "build_seed": 1, "build_kwargs": {
            "augmentation": [keras.layers.RandomFlip("horizontal")],
            "head": kerastl.HeadConfig(dropout=0.3)}}

    _project_config(tmp_path, config(), overwrite=False)
    _project_config(tmp_path, config(), overwrite=False)
    changed = config()
    changed["build_kwargs"]["augmentation"] = [keras.layers.RandomFlip("vertical")]
    with pytest.raises(ValueError, match="build_kwargs"):
        _project_config(tmp_path, changed, overwrite=False)
