"""Fixtures of the CLI tests: a tiny split photo folder and one real ``kerastl train`` run."""

from __future__ import annotations

import fcntl
import json
import shutil
from pathlib import Path

import pytest
from harness import make_image_folder

from .helpers import CONFIG, parse_json, run_kerastl


@pytest.fixture(scope="session")
def split_folder(tmp_path_factory) -> Path:
    """``photos/train/<class>`` and ``photos/val/<class>``: 3 tinted classes, 32x32 JPEGs."""
    root = tmp_path_factory.mktemp("photos")
    classes = ("cat", "dog", "fox")
    make_image_folder(root / "train", classes=classes, per_class=10, size=32, seed=1)
    make_image_folder(root / "val", classes=classes, per_class=4, size=32, seed=2)
    return root


def _train(split_folder: Path, work: Path) -> dict:
    work.mkdir(parents=True)
    (work / "train.yaml").write_text(CONFIG)
    proc = run_kerastl("train", split_folder, "--config", "train.yaml", "--batch-size", "8",
                       "--export", "saved_models/tiny", "--quantization", "int8",
                       "--output", "runs/tiny", "--json", cwd=work)
    return parse_json(proc)


@pytest.fixture(scope="session")
def trained(split_folder, tmp_path_factory, worker_id):
    """One ``kerastl train --config ... --export ... --json`` run in a subprocess.

    Under pytest-xdist the run is made once for the whole test run, by the first
    worker that needs it, and read by the others (the tests only read its files;
    every worker's `split_folder` holds the same seeded images).
    """
    if worker_id == "master":  # no xdist
        work = tmp_path_factory.mktemp("train")
        return work / "run", _train(split_folder, work / "run")
    shared = tmp_path_factory.getbasetemp().parent  # the same folder for every worker
    work, done = shared / "cli_trained", shared / "cli_trained.json"
    with open(shared / "cli_trained.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.is_file():
            if work.exists():  # a run of another worker that failed: its error repeats here
                shutil.rmtree(work)
            done.write_text(json.dumps(_train(split_folder, work)))
    return work, json.loads(done.read_text())
