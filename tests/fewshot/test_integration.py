"""Few-shot prototypes on real photos (MobileNetV2, ImageNet weights, 96 px)."""

import numpy as np
import pytest

import kerastl
import kerastl.fewshot as fs

pytestmark = pytest.mark.integration


def test_prototypes_on_flowers(assets, keras_home):
    data = kerastl.data.from_directory(assets / "datasets" / "flowers_kaggle_227" / "val",
                                       image_size=96, shuffle=False)
    x = np.concatenate([b[0].numpy() for b in data.train])
    y = np.concatenate([b[1].numpy() for b in data.train])
    rng = np.random.default_rng(0)
    support = np.concatenate([rng.choice(np.flatnonzero(y == c), 5, replace=False)
                              for c in range(5)])
    query = np.setdiff1d(np.arange(len(y)), support)
    base = kerastl.build("mobilenet_v2", 5, input_shape=96)
    model = fs.build(base, (x[support], y[support]), class_names=data.class_names)
    accuracy = np.mean(model.predict(x[query], verbose=0).argmax(1) == y[query])
    assert accuracy > 0.4  # chance is 0.2 (about 0.53 at 96 px)
    cache = kerastl.training.FeatureCache()
    result = fs.evaluate(base, data.train, ways=5, shots=1, episodes=100, seed=0,
                         feature_cache=cache)
    assert result.mean > 0.3 and result.ci95 < 0.05
