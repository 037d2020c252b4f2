"""``kerastl distill TEACHER_MODEL DATA`` (the click command, invoked directly)."""

from __future__ import annotations

import json

from click.testing import CliRunner
from harness import make_image_folder, tiny_kerastl_model, train_tiny_model

from kerastl.cli.distill import distill_command


def _setup(tmp_path):
    root = tmp_path / "photos"
    classes = ("cat", "dog", "fox")
    make_image_folder(root / "train", classes=classes, per_class=6, size=32, seed=1)
    make_image_folder(root / "val", classes=classes, per_class=3, size=32, seed=2)
    from harness import separable_images

    teacher = tiny_kerastl_model(3, size=40, class_names=list(classes))
    x, y = separable_images(18, 3, 40)
    train_tiny_model(teacher, x, y, epochs=2)
    path = tmp_path / "teacher.keras"
    teacher.save(path)
    return root, path


def test_distill_command_trains_saves_and_exports(tmp_path, monkeypatch):
    root, teacher = _setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(distill_command, [
        str(teacher), str(root), "--student", "mobilenet", "--student-kwargs", '{"alpha": 0.25}',
        "--image-size", "32", "--weights", "none", "--views", "2", "--epochs", "1",
        "--fine-tune-epochs", "1", "--batch-size", "8", "--export", "saved_models/small",
        "--quantization", "int8", "--output", "runs/small", "--json"])
    assert result.exit_code == 0, (result.output[-3000:], result.exception)
    got = json.loads(result.stdout)
    assert (tmp_path / "runs" / "small" / "model.keras").is_file()
    assert (tmp_path / "saved_models" / "small" / "1" / "model_int8.tflite").is_file()
    report = got["distill"]
    assert report["views"] == 2 and report["num_labeled"] == 18
    assert [s["name"] for s in report["stages"]] == ["fit", "fine_tune"]
    assert got["export"]["version"] == "1" and 0 <= got["metrics"]["accuracy"] <= 1


def test_distill_command_usage_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(distill_command, [])
    assert result.exit_code == 2 and "TEACHER_MODEL" in result.output
    result = runner.invoke(distill_command, ["t.keras", str(tmp_path), "--alpha", "2"])
    assert result.exit_code == 2 and "--alpha" in result.output
    result = runner.invoke(distill_command, ["--help"])
    assert result.exit_code == 0 and "--student-kwargs" in result.output
