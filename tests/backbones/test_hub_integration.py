"""The real TF-Hub-format MobileNetV2 against the Keras Applications one, on flowers."""

import numpy as np
import pytest

import kerastl
from harness import first_images_per_class

pytestmark = pytest.mark.integration

# flowers_kaggle_227 with its first 60 training images per class (300 of 800) and all 200
# validation images: the same real photos at the hub model's fixed 224x224, at 500 backbone
# passes per model instead of 1200.
PER_CLASS = {"train": 60, "val": 40}


@pytest.fixture(scope="module")
def flowers(assets, tmp_path_factory):
    root = first_images_per_class(assets / "datasets" / "flowers_kaggle_227",
                                  tmp_path_factory.mktemp("flowers"), PER_CLASS)
    return kerastl.data.from_directory(root, image_size=224, batch_size=32, seed=0)


def _accuracy(model, data):
    probs = model.predict(data.validation, verbose=0)
    labels = np.concatenate([y.numpy() for _, y in data.validation])
    return float((probs.argmax(-1) == labels).mean())


def test_hub_backbone_matches_keras_applications_accuracy(assets, keras_home, flowers):
    handle = assets / "hub" / "mobilenet_v2_100_224_feature_vector"
    scores = {}
    for name in (f"hub:{handle}", "mobilenet_v2"):
        model = kerastl.build(name, flowers.num_classes, input_shape=(224, 224, 3),
                              class_names=flowers.class_names)
        # No validation data: the head (and its L2 strength, by cross-validation on the
        # training images) never sees the 200 images it is scored on.
        kerastl.fit(model, flowers.train, recipe="feature_extraction", augment_passes=0,
                    seed=0, verbose=0)
        scores[name.split(":")[0]] = _accuracy(model, flowers)
    print(scores)  # shown by pytest when an assertion fails
    assert scores["mobilenet_v2"] >= 0.85, scores
    # Within 2 points (4 of the 200 validation images), inclusive.
    assert round(abs(scores["hub"] - scores["mobilenet_v2"]), 6) <= 0.02, scores


def test_trainable_hub_run_updates_hub_variables(assets, flowers):
    handle = assets / "hub" / "mobilenet_v2_100_224_feature_vector"
    model = kerastl.build(f"hub:{handle}", flowers.num_classes, input_shape=(224, 224, 3),
                          trainable_blocks="all")
    backbone = kerastl.get_backbone(model)
    before = [w.numpy().copy() for w in backbone.trainable_weights]
    frozen_before = [w.numpy().copy() for w in backbone.non_trainable_weights]
    assert before and frozen_before
    small = flowers.train.unbatch().take(8).batch(8)  # one step of 8 real photos
    kerastl.fit(model, small, recipe="fine_tune", epochs=1, learning_rate=1e-4,
                cache_features=False, early_stopping=False, seed=0, verbose=0)
    changed = sum(not np.array_equal(a, w.numpy())
                  for a, w in zip(before, backbone.trainable_weights))
    assert changed >= 0.9 * len(before)
    for a, w in zip(frozen_before, backbone.non_trainable_weights):
        np.testing.assert_array_equal(a, w.numpy())
