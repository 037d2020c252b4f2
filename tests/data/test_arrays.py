import numpy as np
import pytest
from harness import separable_images

import kerastl.data


def _all(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


def test_uint8_images_with_stratified_validation_split():
    x, y = separable_images(40, 4, size=12)
    x[:, 0, 0, 0] = np.arange(40)  # pixel (0, 0) holds the index of the example
    data = kerastl.data.from_arrays(x.astype(np.uint8), y, batch_size=8, validation_split=0.25,
                                    class_names=["a", "b", "c", "d"])
    assert data.num_examples == {"train": 30, "validation": 10}
    assert sorted(data.counts["validation"].values()) == [2, 2, 3, 3]
    for name, count in data.counts["train"].items():
        assert count + data.counts["validation"][name] == 10
    assert data.class_names == ["a", "b", "c", "d"] and data.num_classes == 4
    assert data.label_type == "int" and data.train.class_names == data.class_names
    images, labels = next(iter(data.train))
    assert images.shape == (8, 12, 12, 3) and images.dtype.name == "float32"
    assert labels.dtype.name == "int64"
    vx, vy = _all(data.validation)
    index = vx[:, 0, 0, 0].astype(int)
    # Validation keeps the original pixels and order; it is disjoint from train.
    assert (np.diff(index) > 0).all()
    np.testing.assert_array_equal(vx, x[index].astype(np.uint8))
    np.testing.assert_array_equal(vy, y[index])
    tx, _ = _all(data.train)
    assert sorted(tx[:, 0, 0, 0].astype(int).tolist() + index.tolist()) == list(range(40))


def test_counts_match_the_labels():
    y = np.array([0] * 6 + [1] * 14)
    data = kerastl.data.from_arrays(np.zeros((20, 4, 4, 3), np.uint8), y, validation_split=0.5)
    assert data.counts == {"train": {"0": 3, "1": 7}, "validation": {"0": 3, "1": 7}}
    assert data.class_weight() == pytest.approx({0: 10 / 6, 1: 10 / 14})


def test_resizing_grayscale_and_float_inputs():
    gray = np.full((5, 10, 10), 80, np.uint8)
    data = kerastl.data.from_arrays(gray, np.arange(5) % 2, image_size=(4, 6))
    images, _ = _all(data.train)
    assert images.shape == (5, 4, 6, 3) and (images == 80).all()
    floats = np.full((3, 8, 8, 3), 12.5, np.float32)
    data = kerastl.data.from_arrays(floats, np.array([0, 1, 1]), shuffle=False)
    images, labels = _all(data.train)
    assert (images == 12.5).all() and labels.tolist() == [0, 1, 1]
    assert data.image_size == (8, 8)


def test_multi_hot_and_regression_labels():
    x = np.zeros((10, 4, 4, 3), np.uint8)
    multi = (np.arange(30).reshape(10, 3) % 2).astype(np.float32)
    data = kerastl.data.from_arrays(x, multi, validation_split=0.2)
    assert data.label_type == "multi_hot" and data.num_classes == 3
    assert data.class_names == ["0", "1", "2"]
    total = {k: data.counts["train"][k] + data.counts["validation"][k] for k in "012"}
    assert total == {"0": 5, "1": 5, "2": 5}
    _, labels = next(iter(data.train))
    assert labels.shape[1:] == (3,) and labels.dtype.name == "float32"
    data = kerastl.data.from_arrays(x, np.linspace(0, 1, 10), validation_split=0.3)
    assert data.label_type == "float" and data.num_classes == 1 and data.class_names == []
    assert data.num_examples == {"train": 7, "validation": 3} and data.counts["train"] == {}
    with pytest.raises(ValueError, match="integer class labels"):
        data.class_weight()


def test_unit_scaled_images_warn():
    with pytest.warns(UserWarning, match="all <= 1"):
        kerastl.data.from_arrays(np.full((2, 4, 4, 3), 0.5), np.array([0, 1]))


@pytest.mark.parametrize("x, match", [
    (np.full((2, 4, 4, 3), -1.0), "values range from -1.0"),
    (np.full((2, 4, 4, 3), 300), "values range from"),
    (np.zeros((2, 4, 4, 2)), "shape \\(2, 4, 4, 2\\)"),
    (np.zeros((4, 4)), "shape \\(4, 4\\)"),
    (np.array([["a"]] * 2), "must be"),
])
def test_invalid_images(x, match):
    with pytest.raises(ValueError, match=match):
        kerastl.data.from_arrays(x, np.array([0, 1]))


def test_invalid_labels_and_class_names():
    x = np.zeros((4, 4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="1-D array of 4 labels"):
        kerastl.data.from_arrays(x, np.array([0, 1, 1]))
    with pytest.raises(ValueError, match=">= 0"):
        kerastl.data.from_arrays(x, np.array([0, 1, -1, 0]))
    with pytest.raises(ValueError, match="at least 3 names"):
        kerastl.data.from_arrays(x, np.array([0, 1, 2, 0]), class_names=["a", "b"])
    with pytest.raises(ValueError, match="Too few examples \\(4\\) to make a test split"):
        kerastl.data.from_arrays(x, np.array([0, 1, 2, 3]), test_split=0.5)
    with pytest.raises(ValueError, match="`validation_split` must be"):
        kerastl.data.from_arrays(x, np.array([0, 1, 2, 0]), validation_split=2)
