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
    np.testing.assert_array_equal(inputs.representative_images(images, SHAPE, 4), images[:4])
    np.testing.assert_array_equal(inputs.representative_images((images, labels), SHAPE, 20),
                                  images)
    pairs = tf.data.Dataset.from_tensor_slices((images, labels)).batch(3)
    got = inputs.representative_images(pairs, SHAPE, 7)
    np.testing.assert_array_equal(got, images[:7])
    only_images = tf.data.Dataset.from_tensor_slices(images.astype("uint8")).batch(4)
    got = inputs.representative_images(only_images, SHAPE, 100)
    assert got.dtype == np.float32 and got.shape == (10, 8, 8, 3)


def test_representative_images_stops_reading_at_the_limit(data):
    images, _ = data
    endless = tf.data.Dataset.from_tensor_slices(images).batch(2).repeat()
    assert inputs.representative_images(endless, SHAPE, 5).shape == (5, 8, 8, 3)


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
