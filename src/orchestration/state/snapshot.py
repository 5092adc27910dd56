"""The state as a fold of the journal, and its checkpoint ``.state/current.json``.

Stability: stable (the snapshot document is a public contract, STATE-OBS-002).

``State.apply(line)`` is the only way state changes: the snapshot is by
construction ``replay(journal)``, which ``state verify`` checks. A task's
entry mirrors, besides its runtime ``status``, what the engine needs from its
definition to decide transitions without reading task files (dependencies,
retries, priority, capabilities; its ``type``, for the metrics), as the
``create``/``redefine`` lines recorded it at ``sync``. Fields at their default
(no dependencies, no retries, priority 0, no capabilities, type ``shell``,
declared ``pending``, ``retry_count`` 0) are left out: at 100k tasks the
snapshot is written several times a second. The ``metrics`` section is the
fold of the same lines into counters (see :mod:`orchestration.state.metrics`);
a snapshot without one, written by an engine before metrics, is not trusted:
the store rebuilds it from the journal.

Snapshot document::

    {"schema_version": "1.0.0", "timestamp": "...", "last_seq": 42,
     "journal_offset": 8123,             # bytes of journal the snapshot reflects
     "workstreams": {"ws-001": {"status": "executing"}},
     "tasks": {"task-001": {"workstream_id": "ws-001", "status": "running",
                            "retry_count": 1, "dependencies": ["task-000"],
                            "max_retries": 3, "priority": 2, "capabilities": ["aider"],
                            "type": "aider", "declared": "cancelled"}},
     "workers": {},
     "archived": {"task-000": {"workstream_id": "ws-001", "status": "succeeded"}},
     "metrics": {"tasks": {"ws-001": {"running": 1}}, ...}}
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..atomic import write_atomic
from ..bulk import gc_paused
from ..errors import OrchestrationError
from .metrics import Metrics

__all__ = [
    "DEFINITION",
    "SNAPSHOT_VERSION",
    "SnapshotError",
    "State",
    "LEASED",
    "define",
    "fold",
    "read_snapshot",
    "write_snapshot",
]

SNAPSHOT_VERSION = "1.0.0"
# The keys of a task's entry that mirror its definition (besides workstream_id).
DEFINITION = (
    "dependencies", "max_retries", "priority", "capabilities", "resources", "type", "declared",
)  # fmt: skip
LEASED = frozenset({"claimed", "running"})  # the statuses in which a task has a lease


def define(entry: dict[str, Any], data: dict[str, Any]) -> None:
    """Replace the definition part of a task's entry with ``data`` (defaults left out)."""
    for key in DEFINITION:
        entry.pop(key, None)
    entry.update(data)


def fold(entry: dict[str, Any], line: dict[str, Any]) -> None:
    """Apply one journal line about a task to its entry: the one rule for replay and writers.

    Besides the status, a line may carry: ``data`` (the mirrored definition,
    on ``create``/``redefine``), ``lease`` (holder, worker, fencing epoch,
    grant time and ttl, on ``claim`` and ``adopt``), ``attempt`` (the attempt
    number, on ``start``) and ``failure`` (failure mode and whether it is
    final, on ``fail``). A task keeps its lease only while claimed or running.
    """
    if line["entity"] == "phase":  # an agent's phase and its current token (AGENT-WF-009)
        entry["phase"] = line["to"]
        entry["jti"] = line["jti"]
        return
    if "data" in line:
        define(entry, line["data"])
    if line["trigger"] == "retry":
        entry["retry_count"] = entry.get("retry_count", 0) + 1
    if "lease" in line:
        entry["lease"] = line["lease"]
        entry["epoch"] = line["lease"]["epoch"]
    if "attempt" in line:
        entry["attempt"] = line["attempt"]
    if "failure" in line:
        entry["failure"] = line["failure"]
    elif line["trigger"] == "complete":
        entry.pop("failure", None)
    if line["entity"] == "task":
        entry["status"] = line["to"]
    if entry.get("status") not in LEASED:
        entry.pop("lease", None)
        entry.pop("jti", None)  # no agent holds the task: every phase token is revoked


class SnapshotError(OrchestrationError):
    """The snapshot cannot be used (corrupt, or from a newer engine)."""


@dataclass
class State:
    """Everything ``.state/current.json`` holds, in memory."""

    last_seq: int = 0
    journal_offset: int = 0
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    workstreams: dict[str, dict[str, Any]] = field(default_factory=dict)
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)
    archived: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)

    def apply(self, line: dict[str, Any]) -> None:
        """Fold one committed journal line into the state (and its metrics)."""
        self.last_seq = line["seq"]
        entity = line["entity"]
        self.metrics.count(entity, line["trigger"])
        if entity == "worker":
            worker = self.workers.setdefault(line["id"], {})
            worker["status"] = line["to"]
            worker.update(line.get("data") or {})
            return
        if entity in ("lease", "phase"):  # a lease changed hands or was refused; a phase
            if ("lease" in line or entity == "phase") and line["id"] in self.tasks:
                fold(self.tasks[line["id"]], line)
            return
        if entity != "task":
            return  # engine events change no entity
        task_id, trigger = line["id"], line["trigger"]
        if trigger == "archive":
            entry = self.tasks.pop(task_id)
            self.archived[task_id] = {
                "workstream_id": entry["workstream_id"],
                "status": line["from"],
            }
            self.metrics.removed(task_id, entry, entry["status"])
            return
        if trigger in ("create", "redefine"):
            self.archived.pop(task_id, None)
            entry = self.tasks.setdefault(task_id, {})
        else:
            entry = self.tasks[task_id]
        before = (entry["workstream_id"], entry["status"]) if entry else None
        fold(entry, line)
        self.metrics.moved(task_id, line, before, entry)

    def derive_workstreams(self, derive: Callable[[Iterable[str]], str]) -> None:
        """Recompute every workstream's status from its tasks (SM-DEF-008)."""
        statuses: dict[str, list[str]] = {}
        for entry in self.tasks.values():
            statuses.setdefault(entry["workstream_id"], []).append(entry["status"])
        self.workstreams = {ws: {"status": derive(found)} for ws, found in sorted(statuses.items())}

    def document(self, timestamp: str) -> dict[str, Any]:
        """The snapshot document written to ``current.json``."""
        return {
            "schema_version": SNAPSHOT_VERSION,
            "timestamp": timestamp,
            "last_seq": self.last_seq,
            "journal_offset": self.journal_offset,
            "workstreams": self.workstreams,
            "tasks": self.tasks,
            "workers": self.workers,
            "archived": self.archived,
            "metrics": self.metrics.section(),
        }

    def copy(self) -> State:
        """A deep copy (for a transaction that may be abandoned)."""
        return copy.deepcopy(self)

    @classmethod
    def from_document(
        cls, document: dict[str, Any], source: Path, *, without_metrics: bool = False
    ) -> State:
        """The state a snapshot document describes.

        Args:
            without_metrics: accept a snapshot written before metrics (its
                metrics are then empty), for readers that do not show them.

        Raises:
            SnapshotError: unsupported ``schema_version`` or missing parts; a
                snapshot without metrics, unless ``without_metrics``: its
                counters cannot be trusted, and the store rebuilds it from the
                journal when it opens.
        """
        version = document.get("schema_version")
        if version != SNAPSHOT_VERSION:
            msg = (
                f"{source}: snapshot schema_version {version!r} is not supported (this engine "
                f"writes {SNAPSHOT_VERSION}); upgrade orchestration, or run "
                "`orchestration state rebuild` to rebuild it from the journal"
            )
            raise SnapshotError(msg)
        if "metrics" not in document and not without_metrics:
            msg = (
                f"{source}: snapshot has no metrics (written by an engine before metrics), so "
                "its counters would be wrong; any command that writes the state (`orchestration "
                "sync`) or `orchestration state rebuild` rebuilds it from the journal"
            )
            raise SnapshotError(msg)
        try:
            section = document.get("metrics")
            return cls(
                last_seq=int(document["last_seq"]),
                journal_offset=int(document["journal_offset"]),
                tasks=dict(document["tasks"]),
                workstreams=dict(document["workstreams"]),
                workers=dict(document["workers"]),
                archived=dict(document.get("archived", {})),
                metrics=Metrics() if section is None else Metrics.from_section(section),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as bad:
            msg = f"{source}: snapshot is missing or has a malformed part ({bad})"
            raise SnapshotError(msg) from bad


def read_snapshot(path: Path, *, without_metrics: bool = False) -> State | None:
    """The state in ``path``, or ``None`` when the file does not exist.

    Args:
        without_metrics: accept a snapshot written before metrics (see
            :meth:`State.from_document`).

    Raises:
        SnapshotError: the file does not parse or is not a supported snapshot.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        with gc_paused():  # 100k task entries: see orchestration.bulk
            document = orjson.loads(raw)
    except orjson.JSONDecodeError as bad:
        msg = f"{path}: snapshot is not valid JSON ({bad})"
        raise SnapshotError(msg) from bad
    if not isinstance(document, dict):
        msg = f"{path}: snapshot is not a JSON object"
        raise SnapshotError(msg)
    return State.from_document(document, path, without_metrics=without_metrics)


def write_snapshot(path: Path, state: State, timestamp: str) -> None:
    """Replace ``path`` with the snapshot of ``state`` atomically (STATE-OBS-003)."""
    write_atomic(path, orjson.dumps(state.document(timestamp)))
