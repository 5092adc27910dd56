"""Whether anything changed in a worktree, without reading it: Linux's inotify.

Stability: internal.

An attempt that changed nothing leaves its worktree to the next attempt
as it is (CONC-REG-013). Asking git whether that is so (``git status``
stats every file and forks a process) costs more than a short task itself.
A :class:`TreeWatch` set on a worktree when it is clean is told by the
kernel of every change after that: a file or folder created, written,
deleted, moved or given new attributes, in any folder of the worktree or in
its administrative folder under ``.git/worktrees/`` (its ``HEAD`` and index).
No event since the watch was set means the files are as they were. Reading
a file is not a change.

What a watch cannot see, :func:`orchestration.execution.sandbox.changes`
checks otherwise or by asking git: a commit moves the branch's ref, outside
the worktree; writes through a shared memory mapping raise no event (no
tool edits source files that way). Without inotify (not Linux, or the
system's limit on watches reached) there is no watch, and git is asked.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

__all__ = ["TreeWatch"]

# <sys/inotify.h>. Not IN_CLOSE_WRITE: a write raised IN_MODIFY already, and
# a close comes late when a child forked meanwhile held the descriptor until
# its exec (the engine's own HEAD write would then seem an attempt's change).
_MODIFY, _ATTRIB, _MOVED_FROM, _MOVED_TO, _CREATE, _DELETE = 0x2, 0x4, 0x40, 0x80, 0x100, 0x200
_DELETE_SELF, _MOVE_SELF, _ONLYDIR = 0x400, 0x800, 0x01000000
_CHANGES = (
    _MODIFY | _ATTRIB | _MOVED_FROM | _MOVED_TO | _CREATE | _DELETE | _DELETE_SELF | _MOVE_SELF
    | _ONLYDIR
)  # fmt: skip
_NONBLOCK, _CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.inotify_init1  # noqa: B018  (absent where inotify is)
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


class TreeWatch:
    """Watches every folder under the given roots; says whether anything changed since."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @classmethod
    def of(cls, *roots: Path) -> TreeWatch | None:
        """A watch on ``roots`` and every folder under them; ``None`` when it cannot be set."""
        if _LIBC is None:
            return None
        fd = _LIBC.inotify_init1(_NONBLOCK | _CLOEXEC)
        if fd < 0:
            return None
        watch = cls(fd)
        for root in roots:
            for folder, subfolders, _ in os.walk(root):
                subfolders[:] = [name for name in subfolders if name != ".git"]
                if _LIBC.inotify_add_watch(fd, os.fsencode(folder), _CHANGES) < 0:
                    watch.close()  # too many watches, or the tree changed under us
                    return None
        return watch

    @property
    def open(self) -> bool:
        """Whether the watch is still set (not closed)."""
        return self._fd >= 0

    def drain(self) -> None:
        """Forget the changes seen so far (the engine's own)."""
        self.changed()

    def changed(self) -> bool:
        """Whether anything changed since the watch was set or last asked; forgets it."""
        seen = False
        while True:
            try:
                if not os.read(self._fd, 65536):
                    return seen
            except BlockingIOError:
                return seen
            seen = True

    def close(self) -> None:
        """Stop watching (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
