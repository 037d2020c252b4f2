"""Version folders that appear complete or not at all, and are never lost.

An export is written into a hidden staging folder beside its final place
(``directory/.kerastl-tmp-<version>-<pid>-<random>``, same parent, so the same
file system) and moved into place once complete:

* a new version: one rename that refuses an existing target
  (``renameat2(RENAME_NOREPLACE)`` on Linux, `os.rename` elsewhere), so two
  concurrent exports cannot both win;
* ``overwrite=True`` on Linux: one atomic exchange of the two folders
  (``renameat2(RENAME_EXCHANGE)``), so at every instant either the old or the
  new complete version is at the final path; the old one then sits in the
  staging folder and is deleted;
* ``overwrite=True`` where the exchange is not available: the old version is
  renamed aside to ``.kerastl-old-<version>-<pid>-<random>`` (only after the
  new one is complete), the new one is renamed into place, the old one is
  deleted. A process killed between the two renames leaves the old version
  aside; the next export into the directory (`remove_stale`) renames it back.

A crash or SIGKILL therefore never leaves a half-written version, and never
loses the old one; later exports into the same directory delete the hidden
folders of writing processes that are gone (restoring a set-aside old
version whose final path is missing).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import re
import shutil
import sys
import uuid
from pathlib import Path

_STAGING_PREFIX = ".kerastl-tmp-"
_RETIRED_PREFIX = ".kerastl-old-"
_LEFTOVER_RE = re.compile(r"^\.kerastl-(?P<kind>tmp|old)-(?P<version>.+)-(?P<pid>\d+)-"
                          r"[0-9a-f]{8}$")
_AT_FDCWD = -100
_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2


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
    """Cleans up after export processes that no longer run.

    Their staging folders (``.kerastl-tmp-*``) are deleted. A set-aside old
    version (``.kerastl-old-<version>-*``) is renamed back to ``<version>``
    when that path is missing (the process died between its two renames),
    and deleted otherwise (the new version is in place).

    Args:
        directory: The export directory.

    Returns:
        Names of the deleted or restored folders.

    Example:
        >>> kerastl.export.staging.remove_stale("saved_models")
        []
    """
    handled = []
    entries = sorted(Path(directory).iterdir(), key=lambda p: p.name)
    for entry in entries:
        match = _LEFTOVER_RE.match(entry.name)
        if not match or not entry.is_dir() or _process_alive(int(match["pid"])):
            continue
        final = entry.parent / match["version"]
        if match["kind"] == "old" and not os.path.lexists(final):
            os.rename(entry, final)
            _fsync_dir(entry.parent)
        else:
            shutil.rmtree(entry, ignore_errors=True)
        handled.append(entry.name)
    return handled


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


def _renameat2():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                         ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def rename_flags(source: Path, target: Path, flags: int) -> bool:
    """`renameat2(source, target, flags)`; False when the system cannot do it.

    Raises:
        OSError: The rename was possible but failed (e.g. `target` exists).
    """
    function = _renameat2()
    if function is None:
        return False
    if function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # old kernel, or a file system without these flags
    raise OSError(code, os.strerror(code), str(target))


def _exchange(staging: Path, target: Path) -> bool:
    """Atomically swaps `staging` and `target`; False when not supported."""
    return rename_flags(staging, target, _RENAME_EXCHANGE)


def _rename_new(staging: Path, target: Path) -> None:
    """Renames `staging` to `target`, failing with FileExistsError if `target` exists."""
    try:
        if rename_flags(staging, target, _RENAME_NOREPLACE):
            return
        if os.path.lexists(target) and not _is_empty_dir(target):
            raise FileExistsError(errno.EEXIST, "exists", str(target))
        os.rename(staging, target)
    except OSError as err:
        raise FileExistsError(_exists_message(target)) from err


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def publish(staging: Path, target: Path, *, overwrite: bool) -> None:
    """Moves a complete staging folder to `target` (see the module doc).

    Args:
        staging: The finished staging folder.
        target: The version folder.
        overwrite: Whether an existing version may be replaced.

    Raises:
        FileExistsError: If `target` exists and `overwrite` is False (also
            when another process published it first).
    """
    _fsync_tree(staging)
    _fsync_dir(staging)
    if not (overwrite and target.exists()):
        _rename_new(staging, target)
        _fsync_dir(target.parent)
        return
    if _exchange(staging, target):
        _fsync_dir(target.parent)
        shutil.rmtree(staging, ignore_errors=True)  # now the old version
        return
    retired = target.parent / _hidden_name(_RETIRED_PREFIX, target.name)
    os.rename(target, retired)
    try:
        os.rename(staging, target)
    except OSError:
        os.rename(retired, target)
        raise
    _fsync_dir(target.parent)
    shutil.rmtree(retired, ignore_errors=True)


def _exists_message(target: Path) -> str:
    return (f"Version {target.name!r} already exists in {str(target.parent)!r}. "
            "Pass overwrite=True to replace it, or another `version`.")


def check_target(target: Path, *, overwrite: bool) -> None:
    """Refuses an existing version early, before any work, unless `overwrite`."""
    if target.exists() and not overwrite:
        raise FileExistsError(_exists_message(target))
