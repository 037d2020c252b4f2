"""Tests of kerastl/export/staging.py: version names, staging folders, atomic publish."""

import os
import subprocess
import sys

import pytest

from kerastl.export import staging


def test_next_version_counts_integer_folders_only(tmp_path):
    assert staging.next_version(tmp_path) == "1"
    for name in ("1", "7", "candidate", ".kerastl-tmp-8-1-abcdef01"):
        (tmp_path / name).mkdir()
    assert staging.next_version(tmp_path) == "8"


def test_version_dir_refuses_escapes_even_through_symlinks(tmp_path):
    assert staging.version_dir(tmp_path, "3") == (tmp_path / "3").resolve()
    (tmp_path / "link").symlink_to(tmp_path.parent)
    with pytest.raises(ValueError, match="directly inside"):
        staging.version_dir(tmp_path, "link")
    with pytest.raises(ValueError, match="directly inside"):
        staging.version_dir(tmp_path, "..")


def test_publish_moves_a_complete_folder_and_refuses_existing(tmp_path):
    target = tmp_path / "1"
    folder = staging.make_staging(target)
    assert folder.parent == tmp_path and folder.name.startswith(".kerastl-tmp-1-")
    (folder / "a.txt").write_text("new")
    staging.publish(folder, target, overwrite=False)
    assert (target / "a.txt").read_text() == "new" and not folder.exists()
    second = staging.make_staging(target)
    (second / "b.txt").write_text("other")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        staging.check_target(target, overwrite=False)
    with pytest.raises(FileExistsError):
        staging.publish(second, target, overwrite=False)
    assert (target / "a.txt").exists()
    staging.publish(second, target, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1"]
    assert [p.name for p in target.iterdir()] == ["b.txt"]


def test_remove_stale_cleans_up_only_after_dead_processes(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".kerastl-tmp-1-{dead_pid}-0123abcd"
    orphan = tmp_path / f".kerastl-old-2-{dead_pid}-0123abcd"   # "2" is missing: restore
    replaced = tmp_path / f".kerastl-old-4-{dead_pid}-0123abcd"  # "4" is there: delete
    live = tmp_path / f".kerastl-tmp-3-{os.getpid()}-0123abcd"
    other = tmp_path / ".kerastl-tmp-unrelated"
    for path in (stale, orphan, replaced, live, other, tmp_path / "4"):
        (path / "x").mkdir(parents=True)
    (orphan / "x" / "old.txt").write_text("version 2")
    handled = staging.remove_stale(tmp_path)
    assert sorted(handled) == sorted([stale.name, orphan.name, replaced.name])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, other.name, "2", "4"])
    assert (tmp_path / "2" / "x" / "old.txt").read_text() == "version 2"


def test_publish_without_overwrite_never_replaces_even_an_empty_folder(tmp_path):
    target = tmp_path / "1"
    target.mkdir()
    folder = staging.make_staging(target)
    (folder / "a.txt").write_text("new")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        staging.publish(folder, target, overwrite=False)
    assert list(target.iterdir()) == [] and (folder / "a.txt").exists()
