"""Tests of kerastl.tuning.tuners: the keras-tuner tuners kerastl.tune builds (no training)."""

import keras_tuner
import pytest
import tensorflow as tf

from kerastl.tuning.hypermodel import INFO_METRICS, TransferHyperModel
from kerastl.tuning.space import SearchSpace
from kerastl.tuning.tuners import (BayesianTuner, HyperbandTuner, KerastlHyperbandOracle,
                                   RandomSearchTuner, make_tuner, read_trial_record,
                                   write_trial_record)


class _NoBuild(TransferHyperModel):
    def build(self, hp):  # the tuner must not build a model to learn the space
        raise AssertionError("a model was built while creating the tuner")


def _tuner(tmp_path, algorithm, **kwargs):
    space = SearchSpace(trainable_blocks=[0, 2, "all"], learning_rate=(1e-4, 1e-2))
    hypermodel = _NoBuild(backbone="mobilenet_v2", num_classes=3, space=space)
    args = dict(objective=keras_tuner.Objective("val_accuracy", "max"), max_trials=None,
                max_epochs=4, factor=3, seed=0, directory=tmp_path, project_name=algorithm,
                overwrite=False, strategy=None, max_consecutive_failed_trials=3)
    args.update(kwargs)
    return make_tuner(algorithm, hypermodel, **args)


def _has_sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("algorithm, cls", [("hyperband", HyperbandTuner),
                                            ("random", RandomSearchTuner),
                                            ("bayesian", BayesianTuner)])
def test_make_tuner_declares_the_space_without_building(tmp_path, algorithm, cls):
    if algorithm == "bayesian" and not _has_sklearn():
        with pytest.raises(ImportError, match="algorithm='bayesian' needs scikit-learn"):
            _tuner(tmp_path, algorithm, max_trials=5)
        return
    tuner = _tuner(tmp_path, algorithm, max_trials=5)
    assert isinstance(tuner, cls)
    assert tuner.oracle.max_trials == 5 and tuner.trial_epochs == 4
    assert tuner.oracle.max_retries_per_trial == 0
    names = {hp.name for hp in tuner.oracle.get_space().space}
    assert names == {"trainable_blocks", "learning_rate", "backbone_learning_rate", "dropout",
                     "recipe"}


def test_hyperband_without_max_trials_runs_one_iteration(tmp_path):
    tuner = _tuner(tmp_path, "hyperband")
    assert tuner.oracle.max_trials is None and tuner.oracle.hyperband_iterations == 1
    assert tuner.oracle.max_epochs == 4 and tuner.oracle.factor == 3
    assert _tuner(tmp_path, "random", project_name="r").oracle.max_trials == 10


def test_strategy_is_keras_tuners_distribution_strategy(tmp_path):
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    tuner = _tuner(tmp_path, "random", strategy=strategy)
    assert tuner.distribution_strategy is strategy


def test_unknown_algorithm(tmp_path):
    with pytest.raises(ValueError, match="`algorithm` must be one of 'hyperband', 'bayesian', "
                                         "'random'. Did you mean 'random'"):
        _tuner(tmp_path, "randm")


def test_trial_record_round_trip(tmp_path):
    assert read_trial_record(tmp_path) == {}
    write_trial_record(tmp_path, {"seconds": 1.5, "error": None})
    assert read_trial_record(tmp_path) == {"seconds": 1.5, "error": None}


def _finish(oracle, trial, score, can_continue):
    oracle.update_trial(trial.trial_id, {"val_accuracy": score,
                                         INFO_METRICS["can_continue"]: float(can_continue),
                                         INFO_METRICS["epochs"]: 1.0})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)


@pytest.mark.parametrize("best_can_continue", [False, True])
def test_hyperband_oracle_runs_no_continuation_that_cannot_change(tmp_path, best_can_continue):
    # max_epochs=3, factor 3: three 1-epoch trials, then the best one continued to 3 epochs.
    tuner = _tuner(tmp_path, "hyperband", max_epochs=3)
    oracle = tuner.oracle
    assert isinstance(oracle, KerastlHyperbandOracle)
    tuner._populate_initial_space()
    first = []
    for score in (0.5, 0.9, 0.6):  # the second one is the best
        trial = oracle.create_trial("tuner0")
        assert "tuner/trial_id" not in trial.hyperparameters.values
        # e.g. the best one was pruned: more epochs of its setting cannot change it.
        _finish(oracle, trial, score, can_continue=best_can_continue or score != 0.9)
        first.append(trial)
    nxt = oracle.create_trial("tuner0")
    continued = nxt.hyperparameters.values.get("tuner/trial_id")
    if best_can_continue:
        assert continued == first[1].trial_id and nxt.status == "RUNNING"
        return
    # The continuation was completed by the oracle with the earlier result, and the
    # tuner got the next bracket's new trial instead.
    assert continued is None and nxt.status == "RUNNING"
    settled = oracle.trials[oracle.start_order[3]]
    assert settled.hyperparameters.values["tuner/trial_id"] == first[1].trial_id
    assert settled.status == "COMPLETED" and settled.score == 0.9
    assert settled.metrics.get_last_value(INFO_METRICS["settled"]) == 1.0
    assert settled.metrics.get_last_value(INFO_METRICS["epochs"]) == 0.0

