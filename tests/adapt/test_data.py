"""`kerastl.adapt.data`: target folders, arrays and datasets; clear errors for bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from harness import make_image_folder, separable_images, tiny_kerastl_model

from kerastl.adapt.data import as_target
from kerastl.training import FeatureCache


def test_empty_target_folder_is_an_error(tmp_path):
    model = tiny_kerastl_model(3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="The target folder has no images"):
        as_target(tmp_path / "empty", input_shape=model.input_shape)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        as_target(tmp_path / "missing", input_shape=model.input_shape)


def test_target_images_of_another_size_are_an_error():
    model = tiny_kerastl_model(3)
    with pytest.raises(ValueError, match=r"`target` images must have the model's input shape "
                                         r"\(32, 32, 3\).*Received: target images of shape "
                                         r"\(48, 48, 3\)"):
        as_target(np.zeros((4, 48, 48, 3), "float32"), input_shape=model.input_shape)


def test_a_folder_of_other_sized_images_is_resized(tmp_path):
    model = tiny_kerastl_model(3)
    folder = make_image_folder(tmp_path / "photos", per_class=3, size=50)
    for path in list(folder.rglob("*.jpg"))[:2]:  # flat files next to the class folders
        path.rename(folder / path.name)
    with pytest.warns(UserWarning, match="class folders; adaptation uses only") as record:
        target = as_target(folder, input_shape=model.input_shape, batch_size=4)
    assert len([r for r in record if "labels are ignored" in str(r.message)]) == 1  # said once
    assert target.num_examples == 6 and target.ignored_labels
    images, labels = next(iter(target.dataset))
    assert images.shape[1:] == (32, 32, 3) and not np.asarray(labels).any()


def test_flat_folder_and_labelled_dataset(tmp_path):
    import tensorflow as tf

    model = tiny_kerastl_model(3)
    folder = make_image_folder(tmp_path / "photos", per_class=2, size=32)
    flat = tmp_path / "flat"
    flat.mkdir()
    for i, path in enumerate(sorted(folder.rglob("*.jpg"))):
        path.rename(flat / f"{i}.jpg")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert as_target(flat, input_shape=model.input_shape).num_examples == 4
    x, y = separable_images(10, 3)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    with pytest.warns(UserWarning, match="the target data has labels"):
        target = as_target(ds, input_shape=model.input_shape)
    assert target.source is ds
    from kerastl.adapt.features import cached

    features, labels = cached(FeatureCache(), model, target)
    assert len(features) == 10 and not labels.any()
