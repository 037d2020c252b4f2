"""Shared pytest setup for kerastl.

Keras reads ``KERAS_HOME`` once, when it is imported, so this file seeds it
before anything imports Keras: when ``KERASTL_ASSETS`` is set and
``KERAS_HOME`` is not, a temporary Keras home is filled with links to the real
ImageNet weights (``$KERASTL_ASSETS/seed_keras_home.sh``), so
``weights="imagenet"`` goes through Keras's real download path offline. The
folder is deleted when the test process exits.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup CPU quota."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    for path, parse in (("/sys/fs/cgroup/cpu.max", lambda t: t.split()),
                        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", lambda t: [t.strip(), None])):
        try:
            quota, period = parse(Path(path).read_text())
            if period is None:
                period = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text().strip()
        except (OSError, ValueError):
            continue
        if quota not in ("max", "-1"):
            count = min(count, max(1, int(int(quota) // int(period))))
        break
    return max(1, count)


def _share_cpus_between_workers() -> None:
    """Gives each pytest-xdist worker's TensorFlow its share of the CPUs.

    TensorFlow sizes its thread pools to every core of the machine, so two
    workers on two cores each run twice as many busy (spin-waiting) threads as
    there are cores. Set before TensorFlow is imported; subprocesses started by
    tests inherit it; a value already in the environment wins.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 0)
    if workers < 1:
        return
    share = str(max(1, available_cpus() // workers))
    for name in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(name, share)
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", share)


_share_cpus_between_workers()


def _seed_keras_home() -> None:
    assets = os.environ.get("KERASTL_ASSETS")
    if not assets or os.environ.get("KERAS_HOME"):
        return
    script = Path(assets) / "seed_keras_home.sh"
    if not script.is_file():
        return
    home = tempfile.mkdtemp(prefix="kerastl_keras_home_")
    # Removed when this process (pytest, or one xdist worker) exits; subprocesses
    # started by tests inherit KERAS_HOME and so never make their own.
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    subprocess.run(["bash", str(script), home], check=True, capture_output=True)
    os.environ["KERAS_HOME"] = home


_seed_keras_home()

import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))


# The slowest test files (seconds of one full run, 2 cores), longest first. pytest-xdist's
# --dist loadfile hands whole files to the workers in queue order; started first, these
# leave the short files to fill in at the end, so both workers finish close together.
SLOW_FILES_FIRST = (
    "tests/test_tutorials_tuning_export.py",  # notebooks 2 and 3
    "tests/test_tutorials.py",                # notebooks 1 and 4
    "tests/export/test_package.py",
    "tests/cli/test_train.py",
    "tests/backbones/test_keras_apps.py",
    "tests/backbones/test_keras_apps_second_half.py",
    "tests/training/test_fit.py",
    "tests/backbones/test_hub_integration.py",
    "tests/cli/test_readme.py",
    "tests/tuning/test_tune_pruning.py",
    "tests/test_model.py",
    "tests/tuning/test_tune.py",
    "tests/backbones/test_hub.py",
    "tests/distribute/test_strategies.py",
    "tests/distillation/test_resume.py",
    "tests/test_init.py",
)


def pytest_configure(config):
    # pytest-xdist queues files by their number of tests (--loadscope-reorder, its default),
    # which puts the notebook files (few, long tests) last: queue them in collection order,
    # which pytest_collection_modifyitems makes slowest-first.
    if getattr(config.option, "dist", "no") == "loadfile" and hasattr(config.option,
                                                                      "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config, items):
    """Moves the files of `SLOW_FILES_FIRST` to the front, in its order (a stable sort)."""
    root = Path(str(config.rootpath)).resolve()
    rank = {name: index for index, name in enumerate(SLOW_FILES_FIRST)}

    def key(item):
        try:
            name = Path(str(item.path)).resolve().relative_to(root).as_posix()
        except ValueError:
            return len(rank)
        return rank.get(name, len(rank))

    items.sort(key=key)


def _assets_dir() -> Path | None:
    value = os.environ.get("KERASTL_ASSETS")
    if not value:
        return None
    return Path(value).resolve()


@pytest.fixture(scope="session")
def assets() -> Path:
    """The real weights/datasets folder (`$KERASTL_ASSETS`).

    Skips the test when the variable is unset; fails it when ``CI=true`` and
    the assets are missing, so CI can never pass by skipping them.
    """
    path = _assets_dir()
    in_ci = os.environ.get("CI", "").lower() == "true"
    if path is None or not (path / "README.md").is_file():
        msg = f"KERASTL_ASSETS is unset or not the shared assets folder ({path})"
        if in_ci:
            pytest.fail(msg + "; CI must run the asset tests")
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def keras_home(assets) -> Path:
    """The seeded `KERAS_HOME` (weights="imagenet" resolves offline)."""
    home = os.environ.get("KERAS_HOME")
    if not home or not (Path(home) / "models").is_dir():
        pytest.fail("KERAS_HOME was not seeded before Keras was imported")
    return Path(home)


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """A tiny class-per-folder dataset of real JPEG files (3 classes x 8 images)."""
    from harness import make_image_folder

    return make_image_folder(tmp_path / "images", classes=("cat", "dog", "fox"), per_class=8)
