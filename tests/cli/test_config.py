"""``--config`` files: YAML/JSON, flag precedence, unknown keys, value types."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from kerastl.cli.config import (BlocksType, CommaList, JsonDict, WeightsType, config_option,
                                explicit_settings, normalize_key, read_config_file)


@click.command()
@click.argument("data", required=False)
@click.option("--epochs", type=int, default=10)
@click.option("--fine-tune-epochs", type=int, default=None)
@click.option("--quantize", type=CommaList(("float32", "int8", "float16")), default="float32")
@click.option("--backbone-kwargs", type=JsonDict(), default=None)
@click.option("--out", "out_dir", default=None)
@config_option
def _echo(**params):
    ctx = click.get_current_context()
    click.echo(json.dumps({"params": params, "sources": explicit_settings(ctx)}))


def _run(*args):
    result = CliRunner().invoke(_echo, list(args))
    return result, (json.loads(result.output) if result.exit_code == 0 else None)


def test_yaml_config_sets_values_and_flags_override(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: photos\nepochs: 3\nfine_tune-epochs: 2\nquantize: [int8, float16]\n"
                   "backbone-kwargs: {alpha: 0.35}\nout: saved\n")
    result, got = _run("--config", str(cfg), "--epochs", "5")
    assert result.exit_code == 0, result.output
    params = got["params"]
    assert params["epochs"] == 5  # flag beats the file
    assert params["fine_tune_epochs"] == 2
    assert params["quantize"] == ["int8", "float16"]
    assert params["backbone_kwargs"] == {"alpha": 0.35}
    assert params["data"] == "photos"
    assert params["out_dir"] == "saved"  # the key is the flag name, not the Python name
    assert got["sources"]["epochs"] == "flag" and got["sources"]["fine_tune_epochs"] == "config"


def test_json_config_and_positional_argument_beats_file(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"data": "from_file", "fine_tune_epochs": 4}))
    result, got = _run("from_flag", "--config", str(cfg))
    assert result.exit_code == 0, result.output
    assert got["params"]["data"] == "from_flag"
    assert got["params"]["fine_tune_epochs"] == 4


def test_unknown_key_is_usage_error_with_suggestion(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epoch: 3\n")
    result, _ = _run("--config", str(cfg))
    assert result.exit_code == 2
    assert "unknown key(s)" in result.output and "did you mean 'epochs'" in result.output


@pytest.mark.parametrize("text", ["[1, 2]\n", "epochs: [1\n"])
def test_bad_file_is_usage_error(tmp_path, text):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    result, _ = _run("--config", str(cfg))
    assert result.exit_code == 2
    assert "--config" in result.output


def test_bad_value_in_config_is_usage_error(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("quantize: int4\n")
    result, _ = _run("--config", str(cfg))
    assert result.exit_code == 2 and "int4" in result.output


def test_read_config_file_empty_and_normalize_key(tmp_path):
    cfg = tmp_path / "empty.yml"
    cfg.write_text("")
    assert read_config_file(cfg) == {}
    assert normalize_key("--Fine_Tune-Epochs") == "fine-tune-epochs"


def test_param_types():
    assert CommaList().convert("a, B,,c", None, None) == ("a", "b", "c")
    assert JsonDict().convert('{"alpha": 0.5}', None, None) == {"alpha": 0.5}
    with pytest.raises(click.BadParameter, match="JSON object"):
        JsonDict().convert("[1]", None, None)
    blocks = BlocksType()
    assert blocks.convert("ALL", None, None) == "all" and blocks.convert("4", None, None) == 4
    with pytest.raises(click.BadParameter):
        blocks.convert("-1", None, None)
    weights = WeightsType()
    assert weights.convert("None", None, None) is None
    assert weights.convert("imagenet", None, None) == "imagenet"
    with pytest.raises(click.BadParameter, match="weights file"):
        weights.convert("/no/such/file.h5", None, None)


BOMB = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
quantize: [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_yaml_alias_bomb_is_refused_before_it_expands(tmp_path):
    import time

    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    start = time.perf_counter()
    result, _ = _run("--config", str(path))
    assert time.perf_counter() - start < 5  # expanded, it is 387 million strings
    assert result.exit_code == 2
    assert "expands to more than 10,000 values" in result.output
    assert len(result.output) < 1000


def test_shared_aliases_of_a_normal_size_still_work(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("defaults: &n 4\nepochs: *n\nfine-tune-epochs: *n\n")
    # 'defaults' is not a flag: the alias itself is fine, the unknown key is the error.
    result, _ = _run("--config", str(path))
    assert result.exit_code == 2 and "'defaults'" in result.output
    path.write_text("epochs: &n 4\nfine-tune-epochs: *n\n")
    result, got = _run("--config", str(path))
    assert got["params"]["epochs"] == 4 and got["params"]["fine_tune_epochs"] == 4


@pytest.mark.parametrize("text,message", [
    ("epochs: " + "9" * 5000 + "\n", None),
    ("backbone-kwargs: '" + "{" * 5000 + "'\n", "holds a value of 5,000 characters"),
    ("x" * 3000 + ": 1\n", "cannot parse"),
], ids=["huge_int", "huge_string", "huge_yaml_key"])
def test_errors_quote_only_an_excerpt_of_a_huge_value(tmp_path, text, message):
    path = tmp_path / "big.yaml"
    path.write_text(text)
    result, _ = _run("--config", str(path))
    assert result.exit_code == 2
    assert len(result.output) < 1500, result.output[:300]
    if message:
        assert message in result.output


def test_oversized_config_file_is_refused_unread(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text("# padding\n" * 120_000)
    result, _ = _run("--config", str(path))
    assert result.exit_code == 2 and "a settings file may have at most 1,048,576" in result.output


def test_unknown_huge_key_is_quoted_as_an_excerpt(tmp_path):
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"x" * 3000: 1}))
    result, _ = _run("--config", str(path))
    assert result.exit_code == 2 and "unknown key" in result.output
    assert "more characters" in result.output and len(result.output) < 1500
