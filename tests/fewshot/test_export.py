"""kerastl.fewshot.export: embedding .tflite + prototypes + the classify signature."""

import json

import numpy as np
import pytest
import tensorflow as tf

import kerastl
import kerastl.fewshot as fs
from harness import TINY_MODEL, assert_float32_close, separable_images, tiny_kerastl_model
from kerastl.fewshot import ondevice
from kerastl.fewshot.prototypes import class_prototypes


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    x, y = separable_images(36, 3, seed=1)
    model = fs.build(tiny_kerastl_model(3), (x, y), class_names=["a", "b", "c"])
    root = tmp_path_factory.mktemp("fewshot_export")
    report = fs.export(model, root, representative_data=x, support_data=(x, y),
                       eval_data=(x, y), verbose=0)
    return model, x, y, root / report.version, report


def test_files_and_manifest(exported):
    model, _, _, folder, report = exported
    names = {p.name for p in folder.iterdir()}
    assert {"saved_model", "model.keras", "embedding_float32.tflite", "embedding_int8.tflite",
            "prototype_classifier.tflite", "prototypes.npy", "prototypes.json", "labels.txt",
            "manifest.json"} <= names
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["kind"] == "fewshot_prototypes" and manifest["class_names"] == list("abc")
    assert manifest["embedding_width"] == 16 and manifest["metric"] == "cosine"
    assert set(manifest["artifacts"]) == names - {"manifest.json"}
    stored = json.loads((folder / "prototypes.json").read_text())
    np.testing.assert_allclose(stored["prototypes"], kerastl.get_head(model).prototypes,
                               rtol=1e-6)
    np.testing.assert_array_equal(np.load(folder / "prototypes.npy"),
                                  kerastl.get_head(model).prototypes)
    assert (folder / "labels.txt").read_text().split() == ["a", "b", "c"]
    assert report.to_dict()["metric"] == "cosine" and "embedding_int8.tflite" in str(report)


def test_tflite_signatures(exported):
    _, _, _, folder, _ = exported
    assert ondevice.signatures(folder / "embedding_float32.tflite") == ["classify", "embed"]
    assert ondevice.signatures(folder / "embedding_int8.tflite") == ["embed"]
    assert ondevice.signatures(folder / "prototype_classifier.tflite") == ["classify"]


def test_on_device_class_addition_matches_keras(exported):
    """Prototypes averaged from the .tflite embeddings predict what the Keras model does."""
    model, x, y, folder, report = exported
    path = folder / "embedding_float32.tflite"
    reference = model.predict(x, verbose=0)
    emb = ondevice.embed_tflite(path, x)
    keras_emb = kerastl.feature_extractor(model).predict(x, verbose=0)
    np.testing.assert_allclose(emb, keras_emb, rtol=1e-4, atol=1e-4 * np.abs(keras_emb).max())
    own = class_prototypes(emb, y, 3)
    probs = ondevice.classify_tflite(path, emb, own)
    np.testing.assert_array_equal(probs.argmax(1), reference.argmax(1))
    # A class added on the device: one more row of the prototype matrix, any K works.
    more = ondevice.classify_tflite(path, emb, np.concatenate([own, own[:1] * -1.0]))
    assert more.shape == (len(x), 4)
    np.testing.assert_array_equal(more.argmax(1), reference.argmax(1))
    float_report = report.artifact("embedding_float32.tflite")
    assert float_report.agreement == 1.0 and float_report.on_device_agreement == 1.0


def test_int8_embeddings_agree(exported):
    model, x, _, folder, report = exported
    emb = ondevice.embed_tflite(folder / "embedding_int8.tflite", x)
    head = kerastl.get_head(model)
    probs = ondevice.classify_tflite(folder / "prototype_classifier.tflite", emb,
                                     head.prototypes)
    agreement = np.mean(probs.argmax(1) == model.predict(x, verbose=0).argmax(1))
    assert agreement == pytest.approx(report.artifact("embedding_int8.tflite").agreement)
    assert agreement >= 0.9


def test_saved_model_signatures(exported):
    model, x, _, folder, _ = exported
    loaded = tf.saved_model.load(str(folder / "saved_model"))
    assert {"serving_default", "embed", "classify"} <= set(loaded.signatures)
    emb = loaded.signatures["embed"](image=tf.constant(x))["embedding"]
    head = kerastl.get_head(model)
    out = loaded.signatures["classify"](embedding=emb, prototypes=tf.constant(head.prototypes))
    reference = model.predict(x, verbose=0)
    np.testing.assert_array_equal(out["class_index"].numpy(), reference.argmax(1))
    served = loaded.signatures["serving_default"](image=tf.constant(x))["probabilities"].numpy()
    assert_float32_close(served, reference, **TINY_MODEL)  # the SavedModel graph vs eager


def test_keras_file_reloads(exported):
    model, x, _, folder, _ = exported
    loaded = kerastl.load(folder / "model.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)


def test_bad_input(exported, tmp_path):
    model, x, _, _, _ = exported
    with pytest.raises(ValueError, match="`representative_data`"):
        fs.export(model, tmp_path, quantization="int8", verbose=0)
    with pytest.raises(ValueError, match="`quantization`"):
        fs.export(model, tmp_path, quantization="int4", verbose=0)
    with pytest.raises(ValueError, match="unknown class 'zz'"):
        fs.export(model, tmp_path, support_data={"zz": x[:2]}, verbose=0)
    with pytest.raises(TypeError, match="prototype model"):
        fs.export(tiny_kerastl_model(3), tmp_path, verbose=0)


def test_kerastl_export_takes_a_prototype_model(exported, tmp_path):
    """The prototype model is a kerastl model: the standard exporter runs it as it is."""
    model, x, _, _, _ = exported
    report = kerastl.export(model, tmp_path, formats=("keras", "tflite"),
                            quantization="float32", eval_data=(x, np.zeros(len(x), int)),
                            verbose=0)
    assert report.artifact("model_float32.tflite").agreement == 1.0
    assert report.artifact("model.keras").agreement == 1.0
