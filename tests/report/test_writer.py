"""`kerastl.report`: the run folder's files, their contents and report.md's links."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from harness import separable_images, tiny_kerastl_model, train_tiny_model

import kerastl
import kerastl.report
import kerastl.tuning
from kerastl.report import RunReport, classification_metrics

HISTORY = {"loss": [1.0, 0.7, 0.5], "val_loss": [1.1, 0.9, 0.8],
           "accuracy": [0.4, 0.6, 0.8], "val_accuracy": [0.3, 0.5, 0.6]}


def _links(run: RunReport) -> set:
    text = run.file("report").read_text()
    return set(re.findall(r"\]\(([^)]+)\)", text))


def test_report_from_labels_history_config_and_export(tmp_path):
    y_true = np.array([0, 1, 2, 2, 1, 0, 2])
    y_pred = np.array([0, 1, 2, 1, 1, 2, 2])
    config = {"backbone": "mobilenet_v2", "epochs": 3}
    export = {"version": "1", "path": "saved_models/x/1",
              "artifacts": [{"name": "model_int8.tflite", "size_bytes": 1000, "accuracy": 0.9}]}
    run = kerastl.report(tmp_path / "run", fit_report=HISTORY, y_true=y_true, y_pred=y_pred,
                         class_names=["a", "b", "c"], config=config, export_report=export)
    assert set(run.files) == {"config", "history", "training_curves", "metrics",
                              "confusion_matrix", "export", "report"}
    for name in run.files.values():
        assert (tmp_path / "run" / name).is_file()
    assert json.loads(run.file("config").read_text()) == config
    metrics = json.loads(run.file("metrics").read_text())
    expected = classification_metrics(y_true, y_pred, class_names=["a", "b", "c"])
    assert metrics["accuracy"] == pytest.approx(expected["accuracy"])
    assert metrics["confusion_matrix"] == expected["confusion_matrix"]
    assert metrics["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert _links(run) >= set(run.files.values()) - {"report.md"}
    text = run.file("report").read_text()
    assert "## Export" in text and "model_int8.tflite" in text and "| epochs | 3 |" in text
    assert "accuracy 0.7143" in str(run)


def test_report_evaluates_a_model_on_data(tmp_path):
    x, y = separable_images(24, 3, size=32)
    model = train_tiny_model(tiny_kerastl_model(3, class_names=["r", "g", "b"]), x, y, epochs=3)
    data = kerastl.data.from_arrays(x, y, validation_split=0.5, batch_size=8)
    run = kerastl.report(tmp_path / "run", model=model, eval_data=data)
    assert run.metrics["data"] == "the validation split"
    assert run.metrics["num_examples"] == data.num_examples["validation"]
    assert run.metrics["class_names"] == ["r", "g", "b"]
    assert run.metrics["model"]["backbone"] == "tiny"
    probs = model.predict(x, verbose=0)
    arrays = kerastl.report(tmp_path / "run2", model=model, eval_data=(x, y))
    assert arrays.metrics["accuracy"] == pytest.approx(np.mean(probs.argmax(-1) == y))
    assert "training_curves" not in arrays.files  # no fit report given


def test_report_of_a_tune_result(tmp_path):
    trials = [{"trial_id": "0", "status": "COMPLETED", "score": 0.5, "epochs": 2, "seconds": 1.0,
               "hyperparameters": {"trainable_blocks": 0, "learning_rate": 1e-3}},
              {"trial_id": "1", "status": "FAILED", "score": None, "epochs": 0, "seconds": 0.1,
               "hyperparameters": {"trainable_blocks": 4, "learning_rate": 1e-2},
               "error": "boom"},
              {"trial_id": "2", "status": "COMPLETED", "score": 0.7, "epochs": 2, "seconds": 1.0,
               "hyperparameters": {"trainable_blocks": "all", "learning_rate": 1e-4}}]
    result = kerastl.tuning.TuneResult(trials=trials, objective="val_accuracy", num_blocks=18)
    run = kerastl.report(tmp_path / "run", tune_result=result, fit_report=HISTORY)
    assert {"tuning", "trials", "trial_scores", "tune_search"} <= set(run.files)
    assert run.tuning["best_hyperparameters"]["trainable_blocks"] == "all"
    rows = run.file("trials").read_text().splitlines()
    assert rows[0].startswith("trial_id,status,score") and len(rows) == 4
    text = run.file("report").read_text()
    assert "## Tuning" in text and "![Trial scores](trial_scores.png)" in text


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="both"):
        kerastl.report(tmp_path / "r", y_true=[0, 1])
    with pytest.raises(TypeError, match="config"):
        kerastl.report(tmp_path / "r", config=["x"])
    run = kerastl.report(tmp_path / "r")
    assert set(run.files) == {"config", "report"}
    with pytest.raises(KeyError, match="metrics"):
        run.file("metrics")


def test_report_names_the_resolved_recipe_and_links_the_saved_model(tmp_path):
    class FitReport:  # what kerastl.fit returns: the recipe it ran, "auto" resolved
        recipe = "two_stage"

        def to_dict(self):
            return {"recipe": self.recipe, "stages": [
                {"name": "head", "history": HISTORY, "seconds": 1.0}]}

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "model.keras").write_bytes(b"saved by kerastl train")
    run = kerastl.report(run_dir, fit_report=FitReport(), config={"recipe": "auto"})
    text = run.file("report").read_text()
    assert "| recipe | auto (ran: two_stage) |" in text
    assert "Recipe `two_stage`." in text
    assert run.files["model"] == "model.keras" and "model.keras" in _links(run)
    # A recipe asked for by name is not annotated.
    again = kerastl.report(tmp_path / "run2", fit_report=FitReport(),
                           config={"recipe": "two_stage"})
    assert "| recipe | two_stage |" in again.file("report").read_text()
