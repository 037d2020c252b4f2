"""``kerastl adapt SOURCE_DATA TARGET_DIR``: run folder, adapt.json, export, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from kerastl.cli.adapt import adapt_command

from .helpers import TINY


@pytest.fixture(scope="module")
def target_dir(split_folder, tmp_path_factory):
    """The val/ photos through "fog", in their class folders (whose names must be ignored)."""
    root = tmp_path_factory.mktemp("fogged")
    for path in sorted((split_folder / "val").rglob("*.jpg")):
        out = root / path.parent.name / path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        pixels = np.asarray(Image.open(path), "float32") * 0.4 + 120.0
        Image.fromarray(pixels.astype("uint8")).save(out)
    return root


def _invoke(*args):
    return CliRunner().invoke(adapt_command, [str(a) for a in args], catch_exceptions=False)


def test_adapt_writes_the_run_folder_and_exports(split_folder, target_dir, tmp_path):
    run = tmp_path / "run"
    out = _invoke(split_folder, target_dir, *TINY, "--method", "coral", "--recipe",
                  "feature_extraction", "--batch-size", "8", "--output", run, "--export",
                  tmp_path / "export", "--quantization", "int8", "--json")
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    for name in ("model.keras", "config.json", "metrics.json", "report.md", "adapt.json"):
        assert (run / name).is_file(), name
    adapt = json.loads((run / "adapt.json").read_text())
    assert adapt["method"] == "coral" and adapt["requested"] == "coral"
    assert adapt["shift"]["num_target"] == 12
    assert result["adapt"]["candidates"][0]["kept"] is True
    assert "class folders" in out.stderr and "labels are ignored" in out.stderr
    assert (tmp_path / "export" / "1" / "model_int8.tflite").is_file()
    config = json.loads((run / "config.json").read_text())
    assert config["method"] == "coral" and config["target"] == str(target_dir)


def test_bad_method_is_a_usage_error(split_folder, target_dir):
    out = _invoke(split_folder, target_dir, "--method", "coral2")
    assert out.exit_code == 2 and "coral2" in out.output


def test_missing_target_folder_fails_clearly(split_folder, tmp_path):
    out = _invoke(split_folder, tmp_path / "nowhere", *TINY)
    assert out.exit_code == 1
    assert "TARGET_DIR" in out.stderr and "does not exist" in out.stderr
    out = _invoke(split_folder)
    assert out.exit_code == 2 and "TARGET_DIR" in out.output


def test_empty_target_folder_fails_clearly(split_folder, tmp_path):
    (tmp_path / "empty").mkdir()
    out = _invoke(split_folder, tmp_path / "empty", *TINY, "--output", tmp_path / "run")
    assert out.exit_code == 1 and "The target folder has no images" in out.stderr
