"""Tests of kerastl.tuning.hypermodel: how a trial's epoch budget becomes kerastl.fit calls."""

import pytest

from kerastl.tuning.hypermodel import TrialStage, plan_stages

FE, FT = "feature_extraction", "fine_tune"


@pytest.mark.parametrize("recipe, depth, epochs, initial, expected", [
    # two_stage: warm-up at lr, then blocks + head at 0.1 lr (kerastl.fit's two_stage).
    ("two_stage", 4, 5, 0, [TrialStage(FE, 3, 0, 1e-2), TrialStage(FT, 2, 4, 1e-3, 1e-3)]),
    ("two_stage", "all", 2, 0, [TrialStage(FE, 1, 0, 1e-2), TrialStage(FT, 1, "all", 1e-3, 1e-3)]),
    ("two_stage", 4, 1, 0, [TrialStage(FE, 1, 0, 1e-2)]),
    ("two_stage", 0, 4, 0, [TrialStage(FE, 4, 0, 1e-2)]),
    ("feature_extraction", 4, 3, 0, [TrialStage(FE, 3, 0, 1e-2)]),
    # fine_tune: one call; kerastl.fit picks the backbone rate (0.1 lr) when None.
    ("fine_tune", 2, 3, 0, [TrialStage(FT, 3, 2, 1e-2, None)]),
    # progressive: warm-up, then the depth grows in thirds (9 blocks: 3, 6, 9).
    ("progressive", 9, 8, 0, [TrialStage(FE, 4, 0, 1e-2), TrialStage(FT, 2, 3, 1e-3, 1e-3),
                              TrialStage(FT, 1, 6, 1e-3, 1e-3), TrialStage(FT, 1, 9, 1e-3, 1e-3)]),
    ("progressive", 9, 3, 0, [TrialStage(FE, 2, 0, 1e-2), TrialStage(FT, 1, 9, 1e-3, 1e-3)]),
    # Hyperband continuations: only the fine-tuning stage, for the extra epochs.
    ("two_stage", 4, 9, 3, [TrialStage(FT, 6, 4, 1e-3, 1e-3)]),
    ("two_stage", 0, 9, 3, [TrialStage(FE, 6, 0, 1e-2)]),
    ("two_stage", 4, 3, 3, []),
])
def test_plan_stages(recipe, depth, epochs, initial, expected):
    assert plan_stages(recipe, depth, epochs, initial, learning_rate=1e-2) == expected


def test_plan_stages_rates():
    # An explicit backbone rate is used as is; no head rate means kerastl.fit's 1e-3.
    stages = plan_stages("two_stage", 2, 4, learning_rate=None, backbone_learning_rate=5e-5)
    assert stages == [TrialStage(FE, 2, 0, 1e-3), TrialStage(FT, 2, 2, pytest.approx(1e-4), 5e-5)]
    # "all" with progressive needs the block count.
    assert plan_stages("progressive", "all", 4, num_blocks=3)[1:] == [
        TrialStage(FT, 1, 2, pytest.approx(1e-4), pytest.approx(1e-4)),
        TrialStage(FT, 1, 3, pytest.approx(1e-4), pytest.approx(1e-4))]
    with pytest.raises(ValueError, match="num_blocks"):
        plan_stages("progressive", "all", 4)
