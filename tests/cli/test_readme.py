"""The README's main-job command line, run as written on a fresh machine (empty HOME and
Keras cache, no network), on a few images per class."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from .helpers import kerastl_command

README = Path(__file__).resolve().parents[2] / "README.md"
ASSETS_IN_README = "../shared/assets"
DATASET = "datasets/flowers_kaggle_227"
# What makes the run small; everything else is the README's line as written.
SMALL = ["--image-size", "96", "--epochs", "1", "--fine-tune-epochs", "1", "--batch-size", "8"]


def main_job_line() -> list[str]:
    """The ``# 2. main job`` command of README.md's "Set up" section, as argv."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    (line,) = [ln for ln in block.splitlines() if "# 2. main job" in ln]
    return shlex.split(line.split("#", 1)[0])


def _small_copy(source: Path, target: Path, per_class: int) -> Path:
    for split in ("train", "val"):
        for folder in sorted((source / split).iterdir()):
            (target / split / folder.name).mkdir(parents=True)
            for image in sorted(folder.iterdir())[:per_class]:
                shutil.copy(image, target / split / folder.name / image.name)
    return target


def test_the_main_job_line_is_a_kerastl_train_with_its_own_weights():
    argv = main_job_line()
    assert argv[:2] == ["kerastl", "train"]
    assert argv[2] == f"{ASSETS_IN_README}/{DATASET}"
    weights = argv[argv.index("--weights") + 1]
    assert weights.startswith(ASSETS_IN_README + "/weights/") and weights.endswith(".h5")
    assert argv[argv.index("--export") + 1] == "saved_models/flowers"


@pytest.mark.integration
def test_the_main_job_runs_on_a_fresh_machine(assets, tmp_path):
    argv = main_job_line()
    data = _small_copy(assets / DATASET, tmp_path / "flowers_small", per_class=3)
    argv[2] = str(data)
    argv = [a.replace(ASSETS_IN_README, str(assets)) for a in argv]
    work, home, keras_home = tmp_path / "work", tmp_path / "home", tmp_path / "keras_home"
    for folder in (work, home, keras_home):
        folder.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KERAS", "TFHUB"))}
    env.update(HOME=str(home), KERAS_HOME=str(keras_home))
    proc = subprocess.run([*kerastl_command(), *argv[1:], *SMALL], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    version = work / "saved_models" / "flowers" / "1"
    for name in ("model.keras", "model_float32.tflite", "model_int8.tflite", "labels.txt",
                 "saved_model/saved_model.pb"):
        assert (version / name).is_file(), name
    (run,) = (work / "runs").iterdir()
    assert (run / "report.md").is_file() and (run / "model.keras").is_file()
    assert (version / "labels.txt").read_text().split() == sorted(
        p.name for p in (data / "train").iterdir())
    assert list(keras_home.rglob("*.h5")) == []  # nothing downloaded, nothing cached
