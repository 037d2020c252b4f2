import os
from pathlib import Path

import numpy as np
import pytest
from harness import make_image_folder
from PIL import Image

import kerastl.data


def _labels(ds):
    return np.concatenate([y.numpy() for _, y in ds])


def _make_classes(root, counts, size=16):
    """Writes `counts[name]` solid-color PNGs per class; pixel value encodes the class."""
    for c, (name, n) in enumerate(counts.items()):
        folder = Path(root) / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("RGB", (size, size), (40 * c, i, 200)).save(folder / f"{name}_{i:03d}.png")
    return Path(root)


def test_flat_folder_without_split_returns_only_train(image_folder):
    data = kerastl.data.from_directory(image_folder, image_size=24, batch_size=5)
    assert data.validation is None and data.test is None
    assert data.class_names == ["cat", "dog", "fox"] and data.num_classes == 3
    assert data.counts == {"train": {"cat": 8, "dog": 8, "fox": 8}}
    assert data.num_examples == {"train": 24}
    assert data.image_size == (24, 24) and data.skipped == []
    images, labels = next(iter(data.train))
    assert images.shape == (5, 24, 24, 3) and images.dtype.name == "float32"
    assert labels.shape == (5,) and labels.dtype.name == "int64"
    assert 0.0 <= float(images.numpy().min()) and float(images.numpy().max()) <= 255.0
    assert data.train.class_names == ["cat", "dog", "fox"]
    assert sorted(_labels(data.train).tolist()) == [0] * 8 + [1] * 8 + [2] * 8


def test_ready_split_with_val_and_test(tmp_path):
    make_image_folder(tmp_path / "train", classes=("a", "b"), per_class=6)
    make_image_folder(tmp_path / "val", classes=("a", "b"), per_class=3, seed=1)
    make_image_folder(tmp_path / "test", classes=("a", "b"), per_class=2, seed=2)
    data = kerastl.data.from_directory(tmp_path, image_size=(20, 30), batch_size=4)
    assert data.splits == ["train", "validation", "test"]
    assert data.num_examples == {"train": 12, "validation": 6, "test": 4}
    assert data.counts["validation"] == {"a": 3, "b": 3}
    images, _ = next(iter(data.test))
    assert images.shape == (4, 20, 30, 3)
    assert data.validation.class_names == data.test.class_names == ["a", "b"]
    assert all(os.sep + "val" + os.sep in p for p in data.validation.file_paths)


def test_validation_folder_name_and_fraction_for_missing_test(tmp_path):
    make_image_folder(tmp_path / "train", classes=("a", "b"), per_class=10)
    make_image_folder(tmp_path / "validation", classes=("a", "b"), per_class=2)
    data = kerastl.data.from_directory(tmp_path, image_size=16, test_split=0.2)
    assert data.num_examples == {"train": 16, "validation": 4, "test": 4}
    assert data.counts["test"] == {"a": 2, "b": 2}


def test_stratified_split_is_proportional_and_deterministic(tmp_path):
    root = _make_classes(tmp_path / "d", {"x": 10, "y": 20, "z": 30})
    data = kerastl.data.from_directory(root, image_size=16, validation_split=0.2, seed=7)
    assert data.counts["validation"] == {"x": 2, "y": 4, "z": 6}
    assert data.counts["train"] == {"x": 8, "y": 16, "z": 24}
    train_files, val_files = set(data.train.file_paths), data.validation.file_paths
    assert not train_files & set(val_files) and len(train_files | set(val_files)) == 60
    # Validation order is fixed: the labels come out the same on every pass.
    assert np.array_equal(_labels(data.validation), _labels(data.validation))
    again = kerastl.data.from_directory(root, image_size=16, validation_split=0.2, seed=7)
    other = kerastl.data.from_directory(root, image_size=16, validation_split=0.2, seed=8)
    assert again.validation.file_paths == val_files
    assert other.validation.file_paths != val_files


def test_labels_match_the_files(tmp_path):
    root = _make_classes(tmp_path / "d", {"x": 3, "y": 4, "z": 5})
    data = kerastl.data.from_directory(root, image_size=16, shuffle=False, batch_size=4)
    images = np.concatenate([x.numpy() for x, _ in data.train])
    labels = _labels(data.train)
    for path, image, label in zip(data.train.file_paths, images, labels):
        name = Path(path).parent.name
        assert data.class_names[label] == name
        index = int(Path(path).stem.split("_")[1])
        np.testing.assert_array_equal(image[0, 0], [40 * label, index, 200])


def test_training_shuffle_is_seeded_and_reshuffles(tmp_path):
    root = _make_classes(tmp_path / "d", {"x": 12, "y": 12})
    first = kerastl.data.from_directory(root, image_size=16, batch_size=4, seed=3)
    second = kerastl.data.from_directory(root, image_size=16, batch_size=4, seed=3)
    order = lambda ds: np.concatenate([x.numpy()[:, 0, 0, 1] + 100 * y.numpy()[:, None].ravel()
                                       for x, y in ds])
    epoch1 = order(first.train)
    assert np.array_equal(epoch1, order(second.train))
    assert not np.array_equal(epoch1, order(first.train))
    assert sorted(epoch1.tolist()) == sorted(set(epoch1.tolist()))


def test_class_names_set_the_label_order(image_folder):
    data = kerastl.data.from_directory(image_folder, image_size=16,
                                       class_names=["fox", "cat", "dog"], shuffle=False)
    assert data.class_names == ["fox", "cat", "dog"]
    first = Path(data.train.file_paths[0]).parent.name
    assert first == "fox" and _labels(data.train)[0] == 0
    with pytest.raises(ValueError, match="not listed: fox; no such folder: wolf"):
        kerastl.data.from_directory(image_folder, image_size=16, class_names=["cat", "dog", "wolf"])


def test_cache_options_give_the_same_images(image_folder, tmp_path):
    def images(**kwargs):
        data = kerastl.data.from_directory(image_folder, image_size=20, shuffle=False, **kwargs)
        return np.concatenate([x.numpy() for x, _ in data.train])

    in_memory = images(cache=True)
    np.testing.assert_array_equal(images(cache=False), in_memory)
    np.testing.assert_array_equal(images(cache=str(tmp_path / "cache")), in_memory)
    assert any(p.name.startswith("cache.train") for p in tmp_path.iterdir())


def test_uncached_training_split_is_shuffled(tmp_path):
    root = _make_classes(tmp_path / "d", {"x": 12, "y": 12})
    data = kerastl.data.from_directory(root, image_size=16, cache=False, seed=1)
    labels = _labels(data.train)
    assert sorted(labels.tolist()) == [0] * 12 + [1] * 12
    assert labels.tolist() != sorted(labels.tolist())


def test_crop_to_aspect_ratio(tmp_path):
    stripes = np.zeros((20, 40, 3), np.uint8)
    stripes[:, :10] = (255, 0, 0)
    stripes[:, 10:30] = (0, 255, 0)
    stripes[:, 30:] = (0, 0, 255)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.fromarray(stripes).save(tmp_path / name / "s.png")
    cropped = kerastl.data.from_directory(tmp_path, image_size=10, crop_to_aspect_ratio=True)
    squashed = kerastl.data.from_directory(tmp_path, image_size=10)
    image = next(iter(cropped.train))[0].numpy()[0]
    assert (image == [0, 255, 0]).all()
    image = next(iter(squashed.train))[0].numpy()[0]
    assert image[:, 0, 0].min() > 200 and image[:, -1, 2].min() > 200


def test_url_style_paths_go_through_gfile(image_folder):
    data = kerastl.data.from_directory("file://" + str(image_folder), image_size=16,
                                       validation_split=0.25)
    assert data.num_examples == {"train": 18, "validation": 6}
    assert data.validation.file_paths[0].startswith("file://")
    assert next(iter(data.validation))[0].shape == (6, 16, 16, 3)


def test_summary_table(tmp_path):
    root = _make_classes(tmp_path / "d", {"daisy": 5, "rose": 10})
    data = kerastl.data.from_directory(root, image_size=16, validation_split=0.2)
    text = str(data)
    assert "2 classes" in text and "16x16" in text
    lines = text.splitlines()
    assert lines[1].split() == ["class", "train", "validation"]
    assert lines[2].split() == ["daisy", "4", "1"]
    assert lines[3].split() == ["rose", "8", "2"]
    assert lines[4].split() == ["total", "12", "3"]
    assert repr(data) == ("ImageData(num_classes=2, image_size=(16, 16), train=12, "
                          "validation=3, skipped=0)")


def test_class_weight_from_the_training_counts(tmp_path):
    root = _make_classes(tmp_path / "d", {"few": 5, "many": 20})
    data = kerastl.data.from_directory(root, image_size=16, validation_split=0.2)
    assert data.counts["train"] == {"few": 4, "many": 16}
    assert data.class_weight() == pytest.approx({0: 20 / 8, 1: 20 / 32})
    assert data.class_weight("sqrt") == pytest.approx({0: (20 / 8) ** 0.5, 1: (20 / 32) ** 0.5})


# ---------------------------------------------------------------- errors


def test_path_that_does_not_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="`path` does not exist. Received: path="):
        kerastl.data.from_directory(tmp_path / "nope", image_size=16)


def test_path_that_is_a_file(tmp_path):
    (tmp_path / "f.jpg").write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match="one subfolder per class"):
        kerastl.data.from_directory(tmp_path / "f.jpg", image_size=16)


def test_empty_class_folder_is_named(image_folder):
    (image_folder / "wolf").mkdir()
    (image_folder / "wolf" / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"Empty class folder\(s\): '.*wolf' contain no images"):
        kerastl.data.from_directory(image_folder, image_size=16)


def test_single_class(tmp_path):
    make_image_folder(tmp_path, classes=("only",), per_class=3)
    with pytest.raises(ValueError, match="at least 2 class folders; found 1 \\('only'\\)"):
        kerastl.data.from_directory(tmp_path, image_size=16)


def test_class_mismatch_between_train_and_val(tmp_path):
    make_image_folder(tmp_path / "train", classes=("a", "b", "c"), per_class=2)
    make_image_folder(tmp_path / "val", classes=("a", "b", "d"), per_class=2)
    with pytest.raises(ValueError, match="missing from val/: c; only in val/: d"):
        kerastl.data.from_directory(tmp_path, image_size=16)


def test_no_images_at_all(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "loose.jpg")
    with pytest.raises(ValueError, match="found 1 image\\(s\\) directly in it"):
        kerastl.data.from_directory(tmp_path, image_size=16)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(ValueError, match="No images found in the class folders"):
        kerastl.data.from_directory(tmp_path, image_size=16)


def test_both_val_and_validation_folders(tmp_path):
    for split in ("train", "val", "validation"):
        make_image_folder(tmp_path / split, per_class=1)
    with pytest.raises(ValueError, match="both 'val/' and 'validation/'"):
        kerastl.data.from_directory(tmp_path, image_size=16)


def test_validation_split_on_an_already_split_folder(tmp_path):
    make_image_folder(tmp_path / "train", per_class=2)
    make_image_folder(tmp_path / "val", per_class=2)
    with pytest.raises(ValueError, match="`validation_split` cannot be used: .* 'val/'"):
        kerastl.data.from_directory(tmp_path, image_size=16, validation_split=0.2)


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1, "0.2", True])
def test_invalid_validation_split(image_folder, value):
    with pytest.raises(ValueError, match=f"`validation_split` must be a number > 0.0 and "
                                         f"< 1.0. Received: validation_split={value!r}"):
        kerastl.data.from_directory(image_folder, image_size=16, validation_split=value)


def test_splits_that_leave_nothing_to_train(image_folder):
    with pytest.raises(ValueError, match="must be less than 1"):
        kerastl.data.from_directory(image_folder, image_size=16, validation_split=0.5,
                                    test_split=0.5)


def test_split_of_single_image_classes(tmp_path):
    make_image_folder(tmp_path, classes=("a", "b"), per_class=1)
    with pytest.raises(ValueError, match="Too few images to make a validation split"):
        kerastl.data.from_directory(tmp_path, image_size=16, validation_split=0.5)


@pytest.mark.parametrize("value", [0, (16,), (16, 16, 3), "160", (16.0, 16), None])
def test_invalid_image_size(image_folder, value):
    with pytest.raises(ValueError, match="`image_size` must be a positive int or a "
                                         r"\(height, width\) pair"):
        kerastl.data.from_directory(image_folder, image_size=value)


def test_invalid_switches_and_batch_size(image_folder):
    with pytest.raises(ValueError, match="`shuffle` must be True or False. Received: shuffle=1"):
        kerastl.data.from_directory(image_folder, image_size=16, shuffle=1)
    with pytest.raises(ValueError, match="`batch_size` must be an integer >= 1"):
        kerastl.data.from_directory(image_folder, image_size=16, batch_size=0)
    with pytest.raises(ValueError, match="`cache` must be True"):
        kerastl.data.from_directory(image_folder, image_size=16, cache="")


@pytest.mark.integration
def test_flowers_kaggle_227(assets):
    data = kerastl.data.from_directory(assets / "datasets" / "flowers_kaggle_227",
                                       image_size=160, batch_size=32)
    assert data.class_names == ["daisy", "dandelion", "rose", "sunflower", "tulip"]
    assert data.num_examples == {"train": 800, "validation": 200}
    assert sum(data.counts["validation"].values()) == 200
    assert data.skipped == []
    assert int(data.train.cardinality()) == 25 and int(data.validation.cardinality()) == 7
    images, labels = next(iter(data.validation))
    assert images.shape == (32, 160, 160, 3) and labels.shape == (32,)
    pixels = images.numpy()
    assert 0.0 <= pixels.min() and pixels.max() <= 255.0 and pixels.std() > 20.0
    assert set(labels.numpy().tolist()) <= set(range(5))
