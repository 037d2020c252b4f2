import keras
import numpy as np
import pytest

from harness import assert_serialization_round_trip, random_images
from kerastl.layers import ClassificationHead, ImagePreprocessing

A = keras.applications


@pytest.mark.parametrize("mode,reference", [
    ("tf", A.mobilenet_v2.preprocess_input),
    ("torch", A.densenet.preprocess_input),
    ("caffe", A.resnet50.preprocess_input),
    ("none", A.efficientnet.preprocess_input),
])
def test_preprocessing_matches_keras_applications(mode, reference):
    x = random_images(2, 8)
    got = keras.ops.convert_to_numpy(ImagePreprocessing(mode)(x))
    np.testing.assert_allclose(got, reference(x.copy()), rtol=1e-5, atol=1e-4)


def test_preprocessing_unit_and_bad_mode():
    x = random_images(1, 4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ImagePreprocessing("unit")(x)),
                               x / 255.0, rtol=1e-6)
    with pytest.raises(ValueError, match="`mode` must be one of"):
        ImagePreprocessing("imagenet")


def test_preprocessing_serializes():
    clone = assert_serialization_round_trip(ImagePreprocessing("caffe", backbone="resnet50"))
    assert clone.backbone == "resnet50"


@pytest.mark.parametrize("task,units,activation_check", [
    ("multiclass", 3, lambda y: np.allclose(y.sum(-1), 1.0, atol=1e-5)),
    ("binary", 1, lambda y: ((y >= 0) & (y <= 1)).all()),
    ("multilabel", 4, lambda y: ((y >= 0) & (y <= 1)).all()),
    ("regression", 2, lambda y: True),
])
def test_head_outputs_per_task(task, units, activation_check):
    head = ClassificationHead(units, task=task, dropout=0.0, hidden_units=(5,))
    y = keras.ops.convert_to_numpy(head(np.random.rand(3, 2, 2, 6).astype("float32")))
    assert y.shape == (3, units)
    assert activation_check(y)


def test_head_accepts_pooled_features_and_split_equals_call():
    head = ClassificationHead(2, dropout=0.5, pooling="max")
    fmap = np.random.rand(4, 3, 3, 7).astype("float32")
    whole = keras.ops.convert_to_numpy(head(fmap))
    split = keras.ops.convert_to_numpy(head.classify(head.pool(fmap)))
    np.testing.assert_allclose(whole, split, rtol=1e-6)
    pooled = fmap.max(axis=(1, 2))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(head(pooled)), whole, rtol=1e-5)


def test_head_output_stays_float32_under_mixed_precision():
    head = ClassificationHead(2, dtype="mixed_float16")
    y = head(np.random.rand(2, 2, 2, 4).astype("float32"))
    assert keras.backend.standardize_dtype(y.dtype) == "float32"


def test_head_validation_and_serialization():
    with pytest.raises(ValueError, match=r"`dropout` must be a number >= 0.0 and < 1.0"):
        ClassificationHead(2, dropout=1.0)
    with pytest.raises(ValueError, match="`class_names` must have 3 entries"):
        ClassificationHead(3, class_names=["a", "b"])
    with pytest.raises(ValueError, match="`task` must be one of"):
        ClassificationHead(2, task="classification")
    head = ClassificationHead(1, task="binary", class_names=["no", "yes"], hidden_units=(4,))
    clone = assert_serialization_round_trip(head)
    assert clone.class_names == ["no", "yes"] and clone.hidden_units == (4,)
