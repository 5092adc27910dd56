"""Where the files of ``.state/`` live: the one place that names them.

Stability: stable (the file names are a public contract, STATE-OBS-002..007).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Layout", "layout"]


@dataclass(frozen=True)
class Layout:
    """The paths of a pipeline's runtime state."""

    folder: Path  # .state/
    journal: Path  # transitions.jsonl, the write-ahead log
    snapshot: Path  # current.json, the checkpoint
    index: Path  # index.json, lookups for agents
    lock: Path  # .lock, the one writer lock
    backups: Path  # backups/, rotating snapshot copies
    logs: Path  # logs/, crash tracebacks and attempt output
    attempts: Path  # attempts/<task_id>/<n>/, what a crashed runner leaves to the next
    leases: Path  # leases/<holder>.json, heartbeats renewing a holder's leases
    sandboxes: Path  # sandboxes/<task_id>/<n>/, the attempts' git worktrees
    audit: Path  # audit/, the tool audit, sealed segments and their manifest.json
    archive: Path  # archive/, sealed segments past retention (AUDIT-004)
    metrics: Path  # metrics.json, counters and gauges for operators (OBS-001)
    daemon: Path  # daemon.pid, the background daemon's PID file (OBS-010)


def layout(root: Path) -> Layout:
    """The state files of the pipeline at ``root``."""
    folder = root / ".state"
    return Layout(
        folder,
        folder / "transitions.jsonl",
        folder / "current.json",
        folder / "index.json",
        folder / ".lock",
        folder / "backups",
        folder / "logs",
        folder / "attempts",
        folder / "leases",
        folder / "sandboxes",
        folder / "audit",
        folder / "archive",
        folder / "metrics.json",
        folder / "daemon.pid",
    )
