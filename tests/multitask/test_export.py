import importlib
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerastl
from harness import assert_float32_close, random_images
from kerastl import multitask
from kerastl.export import tflite
from kerastl.multitask.predictor import run_tflite
from tests.multitask._models import tiny_two_task_model as _model

EXPORT = importlib.import_module("kerastl.multitask.export")


def test_export_signatures_per_task_and_multi_output_tflite_agree_with_keras(tmp_path):
    model = _model()
    images = random_images(5, 32, seed=4)
    expected = {t: np.asarray(v) for t, v in model(images).items()}
    out = multitask.export(model, tmp_path, check_images=images)
    folder = tmp_path / "1"
    assert out.path == str(folder) and out.tasks == {"healthy": ["no", "yes"],
                                                     "species": ["0", "1", "2"]}
    loaded = tf.saved_model.load(str(folder / "saved_model"))
    assert {"healthy", "species", "serving_default"} <= set(loaded.signatures)
    runner = tflite.make_interpreter(folder / "model_float32.tflite").get_signature_runner(
        "serving_default")
    for task in ("healthy", "species"):
        got = loaded.signatures[task](image=tf.constant(images))["probabilities"].numpy()
        assert_float32_close(got, expected[task], depth=6, terms=72)
        lite = np.concatenate([runner(image=images[i:i + 1])[task] for i in range(5)])
        assert_float32_close(lite, expected[task], depth=6, terms=72)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["tasks"]["healthy"]["labels"] == ["no", "yes"]
    assert (folder / "labels_species.txt").read_text() == "0\n1\n2\n"
    assert set(out.max_abs_diff) == {"saved_model", "model_float32.tflite"}
    reloaded = kerastl.load(folder / "model.keras", compile=False)
    assert_float32_close(np.asarray(reloaded(images)["species"]), expected["species"], depth=6,
                         terms=72)
    assert isinstance(reloaded, keras.Model)


def test_kerastl_export_points_a_multi_task_model_to_multitask_export(tmp_path):
    with pytest.raises(ValueError, match="kerastl.multitask.export"):
        kerastl.export.export(_model(), tmp_path, verbose=0)


def test_int8_export_calibrates_on_every_task_and_stays_close_to_keras(tmp_path):
    model = _model()
    species, healthy = random_images(6, 32, seed=5), random_images(6, 32, seed=6)
    out = multitask.export(model, tmp_path, quantization=("float32", "int8"),
                           representative_data={"species": species,
                                                "healthy": (healthy, np.zeros(6))},
                           num_calibration_samples=8)
    folder = tmp_path / "1"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["num_calibration_images"] == 8 and manifest["check_images"] == \
        "representative_data"
    data = (folder / "model_int8.tflite").read_bytes()
    tflite.check_full_integer(data)  # raises unless every op is integer and input is raw pixels
    details = tflite.make_interpreter(data).get_signature_runner().get_output_details()
    assert {k: v["dtype"] for k, v in details.items()} == {"healthy": np.uint8,
                                                           "species": np.uint8}
    images = np.concatenate([species, healthy])
    expected = {t: np.asarray(v) for t, v in model(images).items()}
    got = run_tflite(folder / "model_int8.tflite", images)
    for task in ("healthy", "species"):
        # uint8 probabilities step by 1/256; a tiny 2-conv model adds a few steps.
        assert np.abs(got[task] - expected[task]).max() < 0.05
        assert out.max_abs_diff["model_int8.tflite"][task] < 0.05
    assert kerastl.export.read_tflite_metadata(folder / "model_int8.tflite")["info"]["tasks"] \
        == {"healthy": ["no", "yes"], "species": ["0", "1", "2"]}


def test_calibration_takes_an_equal_interleaved_share_from_each_task():
    a = np.zeros((5, 4, 4, 3), "float32")
    b = np.full((5, 4, 4, 3), 255.0, "float32")
    images = EXPORT._calibration({"species": a, "healthy": b}, (4, 4, 3),
                                                  ["healthy", "species"], 6)
    assert images.shape == (6, 4, 4, 3)
    assert [float(x[0, 0, 0]) for x in images] == [0.0, 255.0] * 3
    with pytest.raises(ValueError, match="unknown tasks"):
        EXPORT._calibration({"pets": a}, (4, 4, 3), ["healthy", "species"], 6)


def test_bad_export_options_are_refused_before_any_file_is_written(tmp_path):
    model = _model()
    with pytest.raises(ValueError, match="needs `representative_data`"):
        multitask.export(model, tmp_path / "a", quantization="int8")
    with pytest.raises(ValueError, match="`quantization` must be among"):
        multitask.export(model, tmp_path / "b", quantization="int4")
    with pytest.raises(ValueError, match="version"):
        multitask.export(model, tmp_path / "c", version="../x")
    assert not any(p.exists() for p in (tmp_path / "a", tmp_path / "b", tmp_path / "c"))


def test_export_is_atomic_a_failure_leaves_no_version_and_existing_ones_are_kept(tmp_path,
                                                                               monkeypatch):
    model = _model()
    multitask.export(model, tmp_path)
    with pytest.raises(FileExistsError):
        multitask.export(model, tmp_path, version="1")

    def broken(*args, **kwargs):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(EXPORT.tflite, "convert", broken)
    with pytest.raises(RuntimeError, match="converter crashed"):
        multitask.export(model, tmp_path)
    with pytest.raises(RuntimeError, match="converter crashed"):
        multitask.export(model, tmp_path, version="1", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1"]  # no version 2, no staging
    assert (tmp_path / "1" / "model_float32.tflite").is_file()


def test_a_lora_multitask_model_exports_merged_and_its_tflite_equals_the_keras_model(tmp_path):
    from kerastl import peft

    model = _model()
    peft.apply(model, "lora", rank=2)
    rng = np.random.default_rng(0)
    for layer in peft.lora_layers(model):  # a trained-looking, non-zero update
        layer.lora_kernel_b.assign(rng.normal(size=layer.lora_kernel_b.shape) * 0.1)
    images = random_images(4, 32, seed=11)
    expected = {t: np.asarray(v) for t, v in model(images).items()}
    multitask.export(model, tmp_path, check_images=images)
    got = kerastl.load_predictor(tmp_path / "1" / "model_float32.tflite").predict(images)
    for task in expected:
        assert_float32_close(got[task], expected[task], depth=6, terms=72)
    assert not peft.lora_layers(kerastl.load(tmp_path, compile=False))
