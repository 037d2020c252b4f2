"""Tutorial notebooks 2 (tuning) and 3 (export) run top to bottom, as in test_tutorials.py.

A file of their own: pytest-xdist (--dist loadfile) runs them beside notebooks 1 and 4.
"""

from __future__ import annotations

import re

import pytest
from harness import first_images_per_class
from test_tutorials import FLOWERS_PER_CLASS, NOTEBOOKS, run_notebook


@pytest.fixture(scope="module")
def flowers(assets, tmp_path_factory):
    """The photo folder of test_tutorials.py (the same first images of every class)."""
    return first_images_per_class(assets / "datasets" / "flowers_kaggle_227",
                                  tmp_path_factory.mktemp("flowers"), FLOWERS_PER_CLASS)


def _notebook(number: str):
    (path,) = [p for p in NOTEBOOKS if p.stem.startswith(number)]
    return path


@pytest.mark.integration
def test_tuning_notebook_runs(flowers, keras_home, tmp_path, monkeypatch):
    run_notebook(_notebook("02"), flowers, tmp_path, monkeypatch)


@pytest.mark.integration
def test_export_notebook_runs_and_its_int8_tflite_agrees(flowers, keras_home, tmp_path,
                                                          monkeypatch):
    text = run_notebook(_notebook("03"), flowers, tmp_path, monkeypatch)
    phone = float(re.search(r"int8 \.tflite on \d+ images: accuracy ([0-9.]+)", text)[1])
    keras = float(re.search(r"\(Keras model: ([0-9.]+)\)", text)[1])
    print(f"int8 .tflite accuracy {phone}, Keras model {keras}")
    assert phone > 0.6 and abs(phone - keras) < 0.08
