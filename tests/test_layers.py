import keras
import numpy as np
import pytest

from harness import assert_float32_close, assert_serialization_round_trip, random_images
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
    # Up to 3 float32 operations per pixel (scale, shift, divide), on values up to 255.
    assert_float32_close(got, reference(x.copy()), depth=3, scale=255.0)


def test_preprocessing_unit_and_bad_mode():
    x = random_images(1, 4)
    assert_float32_close(keras.ops.convert_to_numpy(ImagePreprocessing("unit")(x)), x / 255.0,
                         depth=1)
    with pytest.raises(ValueError, match="`mode` must be one of"):
        ImagePreprocessing("imagenet")


def test_preprocessing_serializes():
    clone = assert_serialization_round_trip(ImagePreprocessing("caffe", backbone="resnet50"))
    assert clone.backbone == "resnet50"


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.mark.parametrize("task,units,activation", [
    ("multiclass", 3, _softmax),
    ("binary", 1, _sigmoid),
    ("multilabel", 4, _sigmoid),
    ("regression", 2, lambda z: z),  # linear: no squashing into [0, 1]
])
def test_head_outputs_per_task(task, units, activation):
    head = ClassificationHead(units, task=task, dropout=0.0, hidden_units=(5,))
    x = np.random.default_rng(0).normal(size=(3, 2, 2, 6)).astype("float32") * 3.0
    y = keras.ops.convert_to_numpy(head(x))
    assert y.shape == (3, units)
    # The head is avg-pool -> Dense(5, relu) -> Dense(units, task activation).
    (w1, b1), (w2, b2) = head.dense_layers[0].get_weights(), head.output_layer.get_weights()
    head.output_layer.bias.assign(b2 + 2.0)  # a bias that a missing activation would show
    y = keras.ops.convert_to_numpy(head(x))
    logits = np.maximum(x.mean(axis=(1, 2)) @ w1 + b1, 0.0) @ w2 + b2 + 2.0
    assert_float32_close(y, activation(logits), depth=4, terms=6)


def test_head_accepts_pooled_features_and_split_equals_call():
    head = ClassificationHead(2, dropout=0.5, pooling="max")
    fmap = np.random.rand(4, 3, 3, 7).astype("float32")
    whole = keras.ops.convert_to_numpy(head(fmap))
    split = keras.ops.convert_to_numpy(head.classify(head.pool(fmap)))
    assert_float32_close(whole, split, depth=3, terms=7)  # pool, dense, softmax
    pooled = fmap.max(axis=(1, 2))
    assert_float32_close(keras.ops.convert_to_numpy(head(pooled)), whole, depth=3, terms=7)


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
