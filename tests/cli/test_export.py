"""``kerastl export``: versions, formats and verification against the Keras model."""

from __future__ import annotations

import json

from click.testing import CliRunner

from kerastl.cli import main


def test_export_tflite_with_eval_data(trained, split_folder, tmp_path):
    work, _ = trained
    args = ["export", str(work / "runs" / "tiny" / "model.keras"), "--out", str(tmp_path / "sm"),
            "--formats", "tflite", "--quantization", "float32", "--eval-data", str(split_folder),
            "--eval-split", "validation", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["version"] == "1" and report["check_data"] == "eval_data"
    (artifact,) = report["artifacts"]
    assert artifact["name"] == "model_float32.tflite" and artifact["agreement"] == 1.0
    assert artifact["accuracy"] == report["keras"]["accuracy"]
    assert (tmp_path / "sm" / "1" / "model_float32.tflite").is_file()
    assert not (tmp_path / "sm" / "1" / "saved_model").exists()


def test_text_mode_prints_the_report_once(trained, tmp_path):
    work, _ = trained
    args = ["export", str(work / "runs" / "tiny" / "model.keras"), "--out", str(tmp_path / "sm"),
            "--formats", "tflite", "--quantization", "float32"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert (result.stdout + result.stderr).count("kerastl export 1 ->") == 1
    assert "model_float32.tflite" in result.stdout
