"""Read-only views of the state for people and agents: status, next, history, verify.

Stability: provisional (the ``--format json`` shapes are documented in the README).

Everything here reads files and never locks (STATE-OBS-016): the snapshot is
replaced atomically, and the journal is read up to its last committed line.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from .journal import Journal, Tail
from .layout import layout
from .segments import scan_sealed
from .snapshot import State, read_snapshot
from .store import replay

if TYPE_CHECKING:
    from ..lifecycles import Lifecycle

__all__ = [
    "Difference",
    "current_state",
    "dispatch_key",
    "history",
    "next_tasks",
    "status_rows",
    "verify",
]


def current_state(root: Path) -> State:
    """The snapshot, without opening the store.

    A snapshot written before metrics is read with empty metrics: the views
    here do not show them, and ``verify`` reports them as differences.

    Raises:
        UsageError: there is no state yet (run ``sync``).
    """
    state = read_snapshot(root / ".state" / "current.json", without_metrics=True)
    if state is None:
        msg = f"no state yet in {root / '.state'}: run `orchestration sync` to create it"
        raise UsageError(msg)
    return state


def status_rows(
    state: State, *, workstream: str | None = None, statuses: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """One row per task: id, workstream, runtime status, and the declared one when they differ.

    The declared status is the task file's ``status`` as of the last ``sync``
    (STATE-OBS-015); ``pending``, the default, never counts as a disagreement.

    Args:
        state: the snapshot.
        workstream: keep only this workstream.
        statuses: keep only these runtime statuses.
    """
    wanted = set(statuses)
    rows = []
    for task_id in sorted(state.tasks):
        entry = state.tasks[task_id]
        if workstream is not None and entry["workstream_id"] != workstream:
            continue
        if wanted and entry["status"] not in wanted:
            continue
        row = {
            "task_id": task_id,
            "workstream_id": entry["workstream_id"],
            "status": entry["status"],
            "retry_count": entry.get("retry_count", 0),
            "priority": entry.get("priority", 0),
        }
        file_status = entry.get("declared")
        if file_status is not None and file_status not in ("pending", entry["status"]):
            row["declared"] = file_status
        rows.append(row)
    return rows


def next_tasks(
    state: State, slack: Mapping[str, float], capabilities: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """Ready tasks in the order to take them: highest priority, then least slack, then id.

    Args:
        state: the snapshot.
        slack: task id → slack in seconds, from the plan.
        capabilities: when given, only tasks requiring nothing else.
    """
    offered = None if capabilities is None else set(capabilities)
    ready = []
    for task_id, entry in state.tasks.items():
        if entry["status"] != "ready":
            continue
        if offered is not None and not set(entry.get("capabilities", ())) <= offered:
            continue
        ready.append(
            {
                "task_id": task_id,
                "workstream_id": entry["workstream_id"],
                "priority": entry.get("priority", 0),
                "slack_seconds": slack.get(task_id, 0.0),
                "capabilities": entry.get("capabilities", []),
            }
        )
    ready.sort(key=lambda row: dispatch_key(row["task_id"], row, slack))
    return ready


def dispatch_key(
    task_id: str, entry: Mapping[str, Any], slack: Mapping[str, float]
) -> tuple[int, float, str]:
    """Sort key of a ready task: highest priority, then least slack, then id (EXEC-DOC-003).

    ``next`` and ``run`` both order by it, so an agent asking what to take
    gets the scheduler's answer (EXEC-DOC-004).
    """
    return (-entry.get("priority", 0), slack.get(task_id, 0.0), task_id)


class DispatchQueue:
    """The ready tasks in dispatch order (see :func:`dispatch_key`), kept sorted as they change.

    Sorting every ready task at every dispatch cost more than the dispatch
    itself at a thousand tasks: :meth:`ordered` sorts in only the tasks that
    became ready since it was last asked, and drops only the tasks at the
    head that are not ready any more. A task that stopped being ready further
    down stays until it comes first: callers skip what is not ready.

    Args:
        slack: each task's slack, as :func:`dispatch_key` takes it.
        admit: given the tasks newly ready, those to queue; a task it leaves
            out that is still ready afterwards is never offered again (out of
            a run's scope, say). ``None``: every ready task.
    """

    def __init__(
        self,
        slack: Mapping[str, float],
        admit: Callable[[set[str]], set[str]] | None = None,
    ) -> None:
        self.slack = slack
        self.admit = admit
        self._queue: list[tuple[tuple[int, float, str], str]] = []
        self._queued: set[str] = set()
        self._passed: set[str] = set()

    def ordered(
        self, ready: set[str], tasks: Mapping[str, Mapping[str, Any]]
    ) -> list[tuple[tuple[int, float, str], str]]:
        """``(key, task_id)`` of the ready tasks, first to dispatch first; not to be changed.

        Args:
            ready: the tasks ready now (the store's ``ready``).
            tasks: the state's task entries.
        """
        queue = self._queue
        head = 0
        while head < len(queue) and queue[head][1] not in ready:
            self._queued.discard(queue[head][1])
            head += 1
        del queue[:head]
        fresh = ready - self._queued - self._passed  # usually empty: no set is built
        if fresh:
            kept = fresh if self.admit is None else self.admit(fresh)
            self._passed |= {t for t in fresh - kept if t in ready}
            for task_id in kept:
                bisect.insort(queue, (dispatch_key(task_id, tasks[task_id], self.slack), task_id))
                self._queued.add(task_id)
        return queue


def history(root: Path, task_id: str) -> list[dict[str, Any]]:
    """Every journal line about ``task_id``, oldest first, sealed segments included."""
    files = layout(root)
    sealed = list(scan_sealed(files, task_id))
    last = sealed[-1]["seq"] if sealed else 0
    live = Journal(files.journal).scan(task_id)
    return [*sealed, *(line for line in live if line["seq"] > last)]


@dataclass(frozen=True)
class Difference:
    """One way the snapshot disagrees with the replay of the journal."""

    where: str
    snapshot: object
    journal: object

    def render(self) -> str:
        """``where: snapshot has X, the journal says Y``."""
        return f"{self.where}: snapshot has {self.snapshot!r}, the journal says {self.journal!r}"


def verify(
    root: Path, lifecycles: Mapping[str, Lifecycle], tail: Tail | None = None
) -> list[Difference]:
    """Compare the snapshot with the replay of the whole journal (STATE-OBS-012).

    Args:
        tail: the journal already read from its start, to spare reading it again.
    """
    snapshot = current_state(root)
    truth = replay(root, lifecycles, tail)
    found: list[Difference] = []
    for name in ("last_seq", "journal_offset"):
        if getattr(snapshot, name) != getattr(truth, name):
            found.append(Difference(name, getattr(snapshot, name), getattr(truth, name)))
    for part in ("tasks", "workstreams", "workers", "archived"):
        mine: dict[str, Any] = getattr(snapshot, part)
        theirs: dict[str, Any] = getattr(truth, part)
        for key in sorted(set(mine) | set(theirs)):
            if mine.get(key) != theirs.get(key):
                found.append(Difference(f"{part}/{key}", mine.get(key), theirs.get(key)))
    if snapshot.metrics != truth.metrics:  # OBS-001: the counters are a fold of the journal too
        kept, replayed = snapshot.metrics.section(), truth.metrics.section()
        for key in kept:
            if kept[key] != replayed[key]:
                found.append(Difference(f"metrics/{key}", kept[key], replayed[key]))
    return found
