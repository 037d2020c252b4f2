"""Resumable `kerastl.fit` runs: what is written to `checkpoint_dir` and read back.

Layout of ``checkpoint_dir``::

    plan.json                  the stages of the run (a resumed run must match)
    stage_<i>/backup/          keras.callbacks.BackupAndRestore of the running stage
    stage_<i>/best_state.json  best epoch and history so far (BestWeights)
    stage_<i>/done.json        the finished stage's StageReport
    stage_<i>/model.npz        the model's weights after the stage
    best.npz, best.json        the best weights over the finished stages

A run killed at any point and called again with the same arguments skips the
finished stages, resumes the running one from its last epoch, and ends
with the same kind of report.
"""

from __future__ import annotations

import json
import os
import shutil

import keras
import numpy as np

from kerastl.training.report import StageReport


class Checkpoint:
    """Reads and writes the state of a resumable run in `directory`."""

    def __init__(self, directory: str, plan: dict):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, "plan.json")
        if os.path.exists(path):
            with open(path) as f:
                saved = json.load(f)
            if saved != json.loads(json.dumps(plan)):
                raise ValueError(
                    "`checkpoint_dir` holds a run with other settings (recipe, stages or "
                    "data); pass a new folder or delete it to start over. Received: "
                    f"checkpoint_dir={directory!r}")
        else:
            _write_json(path, plan)

    def stage_dir(self, index: int) -> str:
        return os.path.join(self.directory, f"stage_{index}")

    def backup_dir(self, index: int) -> str:
        return os.path.join(self.stage_dir(index), "backup")

    def finished(self, index: int) -> StageReport | None:
        """Returns the report of finished stage `index`, or None."""
        path = os.path.join(self.stage_dir(index), "done.json")
        if not os.path.exists(path):
            return None
        with open(path) as f:
            data = json.load(f)
        data.pop("seconds", None)
        return StageReport(**data)

    def restore_stage(self, model, index: int) -> None:
        model.set_weights(_load_arrays(os.path.join(self.stage_dir(index), "model.npz")))

    def finish_stage(self, model, index: int, report: StageReport) -> None:
        folder = self.stage_dir(index)
        os.makedirs(folder, exist_ok=True)
        _save_arrays(os.path.join(folder, "model.npz"), model.get_weights())
        _write_json(os.path.join(folder, "done.json"), report.to_dict())
        shutil.rmtree(self.backup_dir(index), ignore_errors=True)

    def save_best(self, weights, best: dict, stage: int) -> None:
        _save_arrays(os.path.join(self.directory, "best.npz"), weights)
        _write_json(os.path.join(self.directory, "best.json"), {"best": best, "stage": stage})

    def load_best(self):
        """Returns ``(best metrics, stage index, weights)`` saved so far, or None."""
        path = os.path.join(self.directory, "best.json")
        if not os.path.exists(path):
            return None
        with open(path) as f:
            state = json.load(f)
        return state["best"], state["stage"], _load_arrays(os.path.join(self.directory, "best.npz"))


def backup_callback(checkpoint: Checkpoint | None, index: int):
    """Returns the `keras.callbacks.BackupAndRestore` of stage `index` (or None)."""
    if checkpoint is None:
        return None
    return keras.callbacks.BackupAndRestore(checkpoint.backup_dir(index), delete_checkpoint=False)


def _save_arrays(path: str, arrays) -> None:
    tmp = path + ".tmp.npz"
    np.savez(tmp, *arrays)
    os.replace(tmp, path)


def _load_arrays(path: str) -> list:
    with np.load(path) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


def _write_json(path: str, data) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


__all__ = ["Checkpoint", "backup_callback"]
