"""Tests of kerastl.tuning.hypermodel: how a trial's epoch budget becomes kerastl.fit calls."""

import pytest

from kerastl.training.recipes import FINE_TUNE_LR_FACTOR
from kerastl.tuning.hypermodel import PruneWorseThanWarmup, TrialStage, plan_stages

FE, FT = "feature_extraction", "fine_tune"
LATE = pytest.approx(1e-2 * FINE_TUNE_LR_FACTOR)  # kerastl.fit's fine-tuning rate for lr=1e-2
LATE_DEFAULT = pytest.approx(1e-3 * FINE_TUNE_LR_FACTOR)  # ... for its default lr (1e-3)


W = TrialStage(FE, None, 0, 1e-2)  # the shared head warm-up (kerastl.fit's head epochs)


@pytest.mark.parametrize("recipe, depth, epochs, initial, expected", [
    # two_stage: the warm-up, then blocks + head at FINE_TUNE_LR_FACTOR * lr for the budget.
    ("two_stage", 4, 5, 0, [W, TrialStage(FT, 5, 4, LATE, LATE)]),
    ("two_stage", "all", 2, 0, [W, TrialStage(FT, 2, "all", LATE, LATE)]),
    ("two_stage", 4, 1, 0, [W, TrialStage(FT, 1, 4, LATE, LATE)]),
    # Depth 0 and feature_extraction: the warm-up alone, whatever the budget.
    ("two_stage", 0, 4, 0, [W]),
    ("feature_extraction", 4, 3, 0, [W]),
    # fine_tune: one call, no warm-up; kerastl.fit picks the backbone rate when None.
    ("fine_tune", 2, 3, 0, [TrialStage(FT, 3, 2, 1e-2, None)]),
    # progressive: warm-up, then the depth grows in thirds (9 blocks: 3, 6, 9).
    ("progressive", 9, 8, 0, [W, TrialStage(FT, 3, 3, LATE, LATE),
                              TrialStage(FT, 3, 6, LATE, LATE), TrialStage(FT, 2, 9, LATE, LATE)]),
    ("progressive", 9, 2, 0, [W, TrialStage(FT, 1, 6, LATE, LATE),
                              TrialStage(FT, 1, 9, LATE, LATE)]),
    # Hyperband continuations: only the fine-tuning stage, for the extra epochs.
    ("two_stage", 4, 9, 3, [TrialStage(FT, 6, 4, LATE, LATE)]),
    ("two_stage", 0, 9, 3, [W]),
    ("two_stage", 4, 3, 3, []),
])
def test_plan_stages(recipe, depth, epochs, initial, expected):
    assert plan_stages(recipe, depth, epochs, initial, learning_rate=1e-2) == expected


def test_plan_stages_rates():
    # An explicit backbone rate is used as is; no head rate means kerastl.fit's 1e-3.
    stages = plan_stages("two_stage", 2, 4, learning_rate=None, backbone_learning_rate=5e-5)
    assert stages == [TrialStage(FE, None, 0, 1e-3), TrialStage(FT, 4, 2, LATE_DEFAULT, 5e-5)]
    assert stages[0].is_warmup and not stages[1].is_warmup
    # "all" with progressive needs the block count.
    assert plan_stages("progressive", "all", 2, num_blocks=3)[1:] == [
        TrialStage(FT, 1, 2, LATE_DEFAULT, LATE_DEFAULT),
        TrialStage(FT, 1, 3, LATE_DEFAULT, LATE_DEFAULT)]
    with pytest.raises(ValueError, match="num_blocks"):
        plan_stages("progressive", "all", 4)


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
