"""`distill` moves a student of another input size toward its teacher's soft outputs."""

import numpy as np
import pytest
from harness import tiny_kerastl_model

from kerastl.distillation import agreement, distill
from .helpers import kl, teacher_and_data


def test_student_matches_teacher_far_better_after_distill():
    teacher, train, val = teacher_and_data()
    student = tiny_kerastl_model(3, size=24, seed=5)  # 24 px student, 32 px teacher
    before = kl(teacher, student, val[0])
    report = distill(teacher, student, train, val, alpha=1.0, temperature=1.0, views=2,
                     recipe="fine_tune", epochs=10, batch_size=8, learning_rate=3e-2, seed=0,
                     verbose=0)
    after = kl(teacher, student, val[0])
    # Pure distillation (alpha=1): only the teacher's outputs can have moved the student.
    assert after < 0.1 * before, (before, after)
    assert agreement(teacher, student, val[0])["kl"] == pytest.approx(after, rel=1e-6)
    stage = report.stages[0]
    assert stage.epochs_run == 10 and report.num_labeled == 48 and report.views == 2
    losses = stage.history["distillation_loss"]
    assert losses[-1] < losses[0]
    assert report.best_stage == 0 and "val_accuracy" in report.best
    assert "kerastl.distill" in str(report) and report.to_json()
    # The student ends compiled for plain labels and outputs probabilities again.
    probs = student.predict(np.zeros((2, 24, 24, 3), "float32"), verbose=0)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-5)
    assert student.compiled and student.get_compile_config()["loss"] is not None
