"""Training history of a run as stages of per-epoch metrics, and its ``history.csv``.

`kerastl.fit` trains in stages (e.g. ``feature_extraction`` then
``fine_tune``); a stage here is ``{"name", "history": {metric: [per-epoch
values]}, "seconds"}``. `stages_from` accepts a `kerastl.fit` report, a
`keras.callbacks.History`, its ``.history`` dict, or a list of stage dicts.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

_STAGE_NAME_KEYS = ("name", "stage", "recipe_stage")
_STAGE_TIME_KEYS = ("seconds", "wall_time", "wall_seconds", "time_s")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) or hasattr(
        value, "__float__") and not isinstance(value, (str, bytes, Mapping))


def _is_metric_dict(value) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(
        isinstance(v, Sequence) and not isinstance(v, str) and all(_is_number(x) for x in v)
        for v in value.values())


def _floats(values) -> list:
    out = []
    for v in values:
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            out.append(float("nan"))
    return out


def _stage(entry: Mapping, index: int) -> dict:
    name = next((str(entry[k]) for k in _STAGE_NAME_KEYS if entry.get(k)), f"stage_{index + 1}")
    history = entry.get("history")
    if history is None:
        history = {k: v for k, v in entry.items() if isinstance(v, Sequence)
                   and not isinstance(v, str) and k not in ("epochs",)}
    if hasattr(history, "history"):
        history = history.history
    if not isinstance(history, Mapping):
        raise TypeError(f"Stage {name!r} has no per-epoch history dict. Received: {entry!r}")
    seconds = next((entry[k] for k in _STAGE_TIME_KEYS if entry.get(k) is not None), None)
    return {"name": name, "history": {str(k): _floats(v) for k, v in history.items()},
            "seconds": None if seconds is None else float(seconds)}


def stages_from(fit_report) -> list[dict]:
    """Normalizes any training history into a list of stages.

    Args:
        fit_report: A `kerastl.fit` report (anything with ``to_dict()`` whose
            dict has ``"stages"``), a list of them (chained, e.g. the stages of
            a tuning refit), a `keras.callbacks.History`, a ``{metric:
            [values]}`` dict, a dict with a ``"stages"`` list, or a list of
            stage dicts (``name``, ``history``, ``seconds``).

    Returns:
        ``[{"name": str, "history": {metric: [float]}, "seconds": float|None}]``.

    Example:
        >>> kerastl.report.stages_from({"loss": [0.9, 0.5], "val_loss": [1.0, 0.7]})[0]["name"]
        'fit'
    """
    value = fit_report
    if value is None:
        return []
    if hasattr(value, "to_dict") and callable(value.to_dict):
        value = value.to_dict()
    elif hasattr(value, "history") and isinstance(getattr(value, "history"), Mapping):
        value = value.history
    if isinstance(value, Mapping) and "stages" in value:
        value = value["stages"]
    if _is_metric_dict(value):
        return [_stage({"name": "fit", "history": value}, 0)]
    if isinstance(value, Mapping):
        value = [{"name": k, **v} if isinstance(v, Mapping) else v for k, v in value.items()]
    if isinstance(value, Sequence) and not isinstance(value, str) and all(
            isinstance(s, Mapping) or hasattr(s, "to_dict") for s in value):
        entries = []
        for item in value:  # stage dicts, or whole fit reports (one per call) to chain
            item = item.to_dict() if hasattr(item, "to_dict") else item
            entries += list(item["stages"]) if "stages" in item else [item]
        return [_stage(s, i) for i, s in enumerate(entries)]
    raise TypeError("`fit_report` must be a kerastl.fit report, a keras History, a "
                    "{metric: [values]} dict or a list of stages. "
                    f"Received: fit_report of type {type(fit_report).__name__}")


def metric_names(stages: list[dict]) -> list[str]:
    """Returns every metric name of the stages: loss first, then train, then ``val_`` ones."""
    names = []
    for stage in stages:
        for key in stage["history"]:
            if key not in names:
                names.append(key)

    def order(name):
        base = name[4:] if name.startswith("val_") else name
        return (base != "loss", base, name.startswith("val_"))

    return sorted(names, key=order)


def num_epochs(stage: dict) -> int:
    """Number of epochs recorded in a stage."""
    return max((len(v) for v in stage["history"].values()), default=0)


def write_history_csv(stages: list[dict], path) -> Path:
    """Writes one row per epoch: ``stage, epoch, stage_epoch`` and every metric.

    ``epoch`` counts across stages from 1; ``stage_epoch`` restarts in each stage.
    """
    path = Path(path)
    names = metric_names(stages)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["stage", "epoch", "stage_epoch", *names])
        epoch = 0
        for stage in stages:
            for i in range(num_epochs(stage)):
                epoch += 1
                row = []
                for name in names:
                    values = stage["history"].get(name, [])
                    row.append("" if i >= len(values) or math.isnan(values[i])
                               else repr(values[i]))
                writer.writerow([stage["name"], epoch, i + 1, *row])
    return path


def best(values: list, *, higher_is_better: bool):
    """Returns the best finite value of a metric list, or None."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return None
    return max(finite) if higher_is_better else min(finite)


def stage_summary(stages: list[dict]) -> list[dict]:
    """Per stage: epochs, seconds, best val loss/accuracy and the last training loss."""
    rows = []
    for stage in stages:
        h = stage["history"]
        acc_key = next((k for k in ("val_accuracy", "val_acc", "val_binary_accuracy")
                        if k in h), None)
        rows.append({
            "stage": stage["name"], "epochs": num_epochs(stage), "seconds": stage["seconds"],
            "best_val_accuracy": best(h[acc_key], higher_is_better=True) if acc_key else None,
            "best_val_loss": best(h["val_loss"], higher_is_better=False)
            if "val_loss" in h else None,
            "final_loss": h["loss"][-1] if h.get("loss") else None})
    return rows
