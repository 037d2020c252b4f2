"""distill's arguments: clear errors before any work."""

import re

import numpy as np
import pytest
from harness import separable_images, tiny_kerastl_model

from kerastl.distillation import TeacherCache, distill


@pytest.fixture(scope="module")
def pair():
    return tiny_kerastl_model(3, size=16, seed=0), tiny_kerastl_model(3, size=16, seed=1)


@pytest.fixture(scope="module")
def data():
    return separable_images(6, 3, 16)


@pytest.mark.parametrize("kwargs, message", [
    ({"temperature": 0}, "`temperature` must be a number > 0.0. Received: temperature=0"),
    ({"temperature": -1.5}, "`temperature` must be a number > 0.0"),
    ({"temperature": "hot"}, "`temperature` must be a number"),
    ({"alpha": 1.5}, "`alpha` must be a number >= 0.0 and <= 1.0. Received: alpha=1.5"),
    ({"alpha": -0.1}, "`alpha` must be a number >= 0.0 and <= 1.0"),
    ({"views": 0}, "`views` must be an integer between 1 and 64. Received: views=0"),
    ({"augment": "strong"}, "`augment` must be one of 'crop_flip', 'flip', 'none'"),
    ({"recipe": "auto"}, "`recipe` must be one of 'two_stage'"),
    ({"start": "scratch"}, "`start` must be one of 'fit', 'student'. Received: start='scratch'"),
    ({"refit_head": "yes"}, "`refit_head` must be"),
    ({"epochs": 0}, "`epochs` must be"),
    ({"label_smoothing": 1.0}, "`label_smoothing`"),
    ({"trainable_blocks": 99}, "`trainable_blocks` must be an integer between 0 and 4 or 'all'. Received: trainable_blocks=99"),
    ({"teacher_cache": {}}, "`teacher_cache` must be a kerastl.distillation.TeacherCache"),
])
def test_bad_arguments(pair, data, kwargs, message):
    teacher, student = pair
    with pytest.raises(ValueError, match=re.escape(message)):
        distill(teacher, student, data, verbose=0, **kwargs)


def test_bad_models_and_data(pair, data):
    teacher, student = pair
    with pytest.raises(ValueError, match="same classes"):
        distill(tiny_kerastl_model(4, size=16), student, data, verbose=0)
    with pytest.raises(ValueError, match="multiclass"):
        distill(tiny_kerastl_model(1, size=16, task="binary"), student, data, verbose=0)
    with pytest.raises(ValueError, match="another model"):
        distill(student, student, data, verbose=0)
    with pytest.raises(ValueError, match="non-empty list"):
        distill([], student, data, verbose=0)
    with pytest.raises(TypeError, match="`student` must be a kerastl model"):
        distill(teacher, "mobilenet", data, verbose=0)
    with pytest.raises(ValueError, match="below the student's 3 classes"):
        distill(teacher, student, (data[0], np.full(6, 3)), verbose=0)
    with pytest.raises(ValueError, match="both empty"):
        distill(teacher, student, (data[0][:0], data[1][:0]), verbose=0)
    with pytest.raises(TypeError, match="`unlabeled` must be"):
        distill(teacher, student, data, unlabeled={"x": 1}, verbose=0)
    with pytest.raises(ValueError, match="same size"):
        distill(teacher, student, data, unlabeled=np.zeros((2, 8, 8, 3)), verbose=0)
    assert len(TeacherCache()) == 0
