import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerastl
from harness import assert_float32_close, random_images
from kerastl import multitask
from kerastl.export import tflite
from tests.multitask._models import tiny_two_task_model as _model


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
