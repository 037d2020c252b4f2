"""Tests of kerastl/export/keras_format.py: `kerastl.load` path resolution and safe mode."""

import pytest
from harness import TINY_MODEL, assert_float32_close, random_images, tiny_kerastl_model

from kerastl.export import keras_format


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("export_root")
    model = tiny_kerastl_model(2, class_names=["x", "y"], seed=9)
    for version in ("2", "10", "named"):
        (root / version).mkdir()
        keras_format.save_keras(model, root / version / "model.keras")
    (root / "11").mkdir()  # a version without model.keras (tflite-only export)
    (root / ".kerastl-tmp-12-1-abcdef01").mkdir()
    return root, model


def test_latest_version_is_the_highest_integer_with_a_keras_file(saved):
    root, _ = saved
    assert keras_format.latest_version(root).name == "10"
    assert keras_format.resolve_keras_path(root) == root / "10" / "model.keras"
    assert keras_format.resolve_keras_path(root / "2") == root / "2" / "model.keras"


def test_load_in_safe_mode_reproduces_predictions(saved):
    root, model = saved
    images = random_images(4, seed=1)
    loaded = keras_format.load(root, compile=False)
    assert_float32_close(loaded.predict(images, verbose=0), model.predict(images, verbose=0),
                         **TINY_MODEL)
    assert loaded.get_layer("preprocessing").backbone == "tiny"


def test_load_errors_are_clear(saved, tmp_path):
    root, _ = saved
    with pytest.raises(FileNotFoundError, match="No exported version"):
        keras_format.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="No such file"):
        keras_format.load(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"\.keras file"):
        keras_format.load(tmp_path / "notes.txt")
    with pytest.raises(ValueError, match="compile"):
        keras_format.load(root, compile="no")


def test_load_points_tflite_and_saved_model_users_to_the_predictor(tmp_path):
    from kerastl.export.keras_format import resolve_keras_path

    tflite = tmp_path / "model.tflite"
    tflite.write_bytes(b"TFL3")
    with pytest.raises(ValueError, match="load_predictor"):
        resolve_keras_path(tflite)
    saved = tmp_path / "saved_model"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ValueError, match="load_predictor"):
        resolve_keras_path(saved)
