"""What `kerastl.export` and `kerastl.predict_tflite` do with careless input.

Issue 14, items 2 (label files round-trip), 5 (out-of-range ``eval_data``
labels), 10 (version ``"1\\n"``), 12 (export into a file or None; empty,
truncated or missing ``.tflite``; empty, grayscale or NaN batches) and issue
13, item 8 (``kerastl.export(model, dir)`` with default arguments works).
"""

import json

import numpy as np
import pytest
from harness import separable_images, tiny_kerastl_model

import kerastl
import kerastl.export as kexport

pytestmark = pytest.mark.timeout(600)

SIZE = 16
NAMES = ["chat noir", "épagneul, breton", "#3 \"quoted\"", "日本語", "x" * 60]


@pytest.fixture(scope="module")
def model():
    return tiny_kerastl_model(len(NAMES), size=SIZE, class_names=NAMES)


@pytest.fixture(scope="module")
def tflite_file(model, tmp_path_factory):
    root = tmp_path_factory.mktemp("exported")
    report = kexport.export(model, root, formats=("tflite",), quantization="float32", verbose=0)
    return root, report


def test_every_label_file_round_trips_to_the_same_list(tflite_file):
    root, report = tflite_file
    version = root / report.version
    text = (version / "labels.txt").read_text(encoding="utf-8")
    assert text.split("\n")[:-1] == NAMES and text.endswith("\n")
    assert kexport.read_tflite_metadata(version / "model_float32.tflite")["labels"] == NAMES
    assert json.loads((version / "manifest.json").read_text())["class_names"] == NAMES
    assert report.class_names == NAMES


@pytest.mark.parametrize("bad", ["a\nfake", "cr\r", "nul\x00", "\u2029para"])
def test_class_names_that_break_label_files_are_refused(model, tmp_path, bad):
    names = NAMES[:-1] + [bad]
    with pytest.raises(ValueError, match="class 4") as err:
        kexport.export(model, tmp_path, class_names=names, formats=("keras",), verbose=0)
    assert repr(bad) in str(err.value)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("labels", [[0, 1, 7], [0, -1, 2], [0.5, 1.0, 2.0]])
def test_eval_labels_out_of_range_are_refused(model, tmp_path, labels):
    images, _ = separable_images(3, 3, size=SIZE)
    with pytest.raises(ValueError, match=r"`eval_data` labels must fit the model's 5 output"):
        kexport.export(model, tmp_path, formats=("keras",), verbose=0,
                       eval_data=(images, np.array(labels)))
    assert not any(tmp_path.iterdir())


def test_one_hot_eval_labels_of_the_wrong_width_are_refused(model, tmp_path):
    images, _ = separable_images(3, 3, size=SIZE)
    with pytest.raises(ValueError, match="3 column"):
        kexport.export(model, tmp_path, formats=("keras",), verbose=0,
                       eval_data=(images, np.eye(3)))


@pytest.mark.parametrize("version", ["1\n", "2\n\n", "a\nb", "3 "])
def test_version_names_with_line_breaks_are_refused(model, tmp_path, version):
    with pytest.raises(ValueError, match="Received: version="):
        kexport.export(model, tmp_path, version=version, formats=("keras",), verbose=0)


def test_export_into_a_file_or_none(model, tmp_path):
    file = tmp_path / "file"
    file.write_text("keep me")
    for directory in (file, file / "sub"):
        with pytest.raises(NotADirectoryError, match="is a file. Received: directory="):
            kexport.export(model, directory, formats=("keras",), verbose=0)
    assert file.read_text() == "keep me"
    with pytest.raises(TypeError, match="Received: directory=None"):
        kexport.export(model, None, formats=("keras",), verbose=0)


def test_default_arguments_export_everything_that_needs_no_calibration(model, tmp_path):
    report = kerastl.export(model, tmp_path, verbose=0)
    names = sorted(a.name for a in report.artifacts)
    assert names == ["model.keras", "model_dynamic.tflite", "model_float16.tflite",
                     "model_float32.tflite", "saved_model"]
    with pytest.raises(ValueError, match="representative_data"):  # asked for, it still needs data
        kerastl.export(model, tmp_path, quantization="int8", verbose=0)


def test_representative_data_adds_int8_to_the_defaults():
    from kerastl.export.config import make_config

    common = dict(formats=("tflite",), quantization=None, num_calibration_samples=10,
                  version=None, overwrite=False, verbose=0)
    assert "int8" not in make_config(representative_data=None, **common).quantizations
    assert make_config(representative_data=np.zeros((1, 4, 4, 3)),
                       **common).quantizations[-1] == "int8"


def test_missing_empty_and_truncated_tflite_files(tflite_file, tmp_path):
    root, report = tflite_file
    good = (root / report.version / "model_float32.tflite").read_bytes()
    with pytest.raises(FileNotFoundError, match="no such file"):
        kexport.predict_tflite(tmp_path / "missing.tflite", np.zeros((1, SIZE, SIZE, 3)))
    cases = {"empty": b"", "junk": b"not a model at all", "half": good[:len(good) // 2],
             "head": good[:64]}
    for name, data in cases.items():
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(data)
        for call in (lambda: kexport.predict_tflite(path, np.zeros((1, SIZE, SIZE, 3))),
                     lambda: kexport.read_tflite_metadata(path)):
            with pytest.raises(ValueError, match=r"`path` must be a .*TFLite model") as err:
                call()
            assert "unpack_from" not in str(err.value) and name in str(err.value)


def test_predict_tflite_refuses_batches_it_cannot_answer(tflite_file):
    root, report = tflite_file
    path = root / report.version / "model_float32.tflite"
    images = np.full((2, SIZE, SIZE, 3), 128.0, "float32")
    assert kexport.predict_tflite(path, images).shape == (2, len(NAMES))
    with pytest.raises(ValueError, match=r"at least one image.*Received: images of shape "
                                         r"\(0, 16, 16, 3\)"):
        kexport.predict_tflite(path, images[:0])
    for gray in (images[..., 0], images[..., :1]):
        with pytest.raises(ValueError, match="Grayscale") as err:
            kexport.predict_tflite(path, gray)
        assert f"Received: images of shape {gray.shape}" in str(err.value)
    nan = images.copy()
    nan[1, 3, 3, 0] = np.nan
    with pytest.raises(ValueError, match="1 image\\(s\\) contain NaN"):
        kexport.predict_tflite(path, nan)
