"""Durable file replacement: a reader sees the old file or the new, never a mix.

Stability: stable.

The recipe (STATE-OBS-003): write a temporary file in the same directory,
flush and ``fsync`` it, ``os.replace`` it over the target, then ``fsync`` the
directory so the rename itself survives a power cut. On any error the
temporary file is removed and the target is untouched.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from . import faults

__all__ = ["fsync_directory", "write_atomic"]


def fsync_directory(directory: Path) -> None:
    """Make the directory's entries (a rename, a new file) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically and durably.

    Args:
        durable: fsync the file and the directory, so the replacement
            survives a power cut. Without it the replacement is still atomic
            for every process (a crash of the writer leaves the old file or
            the new): enough for what matters only while processes live,
            such as heartbeats and attempt records.

    Raises:
        OSError: the write failed (full disk, read-only folder); ``path`` is
            unchanged and no temporary file is left behind.
    """
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644  # mkstemp's 0600 would hide the file from other users
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        faults.crash_point("atomic.before_rename")
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    faults.crash_point("atomic.before_dir_fsync")
    if durable:
        fsync_directory(path.parent)
