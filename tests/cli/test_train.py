"""``kerastl train`` through the real entry point: run folder, config file, export, predict."""

from __future__ import annotations

import csv
import json
import warnings

import pytest
from click.testing import CliRunner
from PIL import Image

from kerastl.cli import main

from .helpers import TINY, parse_json, run_kerastl


def test_train_writes_the_run_folder(trained):
    work, result = trained
    run = work / "runs" / "tiny"
    for name in ("model.keras", "config.json", "history.csv", "metrics.json", "report.md",
                 "training_curves.png", "confusion_matrix.png", "export.json"):
        assert (run / name).is_file(), name
    for name in ("training_curves.png", "confusion_matrix.png"):
        with Image.open(run / name) as image:
            image.verify()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["class_names"] == ["cat", "dog", "fox"]
    assert sum(map(sum, metrics["confusion_matrix"])) == 12  # the val/ images
    assert set(metrics["per_class"]["dog"]) == {"precision", "recall", "f1", "support"}
    assert result["metrics"]["accuracy"] == pytest.approx(metrics["accuracy"])
    rows = list(csv.DictReader((run / "history.csv").open()))
    # The head is fitted in closed form (one row: its metrics), then one fine-tuning epoch.
    assert [r["stage"] for r in rows] == ["head", "fine_tune"]
    assert float(rows[0]["val_accuracy"]) >= 0.0
    report = (run / "report.md").read_text()
    for link in ("training_curves.png", "confusion_matrix.png", "metrics.json", "history.csv"):
        assert f"]({link})" in report


def test_flags_override_the_config_file(trained):
    work, _ = trained
    config = json.loads((work / "runs" / "tiny" / "config.json").read_text())
    assert config["batch-size"] == 8  # the flag, not the file's 4
    assert config["epochs"] == 3 and config["backbone"] == "mobilenet"  # from the file
    assert config["image-size"] == 32 and config["quantization"] == ["int8"]
    assert config["weights"] == "none"


def test_export_and_predict_on_the_int8_tflite(trained, split_folder):
    work, result = trained
    tflite = work / "saved_models" / "tiny" / "1" / "model_int8.tflite"
    assert tflite.is_file()
    assert result["export"]["version"] == "1"
    proc = run_kerastl("predict", tflite, split_folder / "val" / "fox", "--top-k", "2", "--json",
                       cwd=work)
    got = parse_json(proc)
    assert got["format"] == "tflite" and len(got["predictions"]) == 4
    for record in got["predictions"]:
        scores = [p["score"] for p in record["top_k"]]
        assert len(scores) == 2 and scores == sorted(scores, reverse=True)
        assert all(0.0 <= s <= 1.0 for s in scores)
        assert {p["label"] for p in record["top_k"]} <= {"cat", "dog", "fox"}


def test_evaluate_the_saved_model_matches_the_run_report(trained, split_folder):
    work, result = trained
    out = CliRunner().invoke(main, ["evaluate", str(work / "runs" / "tiny" / "model.keras"),
                                    str(split_folder), "--split", "validation", "--json"])
    assert out.exit_code == 0, out.output
    metrics = json.loads(out.stdout)
    assert metrics["num_examples"] == 12
    assert metrics["accuracy"] == pytest.approx(result["metrics"]["accuracy"])


def test_existing_run_folder_is_refused(trained, split_folder):
    work, _ = trained
    out = CliRunner().invoke(main, ["train", str(split_folder), "--output",
                                    str(work / "runs" / "tiny"), "--weights", "none"])
    assert out.exit_code == 1 and "--overwrite" in out.stderr


def test_a_normal_train_run_prints_no_future_warning(split_folder, tmp_path):
    # As `python -W error::FutureWarning -m kerastl.cli train ...`: the CLI passes no
    # deprecated kerastl keyword (a FutureWarning raises and the command fails).
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        out = CliRunner().invoke(main, [
            "train", str(split_folder), *TINY, "--recipe", "two_stage", "--epochs", "1",
            "--fine-tune-epochs", "1", "--trainable-blocks", "1", "--batch-size", "8",
            "--output", str(tmp_path / "run"), "--json", "--seed", "0"])
    assert out.exit_code == 0, out.output
    assert "FutureWarning" not in out.output and "deprecated" not in out.output
    assert (tmp_path / "run" / "model.keras").is_file()


def test_train_with_lora_writes_an_adapter_only_file(split_folder, tmp_path):
    out = CliRunner().invoke(main, [
        "train", str(split_folder), *TINY, "--peft", "lora", "--lora-rank", "2",
        "--peft-blocks", "2", "--fine-tune-epochs", "1", "--batch-size", "8",
        "--output", str(tmp_path / "run"), "--json", "--seed", "0"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert [s["name"] for s in result["fit"]["stages"]] == ["head", "lora"]
    adapter = tmp_path / "run" / "adapter.peft.weights.h5"
    assert result["adapter"] == str(adapter)
    # The adapter: low-rank factors of two blocks and the head, a few percent of the model.
    assert adapter.stat().st_size < 0.2 * (tmp_path / "run" / "model.keras").stat().st_size


@pytest.mark.parametrize("flags, message", [
    (["--lora-rank", "4"], "--lora-rank and --lora-alpha need --peft lora"),
    (["--peft", "bitfit", "--lora-alpha", "4"], "--lora-rank and --lora-alpha need --peft lora"),
    (["--peft-blocks", "2"], "--peft-blocks needs --peft"),
])
def test_peft_flags_need_their_method(split_folder, tmp_path, flags, message):
    out = CliRunner().invoke(main, ["train", str(split_folder), *TINY, *flags,
                                    "--output", str(tmp_path / "run")])
    assert out.exit_code == 2 and message in out.stderr


def test_train_a_multi_task_model_from_a_config_file(split_folder, tmp_path):
    from harness import make_image_folder

    pets = tmp_path / "pets"
    make_image_folder(pets / "train", classes=("cat", "dog"), per_class=6, size=32, seed=3)
    make_image_folder(pets / "val", classes=("cat", "dog"), per_class=2, size=32, seed=4)
    config = tmp_path / "multitask.json"
    config.write_text(json.dumps({"tasks": {"animal": str(split_folder), "pet": str(pets)},
                                  "loss-weighting": "uncertainty", "epochs": 1}))
    out = CliRunner().invoke(main, [
        "train", "--config", str(config), *TINY, "--batch-size", "8", "--seed", "0",
        "--output", str(tmp_path / "run"), "--export", str(tmp_path / "export"), "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["fit"]["tasks"] == ["animal", "pet"]
    assert {"val_animal_accuracy", "val_pet_accuracy", "weight_pet"} <= set(
        result["fit"]["history"])
    assert result["export"]["tasks"]["pet"] == ["cat", "dog"]
    assert (tmp_path / "export" / "1" / "model_float32.tflite").is_file()
    assert (tmp_path / "run" / "multitask_report.json").is_file()
