"""keras-tuner tuners that run kerastl trials and record each trial's cost.

The three tuners are keras-tuner's own (`Hyperband`, `RandomSearch`,
`BayesianOptimization`: their oracles, pruning, state files and resuming)
with one change: `run_trial` trains through `kerastl.fit` (which may train
the head on cached features, outside the full model), so instead of
keras-tuner's per-epoch checkpoint callback the trial's final weights (its
best validation checkpoint, where `kerastl.fit` leaves the model) are saved
for Hyperband's next rounds. Each trial also writes ``kerastl_trial.json``
(wall time, epochs, trainable parameters, error) next to keras-tuner's
``trial.json``.
"""

from __future__ import annotations

import json
import os
import time
import traceback

import keras_tuner

from kerastl._validation import check_one_of

ALGORITHMS = ("hyperband", "bayesian", "random")
TRIAL_RECORD = "kerastl_trial.json"


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
        record = {"trial_id": trial.trial_id, "continued_from": hp.values.get("tuner/trial_id"),
                  "epochs": None, "seconds": None, "error": None}
        start = time.perf_counter()
        try:
            model = self._try_build(hp)  # a continuation loads its earlier trial's weights
            earlier, pruned = self._earlier(hp)
            metrics = self.hypermodel.fit(hp, model, train, validation_data, epochs=epochs,
                                          initial_epoch=initial_epoch, start_metrics=earlier,
                                          start_pruned=pruned)
            self._save_trial_model(trial.trial_id, model)
            info = self.hypermodel.last_trial_info
            record.update({k: info.get(k) for k in ("epochs", "warmup_epochs", "trainable_params",
                                                     "shared_head_warmup", "pruned")})
            return metrics
        except BaseException as error:
            record["error"] = f"{type(error).__name__}: {error}".strip()
            record["traceback"] = traceback.format_exc(limit=8)
            raise
        finally:
            record["seconds"] = round(time.perf_counter() - start, 3)
            write_trial_record(self.get_trial_dir(trial.trial_id), record)


    def _earlier(self, hp):
        """For a Hyperband continuation: ``(its earlier trial's metrics, whether it was
        pruned)``; ``(None, False)`` otherwise."""
        trial_id = hp.values.get("tuner/trial_id")
        earlier = None if trial_id is None else self.oracle.get_trial(trial_id)
        if earlier is None or earlier.score is None:
            return None, False
        metrics = {self.oracle.objective.name: float(earlier.score)}
        return metrics, bool(read_trial_record(self.get_trial_dir(trial_id)).get("pruned"))

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
    """keras-tuner's Hyperband running kerastl trials."""


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
        tuner = HyperbandTuner(max_epochs=max_epochs, factor=factor,
                               hyperband_iterations=None if max_trials else 1, **common)
        tuner.oracle.max_trials = max_trials
    elif algorithm == "random":
        tuner = RandomSearchTuner(max_trials=max_trials or 10, **common)
    else:
        tuner = BayesianTuner(max_trials=max_trials or 10, **common)
    tuner.trial_epochs = max_epochs
    return tuner
