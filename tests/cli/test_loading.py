"""DATA specs: ready splits, held-out fractions, evaluation splits and class order."""

from __future__ import annotations

import click
import numpy as np
import pytest
from harness import make_image_folder

import kerastl
from kerastl.cli.loading import (check_data_spec, has_ready_split, load_eval_data,
                                 load_training_data)


@pytest.fixture
def plain_folder(tmp_path):
    return make_image_folder(tmp_path / "plain", classes=("a", "b", "c"), per_class=10, size=32)


def test_ready_split_and_spec_checks(split_folder, plain_folder):
    assert has_ready_split(split_folder) and not has_ready_split(plain_folder)
    assert check_data_spec("tfds:tf_flowers") == "tfds:tf_flowers"
    with pytest.raises(click.UsageError, match="Missing argument 'DATA'"):
        check_data_spec(None)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_data_spec(str(plain_folder / "nope"))
    with pytest.raises(FileNotFoundError, match="is a file"):
        check_data_spec(str(plain_folder / "a" / "a_0.jpg"))


def test_training_data_holds_out_a_fifth_unless_split(split_folder, plain_folder):
    plain = load_training_data(kerastl, str(plain_folder), image_size=32, batch_size=8,
                               validation_split=None, seed=1)
    assert plain.num_examples == {"train": 24, "validation": 6}
    ready = load_training_data(kerastl, str(split_folder), image_size=32, batch_size=8,
                               validation_split=None, seed=1)
    assert ready.num_examples == {"train": 30, "validation": 12}
    no_val = plain_folder.parent / "no_val"
    make_image_folder(no_val / "train", classes=("a", "b"), per_class=10, size=32)
    make_image_folder(no_val / "test", classes=("a", "b"), per_class=3, size=32)
    held_out = load_training_data(kerastl, str(no_val), image_size=32, batch_size=8,
                                  validation_split=None, seed=1)
    assert held_out.num_examples == {"train": 16, "validation": 4, "test": 6}


def test_eval_data_splits_and_class_order(split_folder, plain_folder):
    ds, names, where = load_eval_data(kerastl, str(plain_folder), image_size=(32, 32),
                                      batch_size=8)
    assert sum(int(y.shape[0]) for _, y in ds) == 30 and "all images" in where
    ds, names, where = load_eval_data(kerastl, str(split_folder), image_size=(32, 32),
                                      batch_size=8, class_names=["fox", "dog", "cat"])
    assert names == ["fox", "dog", "cat"] and "validation split" in where
    labels = np.concatenate([y.numpy() for _, y in ds])
    assert np.bincount(labels).tolist() == [4, 4, 4]
    with pytest.raises(click.BadParameter, match="--split"):
        load_eval_data(kerastl, str(plain_folder), image_size=32, batch_size=8,
                       split="validation")
    with pytest.raises(click.BadParameter, match="--split"):
        load_eval_data(kerastl, str(split_folder), image_size=32, batch_size=8, split="all")
    with pytest.raises(ValueError, match="not the model's classes"):
        load_eval_data(kerastl, str(split_folder), image_size=32, batch_size=8,
                       class_names=["cat", "dog", "wolf"])


def test_tfds_specs_pick_splits(monkeypatch):
    from types import SimpleNamespace

    from kerastl.cli import loading

    calls = []

    def from_tfds(name, **kwargs):
        calls.append((name, kwargs["split"]))
        return SimpleNamespace(train="train-ds", class_names=["a", "b"])

    fake = SimpleNamespace(data=SimpleNamespace(from_tfds=from_tfds))
    monkeypatch.setattr(loading, "_tfds_splits", lambda name: {"train"})
    load_training_data(fake, "tfds:tf_flowers", image_size=64, batch_size=8,
                       validation_split=None, seed=0)
    load_training_data(fake, "tfds:tf_flowers", image_size=64, batch_size=8,
                       validation_split=0.1, seed=0)
    _, names, where = load_eval_data(fake, "tfds:tf_flowers", image_size=64, batch_size=8)
    monkeypatch.setattr(loading, "_tfds_splits", lambda name: {"train", "validation", "test"})
    load_training_data(fake, "tfds:beans", image_size=64, batch_size=8, validation_split=None,
                       seed=0)
    load_eval_data(fake, "tfds:beans", image_size=64, batch_size=8)
    assert calls == [("tf_flowers", ("train[:80%]", "train[80%:]")),
                     ("tf_flowers", ("train[:90%]", "train[90%:]")),
                     ("tf_flowers", "train[80%:]"),
                     ("beans", ("train", "validation")), ("beans", "test")]
    assert names == ["a", "b"] and where == "tfds:tf_flowers (train[80%:])"
