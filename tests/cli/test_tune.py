"""``kerastl tune``: search space flags, and a tiny search that writes a run folder."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner
from PIL import Image

import kerastl
from kerastl.cli import main
from kerastl.cli.tune import DepthChoices, SpaceValue, search_space

from .helpers import TINY


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


def _params(**kw):
    base = {"search_space": None, "trainable_blocks": None, "learning_rate": None,
            "backbone_learning_rate": None, "dropout": None, "recipe": None}
    return {**base, **kw}


def test_search_space_from_json_then_flags():
    space = search_space(kerastl, "mobilenet_v2", _params(
        search_space={"dropout": [0.0, 0.3], "learning-rate": [1e-4, 1e-2]},
        learning_rate=[1e-3, 3e-3], trainable_blocks=[0, 2], recipe=("two_stage", "fine_tune")))
    got = space.to_dict()
    assert got["trainable_blocks"] == [0, 2]
    assert got["recipe"] == ["two_stage", "fine_tune"]
    # The flag's choices win over the file's range; the file's two numbers are a range.
    expected = kerastl.SearchSpace.default_for(
        "mobilenet_v2", learning_rate=[1e-3, 3e-3], dropout=(0.0, 0.3), trainable_blocks=[0, 2],
        recipe=["two_stage", "fine_tune"]).to_dict()
    assert got == expected
    assert got != kerastl.SearchSpace.default_for(
        "mobilenet_v2", learning_rate=(1e-4, 1e-2), dropout=(0.0, 0.3), trainable_blocks=[0, 2],
        recipe=["two_stage", "fine_tune"]).to_dict()
    assert json.loads(json.dumps(got)) == got  # --json and config.json can hold it
    default = search_space(kerastl, "mobilenet_v2", _params()).to_dict()
    assert default["trainable_blocks"] == kerastl.SearchSpace.default_for(
        "mobilenet_v2").to_dict()["trainable_blocks"]
    with pytest.raises(click.BadParameter, match="unknown key"):
        search_space(kerastl, "mobilenet_v2", _params(search_space={"momentum": 0.9}))


def test_tiny_search_writes_trials_and_plots(split_folder, tmp_path):
    result = CliRunner().invoke(main, [
        "tune", str(split_folder), *TINY, "--algorithm", "random", "--max-trials", "2",
        "--max-epochs", "2", "--trainable-blocks", "0", "--learning-rate", "1e-3,1e-2",
        "--dropout", "0.0", "--no-prune", "--output", str(tmp_path / "run"), "--json",
        "--seed", "3"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
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
    assert config["prune"] is False
    assert "## Tuning" in (run / "report.md").read_text()
