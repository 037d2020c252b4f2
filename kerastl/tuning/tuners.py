"""keras-tuner tuners and the Hyperband oracle that run kerastl trials.

The three tuners are keras-tuner's own (`Hyperband`, `RandomSearch`,
`BayesianOptimization`: their oracles, state files and resuming) with one
change: `run_trial` trains through `TransferHyperModel.fit` (which may train
the head on cached features, outside the full model), so instead of
keras-tuner's per-epoch checkpoint callback the trial's final weights (its
best validation checkpoint, where `kerastl.fit` leaves the model) are saved
for Hyperband's next rounds. A trial reports its metrics and facts
(`kerastl.tuning.hypermodel.INFO_METRICS`) by returning them, as keras-tuner
expects; keras-tuner keeps them with the trial.

Decisions about continuing a trial are the oracle's: `KerastlHyperbandOracle`
settles a Hyperband continuation whose earlier trial reported that more
epochs cannot change it (pruned, or no fine-tuning stage) by recording the
earlier result, so no trial is run for it.

Each trial also writes ``kerastl_trial.json`` (wall time, error) next to
keras-tuner's ``trial.json``: the cost of failed trials, which keras-tuner
does not record.
"""

from __future__ import annotations

import json
import os
import time
import traceback

import keras_tuner

from kerastl._validation import check_one_of
from kerastl.tuning.hypermodel import INFO_METRICS

ALGORITHMS = ("hyperband", "bayesian", "random")
TRIAL_RECORD = "kerastl_trial.json"


class KerastlHyperbandOracle(keras_tuner.oracles.HyperbandOracle):
    """keras-tuner's Hyperband oracle that does not run continuations that cannot change.

    A trial reports ``kerastl/can_continue`` = 0 when more epochs of its
    setting would train nothing new (no fine-tuning stage) or only repeat
    what was stopped (its fine-tuning was pruned). Hyperband may still pick
    it for the next round; this oracle then completes that continuation at
    once with the earlier trial's metrics (``kerastl/settled`` = 1, 0 epochs),
    so the round keeps its size and no model is built or trained for it.
    """

    @keras_tuner.synchronized
    def create_trial(self, tuner_id):
        while True:
            trial = super().create_trial(tuner_id)
            earlier = self._settled_by(trial)
            if earlier is None:
                return trial
            metrics = {name: earlier.metrics.get_last_value(name)
                       for name in earlier.metrics.metrics}
            metrics.update({INFO_METRICS["settled"]: 1.0, INFO_METRICS["epochs"]: 0.0,
                            INFO_METRICS["head_epochs"]: 0.0})
            self.update_trial(trial.trial_id, metrics)
            trial.status = "COMPLETED"
            self.end_trial(trial)

    def _settled_by(self, trial):
        """Returns the earlier trial whose result `trial` (a continuation) keeps, or None."""
        if trial.status != "RUNNING":
            return None
        earlier_id = trial.hyperparameters.values.get("tuner/trial_id")
        earlier = None if earlier_id is None else self.trials.get(earlier_id)
        if earlier is None or earlier.status != "COMPLETED":
            return None
        name = INFO_METRICS["can_continue"]
        if not earlier.metrics.exists(name) or earlier.metrics.get_last_value(name):
            return None
        return earlier


class _KerastlTuner:
    """Mixin for a keras-tuner `Tuner` whose hypermodel is a `TransferHyperModel`."""

    trial_epochs = 1

    def _populate_initial_space(self):
        # keras-tuner builds a whole model here to discover the space; the
        # space is declared up front, so no model needs to be built.
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def run_trial(self, trial, train, validation_data=None):
        hp = trial.hyperparameters
        epochs = int(hp.values.get("tuner/epochs", self.trial_epochs))
        initial_epoch = int(hp.values.get("tuner/initial_epoch", 0))
        record = {"trial_id": trial.trial_id, "seconds": None, "error": None}
        start = time.perf_counter()
        try:
            model = self._try_build(hp)  # a continuation loads its earlier trial's weights
            metrics = self.hypermodel.fit(hp, model, train, validation_data, epochs=epochs,
                                          initial_epoch=initial_epoch,
                                          start_metrics=self._earlier_metrics(hp))
            self._save_trial_model(trial.trial_id, model)
            return metrics
        except BaseException as error:
            record["error"] = f"{type(error).__name__}: {error}".strip()
            record["traceback"] = traceback.format_exc(limit=8)
            raise
        finally:
            record["seconds"] = round(time.perf_counter() - start, 3)
            write_trial_record(self.get_trial_dir(trial.trial_id), record)

    def _earlier_metrics(self, hp):
        """For a Hyperband continuation: its earlier trial's objective; None otherwise."""
        trial_id = hp.values.get("tuner/trial_id")
        earlier = None if trial_id is None else self.oracle.get_trial(trial_id)
        if earlier is None or earlier.score is None:
            return None
        return {self.oracle.objective.name: float(earlier.score)}

    def _save_trial_model(self, trial_id, model):
        """Saves what `load_model` and Hyperband's next rounds read: weights + build config."""
        model.save_weights(self._get_checkpoint_fname(trial_id))
        with open(self._get_build_config_fname(trial_id), "w") as f:
            json.dump(model.get_build_config(), f)


def write_trial_record(trial_dir, record: dict) -> None:
    """Writes a trial's kerastl record (JSON) into its keras-tuner trial folder."""
    with open(os.path.join(trial_dir, TRIAL_RECORD), "w") as f:
        json.dump(record, f, indent=1, default=str)


def read_trial_record(trial_dir) -> dict:
    """Returns a trial's kerastl record, or an empty dict when it has none."""
    path = os.path.join(trial_dir, TRIAL_RECORD)
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


class HyperbandTuner(_KerastlTuner, keras_tuner.Hyperband):
    """keras-tuner's Hyperband running kerastl trials, with `KerastlHyperbandOracle`."""

    def __init__(self, hypermodel, *, oracle, **kwargs):
        # keras_tuner.Hyperband.__init__ only makes a HyperbandOracle; pass ours.
        keras_tuner.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, **kwargs)


class RandomSearchTuner(_KerastlTuner, keras_tuner.RandomSearch):
    """keras-tuner's RandomSearch running kerastl trials."""


class BayesianTuner(_KerastlTuner, keras_tuner.BayesianOptimization):
    """keras-tuner's BayesianOptimization running kerastl trials."""


def check_algorithm(algorithm: str) -> str:
    """Returns `algorithm` if it is known and usable here, else raises a clear error."""
    check_one_of("algorithm", algorithm, ALGORITHMS)
    if algorithm == "bayesian":
        try:
            import sklearn  # noqa: F401  (keras-tuner's Gaussian process)
        except ImportError:
            raise ImportError("algorithm='bayesian' needs scikit-learn: pip install "
                              "scikit-learn (or keras-tuner[bayesian]); 'hyperband' and "
                              "'random' need nothing more. Received: algorithm='bayesian'"
                              ) from None
    return algorithm


def make_tuner(algorithm: str, hypermodel, *, objective, max_trials, max_epochs, factor,
               seed, directory, project_name, overwrite, strategy,
               max_consecutive_failed_trials):
    """Returns the keras-tuner tuner of `algorithm` (hyperband, bayesian or random).

    Args:
        algorithm: The search algorithm.
        hypermodel: A `kerastl.tuning.hypermodel.TransferHyperModel`.
        objective: A `keras_tuner.Objective`.
        max_trials: Cap on trials (Hyperband: None runs one full Hyperband iteration).
        max_epochs: Epochs of a trial (Hyperband: of the longest trials).
        factor: Hyperband's reduction factor.
        seed: Oracle seed.
        directory: Folder of the project.
        project_name: Project folder name; rerunning it resumes the search.
        overwrite: Start over instead of resuming.
        strategy: A `tf.distribute.Strategy` (keras-tuner's `distribution_strategy`).
        max_consecutive_failed_trials: Stop after this many failed trials in a row.

    Returns:
        The tuner.
    """
    check_algorithm(algorithm)
    common = dict(hypermodel=hypermodel, objective=objective, seed=seed,
                  directory=str(directory), project_name=project_name, overwrite=overwrite,
                  distribution_strategy=strategy, max_retries_per_trial=0,
                  max_consecutive_failed_trials=max_consecutive_failed_trials)
    if algorithm == "hyperband":
        oracle_args = {k: common.pop(k) for k in ("objective", "seed", "max_retries_per_trial",
                                                  "max_consecutive_failed_trials")}
        oracle = KerastlHyperbandOracle(max_epochs=max_epochs, factor=factor,
                                        hyperband_iterations=None if max_trials else 1,
                                        **oracle_args)
        oracle.max_trials = max_trials
        tuner = HyperbandTuner(oracle=oracle, **common)
    elif algorithm == "random":
        tuner = RandomSearchTuner(max_trials=max_trials or 10, **common)
    else:
        tuner = BayesianTuner(max_trials=max_trials or 10, **common)
    tuner.trial_epochs = max_epochs
    return tuner
