"""Helpers of the CLI tests: run the real ``kerastl`` entry point and read its output."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from kerastl.cli.common import kerastl_command

# A backbone small and fast enough for a full train + export in seconds.
TINY = ["--backbone", "mobilenet", "--backbone-kwargs", '{"alpha": 0.25}', "--image-size", "32",
        "--weights", "none"]




def space_params(**kw) -> dict:
    """The search-space flags of ``kerastl tune`` as `kerastl.cli.tune.search_space` reads them."""
    base = {"search_space": None, "trainable_blocks": None, "learning_rate": None,
            "backbone_learning_rate": None, "dropout": None, "recipe": None}
    return {**base, **kw}


def run_kerastl(*args, cwd: Path, timeout: float = 400) -> subprocess.CompletedProcess:
    """Runs ``kerastl ARGS`` in a fresh process (the real entry point)."""
    return subprocess.run([*kerastl_command(), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=dict(os.environ), timeout=timeout)


def parse_json(proc: subprocess.CompletedProcess):
    """The JSON document a ``--json`` command printed on stdout."""
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


# The train.yaml of the session's `trained` run (flags on the command line override it).
CONFIG = """\
backbone: mobilenet
backbone-kwargs: {alpha: 0.25}
image_size: 32
weights: none
recipe: two_stage
epochs: 3
fine-tune-epochs: 1
trainable-blocks: 1
batch-size: 4
"""
