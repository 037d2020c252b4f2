"""kerastl.build with the real ImageNet MobileNetV2 weights (via a seeded KERAS_HOME)."""

import keras
import numpy as np
import pytest

import kerastl
from harness import assert_float32_close, assert_keras_round_trip

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def images(assets):
    from PIL import Image

    folder = assets / "datasets" / "flowers_kaggle_227" / "train" / "daisy"
    files = sorted(folder.iterdir())[:8]
    return np.stack([np.asarray(Image.open(f).convert("RGB").resize((160, 160)), "float32")
                     for f in files])


def test_features_equal_keras_applications(keras_home, images):
    model = kerastl.build("mobilenet_v2", 5, input_shape=(160, 160, 3))
    features = kerastl.feature_extractor(model, pooled=False)
    reference = keras.applications.MobileNetV2(include_top=False, weights="imagenet",
                                               input_shape=(160, 160, 3))
    expected = reference.predict(keras.applications.mobilenet_v2.preprocess_input(images.copy()),
                                 verbose=0)
    got = features.predict(images, verbose=0)
    assert np.abs(expected).max() > 1.0  # real, non-trivial features
    # Same weights, other graph: oneDNN may pick other kernels (AVX-512/AMX).
    # Depth: the reference's layers; longest sum: a 1x1 conv over 960 channels.
    depth = len(reference.layers)
    assert_float32_close(got, expected, depth=depth, terms=960)
    pooled = kerastl.feature_extractor(model).predict(images, verbose=0)
    assert_float32_close(pooled, expected.mean(axis=(1, 2)), depth=depth + 1, terms=960,
                         scale=np.abs(expected).max())


def test_frozen_backbone_does_not_change_in_fit(keras_home, images):
    model = kerastl.build("mobilenet_v2", 2, input_shape=(160, 160, 3))
    backbone = model.get_layer("backbone")
    before = [w.copy() for w in backbone.get_weights()]
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    head_before = [w.copy() for w in kerastl.get_head(model).get_weights()]
    model.fit(images, np.arange(len(images)) % 2, epochs=1, batch_size=4, verbose=0)
    for a, b in zip(before, backbone.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b)
               for a, b in zip(head_before, kerastl.get_head(model).get_weights()))


@pytest.mark.parametrize("k", [1, 3])
def test_exactly_top_k_blocks_change(keras_home, images, k):
    model = kerastl.build("mobilenet_v2", 2, input_shape=(160, 160, 3), trainable_blocks=k)
    model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
    blocks = kerastl.get_blocks(model)
    before = {w.path: w.numpy().copy() for w in model.weights}
    model.fit(images, np.arange(len(images)) % 2, epochs=1, batch_size=4, verbose=0)
    changed = {w.path for w in model.weights if not np.array_equal(before[w.path], w.numpy())}
    top = {w.path for b in blocks[-k:] for layer in b.layers for w in layer.trainable_weights}
    head = {w.path for w in kerastl.get_head(model).weights}
    assert changed - head == top


def test_real_weights_round_trip(keras_home, images, tmp_path):
    model = kerastl.build("mobilenet_v2", 5, input_shape=(160, 160, 3), trainable_blocks=2,
                          class_names=list("abcde"))
    assert_keras_round_trip(model, images[:4], tmp_path, atol=0)


def test_weights_file_path(assets, images):
    path = (assets / "weights" /
            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5")
    by_path = kerastl.build("mobilenet_v2", 2, input_shape=(96, 96, 3), weights=str(path))
    by_name = kerastl.build("mobilenet_v2", 2, input_shape=(96, 96, 3), weights="imagenet")
    for a, b in zip(by_path.get_layer("backbone").get_weights(),
                    by_name.get_layer("backbone").get_weights()):
        np.testing.assert_array_equal(a, b)
