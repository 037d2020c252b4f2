"""The ``kerastl`` command group: help with examples, exit codes through the real entry point."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from kerastl.cli import main

from .helpers import run_kerastl

COMMANDS = ("train", "tune", "export", "evaluate", "predict", "backbones")


def test_group_lists_every_command():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output
    assert set(main.commands) == set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_flag_is_documented_with_an_example(name):
    command = main.commands[name]
    assert "Examples:" in command.help and f"kerastl {name}" in command.help
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert param.help and "Example:" in param.help, f"{name} {param.opts}"
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0 and "Example:" in result.output


def test_bad_flag_exits_2_with_a_message(tmp_path):
    proc = run_kerastl("train", tmp_path, "--epochz", "3", cwd=tmp_path)
    assert proc.returncode == 2
    assert "No such option '--epochz'" in proc.stderr and "--epochs" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_data_exits_1_with_a_short_message(tmp_path):
    proc = run_kerastl("train", tmp_path / "no_such_folder", "--weights", "none", cwd=tmp_path)
    assert proc.returncode == 1
    assert "Error: DATA" in proc.stderr and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("args,message", [
    (["train", "x", "--quantize", "int4"], "'int4' not in"),
    (["train", "x", "--trainable-blocks", "some"], "neither a number of blocks nor 'all'"),
    (["train"], "Missing argument 'DATA'"),
    (["export", "m.keras"], "Missing option '--out'"),
    (["export", "m.keras", "--out", "o", "--quantize", "int8"], "needs --calibration-data"),
    (["evaluate", "m.keras"], "needs MODEL and DATA"),
    (["predict", "m.keras"], "Missing argument 'IMAGES...'"),
])
def test_usage_errors_exit_2(args, message, tmp_path):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_unknown_backbone_is_a_usage_error(split_folder, tmp_path):
    result = CliRunner().invoke(main, ["train", str(split_folder), "--backbone", "mobilenet_v9",
                                       "--output", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "Unknown backbone 'mobilenet_v9'" in result.output and "mobilenet_v2" in result.output


def test_flag_choices_match_the_library():
    """The choices are spelled out so that --help does not import TensorFlow; keep them in sync."""
    import kerastl.training
    import kerastl.tuning.tuners
    from kerastl.cli import options, train, tune

    assert options.STRATEGIES == kerastl.distribute.KINDS
    assert options.QUANTIZATIONS == kerastl.export.QUANTIZATIONS
    assert train.RECIPES == kerastl.training.RECIPES
    assert tune.TUNE_RECIPES == kerastl.tuning.RECIPES
    assert tune.ALGORITHMS == kerastl.tuning.tuners.ALGORITHMS
