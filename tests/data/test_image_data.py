import pytest

from kerastl.data import ImageData


def _data(**kwargs):
    base = dict(train="T", validation=None, test="S", class_names=["a", "bb"], num_classes=2,
                image_size=(8, 12), counts={"train": {"a": 3, "bb": 9}, "test": {"a": 1, "bb": 2}},
                num_examples={"train": 12, "test": 3}, batch_size=4)
    base.update(kwargs)
    return ImageData(**base)


def test_splits_and_summary():
    data = _data(skipped=[("x.jpg", "empty file (0 bytes)")])
    assert data.splits == ["train", "test"]
    lines = data.summary().splitlines()
    assert lines[0] == "ImageData: 2 classes, images 8x12, batch_size 4, labels int"
    assert [line.split() for line in lines[1:5]] == [
        ["class", "train", "test"], ["a", "3", "1"], ["bb", "9", "2"], ["total", "12", "3"]]
    assert "skipped 1 unreadable file(s)" in lines[5]
    assert str(data) == data.summary()
    assert repr(data) == "ImageData(num_classes=2, image_size=(8, 12), train=12, test=3, skipped=1)"


def test_class_weight_uses_train_counts():
    assert _data().class_weight() == pytest.approx({0: 12 / 6, 1: 12 / 18})


def test_class_weight_needs_int_labels():
    with pytest.raises(ValueError, match="label_type='float'"):
        _data(label_type="float", counts={"train": {}}).class_weight()
