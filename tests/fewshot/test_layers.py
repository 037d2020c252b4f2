"""PrototypeClassifier / PrototypeHead: scores, serialization, safe-mode save/load."""

import keras
import numpy as np
import pytest

import kerastl
from harness import (assert_float32_close, assert_keras_round_trip,
                     assert_serialization_round_trip, random_images, tiny_kerastl_model)
from kerastl.fewshot.builder import with_head
from kerastl.fewshot.layers import PrototypeClassifier, PrototypeHead, prototype_scores


def _reference_scores(x, p, metric, scale):
    x, p = np.asarray(x, "float64"), np.asarray(p, "float64")
    if metric == "cosine":
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        pn = p / np.linalg.norm(p, axis=1, keepdims=True)
        return scale * xn @ pn.T
    return -scale * ((x[:, None, :] - p[None]) ** 2).sum(-1)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_scores_match_numpy_reference(metric):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 8)).astype("float32")
    p = rng.normal(size=(3, 8)).astype("float32")
    got = keras.ops.convert_to_numpy(prototype_scores(x, p, metric=metric, scale=2.0))
    assert_float32_close(got, _reference_scores(x, p, metric, 2.0), depth=3, terms=8)


def test_classifier_softmax_and_shape():
    layer = PrototypeClassifier(3, metric="cosine", scale=5.0)
    out = keras.ops.convert_to_numpy(layer(np.ones((2, 4), "float32")))
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)
    assert [w.name for w in layer.weights] == ["prototypes"]


@pytest.mark.parametrize("layer", [PrototypeClassifier(4, metric="euclidean", scale=0.5),
                                   PrototypeHead(3, class_names=["a", "b", "c"], pooling="max")])
def test_serialization_round_trip(layer):
    clone = assert_serialization_round_trip(layer)
    assert type(clone) is type(layer)


def test_head_is_a_classification_head_with_one_weight():
    head = PrototypeHead(3, name="head")
    head(keras.ops.ones((1, 2, 2, 5)))
    assert isinstance(head, kerastl.ClassificationHead)
    assert head.task == "multiclass" and head.hidden_units == ()
    assert [w.path for w in head.weights] == ["head/prototypes/prototypes"]


def test_model_saves_and_loads_in_safe_mode(tmp_path):
    base = tiny_kerastl_model(3)
    head = PrototypeHead(3, class_names=["a", "b", "c"], name="head")
    model = with_head(base, head)
    rng = np.random.default_rng(1)
    head.output_layer.set_weights([rng.normal(size=(3, 16)).astype("float32")])
    loaded = assert_keras_round_trip(model, random_images(4), tmp_path, atol=0)
    assert kerastl.model_info(loaded).class_names == ["a", "b", "c"]
    np.testing.assert_array_equal(kerastl.get_head(loaded).prototypes, head.prototypes)


@pytest.mark.parametrize("kwargs, word", [({"metric": "manhattan"}, "metric"),
                                          ({"scale": 0.0}, "scale"),
                                          ({"scale": -1}, "scale")])
def test_bad_options_name_the_argument(kwargs, word):
    with pytest.raises(ValueError, match=f"`{word}`"):
        PrototypeHead(3, **kwargs)
