"""`kerastl.distill(seed=...)` is reproducible whatever the process built before the student."""

import numpy as np

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
    (built_a, after_a, weights_a) = _distill(0, start, teacher, train, val)
    (built_b, after_b, weights_b) = _distill(2, start, teacher, train, val)
    assert built_a and not all(np.array_equal(a, b) for a, b in zip(built_a, built_b)), \
        "the students must start from different random streams for this test to mean anything"
    for a, b in zip(after_a, after_b):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_array_equal(a, b)
