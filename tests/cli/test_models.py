"""Every model format the CLI accepts runs the same way: keras, SavedModel, tflite."""

from __future__ import annotations

import numpy as np
import pytest
from harness import make_image_folder

import kerastl
from kerastl.cli.models import image_files, open_model, read_image

LABELS = ["cat", "dog", "fox"]


def _images(split_folder):
    files = image_files([split_folder / "val" / "dog"])
    return np.stack([read_image(p, (32, 32)) for p in files])


def test_keras_saved_model_and_tflite_agree(trained, split_folder):
    work, _ = trained
    version = work / "saved_models" / "tiny" / "1"
    images = _images(split_folder)
    keras_model = open_model(kerastl, version)
    saved = open_model(kerastl, version / "saved_model")
    tflite = open_model(kerastl, version / "model_int8.tflite")
    newest = open_model(kerastl, work / "saved_models" / "tiny")
    assert [p.kind for p in (keras_model, saved, tflite, newest)] == [
        "keras", "saved_model", "tflite", "keras"]
    for predictor in (keras_model, saved, tflite):
        assert predictor.labels == LABELS and predictor.input_shape == (32, 32, 3)
    reference = keras_model.predict(images)
    assert reference.shape == (4, 3)
    np.testing.assert_allclose(saved.predict(images), reference, atol=1e-5)
    quantized = tflite.predict(images)
    assert quantized.shape == (4, 3)
    np.testing.assert_allclose(quantized.sum(axis=1), 1.0, atol=0.05)


def test_open_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_model(kerastl, tmp_path / "missing.keras")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=".keras or .tflite"):
        open_model(kerastl, tmp_path / "notes.txt")


def test_image_files_and_read_image(tmp_path):
    folder = make_image_folder(tmp_path / "f", classes=("a",), per_class=3, size=40)
    files = image_files([folder / "a", folder / "a" / "a_0.jpg"])
    assert [p.name for p in files] == ["a_0.jpg", "a_1.jpg", "a_2.jpg", "a_0.jpg"]
    image = read_image(files[0], (24, 32))
    assert image.shape == (24, 32, 3) and image.dtype == np.float32 and image.max() <= 255
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No image files"):
        image_files([tmp_path / "empty"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        image_files([tmp_path / "nope.jpg"])
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="Cannot read image"):
        read_image(tmp_path / "bad.jpg", (8, 8))
