"""Unlabelled images add only the distillation term (a labelled set of zero images)."""

import numpy as np
from harness import tiny_kerastl_model

from kerastl.distillation import distill
from .helpers import kl, teacher_and_data


def test_zero_labelled_images_train_on_the_distillation_term_only():
    teacher, (x, _), val = teacher_and_data()
    student = tiny_kerastl_model(3, size=24, seed=5)
    before = kl(teacher, student, val[0])
    empty = (np.zeros((0, 32, 32, 3), "float32"), np.zeros((0,), "int64"))
    report = distill(teacher, student, empty, val, unlabeled=x, alpha=0.5, temperature=1.0,
                     views=2, recipe="fine_tune", epochs=6, batch_size=8, learning_rate=3e-2, seed=0,
                     verbose=0)
    history = report.stages[0].history
    assert report.num_labeled == 0 and report.num_unlabeled == len(x)
    # No label term at all: every epoch's student loss is exactly 0 ...
    assert history["student_loss"] == [0.0] * 6
    # ... so the total is (1 - 0.5) * 0 + 0.5 * distillation.
    np.testing.assert_allclose(history["total_loss"],
                               0.5 * np.asarray(history["distillation_loss"]), rtol=1e-5)
    assert kl(teacher, student, val[0]) < 0.5 * before
    # Validation images are labelled: their label term is measured.
    assert min(history["val_student_loss"]) > 0
