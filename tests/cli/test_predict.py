"""``kerastl predict``: top-k output in text, quiet and JSON modes; bad files and hostile
labels."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from kerastl.cli import main

LABELS = ("cat", "dog", "fox")


def test_predict_with_a_keras_file(trained, split_folder):
    work, _ = trained
    model = str(work / "runs" / "tiny" / "model.keras")
    images = [str(split_folder / "val" / "cat" / "cat_0.jpg"), str(split_folder / "val" / "dog")]
    runner = CliRunner()
    as_json = runner.invoke(main, ["predict", model, *images, "--json", "-k", "1"])
    assert as_json.exit_code == 0, as_json.output
    got = json.loads(as_json.stdout)
    assert got["artifact"] == model and got["format"] == "keras" and got["skipped"] == []
    assert len(got["predictions"]) == 5 and all(len(r["top_k"]) == 1 for r in got["predictions"])
    text = runner.invoke(main, ["predict", model, images[0]])
    assert text.stdout.startswith(images[0] + ": ") and text.stdout.count(",") == 2
    missing = runner.invoke(main, ["predict", model, "no_such.jpg"])
    assert missing.exit_code == 1 and "does not exist" in missing.stderr


def test_quiet_prints_top_k_label_score_pairs(trained, split_folder):
    work, _ = trained
    model = str(work / "runs" / "tiny" / "model.keras")
    image = str(split_folder / "val" / "cat" / "cat_0.jpg")
    for k in (1, 2, 3):
        quiet = CliRunner().invoke(main, ["predict", model, image, "-q", "--top-k", str(k)])
        assert quiet.exit_code == 0 and quiet.stderr == ""
        path, *pairs = quiet.stdout.rstrip("\n").split("\t")
        assert path == image and len(pairs) == 2 * k
        labels, scores = pairs[0::2], [float(s) for s in pairs[1::2]]
        assert set(labels) <= set(LABELS) and len(set(labels)) == k
        assert scores == sorted(scores, reverse=True)


def test_a_version_folder_names_the_artifact_it_ran(trained, split_folder):
    work, _ = trained
    version = work / "saved_models" / "tiny" / "1"
    result = CliRunner().invoke(main, ["predict", str(version.parent), str(split_folder / "val"
                                                                              / "fox")])
    assert result.exit_code == 0, result.output
    assert f"Model: {version / 'model.keras'} (keras)" in result.stderr
    evaluate = CliRunner().invoke(main, ["evaluate", str(version), str(split_folder),
                                         "--split", "validation"])
    assert evaluate.exit_code == 0, evaluate.output
    assert f"model: {version / 'model.keras'} (keras)" in evaluate.stdout


def test_bad_files_in_a_folder_are_skipped_and_named(trained, split_folder, tmp_path):
    work, _ = trained
    folder = tmp_path / "mixed"
    shutil.copytree(split_folder / "val" / "dog", folder)
    (folder / "truncated.jpg").write_bytes((folder / "dog_0.jpg").read_bytes()[:200])
    (folder / "text.png").write_text("not an image")
    model = str(work / "runs" / "tiny" / "model.keras")
    result = CliRunner().invoke(main, ["predict", model, str(folder), "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert len(got["predictions"]) == 4
    assert sorted(s["image"].rsplit("/", 1)[-1] for s in got["skipped"]) == ["text.png",
                                                                             "truncated.jpg"]
    assert "Skipped 2 file(s)" in result.stderr and "truncated.jpg" in result.stderr
    only_bad = tmp_path / "only_bad"
    only_bad.mkdir()
    (only_bad / "text.png").write_text("not an image")
    failed = CliRunner().invoke(main, ["predict", model, str(only_bad)])
    assert failed.exit_code == 1 and "None of the 1 image file(s)" in failed.stderr


def test_hostile_labels_are_escaped_and_clipped(trained, split_folder, tmp_path):
    work, _ = trained
    copy = tmp_path / "export"
    shutil.copytree(work / "saved_models" / "tiny" / "1" / "saved_model", copy / "saved_model")
    hostile = ["\x1b]0;pwned\x07cat", "d" * 100_000, "fox\x1b[2J"]
    (copy / "labels.txt").write_text("\n".join(hostile) + "\n")
    image = str(split_folder / "val" / "fox" / "fox_0.jpg")
    for mode in ([], ["-q"]):
        result = CliRunner().invoke(main, ["predict", str(copy / "saved_model"), image, *mode])
        assert result.exit_code == 0, result.output
        for stream in (result.stdout, result.stderr):
            assert "\x1b" not in stream and "\x07" not in stream
            assert all(len(line) < 1100 for line in stream.splitlines())
        assert "\\x1b]0;pwned\\x07cat" in result.stdout
    as_json = CliRunner().invoke(main, ["predict", str(copy / "saved_model"), image, "--json"])
    labels = {p["label"] for p in json.loads(as_json.stdout)["predictions"][0]["top_k"]}
    assert labels == set(hostile)  # JSON keeps the data (escaped by JSON)
