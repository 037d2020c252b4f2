"""``kerastl evaluate``: metrics of any model format, and an optional report folder."""

from __future__ import annotations

import json

from click.testing import CliRunner
from PIL import Image

from kerastl.cli import main
from kerastl.cli.evaluate import _matrix_text


def test_matrix_text():
    text = _matrix_text({"class_names": ["cat", "dog"], "confusion_matrix": [[3, 1], [0, 4]]})
    lines = text.splitlines()
    assert lines[2].split() == ["cat", "3", "1"] and lines[3].split() == ["dog", "0", "4"]


def test_evaluate_tflite_writes_a_report(trained, split_folder, tmp_path):
    work, _ = trained
    tflite = work / "saved_models" / "tiny" / "1" / "model_int8.tflite"
    result = CliRunner().invoke(main, ["evaluate", str(tflite), str(split_folder / "val"),
                                       "--output", str(tmp_path / "eval"), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["num_examples"] == 12 and metrics["model"]["format"] == "tflite"
    assert metrics["class_names"] == ["cat", "dog", "fox"]
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["confusion_matrix"] == metrics["confusion_matrix"]
    with Image.open(tmp_path / "eval" / "confusion_matrix.png") as image:
        image.verify()
    assert "confusion_matrix.png" in (tmp_path / "eval" / "report.md").read_text()


def test_evaluate_on_other_classes_fails_clearly(trained, tmp_path):
    from harness import make_image_folder

    work, _ = trained
    other = make_image_folder(tmp_path / "other", classes=("cat", "owl", "fox"), per_class=2,
                              size=32)
    result = CliRunner().invoke(main, ["evaluate", str(work / "runs" / "tiny" / "model.keras"),
                                       str(other)])
    assert result.exit_code == 1 and "not the model's classes" in result.stderr
