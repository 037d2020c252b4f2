"""The ``kerastl`` command group: help with examples, exit codes through the real entry point."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from kerastl.cli import main

from .helpers import run_kerastl

COMMANDS = ("train", "tune", "export", "evaluate", "predict", "backbones", "weights", "adapt",
            "distill", "fewshot", "rank")


def test_group_lists_every_command():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output
    assert set(main.commands) == set(COMMANDS)


def _leaf_commands():
    for name in COMMANDS:
        command = main.commands[name]
        if isinstance(command, click.Group):
            yield from ((f"{name} {sub}", [name, sub], cmd)
                        for sub, cmd in command.commands.items())
        else:
            yield name, [name], command


@pytest.mark.parametrize("name,args,command", list(_leaf_commands()),
                         ids=[n for n, _, _ in _leaf_commands()])
def test_every_flag_is_documented_with_an_example(name, args, command):
    assert "Examples:" in command.help and f"kerastl {name}" in command.help
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert param.help and "Example:" in param.help, f"{name} {param.opts}"
    result = CliRunner().invoke(main, [*args, "--help"])
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
    (["train", "x", "--quantization", "int4"], "'int4' not in"),
    (["train", "x", "--quantize", "int4"], "'int4' not in"),
    (["train", "x", "--fine-tune-epochs", "0"], "x>=1"),
    (["train", "x", "--trainable-blocks", "some"], "neither a number of blocks nor 'all'"),
    (["train"], "Missing argument 'DATA'"),
    (["export", "m.keras"], "Missing option '--out'"),
    (["export", "m.keras", "--out", "o", "--quantization", "int8"],
     "needs --representative-data"),
    (["export", "m.keras", "--out", "o", "--quantize", "int8", "--quantization", "int8"],
     "--quantize is the deprecated name of --quantization"),
    (["tune", "x", "--recipes", "two_stage", "--recipe", "fine_tune"],
     "--recipes is the deprecated name of --recipe"),
    (["tune", "x", "--max-epochs", "2", "--fine-tune-epochs", "3"],
     "--max-epochs is the deprecated name of --fine-tune-epochs"),
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


@pytest.mark.parametrize("name,example", [("export", "export.yaml"), ("evaluate", "eval.yaml"),
                                          ("tune", "tune.yaml"), ("train", "train.yaml")])
def test_config_help_names_the_commands_own_file(name, example):
    text = CliRunner().invoke(main, [name, "--help"]).output
    assert f"--config {example}" in text
    if name != "train":
        assert "train.yaml" not in text


@pytest.mark.parametrize("name,old,new,value,expected", [
    ("train", "--quantize", "--quantization", "int8", ("int8",)),
    ("tune", "--quantize", "--quantization", "int8", ("int8",)),
    ("tune", "--recipes", "--recipe", "two_stage", ("two_stage",)),
    ("tune", "--max-epochs", "--fine-tune-epochs", "3", 3),
    ("export", "--quantize", "--quantization", "int8", ("int8",)),
    ("export", "--calibration-data", "--representative-data", "int8", "int8")])
def test_renamed_flags_keep_a_hidden_alias_that_feeds_the_new_name(name, old, new, value,
                                                                   expected):
    from kerastl.cli.options import take_renamed

    text = CliRunner().invoke(main, [name, "--help"]).output
    assert new in text and f"{old} " not in text and f"{old}," not in text
    command = main.commands[name]
    param = next(p for p in command.params if old in p.opts)
    ctx = command.make_context(name, [old, value], resilient_parsing=True)
    with ctx:
        params = dict(ctx.params)
        take_renamed(params)
    assert param.name not in params
    assert params[new.lstrip("-").replace("-", "_")] == expected


def test_train_help_says_what_the_learning_rates_default_to():
    text = " ".join(CliRunner().invoke(main, ["train", "--help"]).output.split())
    assert "a tenth of the head's]" not in text
    assert "two_stage and progressive: the fine-tuning stage's head rate" in text
    assert "fine_tune: a tenth of --learning-rate" in text


def test_offline_imagenet_error_names_the_weights_add_command(split_folder, tmp_path):
    import os
    import subprocess
    import sys

    code = ("import sys, urllib.request, urllib.error\n"
            "def no_net(*a, **k): raise urllib.error.URLError('Name or service not known')\n"
            "urllib.request.urlretrieve = no_net\n"
            "from kerastl.cli import main\n"
            "sys.exit(main(sys.argv[1:], prog_name='kerastl'))\n")
    home = tmp_path / "keras_home"
    proc = subprocess.run(
        [sys.executable, "-c", code, "train", str(split_folder), "--backbone", "resnet50",
         "--image-size", "32", "--output", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "KERAS_HOME": str(home)})
    assert proc.returncode == 1, proc.stderr[-3000:]
    text = " ".join(proc.stderr.split())
    assert "Could not get the ImageNet weights of 'resnet50'" in text, text
    assert "kerastl weights add /path/to/<file>.h5" in text
    assert os.path.join(str(home), "models") in text and "--weights FILE" in text
    assert "Traceback" not in proc.stderr
