"""from_tfds on a tiny dataset built in the test, read with the network blocked."""

import socket

import numpy as np
import pytest
import tensorflow_datasets as tfds

import kerastl.data

COLORS = {"red": (200, 0, 0), "green": (0, 200, 0), "blue": (0, 0, 200)}


class KerastlTinyColors(tfds.core.GeneratorBasedBuilder):
    """Solid-color images; the label is the color. Image sizes vary."""

    VERSION = tfds.core.Version("1.0.0")
    # Defined in a test, not in a dataset package: no source folder with a checksums file.
    # (Finding one needs the `importlib_resources` package with tfds 4.9 and etils >= 1.10.)
    code_path = None

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3)),
                "label": tfds.features.ClassLabel(names=list(COLORS)),
                "index": np.int32,
            }),
            supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(12, 0),
                "validation": self._generate_examples(6, 100)}

    def _generate_examples(self, n, offset):
        for i in range(n):
            label = i % 3 if i < n - 2 else 0  # class 0 is the most frequent
            image = np.zeros((10 + i, 12 + i, 3), np.uint8)
            image[...] = COLORS[list(COLORS)[label]]
            yield offset + i, {"image": image, "label": label, "index": offset + i}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tfds")
    KerastlTinyColors(data_dir=str(path)).download_and_prepare()
    return str(path)


@pytest.fixture
def offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access is blocked in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_reads_a_prepared_dataset_offline(data_dir, offline):
    data = kerastl.data.from_tfds("kerastl_tiny_colors", data_dir=data_dir, image_size=(8, 6),
                                  batch_size=4)
    assert data.class_names == ["red", "green", "blue"] and data.num_classes == 3
    assert data.splits == ["train", "validation"]
    assert data.num_examples == {"train": 12, "validation": 6}
    assert data.counts == {"train": {"red": 6, "green": 3, "blue": 3},
                           "validation": {"red": 4, "green": 1, "blue": 1}}
    assert data.validation.class_names == data.class_names
    assert int(data.train.cardinality()) == 3 and int(data.validation.cardinality()) == 2
    images, labels = next(iter(data.train))
    assert images.shape == (4, 8, 6, 3) and images.dtype.name == "float32"
    assert labels.dtype.name == "int64"
    for split in (data.train, data.validation):
        for batch, batch_labels in split:
            for image, label in zip(batch.numpy(), batch_labels.numpy()):
                np.testing.assert_array_equal(image[0, 0], COLORS[data.class_names[label]])
    assert data.class_weight() == pytest.approx({0: 12 / 18, 1: 12 / 9, 2: 12 / 9})


def test_validation_order_is_fixed_and_training_is_shuffled(data_dir):
    data = kerastl.data.from_tfds("kerastl_tiny_colors", data_dir=data_dir, image_size=4,
                                  split=("train", "validation", "train[:6]"), batch_size=64)
    assert data.num_examples["test"] == 6
    val = lambda: next(iter(data.validation))[1].numpy().tolist()
    assert val() == val()
    epochs = [next(iter(data.train))[1].numpy().tolist() for _ in range(3)]
    assert sorted(epochs[0]) == [0] * 6 + [1] * 3 + [2] * 3
    assert len({tuple(e) for e in epochs}) > 1


def test_split_slices_and_single_split(data_dir):
    data = kerastl.data.from_tfds("kerastl_tiny_colors", data_dir=data_dir, image_size=4,
                                  split="train[:50%]")
    assert data.splits == ["train"] and data.num_examples == {"train": 6}


def test_not_prepared_says_how_to_prepare(tmp_path, offline):
    with pytest.raises(FileNotFoundError, match="not prepared in .*download_and_prepare.*"
                                                "download=True"):
        kerastl.data.from_tfds("kerastl_tiny_colors", data_dir=str(tmp_path), image_size=4)


def test_download_prepares_the_dataset(tmp_path):
    data = kerastl.data.from_tfds("kerastl_tiny_colors", data_dir=str(tmp_path), image_size=4,
                                  split="validation", download=True)
    assert data.num_examples == {"train": 6}


def test_invalid_arguments(data_dir):
    with pytest.raises(ValueError, match="Unknown tensorflow-datasets dataset. Did you mean "
                                         "'kerastl_tiny_colors'"):
        kerastl.data.from_tfds("kerastl_tiny_color", data_dir=data_dir, image_size=4)
    with pytest.raises(ValueError, match="`label_key` must be one of"):
        kerastl.data.from_tfds("kerastl_tiny_colors", data_dir=data_dir, image_size=4,
                               label_key="labels")
    with pytest.raises(ValueError, match="`label_key` must name a class label feature"):
        kerastl.data.from_tfds("kerastl_tiny_colors", data_dir=data_dir, image_size=4,
                               label_key="index")
    with pytest.raises(ValueError, match="`image_key` must name an image feature"):
        kerastl.data.from_tfds("kerastl_tiny_colors", data_dir=data_dir, image_size=4,
                               image_key="label")
    with pytest.raises(ValueError, match="`split` must be"):
        kerastl.data.from_tfds("kerastl_tiny_colors", data_dir=data_dir, image_size=4,
                               split=("train", "validation", "train", "train"))
    with pytest.raises(ValueError, match="`download` must be True or False"):
        kerastl.data.from_tfds("kerastl_tiny_colors", data_dir=data_dir, image_size=4,
                               download="no")
