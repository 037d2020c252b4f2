"""Tests of kerastl/export/saved_model.py: the serving SavedModel and its signatures."""

import io
import json

import numpy as np
import pytest
import tensorflow as tf
from harness import (TINY_MODEL, assert_float32_close, random_images, run_python, separable_images,
                     tiny_kerastl_model)
from PIL import Image

from kerastl.export import saved_model

_SERVE_SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf
root = sys.argv[1] if len(sys.argv) > 1 else {root!r}
loaded = tf.saved_model.load(root + "/saved_model")
images = np.load(root + "/images.npy")
raw = loaded.signatures["serving_default"](image=tf.constant(images))
as_uint8 = loaded.signatures["serving_uint8"](image=tf.constant(images.astype("uint8")))
blobs = [open(root + "/" + name, "rb").read() for name in ("a.png", "b.jpg")]
from_bytes = loaded.signatures["serving_bytes"](image_bytes=tf.constant(blobs))
print(json.dumps({{
    "kerastl_imported": any(m == "kerastl" or m.startswith("kerastl.") for m in sys.modules),
    "signatures": sorted(loaded.signatures.keys()),
    "raw": raw["probabilities"].numpy().tolist(),
    "raw_index": raw["class_index"].numpy().tolist(),
    "uint8": as_uint8["probabilities"].numpy().tolist(),
    "bytes": from_bytes["probabilities"].numpy().tolist(),
    "bytes_index": from_bytes["class_index"].numpy().tolist(),
}}))
"""


def _encode(array, fmt, **kwargs):
    buffer = io.BytesIO()
    Image.fromarray(array.astype("uint8")).save(buffer, fmt, **kwargs)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def model():
    return tiny_kerastl_model(3, class_names=["a", "b", "c"], seed=3)


def test_saved_model_serves_raw_images_and_encoded_bytes_without_kerastl(model, tmp_path):
    saved_model.write_serving_saved_model(model, tmp_path / "saved_model", task="multiclass")
    images = np.round(random_images(2, seed=4))  # integral pixels: uint8 input is identical
    np.save(tmp_path / "images.npy", images)
    (tmp_path / "a.png").write_bytes(_encode(images[0], "PNG"))
    big = np.asarray(Image.fromarray(images[1].astype("uint8")).resize((40, 48)))
    (tmp_path / "b.jpg").write_bytes(_encode(big, "JPEG", quality=95))

    result = run_python(_SERVE_SCRIPT.format(root=str(tmp_path)), timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["kerastl_imported"] is False
    assert out["signatures"] == ["serving_bytes", "serving_default", "serving_uint8"]

    expected = model.predict(images, verbose=0)
    assert_float32_close(out["raw"], expected, **TINY_MODEL)
    assert out["raw_index"] == expected.argmax(-1).tolist()
    assert_float32_close(out["uint8"], expected, **TINY_MODEL)
    # PNG is lossless at the model's size: exactly the raw request.
    assert_float32_close(out["bytes"][0], expected[0], **TINY_MODEL)
    # JPEG of another size: decoded and resized like tf.image.resize (bilinear).
    decoded = tf.io.decode_jpeg((tmp_path / "b.jpg").read_bytes(), channels=3)
    resized = tf.image.resize(tf.cast(decoded, tf.float32), (32, 32), method="bilinear")
    assert_float32_close(out["bytes"][1], model.predict(resized[None], verbose=0)[0], **TINY_MODEL)


@pytest.mark.parametrize("task, num_outputs", [("binary", 1), ("regression", 2)])
def test_outputs_per_task(task, num_outputs, tmp_path):
    model = tiny_kerastl_model(num_outputs, task=task, seed=5)
    saved_model.write_serving_saved_model(model, tmp_path / "sm", task=task)
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    images, _ = separable_images(4, 2, seed=6)
    out = loaded.signatures["serving_default"](image=tf.constant(images))
    expected = model.predict(images, verbose=0)
    if task == "regression":
        assert set(out) == {"predictions"}
        assert_float32_close(out["predictions"].numpy(), expected, **TINY_MODEL)
    elif task == "binary":
        probs = out["probabilities"].numpy()
        assert probs.shape == (4, 2)  # columns line up with the two class names
        assert_float32_close(probs[:, 1:], expected, **TINY_MODEL)
        assert_float32_close(probs.sum(-1), 1.0, **TINY_MODEL)
        assert out["class_index"].numpy().tolist() == (expected[:, 0] > 0.5).astype(int).tolist()
    assert_float32_close(
        saved_model.predict_saved_model(loaded, images, task=task, batch_size=3), expected,
        **TINY_MODEL)


def test_conversion_saved_model_returns_the_raw_output(model, tmp_path):
    saved_model.write_conversion_saved_model(model, tmp_path / "conv")
    loaded = tf.saved_model.load(str(tmp_path / "conv"))
    images = random_images(3, seed=7)
    got = loaded.signatures["serving_default"](image=tf.constant(images))
    (values,) = got.values()
    assert_float32_close(values.numpy(), model.predict(images, verbose=0), **TINY_MODEL)


def test_conversion_saved_model_falls_back_to_an_export_archive(model, tmp_path, monkeypatch):
    # A function the lean SavedModel cannot save (e.g. an untracked lookup table) is
    # written with keras.export.ExportArchive instead, over the failed attempt's files.
    real_save, saved = tf.saved_model.save, []

    def save(obj, path, *args, **kwargs):
        saved.append(type(obj).__name__)
        if len(saved) == 1:
            (tmp_path / "conv").mkdir()
            (tmp_path / "conv" / "partial").write_text("left by the failed attempt")
            raise AssertionError("Tried to export a function which references an 'untracked' "
                                 "resource")  # what tf.saved_model.save raises for one
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(tf.saved_model, "save", save)
    saved_model.write_conversion_saved_model(model, tmp_path / "conv")
    assert saved[0] == "Module" and len(saved) == 2 and saved[1] != "Module"
    assert not (tmp_path / "conv" / "partial").exists()
    loaded = tf.saved_model.load(str(tmp_path / "conv"))
    images = random_images(3, seed=7)
    (values,) = loaded.signatures["serving_default"](image=tf.constant(images)).values()
    assert_float32_close(values.numpy(), model.predict(images, verbose=0), **TINY_MODEL)
