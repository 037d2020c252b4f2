"""A LoRA model exports merged: the .tflite and .keras files equal `kerastl.peft.merge`."""

import keras
import numpy as np
import pytest

import kerastl.export as kexport
from harness import assert_float32_close, random_images
from kerastl import peft
from tests.peft._models import mixed_model, perturb

pytestmark = pytest.mark.filterwarnings("ignore::kerastl.accessors.UnregisteredBackboneWarning")


def test_lora_model_exports_merged_and_tflite_equals_the_merged_model(tmp_path):
    images = random_images(6, 16, seed=3)
    model = mixed_model()
    peft.apply(model, "lora", rank=2)
    perturb(peft.peft_variables(model), scale=0.2)
    merged = peft.merge(model)
    expected = keras.ops.convert_to_numpy(merged(images))
    # The perturbed LoRA factors matter: without them the outputs differ.
    assert np.abs(expected - keras.ops.convert_to_numpy(mixed_model()(images))).max() > 1e-3
    kexport.export(model, tmp_path, formats=("tflite", "keras"), quantization=("float32",),
                   verbose=0)
    got = kexport.predict_tflite(tmp_path / "1" / "model_float32.tflite", images)
    assert_float32_close(got, expected, depth=10, terms=72)
    reloaded = kexport.load(tmp_path / "1" / "model.keras", compile=False)
    assert not peft.lora_layers(reloaded)
    assert_float32_close(keras.ops.convert_to_numpy(reloaded(images)), expected, depth=10,
                         terms=72)
