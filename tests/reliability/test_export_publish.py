"""A version folder is never lost or half-written, whatever kills the export.

Issue 14, item 4 (overwrite killed between renames), item 12 (concurrent
``version=None`` exports). Each test SIGKILLs a real process at one step of
`kerastl.export.staging.publish` (before or after each rename, exchange and
delete), then checks what is at the final path and what the next export's
clean-up (`remove_stale`) makes of it.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kerastl.export import staging

pytestmark = pytest.mark.timeout(300)

STAGING_PY = Path(staging.__file__)
FILES = ("a.txt", "b.txt", "c/d.txt")

# Loads staging.py alone (no TensorFlow: each run takes ~0.1 s), counts the
# calls of the steps of publish and SIGKILLs itself before or after step KILL_AT.
CHILD = r"""
import importlib.util, os, shutil, signal, sys
spec = importlib.util.spec_from_file_location("staging", sys.argv[1])
staging = importlib.util.module_from_spec(spec)
spec.loader.exec_module(staging)
root, kill_at, exchange = sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
if not exchange:
    staging._renameat2 = lambda: None
steps = [0]

def step(fn):
    def wrapped(*args, **kwargs):
        if steps[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        steps[0] += 1
        result = fn(*args, **kwargs)
        if steps[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        steps[0] += 1
        return result
    return wrapped

staging.os.rename = step(os.rename)
staging.rename_flags = step(staging.rename_flags)
staging.shutil.rmtree = step(shutil.rmtree)
target = staging.version_dir(root, "1")
folder = staging.make_staging(target)
for name in %r:
    os.makedirs(os.path.dirname(os.path.join(folder, name)) or folder, exist_ok=True)
    open(os.path.join(folder, name), "w").write("new")
staging.publish(folder, target, overwrite=True)
print("DONE", steps[0])
""" % (FILES,)


def _write_version(folder: Path, content: str) -> None:
    for name in FILES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(content)


def _version(folder: Path):
    """'old' or 'new' when `folder` holds a complete version, else what it holds."""
    if not folder.is_dir():
        return None
    contents = {n: (folder / n).read_text() if (folder / n).is_file() else None for n in FILES}
    values = set(contents.values())
    return values.pop() if len(values) == 1 and None not in values else contents


def _run(root: Path, kill_at: int, exchange: bool):
    proc = subprocess.run([sys.executable, "-c", CHILD, str(STAGING_PY), str(root),
                           str(kill_at), "1" if exchange else "0"],
                          capture_output=True, text=True, timeout=60)
    return proc


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
def test_overwrite_killed_at_every_step_keeps_a_complete_version(tmp_path, exchange):
    results = []
    for kill_at in range(40):
        root = tmp_path / f"{kill_at}"
        (root / "1").mkdir(parents=True)
        _write_version(root / "1", "old")
        proc = _run(root, kill_at, exchange)
        if proc.returncode == 0:
            assert "DONE" in proc.stdout
            assert _version(root / "1") == "new"
            assert sorted(p.name for p in root.iterdir()) == ["1"]
            break
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
        at_final = _version(root / "1")
        if exchange:  # at every instant the final path holds a complete version
            assert at_final in ("old", "new"), (kill_at, at_final)
        else:  # between the two renames the old version waits beside it
            assert at_final in ("old", "new", None), (kill_at, at_final)
            if at_final is None:
                assert [_version(p) for p in root.glob(".kerastl-old-1-*")] == ["old"]
        staging.remove_stale(root)  # what the next export does first
        after = _version(root / "1")
        assert after in ("old", "new"), (kill_at, after)
        assert sorted(p.name for p in root.iterdir()) == ["1"]
        results.append((kill_at, at_final, after))
    else:
        pytest.fail("publish never finished")
    assert len(results) >= 3  # the kill points were reached
    assert {r[2] for r in results} == {"old", "new"}  # killed before and after the switch


def test_publish_failure_between_renames_puts_the_old_version_back(tmp_path, monkeypatch):
    target = tmp_path / "1"
    target.mkdir()
    _write_version(target, "old")
    folder = staging.make_staging(target)
    _write_version(folder, "new")
    monkeypatch.setattr(staging, "_renameat2", lambda: None)
    real_rename = os.rename
    calls = []

    def failing(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_rename(src, dst)

    monkeypatch.setattr(staging.os, "rename", failing)
    with pytest.raises(OSError, match="No space"):
        staging.publish(folder, target, overwrite=True)
    monkeypatch.setattr(staging.os, "rename", real_rename)
    assert _version(target) == "old"


def test_version_none_takes_the_next_number_when_another_export_wins(tmp_path, monkeypatch):
    from harness import tiny_kerastl_model

    import kerastl.export as kexport
    from kerastl.export import package

    write = package._write_artifacts

    def other_export_publishes_first(*args, **kwargs):
        written = write(*args, **kwargs)
        (tmp_path / "1").mkdir()
        (tmp_path / "1" / "manifest.json").write_text("{}")
        return written

    monkeypatch.setattr(package, "_write_artifacts", other_export_publishes_first)
    report = kexport.export(tiny_kerastl_model(2, size=16), tmp_path, formats=("keras",),
                            verbose=0)
    assert report.version == "2" and report.path == str((tmp_path / "2").resolve())
    manifest = json.loads((tmp_path / "2" / "manifest.json").read_text())
    assert manifest["version"] == "2"
    assert (tmp_path / "1" / "manifest.json").read_text() == "{}"
    with pytest.raises(FileExistsError, match="overwrite=True"):  # a named version is not moved
        monkeypatch.setattr(package, "_write_artifacts", lambda *a, **k: (
            (tmp_path / "7").mkdir(), (tmp_path / "7" / "x").write_text(""), write(*a, **k))[2])
        kexport.export(tiny_kerastl_model(2, size=16), tmp_path, formats=("keras",),
                       version=7, verbose=0)
