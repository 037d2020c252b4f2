"""Tests of kerastl.tuning.tuners: the keras-tuner tuners kerastl.tune builds (no training)."""

import keras_tuner
import pytest
import tensorflow as tf

from kerastl.tuning.hypermodel import TransferHyperModel
from kerastl.tuning.space import SearchSpace
from kerastl.tuning.tuners import (BayesianTuner, HyperbandTuner, RandomSearchTuner, make_tuner,
                                   read_trial_record, write_trial_record)


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
