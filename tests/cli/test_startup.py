"""The ``kerastl`` command starts fast and prints no TensorFlow/absl log lines."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from .helpers import kerastl_command

# What TensorFlow, absl and XLA print at import: "I0000 00:00:... cudart_stub.cc:31] ...",
# "WARNING: All log messages before absl::InitializeLog() ...", "... cpu_feature_guard ...".
LOG_LINE = re.compile(r"^[IWEF]\d{4} |absl::|cpu_feature_guard|cudart_stub|oneDNN|tensorflow",
                      re.MULTILINE)


def _run(*args, **env):
    clean = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([*kerastl_command(), *args], capture_output=True, text=True,
                          timeout=300, env={**clean, **env})


def test_help_prints_no_log_line_and_loads_no_tensorflow():
    proc = _run("--help")
    assert proc.returncode == 0 and "Commands:" in proc.stdout
    assert proc.stderr == ""
    code = "import sys, kerastl.cli; print('tensorflow' in sys.modules)"
    check = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert check.stdout.strip() == "False", check.stderr


def test_a_command_that_imports_tensorflow_prints_no_log_line():
    proc = _run("backbones", "mobilenet_v2")
    assert proc.returncode == 0, proc.stderr
    assert "mobilenet_v2" in proc.stdout
    assert not LOG_LINE.search(proc.stderr), proc.stderr
    assert not LOG_LINE.search(proc.stdout), proc.stdout


def test_debug_keeps_tensorflow_log_level_default():
    code = ("import os, sys; sys.argv = ['kerastl', 'train', '--debug']; import kerastl.cli; "
            "print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'))")
    clean = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    debug = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=clean)
    assert debug.stdout.strip() == "None"
    quiet = subprocess.run([sys.executable, "-c", code.replace(", '--debug'", "")],
                           capture_output=True, text=True, env=clean)
    assert quiet.stdout.strip() == "3"
