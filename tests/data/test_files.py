import os

import pytest

from kerastl.data import files


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def test_image_files_recursive_sorted_and_filtered(tmp_path):
    for name in ("b.JPG", "a.png", "sub/c.jpeg", "notes.txt", ".hidden.jpg", ".cache/d.jpg",
                 "x.webp", "y.tif"):
        _touch(tmp_path / name)
    found = [os.path.relpath(p, tmp_path) for p in files.image_files(str(tmp_path))]
    assert found == sorted(["a.png", "b.JPG", os.path.join("sub", "c.jpeg"), "x.webp", "y.tif"])


def test_split_folders(tmp_path):
    _touch(tmp_path / "train" / "cats" / "1.jpg")
    _touch(tmp_path / "val" / "cats" / "1.jpg")
    _touch(tmp_path / "test" / "cats" / "1.jpg")
    layout = files.split_folders(str(tmp_path))
    assert layout == {"train": str(tmp_path / "train"), "validation": str(tmp_path / "val"),
                      "test": str(tmp_path / "test")}


def test_class_folders_named_like_splits_are_not_a_split(tmp_path):
    _touch(tmp_path / "train" / "1.jpg")  # "train" holds images: it is a class
    _touch(tmp_path / "test" / "1.jpg")
    assert files.split_folders(str(tmp_path)) is None
    _touch(tmp_path / "other" / "1.jpg")
    assert files.split_folders(str(tmp_path)) is None


def test_class_files(tmp_path):
    _touch(tmp_path / "b" / "2.jpg")
    _touch(tmp_path / "a" / "1.jpg")
    assert list(files.class_files(str(tmp_path))) == ["a", "b"]
    (tmp_path / "c").mkdir()
    with pytest.raises(ValueError, match="Empty class folder"):
        files.class_files(str(tmp_path))


def test_join_keeps_url_separators():
    assert files.join("gs://bucket/data", "cats") == "gs://bucket/data/cats"
    assert files.join("data", "cats") == os.path.join("data", "cats")
