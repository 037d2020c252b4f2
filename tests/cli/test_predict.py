"""``kerastl predict``: top-k output in text, quiet and JSON modes."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from kerastl.cli import main
from kerastl.cli.predict import best_labels


def test_best_labels_sorted_and_capped():
    rows = best_labels(np.array([[0.1, 0.6, 0.3]]), ["a", "b", "c"], 5)
    assert [p["label"] for p in rows[0]] == ["b", "c", "a"]
    assert rows[0][0] == {"label": "b", "index": 1, "score": 0.6}


def test_predict_with_a_keras_file(trained, split_folder):
    work, _ = trained
    model = str(work / "runs" / "tiny" / "model.keras")
    images = [str(split_folder / "val" / "cat" / "cat_0.jpg"), str(split_folder / "val" / "dog")]
    runner = CliRunner()
    as_json = runner.invoke(main, ["predict", model, *images, "--json", "-k", "1"])
    assert as_json.exit_code == 0, as_json.output
    records = json.loads(as_json.stdout)["predictions"]
    assert len(records) == 5 and all(len(r["top_k"]) == 1 for r in records)
    text = runner.invoke(main, ["predict", model, images[0]])
    assert text.stdout.startswith(images[0] + ": ") and text.stdout.count(",") == 2
    quiet = runner.invoke(main, ["predict", model, images[0], "-q"])
    path, label, score = quiet.stdout.strip().split("\t")
    assert path == images[0] and label in ("cat", "dog", "fox") and 0 <= float(score) <= 1
    assert quiet.stderr == ""
    missing = runner.invoke(main, ["predict", model, "no_such.jpg"])
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
