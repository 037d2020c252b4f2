"""The tutorial notebooks run top to bottom (nbclient) on the real photos, with tiny settings."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import textwrap

import nbformat
import pytest
from harness import REPO, first_images_per_class

TUTORIALS = REPO / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
# Small enough for all four notebooks to run in a few minutes on 2 CPU cores. Head epochs
# on cached features are nearly free; tuning trials and fine-tuning epochs are not.
# The notebooks read KERASTL_DATA: a copy of flowers_kaggle_227 with the first images of
# every class folder (all 5 classes; 200 training and 200 validation images). Every step
# still runs on real photos (notebook 1 caps its own sets below these counts); training and
# tuning passes cost a quarter of the full folder's 800 training images.
FLOWERS_PER_CLASS = {"train": 40, "val": 40}
TINY_SETTINGS = {"KERASTL_IMAGE_SIZE": "96", "KERASTL_EPOCHS": "10",
                 "KERASTL_FINE_TUNE_EPOCHS": "1", "KERASTL_SMALL_PER_CLASS": "6",
                 "KERASTL_PER_CLASS": "24", "KERASTL_VAL_PER_CLASS": "20",
                 "KERASTL_TRIALS": "3", "KERASTL_DEPTHS": "0,2", "KERASTL_BATCH_SIZE": "32"}
# Notebooks 1, 2 and 4 check only what they print, so they run at 64x64 (the ImageNet
# MobileNetV2 takes it; about 15% faster). Notebook 3 compares its int8 .tflite accuracy with
# the Keras model's on the 200 validation photos, so it keeps 96x96.
SMALL_IMAGES = {"KERASTL_IMAGE_SIZE": "64"}
PER_NOTEBOOK = {"01_feature_extraction_vs_fine_tuning": SMALL_IMAGES,
                "02_tuning_unfreeze_depth_and_learning_rates": {**SMALL_IMAGES,
                                                                "KERASTL_EPOCHS": "2",
                                                                "KERASTL_FINE_TUNE_EPOCHS": "2"},
                "04_training_on_a_colab_tpu": {**SMALL_IMAGES, "KERASTL_EPOCHS": "5"}}
# What each notebook must print (besides running without an error).
EXPECTED = {
    "01_feature_extraction_vs_fine_tuning": ["| **small dataset** |", "| edge maps | full"],
    "02_tuning_unfreeze_depth_and_learning_rates": ["best setting:", "trainable_blocks="],
    "03_export_savedmodel_and_int8_tflite": ["SavedModel agrees with Keras: True",
                                             "int8 .tflite on 200 images"],
    "04_training_on_a_colab_tpu": ["No TPU found: falling back to", "model.keras"],
}


def _generator():
    spec = importlib.util.spec_from_file_location("make_notebooks",
                                                  TUTORIALS / "_make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                parts.append(output.get("text", ""))
            elif "data" in output:
                parts.append(output["data"].get("text/markdown", ""))
                parts.append(output["data"].get("text/plain", ""))
    return "".join(parts)


def test_notebooks_match_their_generator():
    generator = _generator()
    assert sorted(generator.NOTEBOOKS) == [p.name for p in NOTEBOOKS] and len(NOTEBOOKS) == 4
    for name, cells in generator.NOTEBOOKS.items():
        saved = nbformat.read(TUTORIALS / name, as_version=4)
        nbformat.validate(saved)
        expected = generator._notebook(cells)
        assert [c.source for c in saved.cells] == [c.source for c in expected.cells]
        assert all(not c.get("outputs") for c in saved.cells if c.cell_type == "code")
        source = "\n".join(c.source for c in saved.cells)
        assert 'os.environ.get("KERASTL_DATA", "tfds:tf_flowers")' in source
        assert 'os.environ.get("KERASTL_EPOCHS"' in source


def test_every_notebook_starts_with_the_install_cell_and_none_pip_installs_a_name():
    generator = _generator()
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        first = nb.cells[0]
        assert first.cell_type == "code" and first.source == generator.INSTALL, path.name
        for cell in nb.cells:
            # pip may install only KERASTL_SOURCE or the checkout, never "kerastl" by name
            for pattern in (r"[\"']install[\"'],[^\]\n]*[\"']kerastl[\"']",  # subprocess
                            r"pip3? install( -\S+)* kerastl\b"):                # shell
                assert not re.search(pattern, cell.source), path.name


# Runs the install cell with kerastl hidden from the import system and pip recorded, not
# run: what would it install?
_HIDE_AND_RECORD = textwrap.dedent("""
    import importlib.util, json, subprocess, sys

    real_find_spec = importlib.util.find_spec
    hidden = [True]
    importlib.util.find_spec = lambda name, *a: (
        None if hidden[0] and name == "kerastl" else real_find_spec(name, *a))
    calls = []

    def fake_run(cmd, check=False):
        calls.append(cmd)
        hidden[0] = False  # "installed"

    subprocess.run = fake_run
    try:
        exec(compile(open(sys.argv[1]).read(), "install_cell", "exec"), {"__name__": "__main__"})
    finally:
        print(json.dumps(calls))
""")


@pytest.mark.parametrize("source", ["", "git+https://example.org/me/kerastl.git"],
                         ids=["checkout", "KERASTL_SOURCE"])
def test_install_cell_installs_the_checkout_or_the_given_source(source, tmp_path):
    import os

    cell = tmp_path / "cell.py"
    cell.write_text(_generator().INSTALL)
    script = tmp_path / "run.py"
    script.write_text(_HIDE_AND_RECORD)
    env = {**os.environ, "KERASTL_SOURCE": source}
    proc = subprocess.run([sys.executable, str(script), str(cell)], cwd=TUTORIALS, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (call,) = json.loads(proc.stdout.strip().splitlines()[-1])
    assert call[:4] == [sys.executable, "-m", "pip", "install"]
    assert call[-1] == (source or str(REPO))
    outside = subprocess.run([sys.executable, str(script), str(cell)], cwd=tmp_path,
                             env={**os.environ, "KERASTL_SOURCE": ""}, capture_output=True,
                             text=True, timeout=120)
    assert outside.returncode != 0 and "set KERASTL_SOURCE" in outside.stderr


@pytest.fixture(scope="module")
def flowers(assets, tmp_path_factory):
    """The first FLOWERS_PER_CLASS images of every class folder of flowers_kaggle_227."""
    return first_images_per_class(assets / "datasets" / "flowers_kaggle_227",
                                  tmp_path_factory.mktemp("flowers"), FLOWERS_PER_CLASS)


def run_notebook(path, data, tmp_path, monkeypatch) -> str:
    """Runs the notebook at `path` on the photo folder `data` with the tiny settings.

    Checks what the notebook must print (EXPECTED) and returns its printed text.
    """
    from nbclient import NotebookClient

    monkeypatch.setenv("KERASTL_DATA", str(data))
    for key, value in {**TINY_SETTINGS, **PER_NOTEBOOK.get(path.stem, {})}.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(path, as_version=4)
    # "python3" is ipykernel's own kernel: jupyter_client runs it with this interpreter.
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = _text(nb)
    for expected in EXPECTED[path.stem]:
        assert expected in text, f"{expected!r} not in the output of {path.name}:\n{text[-3000:]}"
    return text


# Notebooks 2 and 3 run in tests/test_tutorials_tuning_export.py, so that pytest-xdist
# (--dist loadfile) can run them beside these two.
@pytest.mark.integration
@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem[:2] in ("01", "04")],
                         ids=lambda p: p.stem)
def test_notebook_runs(path, flowers, keras_home, tmp_path, monkeypatch):
    run_notebook(path, flowers, tmp_path, monkeypatch)
