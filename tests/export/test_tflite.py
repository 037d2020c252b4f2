"""Tests of kerastl/export/tflite.py and tflite_metadata.py: conversion, int8 rules, running."""

import keras
import numpy as np
import pytest
from harness import (TINY_MODEL, assert_float32_close, random_images, separable_images,
                     tiny_kerastl_model, train_tiny_model)

from kerastl.export import saved_model, tflite, tflite_metadata


def _narrow(images):
    """Calibration images that never reach 0 or 255: the uint8 input must still be raw pixels."""
    return 30.0 + images[:40] * (170.0 / 255.0)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    images, labels = separable_images(96, 3, seed=11)
    model = train_tiny_model(tiny_kerastl_model(3, seed=11), images, labels)
    folder = tmp_path_factory.mktemp("tflite")
    saved_model.write_conversion_saved_model(model, folder / "conv")
    narrow = _narrow(images)
    files = {}
    for quantization in ("float32", "int8"):
        data = tflite.convert(folder / "conv", quantization, calibration_images=narrow)
        files[quantization] = folder / f"{quantization}.tflite"
        files[quantization].write_bytes(data)
    return model, images, labels, files


def test_float32_matches_keras_for_any_batch_size(converted):
    model, images, _, files = converted
    expected = model.predict(images[:10], verbose=0)
    for batch_size in (1, 4, 32):
        got = tflite.predict_tflite(files["float32"], images[:10], batch_size=batch_size)
        assert_float32_close(got, expected, **TINY_MODEL)
    single = tflite.predict_tflite(files["float32"], images[0])  # one image, no batch axis
    assert_float32_close(single, expected[:1], **TINY_MODEL)


def test_conversion_saved_model_converts_to_the_bytes_of_a_keras_export_archive(converted,
                                                                              tmp_path):
    # write_conversion_saved_model saves only the traced function and its variables; an
    # ExportArchive of the whole Keras model (what it wrote before) converts to the same files.
    import tensorflow as tf

    model, images, _, files = converted
    archive = keras.export.ExportArchive()
    archive.track(model)
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="image")
    archive.add_endpoint("serving_default", lambda image: model(image, training=False),
                         input_signature=[spec])
    archive.write_out(str(tmp_path / "archive"), verbose=False)
    for quantization in ("float32", "int8"):
        data = tflite.convert(tmp_path / "archive", quantization,
                              calibration_images=_narrow(images))
        assert data == files[quantization].read_bytes(), quantization


def test_int8_takes_raw_uint8_pixels_and_returns_uint8(converted):
    model, images, labels, files = converted
    interpreter = tflite.make_interpreter(files["int8"])
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert inp["dtype"] == np.uint8 and out["dtype"] == np.uint8
    scale, zero_point = inp["quantization"]
    assert scale == pytest.approx(1.0) and zero_point == 0
    # Feed camera pixels straight in, as a phone app would.
    pixels = np.round(images[:1]).astype(np.uint8)
    interpreter.set_tensor(inp["index"], pixels)
    interpreter.invoke()
    raw = interpreter.get_tensor(out["index"]).astype("float32")
    out_scale, out_zero = out["quantization"]
    probs = (raw - out_zero) * out_scale
    np.testing.assert_allclose(probs, model.predict(pixels.astype("float32"), verbose=0),
                               atol=0.1)
    got = tflite.predict_tflite(files["int8"], images)
    assert got.dtype == np.float32 and got.min() >= 0.0 and got.max() <= 1.0
    agreement = np.mean(got.argmax(-1) == model.predict(images, verbose=0).argmax(-1))
    assert agreement >= 0.9
    assert np.mean(got.argmax(-1) == labels) >= 0.85


class _Sine(keras.layers.Layer):
    def call(self, x):
        return keras.ops.sin(x)


def test_ops_that_cannot_be_quantized_are_an_error_not_a_float_fallback(tmp_path):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3)(inputs)
    outputs = keras.layers.Dense(2, activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(_Sine()(x)))
    saved_model.write_conversion_saved_model(keras.Model(inputs, outputs), tmp_path / "conv")
    with pytest.raises(tflite.QuantizationError, match=r"SIN .*quantization=\('float32'"):
        tflite.convert(tmp_path / "conv", "int8", calibration_images=random_images(4, 8))
    assert tflite.convert(tmp_path / "conv", "dynamic")  # other modes are fine


def test_int8_needs_calibration_images(converted, tmp_path):
    with pytest.raises(ValueError, match="calibration"):
        tflite.convert(tmp_path, "int8")


def test_predict_tflite_checks_its_input(converted):
    _, images, _, files = converted
    with pytest.raises(ValueError, match=r"shape \(N, 32, 32, 3\)"):
        tflite.predict_tflite(files["float32"], images[:, :16])
    with pytest.raises(ValueError, match="batch_size"):
        tflite.predict_tflite(files["float32"], images, batch_size=0)


def test_metadata_is_embedded_without_changing_the_model(converted, tmp_path):
    _, images, _, files = converted
    for quantization, path in files.items():
        data = path.read_bytes()
        tagged = tflite_metadata.embed_metadata(data, labels=["α", "b", "c"],
                                                info={"task": "multiclass", "q": quantization})
        (tmp_path / "tagged.tflite").write_bytes(tagged)
        meta = tflite_metadata.read_tflite_metadata(tmp_path / "tagged.tflite")
        assert meta == {"labels": ["α", "b", "c"], "info": {"task": "multiclass",
                                                           "q": quantization}}
        np.testing.assert_array_equal(tflite.predict_tflite(tmp_path / "tagged.tflite", images),
                                      tflite.predict_tflite(path, images))
        # Embedding again replaces the entries instead of adding more.
        again = tflite_metadata.embed_metadata(tagged, labels=["x"], info={})
        (tmp_path / "again.tflite").write_bytes(again)
        assert tflite_metadata.read_tflite_metadata(tmp_path / "again.tflite") == {
            "labels": ["x"], "info": {}}
    assert tflite_metadata.read_tflite_metadata(files["float32"]) == {}


def test_latency_is_measured_per_image(converted):
    _, images, _, files = converted
    interpreter = tflite.make_interpreter(files["float32"])
    interpreter.allocate_tensors()
    assert tflite.latency_ms(interpreter, images[:5]) > 0
    assert tflite.runtime_name() == "ai_edge_litert"
