"""Tests of kerastl/export/inputs.py: calibration and evaluation data in every accepted form."""

import numpy as np
import pytest
import tensorflow as tf
from harness import separable_images

from kerastl.export import inputs

SHAPE = (8, 8, 3)


@pytest.fixture(scope="module")
def data():
    return separable_images(10, 2, 8, seed=0)


def test_representative_images_from_arrays_and_datasets(data):
    images, labels = data
    np.testing.assert_array_equal(inputs.representative_images(images, SHAPE, 4),
                                  images[[0, 2, 5, 7]])
    np.testing.assert_array_equal(inputs.representative_images((images, labels), SHAPE, 20),
                                  images)
    pairs = tf.data.Dataset.from_tensor_slices((images, labels)).batch(3)
    got = inputs.representative_images(pairs, SHAPE, 7)  # 4 batches: all read, then spread
    np.testing.assert_array_equal(got, images[inputs.spread(10, 7)])
    only_images = tf.data.Dataset.from_tensor_slices(images.astype("uint8")).batch(4)
    got = inputs.representative_images(only_images, SHAPE, 100)
    assert got.dtype == np.float32 and got.shape == (10, 8, 8, 3)


def test_representative_images_stops_reading_at_the_limit(data):
    images, _ = data
    endless = tf.data.Dataset.from_tensor_slices(images).batch(2).repeat()
    assert inputs.representative_images(endless, SHAPE, 5).shape == (5, 8, 8, 3)


def _sorted_by_class(classes=5, per_class=40):
    """Images whose every pixel is their class index, stored class after class."""
    labels = np.repeat(np.arange(classes), per_class)
    return np.broadcast_to(labels[:, None, None, None], (len(labels),) + SHAPE).astype(
        "float32"), labels


def test_calibration_images_of_data_sorted_by_class_cover_every_class():
    images, labels = _sorted_by_class()
    got = inputs.representative_images(images, SHAPE, 20)
    assert np.bincount(got[:, 0, 0, 0].astype(int)).tolist() == [4] * 5
    for batch in (1, 4):  # 20 images in 5 or more batches spread over the 200
        pairs = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch)
        got = inputs.representative_images(pairs, SHAPE, 20)
        assert len(got) == 20 and set(got[:, 0, 0, 0].astype(int)) == set(range(5)), batch


def test_spread_takes_distinct_evenly_spaced_indices():
    for n, limit in ((10, 4), (200, 20), (7, 7), (5, 9), (1000, 999)):
        got = inputs.spread(n, limit)
        assert len(got) == min(n, limit) == len(set(got)) and got[0] == 0 and got[-1] < n
        if n > limit:
            assert np.diff(got).max() - np.diff(got).min() <= 1


def test_wrong_image_size_or_empty_data_is_an_error(data):
    images, _ = data
    with pytest.raises(ValueError, match=r"input shape \(8, 8, 3\).*\(10, 4, 4, 3\)"):
        inputs.representative_images(images[:, :4, :4], SHAPE, 5)
    empty = tf.data.Dataset.from_tensor_slices(images[:0]).batch(2)
    with pytest.raises(ValueError, match="no images"):
        inputs.representative_images(empty, SHAPE, 5)


def test_eval_arrays_from_tuple_and_dataset(data):
    images, labels = data
    got_images, got_labels = inputs.eval_arrays((images, labels), SHAPE)
    np.testing.assert_array_equal(got_labels, labels)
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    got_images, got_labels = inputs.eval_arrays(ds, SHAPE)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    multi_hot = np.eye(3)[labels]
    _, got = inputs.eval_arrays((images, multi_hot), SHAPE)
    assert got.shape == (10, 3)


def test_eval_data_without_labels_is_an_error(data):
    images, _ = data
    with pytest.raises(ValueError, match=r"\(images, labels\)"):
        inputs.eval_arrays(tf.data.Dataset.from_tensor_slices(images).batch(4), SHAPE)
    with pytest.raises(ValueError, match="eval_data"):
        inputs.eval_arrays(images, SHAPE)
