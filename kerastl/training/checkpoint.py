"""Resumable `kerastl.fit` runs: what is written to `checkpoint_dir` and read back.

Layout of ``checkpoint_dir``::

    plan.json                  the stages of the run and a fingerprint of its data
                               (a resumed run must match both)
    stage_<i>/backup/          keras.callbacks.BackupAndRestore of the running stage
    stage_<i>/best_state.json  best epoch and history so far (BestWeights)
    stage_<i>/done.json        the finished stage's StageReport
    stage_<i>/model.npz        the model's weights after the stage
    best.npz, best.json        the best weights over the finished stages

A run killed at any point and called again with the same arguments skips the
finished stages, resumes the running one from its last epoch, and ends
with the same kind of report. Called with other data it refuses to resume:
the fingerprint (`data_fingerprint`) covers the file list with sizes and
modification times (`kerastl.data.from_directory`), the arrays' bytes, or a
dataset's element spec, counts and content.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import keras
import numpy as np
import tensorflow as tf

from kerastl.training.report import StageReport


class Checkpoint:
    """Reads and writes the state of a resumable run in `directory`."""

    def __init__(self, directory: str, plan: dict, *, train=None, validation=None):
        """Opens `directory`, refusing a run with another plan or other data.

        Args:
            directory: The checkpoint folder (created if missing).
            plan: The run's settings (recipe, stages, ...), JSON-friendly.
            train: The training `kerastl.training.inputs.Data`, fingerprinted.
            validation: The validation `Data` (or None), fingerprinted.
        """
        self.directory = directory
        if os.path.exists(directory) and not os.path.isdir(directory):
            raise NotADirectoryError(
                "`checkpoint_dir` must be a folder (or a path to create one); it is a file. "
                f"Received: checkpoint_dir={directory!r}")
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, "plan.json")
        plan = json.loads(json.dumps(dict(plan, data={
            "train": data_fingerprint(train), "validation": data_fingerprint(validation)})))
        if os.path.exists(path):
            with open(path) as f:
                saved = json.load(f)
            _check_same_run(saved, plan, directory)
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

    def save_best(self, weights, best: dict, stage: int, outcomes=None) -> None:
        """Saves the best stage so far: weights, metrics, index and per-example outcomes."""
        _save_arrays(os.path.join(self.directory, "best.npz"), weights)
        _write_json(os.path.join(self.directory, "best.json"), {
            "best": best, "stage": stage,
            "outcomes": None if outcomes is None else [bool(o) for o in outcomes]})

    def load_best(self):
        """Returns ``(best metrics, stage index, weights, outcomes)`` saved so far, or None.

        ``outcomes`` is the best stage's per-example validation correctness
        (`kerastl.training.selection.validation_outcomes`), or None.
        """
        path = os.path.join(self.directory, "best.json")
        if not os.path.exists(path):
            return None
        with open(path) as f:
            state = json.load(f)
        outcomes = state.get("outcomes")
        return (state["best"], state["stage"],
                _load_arrays(os.path.join(self.directory, "best.npz")),
                None if outcomes is None else np.asarray(outcomes, bool))


def _check_same_run(saved: dict, plan: dict, directory: str) -> None:
    saved_data, data = saved.get("data"), plan["data"]
    if {k: v for k, v in saved.items() if k != "data"} != {
            k: v for k, v in plan.items() if k != "data"}:
        raise ValueError(
            "`checkpoint_dir` holds a run with other settings (recipe, stages, model or "
            "options); pass a new folder or delete it to start over. Received: "
            f"checkpoint_dir={directory!r}")
    if saved_data != data:
        differ = [split for split in ("train", "validation")
                  if (saved_data or {}).get(split) != data[split]]
        parts = []
        for split in differ:
            old, new = (saved_data or {}).get(split) or {}, data[split] or {}
            what = [k for k in ("kind", "num_examples", "spec", "digest")
                    if old.get(k) != new.get(k)]
            parts.append(f"{split}: {', '.join(what) or 'missing'} differ")
        raise ValueError(
            "`checkpoint_dir` holds a run on other data, so resuming would return weights "
            f"trained on it ({'; '.join(parts)}). Pass a new folder, or delete it to start "
            f"over. Received: checkpoint_dir={directory!r}")


def _file_digest(paths) -> str:
    """Digest of the files' names, sizes and modification times, in any order.

    Sorted, because loaders that shuffle their file list without a seed (e.g.
    `keras.utils.image_dataset_from_directory`) list the same files in
    another order in every process.
    """
    digest = hashlib.sha256()
    for path in sorted(str(p) for p in paths):
        try:
            if "://" in path:
                stat = tf.io.gfile.stat(path)
                size, mtime = stat.length, stat.mtime_nsec
            else:
                stat = os.stat(path)
                size, mtime = stat.st_size, stat.st_mtime_ns
        except (OSError, tf.errors.OpError):
            size, mtime = -1, -1
        digest.update(f"{path}\0{size}\0{mtime}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _array_digest(arrays) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.data if array.dtype != object else repr(array.tolist()).encode())
    return digest.hexdigest()


def _batch_digest(element) -> str:
    return _array_digest([np.asarray(part) for part in tf.nest.flatten(element)])


def _example_rows(element) -> np.ndarray:
    """Per-example summaries of one batch that do not depend on the batch's order."""
    columns = []
    for part in tf.nest.flatten(element):
        values = np.asarray(part, dtype="float64").reshape(len(part), -1)
        columns += [values.sum(axis=1), np.square(values).sum(axis=1), values[:, :8].sum(axis=1)]
    return np.stack(columns, axis=1)


def _dataset_digest(dataset) -> str:
    """A digest of the dataset's content that survives reshuffling between runs.

    A dataset that yields the same first batch twice is fingerprinted by that
    batch (cheap). A reshuffled one is read once in full and summarised per
    example (sums of values, rounded), sorted, so the order does not matter.
    """
    first = [_batch_digest(e) for _ in range(2) for e in dataset.take(1)]
    if len(first) == 2 and first[0] == first[1]:
        return "first-batch:" + first[0]
    rows = [_example_rows(element) for element in dataset]
    table = np.concatenate(rows) if rows else np.zeros((0, 1))
    table = np.array([[float(f"{v:.6g}") for v in row] for row in table])
    table = table[np.lexsort(table.T[::-1])] if len(table) else table
    return "all-examples:" + _array_digest([table])


def data_fingerprint(data) -> dict | None:
    """Returns what identifies the data of a run, as a JSON-friendly dict (None for None).

    Args:
        data: A `kerastl.training.inputs.Data` (or None).

    Returns:
        ``{"kind", "num_examples", "spec", "digest"}``: ``kind`` is
        ``"files"`` (a dataset with ``file_paths``, e.g. from
        `kerastl.data.from_directory`: paths, sizes and modification times,
        plus the class names), ``"arrays"`` (the arrays' bytes) or
        ``"dataset"`` (its content, see `_dataset_digest`).

    Example:
        >>> data = kerastl.training.inputs.as_data("train", (x, y), batch_size=8,
        ...                                        shuffle=True, seed=0)
        >>> kerastl.training.checkpoint.data_fingerprint(data)["kind"]
        'arrays'
    """
    if data is None:
        return None
    source = data.source
    spec = repr(tf.nest.map_structure(lambda s: (s.shape.as_list()[1:], s.dtype.name),
                                      data.dataset.element_spec))
    paths = getattr(source, "file_paths", None)
    if paths is not None:
        kind = "files"
        names = list(getattr(source, "class_names", None) or [])
        digest = _file_digest(paths) + ":" + hashlib.sha256(
            json.dumps(names).encode("utf-8")).hexdigest()
    elif isinstance(source, (tuple, list)):
        kind, digest = "arrays", _array_digest([np.asarray(a) for a in source])
    else:
        kind, digest = "dataset", _dataset_digest(data.dataset)
    return {"kind": kind, "num_examples": int(data.num_examples), "spec": spec,
            "digest": digest}


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


__all__ = ["Checkpoint", "backup_callback", "data_fingerprint"]
