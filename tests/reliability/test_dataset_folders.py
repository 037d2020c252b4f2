"""Hostile dataset folders: symbolic-link loops and escapes, label-breaking names, bombs.

Issue 14, items 1, 2, 11 (datasets) and 12 (`from_directory(None)`).
"""

import warnings

import numpy as np
import pytest
from harness import make_image_folder

import kerastl

pytestmark = pytest.mark.timeout(120)


def _load(path, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = kerastl.data.from_directory(path, image_size=16, batch_size=4, **kwargs)
    return data, [str(w.message) for w in caught]


def _skipped_links(data):
    return [p for p, reason in data.skipped if "symbolic link" in reason]


@pytest.fixture
def folder(tmp_path):
    return make_image_folder(tmp_path / "ds", classes=("cats", "dogs"), per_class=4, size=20)


def test_link_to_its_own_folder_is_not_followed(folder):
    (folder / "cats" / "self").symlink_to(".")
    data, messages = _load(folder)
    assert data.counts["train"] == {"cats": 4, "dogs": 4}
    assert _skipped_links(data) == [str(folder / "cats" / "self")]
    assert any("symbolic link" in m and "cats/self" in m for m in messages)


def test_link_to_the_parent_does_not_count_dogs_as_cats(folder):
    (folder / "cats" / "up").symlink_to("..")
    data, _ = _load(folder)
    assert data.counts["train"] == {"cats": 4, "dogs": 4}
    assert _skipped_links(data) == [str(folder / "cats" / "up")]


def test_loop_and_escape_in_one_folder_end_quickly(folder):
    (folder / "cats" / "self").symlink_to(".")
    (folder / "cats" / "up").symlink_to("..")
    data, _ = _load(folder)
    assert data.num_examples["train"] == 8
    assert sorted(_skipped_links(data)) == sorted(
        [str(folder / "cats" / "self"), str(folder / "cats" / "up")])


def test_links_out_of_the_dataset_or_into_another_class_are_skipped(folder, tmp_path):
    outside = make_image_folder(tmp_path / "elsewhere", classes=("x",), per_class=3, size=20)
    (folder / "cats" / "out").symlink_to(outside / "x")
    dog = sorted((folder / "dogs").iterdir())[0]
    (folder / "cats" / "a_dog.jpg").symlink_to(dog)
    data, _ = _load(folder)
    assert data.counts["train"] == {"cats": 4, "dogs": 4}
    assert sorted(_skipped_links(data)) == sorted(
        [str(folder / "cats" / "out"), str(folder / "cats" / "a_dog.jpg")])


def test_links_inside_their_own_class_are_followed_once(folder):
    sub = folder / "cats" / "more"
    make_image_folder(folder / "tmp", classes=("more",), per_class=2, size=20)
    (folder / "tmp" / "more").rename(sub)
    (folder / "tmp").rmdir()
    (folder / "cats" / "alias").symlink_to("more")          # same folder twice
    (folder / "cats" / "copy.jpg").symlink_to(sorted(sub.iterdir())[0])  # same file twice
    data, _ = _load(folder)
    assert data.counts["train"] == {"cats": 6, "dogs": 4}  # each image once
    assert set(_skipped_links(data)) <= {str(folder / "cats" / "alias")}


@pytest.mark.parametrize("bad", ["a\nfake", "tab\there", "esc\x1b[31m", "line\u2028sep"])
def test_class_folder_names_that_break_label_files_are_refused(folder, bad):
    (folder / "dogs").rename(folder / bad)
    with pytest.raises(ValueError, match="Class folder names") as err:
        kerastl.data.from_directory(folder, image_size=16)
    assert repr(bad)[1:-1] in str(err.value)


def test_decompression_bomb_is_skipped_and_named(folder):
    from PIL import Image

    bomb = folder / "cats" / "bomb.png"
    Image.new("1", (10000, 10000)).save(bomb)  # 100 megapixels in a few kilobytes
    data, messages = _load(folder)
    assert data.counts["train"] == {"cats": 4, "dogs": 4}
    [(path, reason)] = data.skipped
    assert path == str(bomb) and "10000x10000" in reason and "max_image_pixels" in reason
    assert any("bomb.png" in m for m in messages)
    assert not any("DecompressionBomb" in m or "decompression bomb" in m for m in messages)


def test_pixel_limit_is_configurable(folder):
    from PIL import Image

    Image.new("RGB", (30, 30), (9, 9, 9)).save(folder / "cats" / "big.png")
    data, _ = _load(folder, max_image_pixels=20 * 20)  # the 20x20 images are at the limit
    assert data.counts["train"] == {"cats": 4, "dogs": 4}
    assert [p for p, _ in data.skipped] == [str(folder / "cats" / "big.png")]


def test_pixel_limit_none_and_bad_values(folder):
    data, _ = _load(folder, max_image_pixels=None)
    assert data.num_examples["train"] == 8
    with pytest.raises(ValueError, match="Received: max_image_pixels=0"):
        _load(folder, max_image_pixels=0)


@pytest.mark.parametrize("path", [None, 3])
def test_from_directory_without_a_path(path):
    with pytest.raises(TypeError, match=f"`path` must be a folder path.*Received: path={path}"):
        kerastl.data.from_directory(path, image_size=16)


def test_images_still_load_after_the_scan(folder):
    (folder / "cats" / "self").symlink_to(".")
    data, _ = _load(folder)
    images = np.concatenate([x for x, _ in data.train.as_numpy_iterator()])
    assert images.shape == (8, 16, 16, 3)


def test_from_arrays_refuses_class_names_that_break_label_files():
    x = np.zeros((4, 8, 8, 3), "uint8")
    with pytest.raises(ValueError, match="'b\\\\nc' contains the control character"):
        kerastl.data.from_arrays(x, np.array([0, 1, 0, 1]), class_names=["a", "b\nc"])
