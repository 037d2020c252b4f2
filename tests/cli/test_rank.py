"""``kerastl rank DATA --candidates ...`` (invoked through the click command object)."""

from __future__ import annotations

import json

from click.testing import CliRunner
from harness import make_image_folder

from kerastl.cli.rank import rank_command

CANDIDATES = "mobilenet(alpha=0.25)@32,mobilenet(alpha=0.25)@40"


def _folder(tmp_path):
    return make_image_folder(tmp_path / "photos", classes=("a", "b", "c"), per_class=6, size=40)


def test_rank_json_table_and_quiet(tmp_path):
    folder = _folder(tmp_path)
    runner = CliRunner()
    # The tiny MobileNets have no 32/40 px ImageNet weights: rank random-init ones.
    args = [str(folder), "--candidates", CANDIDATES, "--image-size", "40", "--weights", "none",
            "--no-reference"]
    result = runner.invoke(rank_command, args + ["--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["metric"] == "logme" and data["num_examples"] == 18
    scores = [r["score"] for r in data["rows"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 2
    assert {r["image_size"] for r in data["rows"]} == {32, 40}
    assert all(r["name"].endswith("(random init)") for r in data["rows"])
    quiet = runner.invoke(rank_command, args + ["--metric", "linear_probe", "-q"])
    assert quiet.exit_code == 0, quiet.output
    lines = [line.split("\t") for line in quiet.stdout.splitlines()]
    assert sorted(name for name, _ in lines) == sorted(r["name"] for r in data["rows"])
    assert all(float(score) <= 0 for _, score in lines)  # a negated log-loss


def test_rank_errors(tmp_path):
    runner = CliRunner()
    folder = _folder(tmp_path)
    dup = runner.invoke(rank_command, [str(folder), "--candidates", "mobilenet,mobilenet@224"])
    assert dup.exit_code == 1 and "must not repeat a backbone" in dup.stderr
    missing = runner.invoke(rank_command, [str(tmp_path / "nope"), "--candidates", "mobilenet"])
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
    usage = runner.invoke(rank_command, [str(folder)])
    assert usage.exit_code == 2 and "--candidates" in usage.stderr
    metric = runner.invoke(rank_command, [str(folder), "--candidates", "a", "--metric", "x"])
    assert metric.exit_code == 2
