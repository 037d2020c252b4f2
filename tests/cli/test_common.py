"""Exit codes, error messages and output modes shared by every command."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from kerastl.cli.common import (CliFailure, Output, comma_list, json_default, output_options,
                                safe_field, short_message, terminal_safe)


@click.command()
@click.option("--fail", type=click.Choice(["value", "runtime", "usage", "none"]), default="none")
@output_options
def _cmd(fail, *, out: Output):
    out.status("status line")
    with out.working():
        print("library print")
    if fail == "value":
        raise ValueError("`epochs` must be an integer >= 1. Received: epochs=0")
    if fail == "runtime":
        raise RuntimeError("deep failure")
    if fail == "usage":
        raise click.UsageError("bad usage")
    out.result({"answer": 42}, "the answer is 42", quiet_text="42")


def _invoke(*args):
    return CliRunner().invoke(_cmd, list(args))


def test_text_mode_prints_result_on_stdout_and_status_on_stderr():
    result = _invoke()
    assert result.exit_code == 0
    assert result.stdout.strip() == "the answer is 42"
    assert "status line" in result.stderr and "library print" in result.stderr


def test_quiet_and_json_modes():
    quiet = _invoke("--quiet")
    assert quiet.stdout.strip() == "42" and quiet.stderr == ""
    as_json = _invoke("--json")
    assert json.loads(as_json.stdout) == {"answer": 42}


def test_user_error_exits_1_with_short_message_and_no_traceback():
    result = _invoke("--fail", "value")
    assert result.exit_code == 1
    assert "Error: `epochs` must be an integer >= 1" in result.stderr
    assert "Traceback" not in result.output and "--debug" not in result.stderr


def test_unexpected_error_names_its_type_and_debug_reraises():
    result = _invoke("--fail", "runtime")
    assert result.exit_code == 1
    assert "RuntimeError: deep failure" in result.stderr and "--debug" in result.stderr
    debug = _invoke("--fail", "runtime", "--debug")
    assert isinstance(debug.exception, RuntimeError)


def test_json_mode_error_is_json_on_stdout():
    result = _invoke("--fail", "value", "--json")
    assert result.exit_code == 1
    assert "must be an integer" in json.loads(result.stdout)["error"]


def test_usage_error_exits_2():
    result = _invoke("--fail", "usage")
    assert result.exit_code == 2 and "bad usage" in result.stderr


def test_short_message_cuts_long_messages():
    text = short_message(ValueError("\n".join(f"line {i}" for i in range(40))))
    assert text.count("\n") < 15 and "--debug" in text
    assert short_message(KeyError("missing")) == "missing"
    assert "OSError" not in short_message(FileNotFoundError("gone"))


@click.command()
@click.option("--label", default="rose")
@output_options
def _echo(label, *, out: Output):
    if label == "fail":
        raise CliFailure("gone \x1b[2J wrong", json_mode=out.json)
    out.status(f"status {label}")
    out.result({"label": label}, f"label: {label}", quiet_text=label)


def test_cli_failure_exits_1_with_one_escaped_error_line():
    result = CliRunner().invoke(_echo, ["--label", "fail"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == "Error: gone \\x1b[2J wrong\n"


@pytest.mark.parametrize("mode", [[], ["--quiet"]])
def test_printed_text_has_control_characters_escaped_and_long_lines_clipped(mode):
    title = "\x1b]0;pwned\x07rose\u202e"
    result = CliRunner().invoke(_echo, ["--label", title + "x" * 5000, *mode])
    assert result.exit_code == 0
    for stream in (result.stdout, result.stderr):
        assert "\x1b" not in stream and "\x07" not in stream and "\u202e" not in stream
        assert all(len(line) < 1100 for line in stream.splitlines())
    assert "\\x1b]0;pwned\\x07rose\\u202e" in result.stdout
    assert "more characters" in result.stdout
    as_json = CliRunner().invoke(_echo, ["--label", title, "--json"])
    assert json.loads(as_json.stdout) == {"label": title}  # JSON keeps it, escaped by json
    assert "\x1b" not in as_json.stdout


def test_safe_field_escapes_newlines_and_tabs_too():
    assert safe_field("a\nfake\tlabel") == "a\\nfake\\tlabel"
    assert terminal_safe("two\nlines\tok") == "two\nlines\tok"
    assert safe_field("y" * 500, 10) == "y" * 10 + "... (490 more characters)"


def test_comma_list():
    assert comma_list(" int8, ,float16 ") == ["int8", "float16"]


def test_json_default_turns_numpy_and_reports_into_json():
    import numpy as np

    class Report:
        def to_dict(self):
            return {"accuracy": np.float32(0.5)}

    text = json.dumps({"a": np.arange(3), "r": Report(), "s": (1, 2)}, default=json_default)
    assert json.loads(text) == {"a": [0, 1, 2], "r": {"accuracy": 0.5}, "s": [1, 2]}


@pytest.mark.parametrize("quiet,verbose", [(False, 1), (True, 0)])
def test_output_verbose(quiet, verbose):
    assert Output(quiet=quiet).verbose == verbose
