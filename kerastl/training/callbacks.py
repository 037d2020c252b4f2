"""Callbacks of `kerastl.fit`: best-weights tracking, early stopping and the NaN guard.

`epoch_selection` is the one rule of which epoch a stage ends at.
"""

from __future__ import annotations

import json
import math
import os

import keras
import numpy as np

_MAX_METRICS = ("accuracy", "auc", "precision", "recall")


def monitor_mode(monitor: str) -> str:
    """Returns ``"max"`` for accuracy-like metrics, ``"min"`` for losses and errors."""
    name = monitor[4:] if monitor.startswith("val_") else monitor
    return "max" if any(name.endswith(m) for m in _MAX_METRICS) else "min"


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _plain(logs) -> dict:
    return {k: float(v) for k, v in (logs or {}).items() if _finite(v) or v != v}


# Metrics come as float32 from Keras and float64 from the linear head: values
# closer than this (relative) are the same score, not an improvement.
SAME_SCORE = 1e-6


def is_better(logs: dict, best_logs: dict | None, monitor: str,
              tie_monitor: str | None = None) -> bool:
    """Whether metrics `logs` beat `best_logs` on `monitor` (ties: lower `tie_monitor`).

    Values within `SAME_SCORE` (relative) of each other are a tie.
    """
    value = logs.get(monitor)
    if not _finite(value):
        return False
    if best_logs is None or not _finite(best_logs.get(monitor)):
        return True
    best = float(best_logs[monitor])
    value = float(value)
    if abs(value - best) > SAME_SCORE * max(1.0, abs(best)):
        return value > best if monitor_mode(monitor) == "max" else value < best
    if tie_monitor is None or tie_monitor == monitor:
        return False
    tie, best_tie = logs.get(tie_monitor), best_logs.get(tie_monitor)
    return _finite(tie) and (not _finite(best_tie) or tie < best_tie)


class BestWeights(keras.callbacks.Callback):
    """Tracks the best epoch, stops early, guards against NaN, restores the best weights.

    At the end of training the model gets the weights of its best epoch by
    `monitor` (ties broken by `tie_monitor`, lower is better), or its weights
    at the start of training when no epoch finished with finite values. A
    non-finite loss stops training at once (``stopped == "nan"``); `patience`
    epochs without improvement stop it early (``stopped == "early_stopping"``).

    The weights it saves and restores are the model's own at each epoch's
    end: with an optimizer built with ``use_ema=True``, Keras swaps the moving
    average in only after the last epoch (``finalize_variable_values``, before
    ``on_train_end``), so the restore of the best epoch replaces it.

    With `state_dir`, the best weights and the epoch history are written
    there after every epoch, so a run killed and resumed (with
    `keras.callbacks.BackupAndRestore`) keeps the best epoch from before the kill.

    Args:
        monitor: Metric to watch, e.g. ``"val_accuracy"``.
        patience: Epochs without improvement before stopping (None: never).
        tie_monitor: Metric that breaks ties of `monitor` (lower is better).
        state_dir: Folder to persist the state in, or None.
        select: Choose the best epoch by `monitor`. False (no validation data:
            nothing held out to choose on) keeps the last epoch and never stops
            early, so no choice rests on the training loss alone.

    Attributes:
        best: Best value of `monitor`, or None.
        best_epoch: Its epoch (0-based), or None.
        best_logs: All metrics of the best epoch.
        history: ``{metric: [value per epoch]}`` (epochs before a resume included).
        stopped: None, ``"early_stopping"`` or ``"nan"``.
    """

    def __init__(self, monitor: str, *, patience: int | None = None,
                 tie_monitor: str | None = "val_loss", state_dir: str | None = None,
                 select: bool = True):
        super().__init__()
        self.select = select
        self.monitor = monitor
        self.mode = monitor_mode(monitor)
        self.patience = patience
        self.tie_monitor = tie_monitor if tie_monitor != monitor else None
        self.state_dir = state_dir
        self.best = self.best_epoch = self.stopped = None
        self.best_logs: dict = {}
        self.epochs: list[dict] = []
        self._best_weights = None
        self._wait = 0

    @property
    def history(self) -> dict:
        keys = sorted({k for e in self.epochs for k in e if k != "epoch"})
        return {k: [e.get(k) for e in self.epochs] for k in keys}

    def _paths(self):
        return (os.path.join(self.state_dir, "best_state.json"),
                os.path.join(self.state_dir, "best_weights.npz"))

    def on_train_begin(self, logs=None):
        self._best_weights = self.model.get_weights()
        state_path, weights_path = self._paths() if self.state_dir else (None, None)
        if state_path and os.path.exists(state_path):
            with open(state_path) as f:
                state = json.load(f)
            self.best, self.best_epoch = state["best"], state["best_epoch"]
            self.best_logs, self.epochs = state["best_logs"], state["epochs"]
            self._wait = state["wait"]
            if self.best is not None:
                with np.load(weights_path) as saved:
                    self._best_weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]

    def on_train_batch_end(self, batch, logs=None):
        if logs and "loss" in logs and not _finite(logs["loss"]):
            self.stopped = "nan"
            self.model.stop_training = True

    def _improved(self, logs) -> bool:
        if not self.select:
            return True
        return is_better(logs, self.best_logs if self.best is not None else None,
                         self.monitor, self.tie_monitor)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        self.epochs = [e for e in self.epochs if e["epoch"] < epoch] + [
            {"epoch": epoch, **_plain(logs)}]
        if self.stopped == "nan" or any(k.endswith("loss") and not _finite(v)
                                        for k, v in logs.items()):
            self.stopped = "nan"
            self.model.stop_training = True
            return
        if self._improved(logs):
            self.best, self.best_epoch = float(logs[self.monitor]), epoch
            self.best_logs = _plain(logs)
            self._best_weights = self.model.get_weights()
            self._wait = 0
            if self.state_dir:
                os.makedirs(self.state_dir, exist_ok=True)
                tmp = self._paths()[1] + ".tmp.npz"
                np.savez(tmp, *self._best_weights)
                os.replace(tmp, self._paths()[1])
        else:
            self._wait += 1
            if self.patience is not None and self._wait >= self.patience:
                self.stopped = "early_stopping"
                self.model.stop_training = True
        self._save_state()

    def _save_state(self):
        if not self.state_dir:
            return
        os.makedirs(self.state_dir, exist_ok=True)
        state = {"best": self.best, "best_epoch": self.best_epoch, "best_logs": self.best_logs,
                 "epochs": self.epochs, "wait": self._wait}
        tmp = self._paths()[0] + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, self._paths()[0])

    def on_train_end(self, logs=None):
        if self._best_weights is not None:
            self.model.set_weights(self._best_weights)


def epoch_selection(opts, index: int, monitor: str, *, cached: bool,
                    validated: bool, state_dir=None) -> tuple[BestWeights, str]:
    """The `BestWeights` callback of stage `index` and what its epoch is selected on.

    The one rule of which epoch a stage ends at, shared by `kerastl.fit` and
    `kerastl.distill`: with validation data, the stages that
    `FitOptions.restores_best` names end at their best validation epoch (and
    stop early after `FitOptions.patience` epochs without improvement); the
    others run every epoch and end at the last one, which is then scored on
    validation.

    Args:
        opts: The run's `kerastl.training.options.FitOptions`.
        index: The stage's position in the run (0 is the first).
        monitor: The metric epochs are compared on, e.g. ``"val_accuracy"``.
        cached: Whether the stage trains on cached activations (its patience).
        validated: Whether the run has validation data.
        state_dir: Folder of the stage's resumable state, or None.

    Returns:
        ``(callback, selected_on)``: the callback to train with and the
        `StageReport.selected_on` text.

    Example:
        >>> opts = kerastl.training.options.FitOptions()
        >>> best, said = kerastl.training.callbacks.epoch_selection(
        ...     opts, 1, "val_accuracy", cached=True, validated=True)
        >>> said
        'none: last epoch, scored on validation'
    """
    selects = validated and opts.restores_best(index)
    best = BestWeights(monitor, patience=opts.patience(cached) if selects else None,
                       tie_monitor="val_loss" if selects else None, state_dir=state_dir,
                       select=selects)
    said = ("validation" if selects else "none: last epoch, scored on validation" if validated
            else "none: no validation data, last epoch")
    return best, said


__all__ = ["BestWeights", "epoch_selection", "is_better", "monitor_mode"]
