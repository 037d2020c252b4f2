"""Teacher targets: the ensemble averages probabilities; the cache runs a teacher once."""

import numpy as np
import pytest
import tensorflow as tf
from harness import float32_tolerance, separable_images, tiny_kerastl_model

from kerastl.distillation import TeacherCache
from kerastl.distillation.teacher import MIN_PROBABILITY, predict_targets
from kerastl.distillation.views import collect, view_boxes


def _probs(model, images, boxes, view, size):
    from kerastl.distillation.views import render

    x = np.stack([render(tf.constant(p), tf.constant(b[view]), size).numpy()
                  for p, b in zip(images.pixels, boxes)])
    return np.asarray(model.predict(x, verbose=0), "float64")


def test_ensemble_target_is_the_mean_of_probabilities():
    x, y = separable_images(5, 3, 24)
    images = collect("train", (x, y), labeled=True)
    boxes = view_boxes(images.keys, 3, augment="crop_flip", seed=0)
    a, b = tiny_kerastl_model(3, size=24, seed=1), tiny_kerastl_model(3, size=16, seed=2)
    targets = predict_targets([a, b], images, boxes)
    assert targets.shape == (5, 3, 3) and targets.dtype == np.float32
    for view in range(3):
        mean = (_probs(a, images, boxes, view, (24, 24))
                + _probs(b, images, boxes, view, (16, 16))) / 2
        np.testing.assert_allclose(np.exp(targets[:, view]), mean,
                                   rtol=float32_tolerance(depth=8, terms=144), atol=1e-6)
    # Not the mean of log probabilities (a geometric mean would not sum to 1).
    np.testing.assert_allclose(np.exp(targets).sum(-1), 1.0, rtol=1e-5)


def test_cache_runs_the_teacher_once_and_reads_back_from_disk(tmp_path):
    x, y = separable_images(4, 3, 16)
    images = collect("train", (x, y), labeled=True)
    boxes = view_boxes(range(4), 2, augment="flip", seed=3)
    teacher = tiny_kerastl_model(3, size=16)
    cache = TeacherCache(str(tmp_path))
    first = cache.get([teacher], images, boxes)
    np.testing.assert_array_equal(cache.get([teacher], images, boxes), first)
    assert cache.computed == 4 and len(cache) == 4
    again = TeacherCache(str(tmp_path))
    np.testing.assert_array_equal(again.get([teacher], images, boxes), first)
    assert again.computed == 0 and len(again) == 4
    # A subset in another order (e.g. labels dropped) is read from memory, per image.
    order = np.array([2, 0])
    np.testing.assert_array_equal(cache.get([teacher], images.subset(order), boxes[order]),
                                  first[order])
    assert cache.computed == 4
    # Other views are other entries.
    cache.get([teacher], images, view_boxes(range(4), 2, augment="crop_flip", seed=4))
    assert cache.computed == 8
    assert np.log(MIN_PROBABILITY) < first.min() <= 0.0
    with pytest.raises(ValueError):
        collect("train", (x, y.astype("float32") + 0.5), labeled=True)
