"""Tests of kerastl.tuning.result: the trials table, JSON and the PNG plot."""

import json

import pytest

from kerastl.tuning.result import TuneResult

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _trial(trial_id, status, score, depth, lr, *, seconds=1.0, error=None):
    return {"trial_id": trial_id, "status": status, "score": score, "epochs": 2,
            "seconds": seconds, "error": error,
            "hyperparameters": {"trainable_blocks": depth, "learning_rate": lr,
                                "recipe": "two_stage"}}


@pytest.fixture
def result():
    trials = [_trial("0", "COMPLETED", 0.60, 0, 1e-3), _trial("1", "COMPLETED", 0.85, 4, 3e-3),
              _trial("2", "FAILED", None, "all", 1e-2, error="ResourceExhaustedError: OOM"),
              _trial("3", "COMPLETED", 0.70, "all", 2e-4)]
    return TuneResult(trials=trials, objective="val_accuracy", num_blocks=18, seconds=12.5)


def test_best_trial_and_failed_trials(result):
    assert result.best_hyperparameters == {"trainable_blocks": 4, "learning_rate": 3e-3,
                                           "recipe": "two_stage"}
    assert result.best_score == 0.85
    assert [t["trial_id"] for t in result.failed] == ["2"]
    assert len(result.completed) == 3
    low = TuneResult(trials=result.trials, objective="val_loss", direction="min")
    assert low.best_score == 0.60


def test_summary_is_a_table_with_every_trial(result):
    text = result.summary()
    lines = text.splitlines()
    assert lines[0].startswith("val_accuracy best: 0.85")
    assert "trial_id" in lines[1] and "trainable_blocks" in lines[1] and "seconds" in lines[1]
    assert [line.split()[:2] for line in lines[3:7]] == [
        ["0", "COMPLETED"], ["1", "COMPLETED"], ["2", "FAILED"], ["3", "COMPLETED"]]
    assert "trial 2 failed: ResourceExhaustedError: OOM" in text
    assert lines[-1].startswith("3 completed, 1 failed")


def test_json_round_trip(result, tmp_path):
    text = result.to_json(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data == json.loads(text)
    assert data["best_hyperparameters"]["trainable_blocks"] == 4
    assert [t["status"] for t in data["trials"]] == ["COMPLETED", "COMPLETED", "FAILED",
                                                     "COMPLETED"]


def test_no_completed_trial():
    empty = TuneResult(trials=[_trial("0", "FAILED", None, 0, 1e-3, error="boom")],
                       objective="val_accuracy")
    assert empty.best_hyperparameters is None and empty.best_trial is None
    assert empty.summary().startswith("no trial completed")


def test_plot_writes_a_png_that_matplotlib_reads(result, tmp_path):
    import matplotlib.image

    path = result.plot(tmp_path / "plots" / "tune.png")
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 200
    assert pixels.std() > 0.01  # not a blank canvas
    with pytest.raises(ValueError, match="must end in .png"):
        result.plot(tmp_path / "tune.jpg")
