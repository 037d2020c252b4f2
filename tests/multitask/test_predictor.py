"""`kerastl.load_predictor` on multi-task exports: per-task results from every artifact."""

import numpy as np
import pytest
from harness import assert_float32_close, make_image_folder, random_images

import kerastl
from kerastl import multitask
from tests.multitask._models import tiny_two_task_model as _model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("mt_predictor")
    model = _model()
    calibration = random_images(8, 32, seed=7)
    multitask.export(model, root / "saved", quantization=("float32", "int8"),
                     representative_data={"species": calibration[:4],
                                          "healthy": calibration[4:]})
    return root, model


def _artifacts(root):
    version = root / "saved" / "1"
    return {"export": root / "saved", "version": version, "keras": version / "model.keras",
            "saved_model": version / "saved_model",
            "float32": version / "model_float32.tflite", "int8": version / "model_int8.tflite"}


def test_every_multitask_artifact_loads_as_a_predictor_with_per_task_results(exported):
    root, model = exported
    images = random_images(5, 32, seed=8)
    expected = {t: np.asarray(v) for t, v in model(images).items()}
    for name, path in _artifacts(root).items():
        predictor = kerastl.load_predictor(path)
        assert isinstance(predictor, multitask.MultiTaskPredictor), name
        assert predictor.task == "multitask" and predictor.labels == ["healthy", "species"]
        assert predictor.tasks == {"healthy": ["no", "yes"], "species": ["0", "1", "2"]}, name
        assert predictor.input_shape == (32, 32, 3)
        got = predictor.predict(images)
        assert sorted(got) == ["healthy", "species"]
        for task, probs in got.items():
            assert probs.dtype == np.float32 and probs.shape == expected[task].shape
            if name == "int8":
                assert np.abs(probs - expected[task]).max() < 0.05  # uint8 steps of 1/256
            else:
                assert_float32_close(probs, expected[task], depth=6, terms=72, err_msg=name)


def test_top_k_is_per_task_and_capped_at_each_tasks_labels(exported):
    root, model = exported
    image = random_images(1, 32, seed=9)
    predictor = kerastl.load_predictor(root / "saved" / "1" / "saved_model")
    best = predictor.top_k(image, k=3)
    probs = {t: np.asarray(v)[0] for t, v in model(image).items()}
    assert len(best["healthy"][0]) == 2 and len(best["species"][0]) == 3
    for task, ranked in best.items():
        assert ranked[0][0]["index"] == int(probs[task].argmax())
        assert ranked[0][0]["label"] == predictor.tasks[task][ranked[0][0]["index"]]
    with pytest.raises(ValueError, match="`k`"):
        predictor.top_k(image, k=0)


def test_predict_files_reads_images_and_keeps_per_task_scores(exported, tmp_path):
    root, _ = exported
    folder = make_image_folder(tmp_path / "photos", classes=("a",), per_class=3, size=32)
    (folder / "a" / "broken.jpg").write_bytes(b"not an image")
    predictor = kerastl.load_predictor(root / "saved" / "1" / "model_float32.tflite")
    result = predictor.predict_files([folder / "a"])
    assert len(result.paths) == 3 and len(result.skipped) == 1
    assert {t: v.shape for t, v in result.scores.items()} == {"healthy": (3, 2),
                                                              "species": (3, 3)}
    assert predictor.predict(np.zeros((0, 32, 32, 3)))["species"].shape == (0, 3)


def test_kerastl_load_of_a_multitask_export_returns_the_dict_output_model(exported):
    root, model = exported
    images = random_images(3, 32, seed=10)
    reloaded = kerastl.load(root / "saved", compile=False)
    got = reloaded.predict(images, verbose=0)
    assert sorted(got) == ["healthy", "species"]
    for task, value in model(images).items():
        assert_float32_close(got[task], np.asarray(value), depth=6, terms=72)


def test_kerastl_evaluate_refuses_a_multitask_model(exported, tmp_path):
    from click.testing import CliRunner

    from kerastl.cli import main

    root, _ = exported
    folder = make_image_folder(tmp_path / "photos", classes=("a", "b"), per_class=2, size=32)
    result = CliRunner().invoke(main, ["evaluate", str(root / "saved" / "1" / "model.keras"),
                                       str(folder)])
    assert result.exit_code == 2, result.output
    assert "multi-task model (tasks: " in result.output and "healthy" in result.output


def test_kerastl_predict_prints_the_top_k_of_every_task(exported, tmp_path):
    import json

    from click.testing import CliRunner

    from kerastl.cli import main

    root, model = exported
    folder = make_image_folder(tmp_path / "photos", classes=("a",), per_class=2, size=32)
    path = str(root / "saved" / "1" / "model.keras")
    result = CliRunner().invoke(main, ["predict", path, str(folder / "a"), "--top-k", "2",
                                       "--json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)["predictions"]
    expected = kerastl.load_predictor(path).top_k(sorted((folder / "a").iterdir()), k=2)
    assert len(records) == 2
    for i, record in enumerate(records):
        assert sorted(record["tasks"]) == ["healthy", "species"]
        for task, best in record["tasks"].items():
            assert [p["label"] for p in best] == [p["label"] for p in expected[task][i]]
            assert len(best) == 2
    text = CliRunner().invoke(main, ["predict", path, str(folder / "a"), "-k", "1"])
    assert text.exit_code == 0 and text.stdout.count(" | ") == 2, text.output
    assert "healthy: " in text.stdout and "species: " in text.stdout
    quiet = CliRunner().invoke(main, ["predict", path, str(folder / "a"), "-k", "1", "--quiet"])
    rows = [line.split("\t") for line in quiet.stdout.splitlines()]
    assert sorted(r[1] for r in rows) == ["healthy", "healthy", "species", "species"]
    assert all(len(r) == 4 for r in rows)


def test_saved_model_labels_come_from_per_task_files_and_an_oversized_one_is_refused(
        exported, tmp_path):
    import shutil

    from kerastl.predictor import MAX_LABELS_BYTES

    root, _ = exported
    version = tmp_path / "copy"
    shutil.copytree(_artifacts(root)["saved_model"], version / "saved_model")
    (version / "labels_species.txt").write_text("ant\nbee\ncat\n")
    (version / "labels_healthy.txt").write_text("only one line\n")  # wrong count: numbers
    predictor = kerastl.load_predictor(version / "saved_model")
    assert predictor.tasks == {"healthy": ["0", "1"], "species": ["ant", "bee", "cat"]}
    (version / "labels_healthy.txt").write_text("x" * (MAX_LABELS_BYTES + 1))
    with pytest.raises(ValueError, match="labels_healthy.txt.*too large"):
        kerastl.load_predictor(version / "saved_model")
