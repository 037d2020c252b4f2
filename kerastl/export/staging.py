"""Version folders that appear complete or not at all.

An export is written into a hidden staging folder beside its final place
(``directory/.kerastl-tmp-<version>-<pid>-<random>``, same parent, so the same
file system) and renamed into place with one `os.rename` once complete. A
crash or SIGKILL before that leaves only the hidden staging folder, never a
half-written version; later exports into the same directory delete staging
folders whose writing process is gone.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

_STAGING_PREFIX = ".kerastl-tmp-"
_RETIRED_PREFIX = ".kerastl-old-"
_LEFTOVER_RE = re.compile(r"^\.kerastl-(?:tmp|old)-(?P<version>.+)-(?P<pid>\d+)-[0-9a-f]{8}$")


def next_version(directory) -> str:
    """Returns one more than the highest integer version in `directory` (1 if none)."""
    numbers = [int(p.name) for p in Path(directory).iterdir() if p.name.isdigit()]
    return str(max(numbers, default=0) + 1)


def version_dir(directory, version: str) -> Path:
    """Returns ``directory/version``, refusing anything that escapes `directory`.

    Args:
        directory: The export directory.
        version: A name checked by `kerastl.export.config.check_version`.

    Returns:
        The resolved version path.

    Raises:
        ValueError: If the path does not sit directly inside `directory`.
    """
    root = Path(directory).resolve()
    target = (root / version).resolve()
    if target.parent != root or target.name != version:
        raise ValueError(f"`version` must name a folder directly inside {str(root)!r}. "
                         f"Received: version={version!r}")
    return target


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(directory) -> list[str]:
    """Deletes staging folders left by export processes that no longer run.

    Args:
        directory: The export directory.

    Returns:
        Names of the deleted folders.
    """
    removed = []
    for entry in Path(directory).iterdir():
        match = _LEFTOVER_RE.match(entry.name)
        if match and entry.is_dir() and not _process_alive(int(match["pid"])):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    return removed


def _hidden_name(prefix: str, version: str) -> str:
    return f"{prefix}{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def make_staging(target: Path) -> Path:
    """Creates and returns an empty hidden staging folder beside `target`."""
    staging = target.parent / _hidden_name(_STAGING_PREFIX, target.name)
    staging.mkdir()
    return staging


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())


def publish(staging: Path, target: Path, *, overwrite: bool) -> None:
    """Moves a complete staging folder to `target` atomically.

    Without `overwrite`, an existing `target` is refused (`os.rename` fails on
    a non-empty folder, so two concurrent exports cannot both win). With it,
    the old version is first renamed to a hidden name, then deleted.

    Args:
        staging: The finished staging folder.
        target: The version folder.
        overwrite: Whether an existing version may be replaced.

    Raises:
        FileExistsError: If `target` exists and `overwrite` is False.
    """
    _fsync_tree(staging)
    retired = None
    if overwrite and target.exists():
        retired = target.parent / _hidden_name(_RETIRED_PREFIX, target.name)
        os.rename(target, retired)
    elif target.exists():
        raise FileExistsError(_exists_message(target))
    try:
        os.rename(staging, target)
    except OSError as err:
        raise FileExistsError(_exists_message(target)) from err
    _fsync_dir(target.parent)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def _exists_message(target: Path) -> str:
    return (f"Version {target.name!r} already exists in {str(target.parent)!r}. "
            "Pass overwrite=True to replace it, or another `version`.")


def check_target(target: Path, *, overwrite: bool) -> None:
    """Refuses an existing version early, before any work, unless `overwrite`."""
    if target.exists() and not overwrite:
        raise FileExistsError(_exists_message(target))
