"""Attempt records and lease heartbeats: what must outlive a crashed runner (CONC-REG-010).

Stability: provisional (the files are documented in docs/execution_model/OVERVIEW.md).

A runner keeps nothing that matters only in memory. For each attempt it
writes, before spawning anything, ``.state/attempts/<task_id>/<n>/attempt.json``
(task, attempt number, lease epoch, holder, start time, sandbox). The process
is started under a two-line ``/bin/sh`` wrapper (:func:`wrap`) that writes its
own process id to ``pid`` first and the command's exit status to ``exit``
last, so both are on disk even when the runner is killed with SIGKILL while
the attempt runs: a restarted runner *adopts* an attempt whose process still
runs, *records* one whose ``exit`` is there, and re-runs only one that left
neither (:func:`attempt_status`).

A lease's holder (a runner, or an agent of the API) proves it is alive by
rewriting ``.state/leases/<holder>.json`` every few seconds
(:func:`write_heartbeat`); a lease expires ``ttl`` seconds after the later of
its grant and its holder's last heartbeat (CONC-REG-006).
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import orjson

from ..atomic import write_atomic

__all__ = [
    "AttemptRecord",
    "AttemptStatus",
    "LOG_TAIL_BYTES",
    "attempt_status",
    "heartbeat_of",
    "keep_tail",
    "lease_expiry",
    "read_attempt",
    "remove_heartbeat",
    "write_artifact",
    "write_attempt",
    "write_heartbeat",
    "wrap",
]

LOG_TAIL_BYTES = 64 * 1024  # the end of stdout/stderr kept as evidence (AIDER-INT-008)
SPAWN_GRACE = 5.0  # seconds an attempt may take from its record to its pid file

# $1 is the attempt's folder; the rest is the command. `echo` is a shell
# builtin: recording costs no process.
_WRAPPER = 'echo $$ > "$1/pid"; d="$1"; shift; "$@"; s=$?; echo $s > "$d/exit"; exit $s'
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class AttemptRecord:
    """``attempt.json``: one attempt of a task, written before its process starts."""

    task_id: str
    attempt: int
    epoch: int  # the lease epoch the attempt runs under
    holder: str  # who holds the lease (a runner's worker)
    started_at: float  # Unix time
    sandbox: str  # the worktree's path
    branch: str  # task/<task_id>/<attempt>
    base: str  # the commit the sandbox started from


class AttemptStatus(Enum):
    """What the files of an attempt say about its process."""

    RUNNING = "running"  # its process is alive: adopt it
    FINISHED = "finished"  # its exit status is recorded: record it
    STARTING = "starting"  # recorded moments ago, no pid yet: wait
    LOST = "lost"  # never started, or died without an exit status: run it again


def write_attempt(folder: Path, record: AttemptRecord) -> None:
    """Create the attempt's folder and its ``attempt.json`` (durably)."""
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in ("pid", "exit"):  # a lost attempt of the same number, run again
        (folder / leftover).unlink(missing_ok=True)
    data = {"schema_version": "1.0.0", **asdict(record)}
    # Not fsynced: a power cut kills the attempt's process too, and a missing
    # record then reads as a lost attempt, which is what it is.
    write_atomic(
        folder / "attempt.json", orjson.dumps(data, option=orjson.OPT_INDENT_2), durable=False
    )


def read_attempt(folder: Path) -> AttemptRecord | None:
    """The record in ``folder``, ``None`` when there is none or it cannot be read."""
    try:
        data = orjson.loads((folder / "attempt.json").read_bytes())
        data.pop("schema_version", None)
        return AttemptRecord(**data)
    except (OSError, orjson.JSONDecodeError, TypeError):
        return None


def wrap(argv: Sequence[str], folder: Path) -> list[str]:
    """``argv`` under the shell wrapper that records its pid and exit status in ``folder``."""
    return ["/bin/sh", "-c", _WRAPPER, "orchestration-attempt", str(folder), *argv]


def _number(path: Path) -> int | None:
    try:
        return int(path.read_bytes().strip())
    except (OSError, ValueError):
        return None


def attempt_status(folder: Path, now: float | None = None) -> tuple[AttemptStatus, int | None]:
    """What became of the attempt in ``folder``: its status, and its exit code when finished."""
    code = _number(folder / "exit")
    if code is not None:
        return AttemptStatus.FINISHED, code
    pid = _number(folder / "pid")
    if pid is not None and _is_wrapper(pid, folder):
        return AttemptStatus.RUNNING, None
    record = read_attempt(folder)
    moment = now if now is not None else time.time()
    if pid is None and record is not None and moment - record.started_at < SPAWN_GRACE:
        return AttemptStatus.STARTING, None
    code = _number(folder / "exit")  # it may have finished while we looked
    if code is not None:
        return AttemptStatus.FINISHED, code
    return AttemptStatus.LOST, None


def _is_wrapper(pid: int, folder: Path) -> bool:
    """Whether ``pid`` is alive and is this attempt's wrapper (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(folder).encode() in cmdline.split(b"\0")


def write_evidence(folder: Path, evidence: dict[str, Any]) -> None:
    """Write ``evidence.json``, the engine's own account of an attempt (AIDER-INT-008).

    Atomic, not fsynced, like the logs it sits beside: what survives a
    power cut is the journal, which records how the attempt ended.
    """
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(
        folder / "evidence.json", orjson.dumps(evidence, option=orjson.OPT_INDENT_2), durable=False
    )


def write_artifact(folder: Path, phase: str, name: str, document: Any) -> Path:
    """Keep, durably, an artifact an agent submitted to leave ``phase`` (AGENT-WF-003)."""
    path = folder / "artifacts" / f"{phase}.{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return path


def keep_tail(path: Path, limit: int = LOG_TAIL_BYTES) -> None:
    """Cut the log at ``path`` to its last ``limit`` bytes (a missing log is fine)."""
    try:
        size = path.stat().st_size
        if size <= limit:
            return
        with open(path, "rb") as handle:
            handle.seek(size - limit)
            tail = handle.read()
    except OSError:
        return
    write_atomic(path, tail, durable=False)


# --- lease heartbeats ---------------------------------------------------------------


# When this process last wrote each heartbeat file: a runner checks its own
# leases at every attempt's start and end, the API an agent's at every request.
_beats: dict[Path, float] = {}


def _heartbeat_path(folder: Path, holder: str) -> Path:
    return folder / f"{_UNSAFE.sub('_', holder)}.json"


def write_heartbeat(folder: Path, holder: str, *, process: bool = True) -> None:
    """Record that ``holder`` is alive now; every lease it holds is renewed.

    Args:
        process: whether the holder is this process, so that its death ends
            its leases at once; an agent heartbeating through the API is not.
    """
    folder.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"holder": holder, "at": time.time()}
    if process:
        data.update(host=socket.gethostname(), pid=os.getpid())
    path = _heartbeat_path(folder, holder)
    write_atomic(path, orjson.dumps(data), durable=False)
    _beats[path] = data["at"]


def remove_heartbeat(folder: Path, holder: str) -> None:
    """Forget ``holder``'s heartbeat (it stopped, holding no lease)."""
    path = _heartbeat_path(folder, holder)
    _beats.pop(path, None)
    path.unlink(missing_ok=True)


def heartbeat_of(folder: Path, holder: str) -> float | None:
    """When ``holder`` last proved alive (Unix time), ``None`` when never.

    A holder on this host whose process is gone is dead now, whatever its
    last heartbeat says: a restarted runner need not wait for the expiry.
    """
    path = _heartbeat_path(folder, holder)
    try:
        data: dict[str, Any] = orjson.loads(path.read_bytes())
        at = float(data["at"])
        host, pid = data.get("host"), int(data.get("pid", 0))
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    if pid and host == socket.gethostname() and not _alive(pid):
        return None
    return at


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:  # a zombie is dead: its parent has not reaped it yet
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def lease_expiry(lease: dict[str, Any], folder: Path) -> float:
    """When a lease (as the state records it) expires, counting its holder's heartbeats.

    A lease whose holder is known dead (see :func:`heartbeat_of`) has expired.
    A heartbeat this process wrote that keeps the lease alive is taken
    without reading the file: a later one, written elsewhere, only extends it.
    """
    granted, ttl = float(lease["granted"]), float(lease["ttl"])
    mine = _beats.get(_heartbeat_path(folder, lease["holder"]))
    if mine is not None and max(granted, mine) + ttl > time.time():
        return max(granted, mine) + ttl
    renewed = heartbeat_of(folder, lease["holder"])
    if renewed is None and (folder / _heartbeat_path(folder, lease["holder"]).name).exists():
        return 0.0
    return max(granted, renewed or 0.0) + ttl
