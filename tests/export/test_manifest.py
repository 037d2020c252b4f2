"""Tests of kerastl/export/manifest.py: hashes in sha256sum's format."""

import hashlib
import shutil
import subprocess

import pytest

from kerastl.export import manifest


def test_file_and_tree_hashes(tmp_path):
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "b.bin").write_bytes(b"\x00" * 3_000_000)
    (tmp_path / "tree" / "sub" / "a.txt").write_text("hello\n")
    entry = manifest.artifact_entry(tmp_path / "tree")
    a_hash = hashlib.sha256(b"hello\n").hexdigest()
    b_hash = hashlib.sha256(b"\x00" * 3_000_000).hexdigest()
    assert entry["files"] == {"b.bin": {"size_bytes": 3_000_000, "sha256": b_hash},
                              "sub/a.txt": {"size_bytes": 6, "sha256": a_hash}}
    listing = f"{b_hash}  b.bin\n{a_hash}  sub/a.txt\n"
    assert entry["sha256"] == hashlib.sha256(listing.encode()).hexdigest()
    assert entry["size_bytes"] == 3_000_006
    assert manifest.artifact_entry(tmp_path / "tree" / "b.bin") == {
        "size_bytes": 3_000_000, "sha256": b_hash}


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs coreutils sha256sum")
def test_tree_hash_is_reproducible_with_sha256sum(tmp_path):
    (tmp_path / "variables").mkdir()
    (tmp_path / "saved_model.pb").write_bytes(b"pb")
    (tmp_path / "variables" / "variables.index").write_bytes(b"idx")
    listing = subprocess.run("find . -type f | sed 's|^\\./||' | LC_ALL=C sort | "
                             "xargs sha256sum", shell=True, cwd=tmp_path, capture_output=True,
                             check=True).stdout
    assert manifest.tree_entry(tmp_path)["sha256"] == hashlib.sha256(listing).hexdigest()


def test_labels_and_versions(tmp_path):
    manifest.write_labels(tmp_path / "labels.txt", ["daisy", "rose"])
    assert (tmp_path / "labels.txt").read_text() == "daisy\nrose\n"
    versions = manifest.library_versions()
    assert versions["tensorflow"].startswith("2.") and versions["keras"].startswith("3.")
