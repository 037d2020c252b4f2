"""Training histories of any shape become stages, and history.csv."""

from __future__ import annotations

import csv

import pytest

import kerastl.training
from kerastl.report.history import metric_names, stage_summary, stages_from, write_history_csv


def _fit_report():
    head = kerastl.training.StageReport(
        name="head", trainable_blocks=0, trainable_block_names=[], trainable_weights=[],
        epochs=2, epochs_run=2, history={"loss": [1.0, 0.6], "accuracy": [0.4, 0.7],
                                         "val_loss": [0.9, 0.8], "val_accuracy": [0.5, 0.6]},
        train_seconds=2.0, cache_seconds=1.0)
    tune = kerastl.training.StageReport(
        name="fine_tune", trainable_blocks=4, trainable_block_names=[], trainable_weights=[],
        epochs=1, epochs_run=1, history={"loss": [0.5], "accuracy": [0.8],
                                         "val_loss": [0.7], "val_accuracy": [0.75]},
        train_seconds=4.0)
    return kerastl.training.FitReport(recipe="two_stage", task="multiclass",
                                      monitor="val_accuracy", num_examples=10,
                                      stages=[head, tune])


def test_fit_report_stages_and_summary():
    stages = stages_from(_fit_report())
    assert [s["name"] for s in stages] == ["head", "fine_tune"]
    assert stages[0]["seconds"] == pytest.approx(3.0)
    summary = stage_summary(stages)
    assert summary[0]["best_val_accuracy"] == 0.6 and summary[0]["best_val_loss"] == 0.8
    assert summary[1]["epochs"] == 1 and summary[1]["final_loss"] == 0.5


def test_a_list_of_fit_reports_is_chained():
    stages = stages_from([_fit_report(), _fit_report()])
    assert [s["name"] for s in stages] == ["head", "fine_tune", "head", "fine_tune"]


def test_plain_history_dict_and_keras_history_like():
    class History:
        history = {"loss": [0.9, 0.5], "val_loss": [1.0, 0.7]}

    for value in (History.history, History()):
        stages = stages_from(value)
        assert len(stages) == 1 and stages[0]["name"] == "fit"
        assert stages[0]["history"]["val_loss"] == [1.0, 0.7]


def test_stage_list_and_bad_input():
    stages = stages_from([{"stage": "a", "history": {"loss": [1]}, "wall_time": 2}])
    assert stages[0]["name"] == "a" and stages[0]["seconds"] == 2.0
    with pytest.raises(TypeError, match="fit_report"):
        stages_from(42)
    assert stages_from(None) == []


def test_history_csv_counts_epochs_across_stages(tmp_path):
    stages = stages_from(_fit_report())
    assert metric_names(stages) == ["loss", "val_loss", "accuracy", "val_accuracy"]
    path = write_history_csv(stages, tmp_path / "history.csv")
    rows = list(csv.DictReader(path.open()))
    assert [(r["stage"], r["epoch"], r["stage_epoch"]) for r in rows] == [
        ("head", "1", "1"), ("head", "2", "2"), ("fine_tune", "3", "1")]
    assert float(rows[2]["val_accuracy"]) == 0.75
