"""Tests of the test setup itself: tests/conftest.py leaves no temporary Keras home behind."""

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_seeded_keras_home_is_removed_at_exit(assets, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_HOME"}
    env.update(KERASTL_ASSETS=str(assets), TMPDIR=str(tmp_path))
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import conftest, os; "
            "print(os.environ['KERAS_HOME'])")
    proc = subprocess.run([sys.executable, "-c", code, str(TESTS)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    home = Path(proc.stdout.strip().splitlines()[-1])
    assert home.parent == tmp_path and home.name.startswith("kerastl_keras_home_")
    assert not home.exists()
    assert not list(tmp_path.glob("kerastl_keras_home_*"))


def test_keras_home_given_is_used_as_is(assets, tmp_path):
    env = dict(os.environ, KERASTL_ASSETS=str(assets), KERAS_HOME=str(tmp_path / "mine"),
               TMPDIR=str(tmp_path))
    code = "import sys; sys.path.insert(0, sys.argv[1]); import conftest, os; print('ok')"
    proc = subprocess.run([sys.executable, "-c", code, str(TESTS)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
    assert not list(tmp_path.glob("kerastl_keras_home_*"))


def test_slow_files_are_queued_first_and_xdist_keeps_that_order():
    from types import SimpleNamespace

    import conftest

    root = TESTS.parent
    for name in conftest.SLOW_FILES_FIRST:  # the list names files that exist
        assert (root / name).is_file(), name
    names = ["test_weights.py", "test_tutorials.py", "test_layers.py", "test_weights.py",
             "test_tutorials_tuning_export.py"]
    items = [SimpleNamespace(path=TESTS / name, index=i) for i, name in enumerate(names)]
    conftest.pytest_collection_modifyitems(SimpleNamespace(rootpath=root), items)
    # The listed files first, in the list's order; the others after, in collection order.
    assert [(item.path.name, item.index) for item in items] == [
        ("test_tutorials_tuning_export.py", 4), ("test_tutorials.py", 1),
        ("test_weights.py", 0), ("test_layers.py", 2), ("test_weights.py", 3)]
    for dist, reorder in (("loadfile", False), ("load", True), ("no", True)):
        config = SimpleNamespace(option=SimpleNamespace(dist=dist, loadscopereorder=True))
        conftest.pytest_configure(config)
        assert config.option.loadscopereorder is reorder, dist
