"""``kerastl tune --backbone a,b``: several backbones, ranked before the search."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

import kerastl
from kerastl.cli import main
from kerastl.cli.tune import backbone_list, search_space

from .helpers import space_params as _params

# Two real architectures, small and random-initialised: the CLI path in seconds.
TWO = ["--backbone", "mobilenet,mobilenet_v2", "--backbone-kwargs", '{"alpha": 0.35}',
       "--image-size", "32", "--weights", "none"]


def test_backbone_list_splits_checks_and_refuses_repeats():
    assert backbone_list(kerastl, "mobilenet_v2") == ["mobilenet_v2"]
    assert backbone_list(kerastl, " mobilenet_v2, mobilenet ") == ["mobilenet_v2", "mobilenet"]
    with pytest.raises(click.BadParameter, match="'mobilenet' given twice"):
        backbone_list(kerastl, "mobilenet,mobilenet_v2,mobilenet")
    with pytest.raises(click.BadParameter, match="not_a_backbone"):
        backbone_list(kerastl, "mobilenet,not_a_backbone")
    with pytest.raises(click.BadParameter, match="give a backbone"):
        backbone_list(kerastl, " , ")


def test_search_space_of_several_backbones_is_a_dict_each_completes():
    given = search_space(kerastl, ["mobilenet", "mobilenet_v2"],
                         _params(dropout=[0.0, 0.2], learning_rate=(1e-4, 1e-2)))
    assert given == {"dropout": [0.0, 0.2], "learning_rate": (1e-4, 1e-2)}
    # kerastl.tune gives each kept backbone its own default depths (block counts differ).
    from kerastl.tuning.backbones import _space_for

    for name in ("mobilenet", "mobilenet_v2"):
        space = _space_for(given, name)
        assert space == kerastl.SearchSpace.default_for(name, dropout=[0.0, 0.2],
                                                        learning_rate=(1e-4, 1e-2))
    assert _space_for(given, "mobilenet").trainable_blocks != _space_for(
        given, "mobilenet_v2").trainable_blocks
    explicit = kerastl.SearchSpace(trainable_blocks=[0])
    assert _space_for(explicit, "mobilenet") is explicit  # a SearchSpace is used as given
    # Depths every backbone must take: 16 blocks exist in mobilenet_v2 (18), not mobilenet (14).
    assert search_space(kerastl, ["mobilenet_v2"], _params(trainable_blocks=[16]))
    with pytest.raises(click.BadParameter, match="trainable_blocks"):
        search_space(kerastl, ["mobilenet_v2", "mobilenet"], _params(trainable_blocks=[16]))


@pytest.mark.slow
def test_cli_ranks_then_searches_the_kept_backbone(split_folder, tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "tune", str(split_folder), *TWO, "--keep-backbones", "1", "--rank-metric",
        "linear_probe", "--algorithm", "random", "--max-trials", "1", "--fine-tune-epochs", "1",
        "--trainable-blocks", "0", "--no-refit", "--output", str(run), "--json", "--seed", "0"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    ranked = [row["backbone"] for row in payload["ranking"]["rows"]]
    assert sorted(ranked) == ["mobilenet", "mobilenet_v2"]  # weights none: no reference row
    assert payload["ranking"]["metric"] == "linear_probe"
    assert payload["backbone"] == ranked[0]  # only the best-ranked one was searched
    assert payload["dropped_backbones"] == [ranked[1]]
    model = kerastl.load(run / "model.keras")
    assert kerastl.model_info(model).backbone == ranked[0]
    config = json.loads((run / "config.json").read_text())
    assert config["backbone"] == "mobilenet,mobilenet_v2" and config["keep-backbones"] == 1


def test_cli_refuses_a_repeated_backbone_before_loading_data(tmp_path):
    (tmp_path / "photos").mkdir()
    result = CliRunner().invoke(main, ["tune", str(tmp_path / "photos"), "--backbone",
                                       "mobilenet,mobilenet", "--output", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "given twice" in result.output
