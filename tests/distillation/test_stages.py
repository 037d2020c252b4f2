"""distill's stages: kerastl.fit first, then a cached distillation stage kept only if it wins."""

import numpy as np
from harness import separable_images, tiny_kerastl_model

import kerastl
from kerastl.distillation import TeacherCache, distill
from kerastl.training.fitting import fit
from .helpers import kl, teacher_and_data


def test_cached_stage_trains_the_top_blocks_and_is_kept_when_it_wins():
    teacher, train, val = teacher_and_data()
    student = tiny_kerastl_model(3, size=24, seed=5)  # a random head: easy to beat
    first = next(layer for layer in kerastl.get_blocks(student)[0].layers if layer.weights)
    bottom = [np.array(w) for w in first.get_weights()]
    assert bottom  # the first block's convolution kernel (its InputLayer has none)
    before = kl(teacher, student, val[0])
    report = distill(teacher, student, train, val, start="student", trainable_blocks=2,
                     views=3, alpha=1.0, temperature=1.0, fine_tune_epochs=8, batch_size=8,
                     learning_rate=3e-2, seed=0, verbose=0)
    given, tuned = report.stages
    assert given.name == "student" and tuned.cached == "prefix" and tuned.epochs_run >= 1
    assert report.best_stage == 1
    assert tuned.best["val_accuracy"] > given.best["val_accuracy"]
    assert kl(teacher, student, val[0]) < 0.5 * before
    # The frozen bottom block was cached, not trained.
    for a, b in zip(first.get_weights(), bottom):
        np.testing.assert_array_equal(a, b)


def test_fitted_student_is_kept_when_distillation_does_not_beat_it():
    teacher, train, val = teacher_and_data()
    # Labels no student gets all right, so the distillation stage runs and is judged.
    val = (val[0], separable_images(24, 3, 32, seed=1, mislabeled=4)[1])
    student = tiny_kerastl_model(3, size=24, seed=5)
    cache = TeacherCache()  # empty (falsy): the run must still fill this one
    report = distill(teacher, student, train, val, trainable_blocks=2, views=2,
                     fine_tune_epochs=1, learning_rate=1e-9, batch_size=8, seed=0,
                     teacher_cache=cache, verbose=0)
    assert len(cache) == cache.computed > len(train[0]) and report.teacher_seconds > 0
    first, tuned = report.stages
    assert first.name == "fit" and report.fit["recipe"] == "two_stage"
    # A learning rate of 1e-9 cannot gain two validation images: the fit is kept ...
    assert report.best_stage == 0 and tuned.cached == "prefix"
    # ... with its head refitted on training + validation images, as kerastl.fit does:
    # the student is then kerastl.fit's own result.
    assert first.solver == "linear" and first.refit_on == "training + validation data"
    direct = tiny_kerastl_model(3, size=24, seed=5)
    size = (24, 24)
    import tensorflow as tf

    def small(x):
        x = np.clip(np.rint(x), 0, 255).astype("float32")  # distill keeps images as uint8
        return tf.image.resize(x, size, antialias=True).numpy().clip(0, 255)

    direct_report = fit(direct, (small(train[0]), train[1]), (small(val[0]), val[1]), seed=0,
                        verbose=0)
    assert direct_report.stages[direct_report.best_stage].solver == "linear"
    probe = small(val[0])
    np.testing.assert_allclose(student.predict(probe, verbose=0),
                               direct.predict(probe, verbose=0), atol=1e-3)
