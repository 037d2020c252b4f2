"""``kerastl tune``: search space flags, and a tiny search that writes a run folder."""

from __future__ import annotations

import json
import warnings

import click
import pytest
from click.testing import CliRunner
from PIL import Image

import kerastl
from kerastl.cli import main
from kerastl.cli.tune import DepthChoices, SpaceValue, search_space

from .helpers import TINY, space_params as _params


def test_space_value_and_depth_choices():
    value = SpaceValue()
    assert value.convert("1e-4:1e-2", None, None) == (1e-4, 1e-2)
    assert value.convert("0.0,0.2", None, None) == [0.0, 0.2]
    assert value.convert("3e-4", None, None) == 3e-4
    assert value.convert([1, 2], None, None) == [1.0, 2.0]
    with pytest.raises(click.BadParameter, match="not a number"):
        value.convert("fast", None, None)
    assert DepthChoices().convert("0, 2,ALL", None, None) == [0, 2, "all"]
    with pytest.raises(click.BadParameter):
        DepthChoices().convert("two", None, None)


def test_space_value_reads_the_range_mapping_of_config_files():
    value = SpaceValue()
    assert value.convert({"range": [1e-4, 1e-2]}, None, None) == (1e-4, 1e-2)
    assert value.convert([0.0, 0.3], None, None) == [0.0, 0.3]  # a list is a choice
    with pytest.raises(click.BadParameter, match="range"):
        value.convert({"range": [1e-4]}, None, None)
    with pytest.raises(click.BadParameter, match="range"):
        value.convert({"low": 1e-4, "high": 1e-2}, None, None)


def test_search_space_from_json_then_flags():
    space = search_space(kerastl, "mobilenet_v2", _params(
        search_space={"dropout": {"range": [0.0, 0.3]}, "learning-rate": {"range": [1e-4, 1e-2]},
                      "backbone_learning_rate": [1e-5, 1e-4]},
        learning_rate=[1e-3, 3e-3], trainable_blocks=[0, 2], recipe=("two_stage", "fine_tune")))
    got = space.to_dict()
    assert got["trainable_blocks"] == [0, 2]
    assert got["recipe"] == ["two_stage", "fine_tune"]
    # The flag's choices win over the file's range; {"range": ...} is a range, and a list of
    # two numbers is a choice (as in kerastl.SearchSpace.from_dict).
    assert got["learning_rate"] == [1e-3, 3e-3]
    assert got["dropout"] == {"range": [0.0, 0.3]}
    assert got["backbone_learning_rate"] == [1e-5, 1e-4]
    expected = kerastl.SearchSpace.default_for(
        "mobilenet_v2", learning_rate=[1e-3, 3e-3], dropout=(0.0, 0.3),
        backbone_learning_rate=[1e-5, 1e-4], trainable_blocks=[0, 2],
        recipe=["two_stage", "fine_tune"])
    assert space == expected
    assert kerastl.SearchSpace.from_dict(got) == space  # config.json reads back the same space
    # A "LOW:HIGH" string is a range too.
    text = search_space(kerastl, "mobilenet_v2", _params(search_space={"dropout": "0:0.3"}))
    assert text.to_dict()["dropout"] == {"range": [0.0, 0.3]}
    default = search_space(kerastl, "mobilenet_v2", _params()).to_dict()
    assert default["trainable_blocks"] == kerastl.SearchSpace.default_for(
        "mobilenet_v2").to_dict()["trainable_blocks"]
    with pytest.raises(click.BadParameter, match="unknown key"):
        search_space(kerastl, "mobilenet_v2", _params(search_space={"momentum": 0.9}))
    with pytest.raises(click.BadParameter, match="'dropout'"):
        search_space(kerastl, "mobilenet_v2", _params(search_space={"dropout": {"range": 1}}))
    with pytest.raises(click.BadParameter, match="dropout"):  # the library's check, as usage
        search_space(kerastl, "mobilenet_v2", _params(search_space={"dropout": [0.0, 1.5]}))


def test_tiny_search_writes_trials_and_plots(split_folder, tmp_path):
    # A normal run uses no deprecated kerastl keyword: a FutureWarning is an error here (as
    # with python -W error::FutureWarning), and a trial it failed would show as FAILED.
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        result = CliRunner().invoke(main, [
            "tune", str(split_folder), *TINY, "--algorithm", "random", "--max-trials", "2",
            "--fine-tune-epochs", "2", "--trainable-blocks", "0", "--learning-rate",
            "1e-3,1e-2", "--dropout", "0.0", "--no-prune", "--output", str(tmp_path / "run"),
            "--json", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "FutureWarning" not in result.output and "deprecated" not in result.output
    payload = json.loads(result.stdout)
    assert {t["status"] for t in payload["tune"]["trials"]} == {"COMPLETED"}, payload["tune"]
    run = tmp_path / "run"
    for name in ("model.keras", "config.json", "metrics.json", "tuning.json", "trials.csv",
                 "trial_scores.png", "tune_search.png", "report.md", "history.csv",
                 "training_curves.png"):
        assert (run / name).is_file(), name
    with Image.open(run / "trial_scores.png") as image:
        image.verify()
    trials = payload["tune"]["trials"]
    assert 1 <= len(trials) <= 2
    assert {t["hyperparameters"]["learning_rate"] for t in trials} <= {1e-3, 1e-2}
    config = json.loads((run / "config.json").read_text())
    assert config["trainable-blocks"] == [0] and config["algorithm"] == "random"
    assert config["fine-tune-epochs"] == 2 and "max-epochs" not in config
    assert config["prune"] is False
    assert "## Tuning" in (run / "report.md").read_text()
