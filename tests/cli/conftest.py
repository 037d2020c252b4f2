"""Fixtures of the CLI tests: a tiny split photo folder and one real ``kerastl train`` run."""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def trained(split_folder, tmp_path_factory):
    """One ``kerastl train --config ... --export ... --json`` run in a subprocess."""
    work = tmp_path_factory.mktemp("train")
    (work / "train.yaml").write_text(CONFIG)
    proc = run_kerastl("train", split_folder, "--config", "train.yaml", "--batch-size", "8",
                       "--export", "saved_models/tiny", "--quantization", "int8",
                       "--output", "runs/tiny", "--json", cwd=work)
    return work, parse_json(proc)
