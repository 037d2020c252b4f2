"""The rule that keeps a later stage only when it clearly beats the earlier ones."""

from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerastl.training.checkpoint import Checkpoint
from kerastl.training.recipes import Stage
from kerastl.training.report import FitReport, StageReport
from kerastl.training.selection import (can_be_beaten, clearly_better, run_stages,
                                        validation_outcomes)
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


# The sign test on the validation examples two stages disagree on.



@pytest.mark.parametrize("gained, lost, kept", [
    (2, 0, True), (1, 0, False), (3, 1, True), (9, 3, True), (12, 8, False), (11, 7, False),
    (14, 8, True), (0, 0, False), (5, 6, False)])
def test_clearly_better_asks_one_standard_deviation_of_the_disagreements(gained, lost, kept):
    assert clearly_better(gained, lost) is kept
    # The rule, written out: the difference is at least 2 and at least sqrt(n).
    assert kept == (gained - lost >= max(2, (gained + lost) ** 0.5))


def _outcomes(right, count=100):
    out = np.zeros(count, bool)
    out[list(right)] = True
    return out


def test_with_outcomes_two_more_right_is_not_enough_when_the_stages_disagree_a_lot():
    head = _outcomes(range(80))                          # 80 / 100
    churn = _outcomes(list(range(8, 80)) + list(range(80, 90)))   # 82: +10, -8
    clean = _outcomes(range(82))                         # 82: +2, -0
    logs, best = _acc(82, 100), _acc(80, 100)
    assert _keeps(_ctx(100), logs, best)                 # the margin alone keeps both
    assert not _keeps(_ctx(100), logs, best, outcomes=churn, best_outcomes=head)
    assert _keeps(_ctx(100), logs, best, outcomes=clean, best_outcomes=head)
    # Outcomes of other lengths (another validation set) fall back to the margin.
    assert _keeps(_ctx(100), logs, best, outcomes=churn[:50], best_outcomes=head)
    # An accuracy that is not better is never kept, whatever the outcomes say.
    assert not _keeps(_ctx(100), best, best, outcomes=clean, best_outcomes=head)


def _lookup_model(num_examples, num_classes):
    """Example i is the one-hot row i; row i of the kernel is its prediction."""
    inputs = keras.Input((num_examples,))
    dense = keras.layers.Dense(num_classes, use_bias=False, activation="softmax")
    return keras.Model(inputs, dense(inputs)), dense


def _predicting(dense, classes, num_classes):
    kernel = np.full((len(classes), num_classes), -5.0, "float32")
    kernel[np.arange(len(classes)), classes] = 5.0
    dense.kernel.assign(kernel)


def _lookup_ctx(model, labels, num_classes, *, one_hot=False, task="multiclass"):
    n = len(labels)
    y = np.eye(num_classes, dtype="float32")[labels] if one_hot else labels
    ds = tf.data.Dataset.from_tensor_slices((np.eye(n, dtype="float32"), y)).batch(7)
    return SimpleNamespace(
        model=model, task=task, monitor="val_accuracy", checkpoint=None,
        train=SimpleNamespace(num_examples=n), validation=SimpleNamespace(num_examples=n),
        options=SimpleNamespace(refit_head=False, verbose=0), cut_for=lambda depth: (None, None),
        validation_batches=lambda: ds)


@pytest.mark.parametrize("one_hot", [False, True])
def test_validation_outcomes_are_per_example_top_class_hits(one_hot):
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    model, dense = _lookup_model(10, 3)
    predicted = np.array([0, 1, 0, 0, 2, 2, 1, 1, 2, 2])
    _predicting(dense, predicted, 3)
    got = validation_outcomes(_lookup_ctx(model, labels, 3, one_hot=one_hot))
    np.testing.assert_array_equal(got, predicted == labels)


def test_validation_outcomes_of_a_binary_model_threshold_at_one_half():
    inputs = keras.Input((4,))
    dense = keras.layers.Dense(1, use_bias=False, activation="sigmoid")
    model = keras.Model(inputs, dense(inputs))
    dense.kernel.assign(np.array([[3.0], [-3.0], [3.0], [-3.0]], "float32"))
    labels = np.array([[1.0], [1.0], [0.0], [0.0]], "float32")
    ds = tf.data.Dataset.from_tensor_slices((np.eye(4, dtype="float32"), labels)).batch(3)
    ctx = SimpleNamespace(model=model, task="binary", monitor="val_accuracy",
                          validation_batches=lambda: ds)
    np.testing.assert_array_equal(validation_outcomes(ctx), [True, False, False, True])
    ctx.monitor = "val_loss"
    assert validation_outcomes(ctx) is None


def _stage_runner(dense, plans, labels, num_classes):
    def run(ctx, index, stage):
        _predicting(dense, plans[index], num_classes)
        correct = int(np.sum(plans[index] == labels))
        return StageReport(stage.name, 0, [], [], 1, best={"val_accuracy": correct / len(labels)})
    return run


def _stages(*names):
    return [Stage(name, 0, 1, 1e-3) for name in names]


def test_run_stages_discards_a_churning_stage_and_keeps_a_clean_one():
    num, classes = 100, 2
    labels = np.zeros(num, "int64")
    head = np.where(np.arange(num) < 80, 0, 1)                 # right on 0..79
    churn = head.copy()
    churn[0:8], churn[80:90] = 1, 0                            # 82 right: +10, -8
    clean = head.copy()
    clean[80:83] = 0                                           # 83 right: +3, -0
    model, dense = _lookup_model(num, classes)
    ctx = _lookup_ctx(model, labels, classes)
    report = FitReport("progressive", "multiclass", "val_accuracy", num)
    run_stages(ctx, _stages("head", "churn", "clean"), report,
               runner=_stage_runner(dense, [head, churn, clean], labels, classes))
    first, second, third = report.stages
    assert first.comparison is None
    assert second.comparison == {"rule": "sign test", "gained": 10, "lost": 8,
                                 "against": 0, "kept": False}
    assert third.comparison == {"rule": "sign test", "gained": 3, "lost": 0,
                                "against": 0, "kept": True}
    assert report.best_stage == 2
    # Now with the clean stage first and the churning one last: the clean
    # stage's weights come back.
    report = FitReport("progressive", "multiclass", "val_accuracy", num)
    run_stages(ctx, _stages("head", "clean", "churn"), report,
               runner=_stage_runner(dense, [head, clean, churn], labels, classes))
    assert report.best_stage == 1 and report.stages[2].comparison["against"] == 1
    assert not report.stages[2].comparison["kept"]
    np.testing.assert_array_equal(validation_outcomes(ctx), clean == labels)


def test_a_checkpoint_keeps_the_best_stage_outcomes(tmp_path):
    checkpoint = Checkpoint(str(tmp_path / "run"), {"recipe": "two_stage"})
    outcomes = np.array([True, False, True])
    checkpoint.save_best([np.ones(2, "float32")], {"val_accuracy": 0.5}, 0, outcomes)
    best, stage, weights, saved = checkpoint.load_best()
    assert (best, stage) == ({"val_accuracy": 0.5}, 0)
    np.testing.assert_array_equal(saved, outcomes)
    checkpoint.save_best([np.ones(2, "float32")], {"val_accuracy": 0.5}, 0)
    assert checkpoint.load_best()[3] is None


def test_the_printed_report_says_why_a_stage_was_kept_or_not():
    report = FitReport("two_stage", "multiclass", "val_accuracy", 10)
    report.stages = [StageReport("head", 0, [], [], 0),
                     StageReport("fine_tune", 4, [], [], 6,
                                 comparison={"rule": "sign test", "gained": 12, "lost": 8,
                                             "against": 0, "kept": False})]
    assert ("kept or not: fine_tune vs 'head': +12 -8 validation examples (sign test), "
            "discarded") in str(report)


def test_can_be_beaten_needs_two_wrong_examples():
    assert not can_be_beaten(np.array([True, True, True]))
    assert not can_be_beaten(np.array([True, False, True]))
    assert can_be_beaten(np.array([False, False, True]))


def test_a_stage_that_could_not_be_kept_is_not_run():
    num, classes = 20, 2
    labels = np.zeros(num, "int64")
    head = np.where(np.arange(num) < 19, 0, 1)                 # one wrong: unbeatable
    model, dense = _lookup_model(num, classes)
    ctx = _lookup_ctx(model, labels, classes)
    ran = []
    runner = _stage_runner(dense, [head, labels.copy()], labels, classes)

    def counting(ctx, index, stage):
        ran.append(stage.name)
        return runner(ctx, index, stage)

    report = FitReport("two_stage", "multiclass", "val_accuracy", num)
    run_stages(ctx, _stages("head", "fine_tune"), report, runner=counting)
    assert ran == ["head"] and report.best_stage == 0
    skipped = report.stages[1]
    assert skipped.epochs_run == 0 and skipped.comparison["rule"] == "not run"
    assert skipped.selected_on.startswith("none: not run (the kept stage misses 1 of 20")
    assert "fine_tune vs 'head': not run" in str(report)
    np.testing.assert_array_equal(validation_outcomes(ctx), head == labels)
