"""``kerastl fewshot build`` / ``evaluate`` through click's test runner."""

import json

import keras
from click.testing import CliRunner

import kerastl
from harness import make_image_folder
from kerastl.cli.fewshot import fewshot_command


def test_build_and_evaluate(tmp_path):
    folder = make_image_folder(tmp_path / "support", classes=("a", "b", "c"), per_class=4,
                               size=32)
    runner = CliRunner()
    out = tmp_path / "p.keras"
    common = ["--weights", "none", "--image-size", "32"]
    result = runner.invoke(fewshot_command, ["build", str(folder), "--out", str(out),
                                             "--json", *common])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["class_names"] == ["a", "b", "c"]
    model = keras.saving.load_model(out, safe_mode=True)
    assert kerastl.get_head(model).num_outputs == 3
    result = runner.invoke(fewshot_command, ["evaluate", str(folder), "--ways", "3", "--shots",
                                             "1", "--queries", "2", "--episodes", "5", "-q",
                                             *common])
    assert result.exit_code == 0, result.output
    mean, ci = (float(v) for v in result.output.split())
    assert 0.0 <= mean <= 1.0 and ci >= 0.0


def test_too_many_ways_is_a_one_line_failure(tmp_path):
    folder = make_image_folder(tmp_path / "d", classes=("a", "b"), per_class=3, size=32)
    result = CliRunner().invoke(fewshot_command, ["evaluate", str(folder), "--ways", "3",
                                                  "--weights", "none", "--image-size", "32"])
    assert result.exit_code == 1
    assert "`ways` must be at most" in result.output


def test_cli_choices_are_the_library_values():
    from kerastl.cli import fewshot as cli
    from kerastl.fewshot.episodes import METHODS
    from kerastl.fewshot.layers import METRICS

    assert cli._METRICS == METRICS and cli._METHODS == METHODS
