"""Helpers shared by the benchmark scripts (run as ``python benchmarks/<name>.py``)."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from pathlib import Path


def seed_keras_home(assets: Path) -> None:
    """Points ``KERAS_HOME`` at a temporary folder seeded from the assets, when it is unset.

    ``$KERASTL_ASSETS/seed_keras_home.sh`` links the real ImageNet weights under
    every name Keras asks for, so ``weights="imagenet"`` resolves offline
    through Keras's normal download path. Call it before importing Keras. The folder
    is removed when the process exits.
    """
    if os.environ.get("KERAS_HOME"):
        return
    home = tempfile.mkdtemp(prefix="kerastl_bench_keras_home_")
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    subprocess.run(["bash", str(Path(assets) / "seed_keras_home.sh"), home], check=True,
                   capture_output=True)
    os.environ["KERAS_HOME"] = home
