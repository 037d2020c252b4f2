"""Fixtures shared by the class-addition tests (`kerastl.extend`)."""

import pytest

from harness import separable_images, tiny_kerastl_model, train_head_on_features


@pytest.fixture(scope="module")
def task():
    """A 3-class tiny model trained on classes 0-2 of 5 separable classes: (model, x, y, old)."""
    x, y = separable_images(150, 5, seed=1)
    old = y < 3
    model = tiny_kerastl_model(3, class_names=["a", "b", "c"])
    train_head_on_features(model, x[old], y[old], epochs=40)
    return model, x, y, old
