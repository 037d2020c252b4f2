"""Tests of kerastl.tuning.space: SearchSpace validation and keras-tuner mapping."""

import json

import keras_tuner
import pytest

from kerastl.tuning.space import ALL_BLOCKS, SearchSpace, as_search_space


def test_default_for_scales_depths_with_block_count():
    assert SearchSpace.default_for("mobilenet_v2").trainable_blocks == [0, 2, 4, "all"]
    # efficientnet_b1 has 25 blocks: ~10% and ~25% of them.
    assert SearchSpace.default_for("efficientnet_b1").trainable_blocks == [0, 2, 6, "all"]
    assert SearchSpace.default_for("hub:/some/saved_model").trainable_blocks == [0, "all"]


def test_default_for_keeps_overrides():
    space = SearchSpace.default_for("mobilenet_v2", learning_rate=[1e-3, 1e-2])
    assert space.to_dict()["learning_rate"] == [1e-3, 1e-2]
    assert space.trainable_blocks == [0, 2, 4, "all"]


@pytest.mark.parametrize("kwargs, message", [
    ({"learning_rate": -1e-3}, "`learning_rate` must be a positive number"),
    ({"backbone_learning_rate": (0.0, 1e-3)}, "backbone_learning_rate[0]=0.0"),
    ({"learning_rate": (1e-2, 1e-4)}, "low <= high"),
    ({"learning_rate": (1e-4, 1e-3, 1e-2)}, "use a list for a choice"),
    ({"dropout": 1.5}, "`dropout` must be a number >= 0.0 and < 1.0"),
    ({"dropout": [0.1, -0.2]}, "dropout[1]"),
    ({"layer_decay": 0.0}, "`layer_decay` must be a number > 0.0"),
    ({"recipe": "two_stag"}, "Did you mean 'two_stage'?"),
    ({"recipe": ["two_stage", "bogus"]}, "recipe[1]"),
    ({"trainable_blocks": [0, -2]}, "trainable_blocks[1]=-2"),
    ({"trainable_blocks": ["most"]}, "integers >= 0 or 'all'"),
    ({"trainable_blocks": []}, "at least one value"),
    ({"learning_rate": []}, "must not be an empty list"),
])
def test_bad_values_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError) as info:
        SearchSpace(**kwargs)
    assert message in str(info.value)


def test_depth_beyond_block_count_is_rejected():
    with pytest.raises(ValueError, match=r"between 0 and 18 or 'all'. Received: "
                                         r"trainable_blocks=20"):
        SearchSpace(trainable_blocks=[0, 20]).check_backbone("mobilenet_v2")
    with pytest.raises(ValueError, match="must be 0 or 'all'"):
        SearchSpace(trainable_blocks=[0, 2]).check_backbone("hub:/a/model")
    assert SearchSpace(trainable_blocks=[0, 18, "all"]).check_backbone("mobilenet_v2")


def test_unknown_keys_in_dict_are_rejected_with_suggestion():
    with pytest.raises(ValueError, match="'learnig_rate' \\(did you mean 'learning_rate'\\?\\)"):
        SearchSpace.from_dict({"learnig_rate": 1e-3})
    with pytest.raises(TypeError):
        SearchSpace(learnig_rate=1e-3)
    with pytest.raises(TypeError, match="search_space"):
        as_search_space(["learning_rate"], "mobilenet_v2")


def test_dict_round_trip_keeps_ranges_and_choices():
    space = SearchSpace(trainable_blocks=(4, 0, "all", 4), learning_rate=[1e-2, 1e-3],
                        backbone_learning_rate=(1e-5, 1e-3), dropout=0.25, recipe="fine_tune",
                        layer_decay=[0.5, 0.8])
    config = space.to_dict()
    assert config == {"trainable_blocks": [0, 4, "all"], "recipe": ["fine_tune"],
                      "learning_rate": [1e-3, 1e-2],
                      "backbone_learning_rate": {"range": [1e-5, 1e-3]},
                      "dropout": 0.25, "layer_decay": [0.5, 0.8]}
    # Through JSON (no tuples) and back: a two-value choice stays a choice, a range a range.
    again = SearchSpace.from_dict(json.loads(json.dumps(config)))
    assert again == space and again.to_dict() == config
    lines = again.describe().splitlines()
    assert "learning_rate: choice [0.001, 0.01]" in lines
    assert "backbone_learning_rate: log range [1e-05, 0.001]" in lines
    assert "layer_decay: choice [0.5, 0.8]" in lines
    # A range and a choice of the same two numbers are different spaces.
    assert SearchSpace(learning_rate=(1e-3, 1e-2)) != SearchSpace(learning_rate=[1e-3, 1e-2])
    assert SearchSpace.from_dict({"learning_rate": (1e-3, 1e-2)}) == SearchSpace(
        learning_rate=(1e-3, 1e-2))


@pytest.mark.parametrize("value, message", [
    ({"range": [1e-3]}, "must be {'range': [low, high]} with two numbers"),
    ({"rnage": [1e-3, 1e-2]}, "'rnage' (did you mean 'range'?)"),
    ({"range": [1e-2, 1e-3]}, "low <= high"),
])
def test_from_dict_bad_range(value, message):
    with pytest.raises(ValueError) as info:
        SearchSpace.from_dict({"learning_rate": value})
    assert message in str(info.value)


def test_resume_check_sees_a_choice_turned_into_a_range(tmp_path):
    from kerastl.tuning.tune import _project_config

    def config(space):
        return {"backbone": "mobilenet_v2", "build_seed": 1, "search_space": space.to_dict()}

    _project_config(tmp_path, config(SearchSpace(dropout=[0.0, 0.3])), overwrite=False)
    _project_config(tmp_path, config(SearchSpace(dropout=[0.0, 0.3])), overwrite=False)
    with pytest.raises(ValueError, match=r"other settings \(search_space\)"):
        _project_config(tmp_path, config(SearchSpace(dropout=(0.0, 0.3))), overwrite=False)


def test_declare_maps_onto_keras_tuner_hyperparameters():
    space = SearchSpace(trainable_blocks=[0, 4, "all"], learning_rate=(1e-4, 1e-2),
                        backbone_learning_rate=[1e-5, 1e-4], dropout=(0.0, 0.5),
                        recipe=["two_stage", "fine_tune"], layer_decay=None)
    hp = keras_tuner.HyperParameters()
    space.declare(hp)
    by_name = {p.name: p for p in hp.space}
    assert set(by_name) == {"trainable_blocks", "learning_rate", "backbone_learning_rate",
                            "dropout", "recipe"}
    assert isinstance(by_name["trainable_blocks"], keras_tuner.engine.hyperparameters.Choice)
    assert list(by_name["trainable_blocks"].values) == [0, 4, ALL_BLOCKS]
    assert by_name["learning_rate"].sampling == "log"
    assert by_name["dropout"].sampling == "linear"
    assert list(by_name["backbone_learning_rate"].values) == [1e-5, 1e-4]
    values = SearchSpace.decode({**hp.values, "trainable_blocks": ALL_BLOCKS, "tuner/epochs": 3})
    assert values["trainable_blocks"] == "all" and "tuner/epochs" not in values


def test_single_values_are_fixed():
    space = SearchSpace(trainable_blocks="all", learning_rate=1e-3, backbone_learning_rate=None,
                        dropout=[0.2], recipe="two_stage")
    hp = keras_tuner.HyperParameters()
    space.declare(hp)
    assert hp.values == {"trainable_blocks": ALL_BLOCKS, "recipe": "two_stage",
                         "learning_rate": 1e-3, "dropout": 0.2}
    assert all(isinstance(p, keras_tuner.engine.hyperparameters.Fixed) for p in hp.space)
