"""``kerastl backbones [PATTERN]``."""

from __future__ import annotations

from click.testing import CliRunner

import kerastl
from kerastl.cli import main

from .helpers import parse_json, run_kerastl


def test_backbones_json_through_the_entry_point(tmp_path):
    rows = parse_json(run_kerastl("backbones", "mobilenet", "--json", cwd=tmp_path))
    assert [r["name"] for r in rows] == kerastl.list_backbones("mobilenet")
    v2 = next(r for r in rows if r["name"] == "mobilenet_v2")
    spec = kerastl.get_backbone_spec("mobilenet_v2")
    assert (v2["default_input_size"], v2["num_params"], v2["num_blocks"]) == (
        spec.default_input_size, spec.num_params, spec.num_blocks)


def test_table_quiet_and_no_match():
    runner = CliRunner()
    table = runner.invoke(main, ["backbones", "resnet*_v2"])
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0].split()[:2] == ["name", "input"] and "blocks" in lines[0]
    assert len(lines) == 2 + len(kerastl.list_backbones("resnet*_v2"))
    assert "resnet50_v2" in table.stdout and "23.6M" in table.stdout
    quiet = runner.invoke(main, ["backbones", "efficientnet_b", "-q"])
    assert quiet.stdout.split() == kerastl.list_backbones("efficientnet_b")
    none = runner.invoke(main, ["backbones", "zzz"])
    assert none.exit_code == 1 and "No backbone matches 'zzz'" in none.stderr
