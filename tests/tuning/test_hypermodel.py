"""Tests of kerastl.tuning.hypermodel: how a trial's epoch budget becomes kerastl.fit calls."""

import pytest

from kerastl.tuning.hypermodel import (INFO_METRICS, PruneWorseThanWarmup, TrialOutcome,
                                       trial_stages)

# Literal rates, from the documented recipes: the fine-tuning stage of two_stage and
# progressive trains at the head's peak rate (blocks too, unless given), fine_tune trains
# the blocks 10x lower than its new head.
LR = 1e-2


def _plan(recipe, depth, epochs, initial=0, num_blocks=18, **values):
    stages = trial_stages({"recipe": recipe, "trainable_blocks": depth, "learning_rate": LR,
                           **values}, epochs=epochs, initial_epoch=initial,
                          num_blocks=num_blocks)
    return [(s.name, s.trainable_blocks, s.epochs, s.learning_rate, s.backbone_learning_rate)
            for s in stages]


HEAD = ("head", 0, 30, LR, None)  # kerastl.fit's head stage on cached features


@pytest.mark.parametrize("recipe, depth, epochs, initial, expected", [
    ("two_stage", 4, 5, 0, [HEAD, ("fine_tune", 4, 5, LR, None)]),
    ("two_stage", "all", 2, 0, [HEAD, ("fine_tune", "all", 2, LR, None)]),
    # Depth 0 and feature_extraction: the head stage alone, whatever the budget.
    ("two_stage", 0, 4, 0, [HEAD]),
    ("feature_extraction", 4, 3, 0, [HEAD]),
    # fine_tune: one call, no head stage, the blocks 10x below the new head.
    ("fine_tune", 2, 3, 0, [("fine_tune", 2, 3, LR, pytest.approx(1e-3))]),
    # progressive: the depth grows in thirds (9 blocks: 3, 6, 9), the budget split over them.
    ("progressive", 9, 8, 0, [HEAD, ("unfreeze_3", 3, 3, LR, None),
                              ("unfreeze_6", 6, 3, LR, None), ("unfreeze_9", 9, 2, LR, None)]),
    # ... and a budget smaller than the number of depths keeps the deepest.
    ("progressive", 9, 2, 0, [HEAD, ("unfreeze_6", 6, 1, LR, None),
                              ("unfreeze_9", 9, 1, LR, None)]),
    # Hyperband continuations: only the last fine-tuning stage, for the extra epochs.
    ("two_stage", 4, 9, 3, [("fine_tune", 4, 6, LR, None)]),
    ("progressive", 9, 9, 3, [("unfreeze_9", 9, 6, LR, None)]),
    ("two_stage", 0, 9, 3, []),
    ("two_stage", 4, 3, 3, []),
])
def test_trial_stages(recipe, depth, epochs, initial, expected):
    assert _plan(recipe, depth, epochs, initial) == expected


def test_trial_stages_rates_and_schedules():
    # An explicit backbone rate and layer decay reach the fine-tuning stage as given.
    stages = trial_stages({"recipe": "two_stage", "trainable_blocks": 2,
                           "backbone_learning_rate": 5e-5, "layer_decay": 0.7},
                          epochs=4, num_blocks=18)
    head, tune = stages
    assert head.learning_rate == 1e-3  # no head rate: kerastl.fit's default
    assert (tune.learning_rate, tune.backbone_learning_rate, tune.layer_decay) == (
        1e-3, 5e-5, 0.7)
    # Every fine-tuning stage restarts the schedule with a one-epoch warm-up (half a
    # stage of one epoch), as kerastl.fit's stages do.
    assert tune.warmup_epochs == 1.0
    short = trial_stages({"recipe": "two_stage", "trainable_blocks": 2}, epochs=1,
                         num_blocks=18)
    assert short[1].warmup_epochs == 0.5
    # "all" with progressive counts the backbone's blocks.
    assert [(s.trainable_blocks, s.epochs) for s in trial_stages(
        {"recipe": "progressive", "trainable_blocks": "all"}, epochs=2, num_blocks=3)[1:]] == [
        (2, 1), ("all", 1)]


def test_outcome_reports_its_facts_to_keras_tuner():
    outcome = TrialOutcome(metrics={"val_accuracy": 0.75, "val_loss": 0.6}, reports=[],
                           epochs=2, head_epochs=5, pruned=True, can_continue=False,
                           trainable_params=1234)
    got = outcome.tuner_metrics()
    assert got["val_accuracy"] == 0.75 and got["val_loss"] == 0.6
    assert got[INFO_METRICS["epochs"]] == 2.0 and got[INFO_METRICS["head_epochs"]] == 5.0
    assert got[INFO_METRICS["pruned"]] == 1.0 and got[INFO_METRICS["can_continue"]] == 0.0
    assert got[INFO_METRICS["trainable_params"]] == 1234.0
    assert got[INFO_METRICS["settled"]] == 0.0
    assert all(isinstance(v, float) for v in got.values())


class _Model:
    stop_training = False


@pytest.mark.parametrize("direction, reference, scores, pruned_at", [
    ("max", 0.80, [0.75, 0.73], None),   # within 10% of the warm-up: goes on
    ("max", 0.80, [0.50, 0.79], None),   # a first-epoch dip (-37%) is allowed
    ("max", 0.80, [0.30], 0),            # a first-epoch collapse (-62%) is not
    ("max", 0.80, [0.78, 0.60], 1),      # 25% worse at the 2nd epoch: stopped there
    ("max", 0.80, [float("nan")], 0),    # a NaN score: stopped
    ("min", 0.50, [0.54, 0.60], 1),      # a loss 20% higher: stopped
])
def test_prune_worse_than_warmup(direction, reference, scores, pruned_at):
    callback = PruneWorseThanWarmup("val_accuracy", reference, direction=direction)
    callback.set_model(_Model())
    for epoch, score in enumerate(scores):
        callback.on_epoch_end(epoch, {"val_accuracy": score})
        if callback.model.stop_training:
            break
    assert callback.pruned_at == pruned_at
    assert callback.model.stop_training == (pruned_at is not None)
