"""Tests of kerastl.training.recipes: stage plans and the "auto" rule."""

import pytest

from kerastl.training.recipes import Stage, plan_stages, resolve_recipe


def test_feature_extraction_is_one_head_stage():
    stages = plan_stages("feature_extraction", num_blocks=18, head_cached=True)
    assert [(s.name, s.trainable_blocks) for s in stages] == [("head", 0)]
    # Gradient head epochs: more on cheap cached features than on images.
    assert stages[0].epochs == 30
    uncached = plan_stages("feature_extraction", num_blocks=18, head_cached=False)
    assert uncached[0].epochs == 10


def test_two_stage_unfreezes_top_blocks_at_lower_rate():
    stages = plan_stages("two_stage", num_blocks=18, head_cached=True, epochs=7,
                         fine_tune_epochs=3, learning_rate=2e-3, trainable_blocks=5)
    head, tune = stages
    assert (head.name, head.trainable_blocks, head.epochs, head.learning_rate) == (
        "head", 0, 7, 2e-3)
    assert (tune.name, tune.trainable_blocks, tune.epochs) == ("fine_tune", 5, 3)
    # The fine-tuning stage restarts at the head's peak rate (documented in recipes.py).
    assert tune.learning_rate == pytest.approx(2e-3)
    assert tune.warmup_epochs == 1.0
    # Short fine-tuning stages (a tuning trial's first rung) warm up for half their length.
    short = plan_stages("two_stage", num_blocks=18, head_cached=True, fine_tune_epochs=1)
    assert short[1].warmup_epochs == 0.5


def test_fine_tune_trains_blocks_from_the_start_with_discriminative_rates():
    (stage,) = plan_stages("fine_tune", num_blocks=18, head_cached=True, trainable_blocks="all")
    assert stage.trainable_blocks == 18
    # A new head next to pretrained blocks: the blocks train 10x slower than the head.
    assert stage.learning_rate == pytest.approx(1e-3)
    assert stage.backbone_learning_rate == pytest.approx(1e-4)


def test_progressive_grows_the_unfrozen_part():
    stages = plan_stages("progressive", num_blocks=18, head_cached=True, trainable_blocks=9,
                         layer_decay=0.8)
    assert [(s.name, s.trainable_blocks) for s in stages] == [
        ("head", 0), ("unfreeze_3", 3), ("unfreeze_6", 6), ("unfreeze_9", 9)]
    assert all(s.layer_decay == 0.8 for s in stages[1:])
    small = plan_stages("progressive", num_blocks=4, head_cached=True, trainable_blocks=2)
    assert [s.trainable_blocks for s in small] == [0, 1, 2]


def test_two_stage_with_depth_zero_is_feature_extraction():
    stages = plan_stages("two_stage", num_blocks=18, head_cached=True, trainable_blocks=0)
    assert [s.name for s in stages] == ["head"]


def test_auto_rule_decides_from_validation_not_size():
    # With validation data fine-tuning is tried (and kept only if it wins there).
    assert resolve_recipe("auto", has_validation=True, can_unfreeze=True) == "two_stage"
    # Without, nothing could judge it: the head alone, chosen by cross-validation.
    assert resolve_recipe("auto", has_validation=False, can_unfreeze=True) == "feature_extraction"
    assert resolve_recipe("auto", has_validation=True, can_unfreeze=False) == "feature_extraction"
    assert resolve_recipe("progressive", has_validation=False, can_unfreeze=True) == "progressive"


def test_stage_to_dict():
    stage = Stage("head", 0, 3, 1e-3)
    assert stage.to_dict()["name"] == "head"
    assert stage.to_dict()["backbone_learning_rate"] is None
