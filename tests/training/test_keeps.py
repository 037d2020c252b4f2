"""The rule that keeps a later stage only when it clearly beats the earlier ones."""

from types import SimpleNamespace

import numpy as np

from kerastl.training.selection import keeps as _keeps


def _ctx(count, monitor="val_accuracy"):
    return SimpleNamespace(monitor=monitor, validation=SimpleNamespace(num_examples=count))


def _acc(correct, count):
    # As Keras reports it: a float32 mean.
    return {"val_accuracy": float(np.float32(correct) / np.float32(count))}


def test_one_more_correct_validation_example_is_not_enough():
    for count in (24, 120, 160, 1000):
        head = {"val_accuracy": (count - 3) / count}  # the closed-form head: exact
        assert not _keeps(_ctx(count), _acc(count - 2, count), head), count
        assert _keeps(_ctx(count), _acc(count - 1, count), head), count


def test_a_count_that_is_an_upper_bound_does_not_let_one_example_through():
    # 120 validation images in batches of 32: the dataset's cardinality says 128.
    head = {"val_accuracy": 117 / 120}
    assert not _keeps(_ctx(128), _acc(118, 120), head)
    assert _keeps(_ctx(128), _acc(119, 120), head)


def test_ties_and_losses_and_the_first_stage():
    head = {"val_accuracy": 0.9}
    assert not _keeps(_ctx(100), {"val_accuracy": 0.9}, head)
    assert not _keeps(_ctx(100), {"val_accuracy": 0.8}, head)
    assert _keeps(_ctx(100), {"val_accuracy": 0.5}, None)
    loss = _ctx(100, monitor="val_loss")
    assert _keeps(loss, {"val_loss": 0.49}, {"val_loss": 0.5})
    assert not _keeps(loss, {"val_loss": 0.51}, {"val_loss": 0.5})
