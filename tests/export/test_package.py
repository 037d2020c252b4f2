"""Tests of kerastl/export/package.py: `kerastl.export` end to end on a tiny model."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from harness import (MOBILENET_V2, REPO, TINY_MODEL, assert_float32_close, float32_tolerance,
                     separable_images, tiny_kerastl_model, train_tiny_model)

import kerastl.export as kexport

CLASSES = ["red", "green", "blue"]
TFLITE = [f"model_{q}.tflite" for q in kexport.QUANTIZATIONS]


@pytest.fixture(scope="module")
def trained():
    images, labels = separable_images(96, 3, seed=1)
    model = train_tiny_model(tiny_kerastl_model(3, class_names=CLASSES), images, labels)
    return model, images, labels


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    model, images, _ = trained
    eval_images, eval_labels = separable_images(60, 3, seed=2)
    root = tmp_path_factory.mktemp("saved_models")
    report = kexport.export(model, root, representative_data=images, num_calibration_samples=64,
                            eval_data=(eval_images, eval_labels), verbose=0)
    return root, report, eval_images, eval_labels


def test_layout_of_a_version(exported):
    root, report, _, _ = exported
    assert sorted(p.name for p in root.iterdir()) == ["1"]  # no staging leftovers
    version = root / "1"
    assert report.path == str(version.resolve()) and report.version == "1"
    expected = {"saved_model", "model.keras", "labels.txt", "manifest.json", *TFLITE}
    assert {p.name for p in version.iterdir()} == expected
    assert (version / "labels.txt").read_text() == "red\ngreen\nblue\n"
    assert [a.name for a in report.artifacts] == ["saved_model", "model.keras", *TFLITE]


def test_every_artifact_agrees_with_keras(exported):
    _, report, _, _ = exported
    keras_accuracy = report.keras["accuracy"]
    assert keras_accuracy >= 0.9  # the tiny model learned the colors
    by_name = {a.name: a for a in report.artifacts}
    for name in ("saved_model", "model.keras", "model_float32.tflite"):
        # Probabilities (scale 1) of the tiny model run by other kernels.
        assert by_name[name].max_abs_diff <= float32_tolerance(**TINY_MODEL), name
        assert by_name[name].agreement == 1.0
        assert by_name[name].accuracy == keras_accuracy
    for name in ("model_dynamic.tflite", "model_float16.tflite"):
        assert by_name[name].max_abs_diff < 0.02, name
        assert by_name[name].agreement >= 0.95, name
    int8 = by_name["model_int8.tflite"]
    assert int8.agreement >= 0.9 and int8.max_abs_diff < 0.15
    assert abs(int8.accuracy - keras_accuracy) <= 0.1
    for artifact in report.artifacts:
        assert artifact.size_bytes > 0 and artifact.latency_ms > 0
    assert by_name["model_float32.tflite"].size_ratio == 1.0
    assert by_name["model_int8.tflite"].size_ratio < 1.0
    assert report.check_data == "eval_data" and report.num_check_images == 60
    assert report.runtime == "ai_edge_litert"


def test_reported_metrics_match_running_the_files(exported, trained):
    root, report, eval_images, eval_labels = exported
    model = trained[0]
    keras_pred = model.predict(eval_images, verbose=0).argmax(-1)
    for name in ("model_float32.tflite", "model_int8.tflite"):
        probs = kexport.predict_tflite(root / "1" / name, eval_images)
        assert probs.shape == (60, 3) and probs.dtype == np.float32
        assert report.artifact(name).accuracy == pytest.approx(
            np.mean(probs.argmax(-1) == eval_labels))
        assert report.artifact(name).agreement == pytest.approx(
            np.mean(probs.argmax(-1) == keras_pred))


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_manifest_hashes_match_the_files(exported):
    root, report, _, _ = exported
    version = root / "1"
    manifest = json.loads((version / "manifest.json").read_text())
    assert set(manifest["artifacts"]) == {"saved_model", "model.keras", "labels.txt", *TFLITE}
    for name, entry in manifest["artifacts"].items():
        path = version / entry["path"]
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
            listing = "".join(f"{_sha256(p)}  {p.relative_to(path).as_posix()}\n"
                              for p in files)
            assert entry["sha256"] == hashlib.sha256(listing.encode()).hexdigest()
            assert entry["size_bytes"] == sum(p.stat().st_size for p in files)
            assert len(entry["files"]) == len(files)
        else:
            assert entry["sha256"] == _sha256(path), name
            assert entry["size_bytes"] == path.stat().st_size
    for artifact in report.artifacts:
        assert manifest["artifacts"][artifact.name]["sha256"] == artifact.sha256


def test_manifest_describes_the_model(exported):
    root, report, _, _ = exported
    manifest = kexport.read_manifest(root / "1")
    assert manifest["task"] == "multiclass" and manifest["class_names"] == CLASSES
    assert manifest["backbone"] == "tiny" and manifest["preprocessing"]["mode"] == "tf"
    assert manifest["input"] == {"height": 32, "width": 32, "channels": 3, "dtype": "float32",
                                 "range": [0, 255], "color": "RGB"}
    assert set(manifest["versions"]) == {"kerastl", "tensorflow", "keras", "ai_edge_litert"}
    assert manifest["created"].endswith("+00:00")
    int8 = manifest["artifacts"]["model_int8.tflite"]
    assert int8["input_dtype"] == "uint8" and int8["quantization"] == "int8"
    assert manifest["metrics"]["model_int8.tflite"]["agreement"] == \
        report.artifact("model_int8.tflite").agreement
    assert manifest["metrics"]["keras"]["accuracy"] == report.keras["accuracy"]
    signatures = manifest["artifacts"]["saved_model"]["signatures"]
    assert set(signatures) == {"serving_default", "serving_uint8", "serving_bytes"}


def test_labels_are_embedded_in_every_tflite_file(exported):
    root, _, _, _ = exported
    for name in TFLITE:
        meta = kexport.read_tflite_metadata(root / "1" / name)
        assert meta["labels"] == CLASSES
        assert meta["info"]["task"] == "multiclass" and meta["info"]["input_shape"] == [32, 32, 3]


def test_report_prints_as_a_table_and_serializes(exported):
    _, report, _, _ = exported
    text = str(report)
    for name in ["keras (reference)", "saved_model", "model.keras", *TFLITE]:
        assert name in text
    assert "accuracy" in text and "agreement" in text and "ms/image" in text
    data = json.loads(report.to_json())
    # Every artifact in the JSON names a file of the version folder with its real size.
    for artifact in data["artifacts"]:
        path = Path(data["path"]) / artifact["name"]
        if path.is_file():
            assert artifact["size_bytes"] == path.stat().st_size
    assert {a["name"] for a in data["artifacts"]} >= set(TFLITE)
    with pytest.raises(KeyError, match="model_int4.tflite"):
        report.artifact("model_int4.tflite")


def test_load_accepts_version_file_and_directory(exported, trained):
    root, _, eval_images, _ = exported
    expected = trained[0].predict(eval_images[:8], verbose=0)
    for path in (root, root / "1", root / "1" / "model.keras"):
        loaded = kexport.load(path)
        assert_float32_close(loaded.predict(eval_images[:8], verbose=0), expected, **TINY_MODEL)
        assert loaded.get_layer("head").class_names == CLASSES


def _quick_export(model, root, **kwargs):
    options = dict(formats=("tflite",), quantization=("float32",), verbose=0)
    options.update(kwargs)
    return kexport.export(model, root, **options)


def test_versions_increment_and_existing_ones_are_never_overwritten(trained, tmp_path):
    model = trained[0]
    assert _quick_export(model, tmp_path).version == "1"
    assert _quick_export(model, tmp_path).version == "2"
    before = _sha256(tmp_path / "2" / "manifest.json")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        _quick_export(model, tmp_path, version=2)
    assert _sha256(tmp_path / "2" / "manifest.json") == before
    report = _quick_export(model, tmp_path, version=2, overwrite=True, quantization="float16")
    assert {p.name for p in (tmp_path / "2").iterdir()} == {
        "model_float16.tflite", "labels.txt", "manifest.json"}
    assert report.version == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1", "2"]
    assert _quick_export(model, tmp_path, version="candidate").path.endswith("candidate")


def test_version_names_cannot_escape_the_directory(trained, tmp_path):
    root = tmp_path / "models"
    for bad in ("../escaped", "a/b", ".."):
        with pytest.raises(ValueError, match="version"):
            _quick_export(trained[0], root, version=bad)
    assert not (tmp_path / "escaped").exists()
    assert not root.exists()  # refused before anything was written


def test_int8_without_representative_data_writes_nothing(trained, tmp_path):
    with pytest.raises(ValueError, match="representative_data"):
        kexport.export(trained[0], tmp_path / "models", quantization=("float32", "int8"),
                       verbose=0)
    assert not (tmp_path / "models").exists()


def test_class_names_argument_overrides_the_head(trained, tmp_path):
    report = _quick_export(trained[0], tmp_path, class_names=["r", "g", "b"])
    assert (tmp_path / "1" / "labels.txt").read_text() == "r\ng\nb\n"
    assert report.class_names == ["r", "g", "b"]
    with pytest.raises(ValueError, match="class_names"):
        _quick_export(trained[0], tmp_path, class_names=["only", "two"])


def test_no_eval_data_compares_on_calibration_images(trained, tmp_path):
    model, images, _ = trained
    report = _quick_export(model, tmp_path, quantization=("float32", "int8"),
                           representative_data=images[:20])
    assert report.check_data == "representative_data" and report.num_check_images == 20
    assert report.keras.get("accuracy") is None
    assert report.artifact("model_int8.tflite").agreement >= 0.85
    assert "accuracy" not in str(report)


_KILL_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from harness import tiny_kerastl_model
import kerastl.export
kerastl.export(tiny_kerastl_model(3), {root!r}, quantization=("float32", "dynamic", "float16"),
               verbose=0)
print("FINISHED")
"""


def test_killed_export_leaves_no_version_directory(trained, tmp_path):
    root = tmp_path / "models"
    code = _KILL_SCRIPT.format(tests=str(REPO / "tests"), root=str(root))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    staging = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        staging = [p for p in root.glob(".kerastl-tmp-*") if any(p.iterdir())] \
            if root.exists() else []
        if staging:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    assert staging, "the export never started writing"
    assert proc.returncode == -signal.SIGKILL and b"FINISHED" not in out
    assert [p.name for p in root.iterdir() if not p.name.startswith(".")] == []
    # The next export removes the dead process's staging folder and takes version 1.
    assert _quick_export(trained[0], root).version == "1"
    assert sorted(p.name for p in root.iterdir()) == ["1"]


def test_quantization_names_are_checked(trained, tmp_path):
    with pytest.raises(ValueError, match="Did you mean 'float16'"):
        _quick_export(trained[0], tmp_path, quantization="float61")


def test_export_of_a_kerastl_build_mobilenet_v2(tmp_path):
    import kerastl

    images, _ = separable_images(48, 3, seed=21)
    model = kerastl.build("mobilenet_v2", 3, input_shape=(32, 32, 3), weights=None,
                          backbone_kwargs={"alpha": 0.35}, class_names=CLASSES)
    report = kexport.export(model, tmp_path, formats=("tflite",),
                            quantization=("float32", "int8"), representative_data=images,
                            num_calibration_samples=32, verbose=0)
    float32 = report.artifact("model_float32.tflite")
    assert float32.max_abs_diff <= float32_tolerance(**MOBILENET_V2)
    int8 = report.artifact("model_int8.tflite")
    assert int8.size_ratio < 0.5 and int8.max_abs_diff < 0.2
    manifest = kexport.read_manifest(tmp_path / "1")
    assert manifest["backbone"] == "mobilenet_v2" and manifest["class_names"] == CLASSES
    assert kexport.read_tflite_metadata(tmp_path / "1" / "model_int8.tflite")["labels"] == CLASSES


def _flowers(assets, split, count, size, seed):
    import keras

    ds = keras.utils.image_dataset_from_directory(
        assets / "datasets" / "flowers_kaggle_227" / split, image_size=(size, size),
        batch_size=32, shuffle=True, seed=seed, label_mode="int", verbose=False)
    images, labels = [], []
    for x, y in ds.take((count + 31) // 32):
        images.append(x.numpy())
        labels.append(y.numpy())
    return np.concatenate(images)[:count], np.concatenate(labels)[:count], ds.class_names


@pytest.mark.integration
def test_real_mobilenet_v2_int8_is_small_and_agrees(assets, keras_home, tmp_path):
    import keras

    import kerastl
    from harness import train_head_on_features

    keras.utils.set_random_seed(0)
    train_x, train_y, names = _flowers(assets, "train", 160, 160, seed=1)
    val_x, val_y, _ = _flowers(assets, "val", 64, 160, seed=2)
    model = kerastl.build("mobilenet_v2", len(names), input_shape=(160, 160, 3),
                          weights="imagenet", class_names=names)
    train_head_on_features(model, train_x, train_y, epochs=15)
    report = kexport.export(model, tmp_path, formats=("tflite",),
                            quantization=("float32", "int8"), representative_data=train_x,
                            num_calibration_samples=100, eval_data=(val_x, val_y), verbose=0)
    print(report)  # shown by pytest when an assertion fails
    int8 = report.artifact("model_int8.tflite")
    assert report.keras["accuracy"] >= 0.75  # ImageNet features + a trained head
    float32 = report.artifact("model_float32.tflite")
    assert float32.max_abs_diff <= float32_tolerance(**MOBILENET_V2)
    assert int8.size_ratio <= 0.35
    assert int8.agreement >= 0.9
    assert abs(int8.accuracy - report.keras["accuracy"]) <= 0.08
