"""`kerastl.distill(seed=...)` is reproducible whatever the process built before the student."""

import numpy as np
from harness import assert_same_random_streams

import kerastl
from kerastl.distillation import distill
from .helpers import teacher_and_data


def _student():
    return kerastl.build("mobilenet", 3, input_shape=(32, 32, 3), weights=None,
                         backbone_kwargs={"alpha": 0.25}, head={"dropout": 0.5})


def _states(model):
    return [np.asarray(v) for v in model.variables if "seed_generator_state" in v.path]


def _distill(before, start, teacher, train, val):
    for _ in range(before):  # other models built first move Keras's global random state
        _student()
    student = _student()
    student.set_weights(start)
    built_with = _states(student)
    distill(teacher, student, train, val, recipe="fine_tune", trainable_blocks=1, epochs=1,
            views=1, batch_size=16, seed=3, verbose=0)
    return built_with, _states(student), student.get_weights()


def test_distill_seed_draws_the_same_masks_however_many_models_came_before():
    teacher, train, val = teacher_and_data()
    start = _student().get_weights()
    assert_same_random_streams(_distill(0, start, teacher, train, val),
                               _distill(2, start, teacher, train, val))
