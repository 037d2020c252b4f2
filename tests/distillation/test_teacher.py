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

    def distinct(boxes):  # one entry per distinct view (a flip drawn twice is one view)
        return len({(i, tuple(b)) for i, row in enumerate(boxes) for b in row})

    assert cache.computed == distinct(boxes) == len(cache) and 4 < len(cache) <= 8
    again = TeacherCache(str(tmp_path))
    np.testing.assert_array_equal(again.get([teacher], images, boxes), first)
    assert again.computed == 0 and len(again) == distinct(boxes)
    # A subset in another order (e.g. labels dropped) is read from memory, per image.
    order = np.array([2, 0])
    np.testing.assert_array_equal(cache.get([teacher], images.subset(order), boxes[order]),
                                  first[order])
    assert cache.computed == distinct(boxes)
    # More views of the same seed: the first two are the same views, only new ones run.
    three = view_boxes(range(4), 3, augment="flip", seed=3)
    more = cache.get([teacher], images, three)
    np.testing.assert_array_equal(more[:, :2], first)
    assert cache.computed == distinct(three) == len(cache)
    # Other views are other entries (view 0, the whole image, is every run's).
    crops = view_boxes(range(4), 2, augment="crop_flip", seed=4)
    cache.get([teacher], images, crops)
    assert cache.computed == distinct(np.concatenate([three, crops], axis=1))
    assert np.log(MIN_PROBABILITY) < first.min() <= 0.0
    with pytest.raises(ValueError):
        collect("train", (x, y.astype("float32") + 0.5), labeled=True)
