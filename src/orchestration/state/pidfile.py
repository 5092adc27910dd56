"""The daemon's PID file and report under ``.state/``: one daemon per repository (OBS-010).

Stability: provisional (``.state/daemon.pid`` holding the pid is stable).

``.state/daemon.pid`` holds the daemon's pid, and the daemon holds an
exclusive ``flock`` on it for its whole life. The kernel drops the lock when
the process ends, however it ends (``kill -9`` included), so whether a daemon
runs is answered by trying the lock, never by the pid, which the system may
since have given to another process. A second daemon finds the lock taken and
is refused. ``.state/daemon.json`` is what the running daemon reports about
itself and its children, replaced atomically; readers never lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import orjson

from ..atomic import write_atomic
from ..errors import OrchestrationError

__all__ = ["DaemonRunning", "PidFile", "Probe", "probe"]

_ACQUIRE_TRIES = 10  # a reader's probe holds the lock for microseconds: try again meanwhile


class DaemonRunning(OrchestrationError):
    """A daemon already runs on this repository (exit 1)."""

    exit_code: ClassVar[int] = 1


@dataclass(frozen=True)
class Probe:
    """What the PID file says, checked against its lock."""

    running: bool  # a live process holds the lock
    pid: int | None  # the pid in the file (of the live daemon, or of a dead one when stale)
    stale: bool  # a PID file is left by a daemon that died without removing it
    report: dict[str, Any] | None  # daemon.json, when it belongs to that pid


def _report_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _read_report(path: Path, pid: int | None) -> dict[str, Any] | None:
    try:
        report = orjson.loads(_report_path(path).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    return report if isinstance(report, dict) and report.get("pid") == pid else None


def probe(path: Path) -> Probe:
    """Whether a daemon holds the PID file at ``path``, and what it reports.

    Takes the lock shared for an instant when nobody holds it (which proves the
    daemon dead), and releases it at once.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return Probe(running=False, pid=None, stale=False, report=None)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            running = True
        else:
            running = False
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    pid = _read_pid(path)
    report = _read_report(path, pid)
    return Probe(running=running, pid=pid, stale=not running and pid is not None, report=report)


class PidFile:
    """The daemon's side: hold the lock for life, publish reports, clean up on the way out."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> None:
        """Take the lock and write this process's pid; a stale file is taken over.

        Raises:
            DaemonRunning: another live process holds the lock.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(_ACQUIRE_TRIES):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if attempt + 1 < _ACQUIRE_TRIES:
                    time.sleep(0.02)
                    continue
                pid = _read_pid(self.path)
                where = self.path.parent.parent
                msg = (
                    f"a daemon already runs on {where} (pid {pid if pid else 'unknown'}); "
                    "`orchestration daemon status` shows it, `orchestration daemon stop` stops it"
                )
                raise DaemonRunning(msg) from None
            # A daemon that was stopping may have removed the file we opened: lock the one
            # on disk, or two daemons could each hold a lock on a different file.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self.fd = fd
            return
        msg = f"could not take the lock of {self.path}: it keeps being replaced; try again"
        raise DaemonRunning(msg)

    def publish(self, report: dict[str, Any]) -> None:
        """Replace ``daemon.json`` with ``report`` (this process's pid is added)."""
        document = {**report, "pid": os.getpid()}
        with contextlib.suppress(OSError):  # a report is best-effort; the lock is the truth
            write_atomic(_report_path(self.path), orjson.dumps(document), durable=False)

    def release(self) -> None:
        """Remove the report and the PID file, then drop the lock (the daemon is stopping)."""
        if self.fd is None:
            return
        _report_path(self.path).unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)
        os.close(self.fd)  # drops the lock
        self.fd = None
