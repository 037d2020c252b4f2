"""Tests of kerastl/export/info.py: model metadata for the exporters."""

import keras
import pytest
from harness import tiny_kerastl_model

from kerastl.export.info import model_metadata


def test_metadata_of_a_kerastl_model():
    info = model_metadata(tiny_kerastl_model(3, class_names=["a", "b", "c"]))
    assert info == {"backbone": "tiny", "task": "multiclass", "num_outputs": 3,
                    "class_names": ["a", "b", "c"], "labels": ["a", "b", "c"],
                    "input_shape": [32, 32, 3], "preprocessing": "tf"}


def test_default_labels_and_override():
    binary = tiny_kerastl_model(1, task="binary")
    assert model_metadata(binary)["labels"] == ["0", "1"]
    assert model_metadata(binary, class_names=["cat", "dog"])["class_names"] == ["cat", "dog"]
    with pytest.raises(ValueError, match="must have 2 entries"):
        model_metadata(binary, class_names=["cat", "dog", "fox"])


def test_models_without_the_kerastl_layout_are_refused():
    inputs = keras.Input((8, 8, 3))
    plain = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    with pytest.raises(ValueError, match="not a kerastl model"):
        model_metadata(plain)


def test_variable_input_size_is_refused():
    from kerastl.layers import ClassificationHead, ImagePreprocessing

    image = keras.Input((None, None, 3))
    x = ImagePreprocessing("tf", name="preprocessing")(image)
    x = keras.layers.Conv2D(4, 3)(x)
    model = keras.Model(image, ClassificationHead(2, name="head")(x))
    with pytest.raises(ValueError, match="fixed input size"):
        model_metadata(model)
