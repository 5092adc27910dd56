"""The store: the one writer of ``.state/`` (STATE-OBS-001).

Stability: provisional (the files it writes are stable; this API may grow).

A change is a *transaction*: one or more journal lines appended with one
write and one ``fsync`` under the inter-process lock ``.state/.lock``
(STATE-OBS-007), then folded into the in-memory state. A change that implies
others commits them in the same transaction (STATE-OBS-008): a task that
succeeds enqueues the dependents whose dependencies are now all done; a task
that fails for good, or is cancelled, blocks its pending and ready dependents
transitively.

The snapshot ``current.json`` is a checkpoint of the journal: written at most
every 250 ms while changes stream in (a background flush catches the last
ones), and exactly when the store closes (STATE-OBS-009). Opening the store
repairs what a crash leaves (STATE-OBS-011).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from filelock import FileLock

from ..atomic import write_atomic
from ..bulk import gc_paused
from ..errors import OrchestrationError, UsageError
from .attempts import lease_expiry
from .journal import Journal, Tail, now
from .snapshot import DEFINITION, LEASED, SnapshotError, State, fold, read_snapshot, write_snapshot

if TYPE_CHECKING:
    from ..lifecycles import Lifecycle
    from ..tasks.model import Task

__all__ = ["SNAPSHOT_LAG", "Store", "Transaction"]

SNAPSHOT_LAG = (
    0.25  # seconds the snapshot may trail the journal while a writer runs (STATE-OBS-009)
)
BACKUPS = 10  # rotating copies of current.json kept in .state/backups/
BACKUP_EVERY = 60.0  # seconds between backups
INDEX_EVERY = 1.0  # seconds between index.json writes while a writer runs (exact at close)
DONE = frozenset({"succeeded", "skipped"})  # a dependency in these lets dependents start
BLOCKING = frozenset({"cancelled"})  # ... in these (or failed for good) never will


_LAST_SEQ = re.compile(rb'"last_seq":(\d+)')


def _snapshot_seq(path: Path) -> int:
    """The seq of the snapshot at ``path``, read from its head; -1 when unknown."""
    try:
        with open(path, "rb") as handle:
            found = _LAST_SEQ.search(handle.read(256))
    except OSError:
        return -1
    return int(found[1]) if found else -1


def _journal_line(
    entity: str,
    entity_id: str,
    source: str | None,
    dest: str | None,
    trigger: str,
    *,
    actor: str,
    reason: str = "",
    severity: str = "info",
    **extra: Any,
) -> dict[str, Any]:
    """A journal line (STATE-OBS-004) before its commit numbers and stamps it."""
    return {
        "seq": 0, "ts": "", "entity": entity, "id": entity_id, "from": source, "to": dest,
        "trigger": trigger, "actor": actor, "reason": reason, "severity": severity, **extra,
    }  # fmt: skip


class StateError(OrchestrationError):
    """The state cannot be opened or written (read-only, full disk, ...)."""


@dataclass
class Transaction:
    """Changes being prepared: they see each other, nobody else sees them yet."""

    store: Store
    actor: str
    lines: list[dict[str, Any]]
    overlay: dict[str, dict[str, Any]]
    # Who depends on whom, when this transaction redefines it (sync).
    dependents: dict[str, list[str]] | None = None
    # Workers this transaction changed: id → entry.
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def status(self, task_id: str) -> str:
        """The task's status including this transaction's changes."""
        return str(self.entry(task_id)["status"])

    def entry(self, task_id: str) -> dict[str, Any]:
        """The task's state entry including this transaction's changes."""
        found = self.overlay.get(task_id)
        if found is None:
            try:
                found = self.store.state.tasks[task_id]
            except KeyError:
                msg = (
                    f"task {task_id!r} is not in the state; if it is defined, run "
                    "`orchestration sync` first"
                )
                raise UsageError(msg) from None
        return found

    def record(self, task_id: str, trigger: str, dest: str | None, **line: Any) -> dict[str, Any]:
        """Add one line about a task, already decided, to the transaction."""
        known = task_id in self.overlay or task_id in self.store.state.tasks
        entry = dict(self.entry(task_id)) if known else {}
        record = _journal_line(
            "task", task_id, entry.get("status"), dest, trigger,
            actor=line.pop("actor", self.actor), reason=line.pop("reason", ""),
            severity=line.pop("severity", "info"), **line,
        )  # fmt: skip
        self.lines.append(record)
        if trigger == "archive":
            self.overlay[task_id] = {**entry, "status": None}
        else:
            fold(entry, record)
            self.overlay[task_id] = entry
        return record

    def apply(
        self,
        task_id: str,
        trigger: str,
        *,
        reason: str = "",
        actor: str | None = None,
        severity: str | None = None,
        **line: Any,
    ) -> str:
        """Apply ``trigger`` to a task, and every change it implies.

        Args:
            severity: the line's severity; by default ``info``, and for a
                failure ``warning`` while a retry remains, else ``error``.
            line: more fields of the journal line (``lease``, ``attempt``,
                ``failure``; see :func:`orchestration.state.snapshot.fold`).

        Returns:
            The task's new status.

        Raises:
            TransitionRejected: the lifecycle does not allow it (SM-DEF-006).
        """
        lifecycle = self.store.lifecycles["task"]
        guards = self._guards(task_id)
        dest = lifecycle.apply(task_id, self.status(task_id), trigger, guards)
        if severity is None:
            severity = "info"
        if dest == "failed":  # ERR-FM-007: warning while a retry remains, error when final
            final = line.get("failure", {}).get("final", False)
            severity = "warning" if guards["attempts_remaining"] and not final else "error"
        self.record(
            task_id, trigger, dest, reason=reason, actor=actor or self.actor, severity=severity,
            **line,
        )  # fmt: skip
        self._cascade(task_id, dest)
        return dest

    def _guards(self, task_id: str) -> dict[str, bool]:
        entry = self.entry(task_id)
        return {
            "dependencies_succeeded": self.ready_to_run(task_id),
            # A person may retry a final failure while retries remain; the
            # engine never does (see _failed_for_good).
            "attempts_remaining": entry.get("retry_count", 0) < entry.get("max_retries", 0),
            # A person's change holds the lease; a worker's is fenced by finish().
            "lease_valid": True,
            "lease_expired": entry.get("status") in LEASED
            and self.lease_problem(task_id, entry.get("epoch", 0)) is not None,
        }

    # --- leases, attempts and workers (CONC-REG-006..011, SM-DEF-009) ----------

    def active(self) -> set[str]:
        """Tasks claimed or running (holding a lease), this transaction's changes included."""
        found = set(self.store.active)
        for task_id, entry in self.overlay.items():
            if entry.get("status") in LEASED:
                found.add(task_id)
            else:
                found.discard(task_id)
        return found

    def claim(self, task_id: str, *, holder: str, worker: str, ttl: float) -> int:
        """Lease a ready task to ``worker`` of ``holder``; returns the new fencing epoch."""
        epoch = int(self.entry(task_id).get("epoch", 0)) + 1
        lease = {"holder": holder, "worker": worker, "epoch": epoch,
                 "granted": round(time.time(), 3), "ttl": ttl}  # fmt: skip
        self.apply(task_id, "claim", actor=f"worker:{worker}",
                   reason=f"lease epoch {epoch} to {holder}", lease=lease)  # fmt: skip
        return epoch

    def start(self, task_id: str) -> int:
        """Start the next attempt of a claimed task; returns its number."""
        entry = self.entry(task_id)
        attempt = int(entry.get("attempt", 0)) + 1
        worker = entry["lease"]["worker"]
        self.apply(task_id, "start", actor=f"worker:{worker}", reason=f"attempt {attempt}",
                   attempt=attempt)  # fmt: skip
        return attempt

    def lease_problem(self, task_id: str, epoch: int) -> str | None:
        """Why the holder of lease ``epoch`` may not change the task now; ``None`` if it may."""
        entry = self.entry(task_id)
        lease = entry.get("lease")
        if lease is None or lease["epoch"] != epoch:
            held = f"lease epoch {lease['epoch']}" if lease else "no lease"
            return f"lease epoch {epoch} is not current (the task is {entry['status']}, {held})"
        late = time.time() - lease_expiry(lease, self.store.leases)
        if late > 0:
            return f"lease epoch {epoch} of {lease['holder']} expired {late:.1f} s ago"
        return None

    def finish(
        self,
        task_id: str,
        epoch: int,
        trigger: str,
        *,
        reason: str,
        failure: dict[str, Any] | None = None,
        started: bool = True,
    ) -> str | None:
        """``complete`` or ``fail`` an attempt for the holder of lease ``epoch`` (CONC-REG-007).

        Args:
            started: whether the attempt's process ran; an expired lease of
                one that never did is abandoned without spending a retry.

        Returns:
            ``None`` when applied; otherwise why the lease is not the holder's
            any more: the late result is refused and recorded as an event with
            ``FM-LEASE-EXPIRED``, and a still-current expired lease is expired.
        """
        problem = self.lease_problem(task_id, epoch)
        if problem is None:
            extra: dict[str, Any] = {} if failure is None else {"failure": failure}
            worker = self.entry(task_id)["lease"]["worker"]
            self.apply(task_id, trigger, reason=reason, actor=f"worker:{worker}", **extra)
            return None
        entry = self.entry(task_id)
        self.lines.append(_journal_line(
            "lease", task_id, entry["status"], entry["status"], "refuse", actor=self.actor,
            reason=f"FM-LEASE-EXPIRED: late {trigger} refused: {problem}", severity="warning",
        ))  # fmt: skip
        lease = entry.get("lease")
        if lease is not None and lease["epoch"] == epoch:
            self.expire(task_id, f"{problem}; its late {trigger} was refused", started=started)
        return problem

    def expire(self, task_id: str, why: str, *, started: bool) -> str:
        """End a lease its holder lost (CONC-REG-007, CONC-REG-008).

        An attempt that never started (``started`` false) is abandoned: the
        task is ready again and no retry is spent. One that ran is a failure
        ``FM-LEASE-EXPIRED``, retried while attempts remain.
        """
        if not started:
            return self.apply(task_id, "abandon", actor="engine",
                              reason=f"FM-LEASE-EXPIRED: {why}; no attempt ran")  # fmt: skip
        retry = self._guards(task_id)["attempts_remaining"]
        failure = {"mode": "FM-LEASE-EXPIRED", "final": not retry}
        decision = "retry" if retry else "no retry left"
        return self.apply(task_id, "fail", actor="engine", failure=failure,
                          reason=f"FM-LEASE-EXPIRED: {why}; {decision}")  # fmt: skip

    def adopt(self, task_id: str, *, holder: str, worker: str, ttl: float) -> int:
        """Take over the lease of a running attempt whose holder died; returns the new epoch.

        The old holder is fenced: its epoch is no longer current.
        """
        entry = self.entry(task_id)
        old = entry["lease"]
        epoch = int(entry.get("epoch", 0)) + 1
        lease = {"holder": holder, "worker": worker, "epoch": epoch,
                 "granted": round(time.time(), 3), "ttl": ttl}  # fmt: skip
        line = _journal_line(
            "lease", task_id, entry["status"], entry["status"], "adopt", actor=f"worker:{worker}",
            reason=f"attempt {entry.get('attempt', 0)} of {old['holder']} adopted by {holder} "
            f"(epoch {epoch})", severity="warning", lease=lease,
        )  # fmt: skip
        self.lines.append(line)
        entry = dict(entry)
        fold(entry, line)
        self.overlay[task_id] = entry
        return epoch

    def worker(
        self,
        worker_id: str,
        trigger: str,
        *,
        reason: str = "",
        data: dict[str, Any] | None = None,
    ) -> str:
        """Move a worker through the worker lifecycle (SM-DEF-009); ``register`` creates one.

        Raises:
            TransitionRejected: the worker lifecycle does not allow it.
        """
        lifecycle = self.store.lifecycles["worker"]
        current = self.workers.get(worker_id, self.store.state.workers.get(worker_id, {}))
        status = current.get("status")
        if status is None and trigger == "register":
            dest = lifecycle.initial
        else:
            facts = {"lease_expired": trigger == "lose"}  # the caller saw the heartbeat stop
            dest = lifecycle.apply(worker_id, status or "(unknown)", trigger, facts)
        extra: dict[str, Any] = {} if data is None else {"data": data}
        self.lines.append(_journal_line("worker", worker_id, status, dest, trigger,
                                       actor=self.actor, reason=reason, **extra))  # fmt: skip
        self.workers[worker_id] = {**current, **(data or {}), "status": dest}
        return dest

    def phase(
        self,
        task_id: str,
        trigger: str,
        dest: str,
        *,
        agent: str,
        jti: str,
        reason: str,
        severity: str = "info",
    ) -> None:
        """Record an agent's move to phase ``dest`` (decided by the contract) and its token.

        The task's entry keeps the phase and the token id current in it; a
        token with any other id is revoked (AGENT-WF-009).
        """
        entry = dict(self.entry(task_id))
        line = _journal_line(
            "phase", task_id, entry.get("phase"), dest, trigger, actor=f"agent:{agent}",
            reason=reason, severity=severity, jti=jti,
        )  # fmt: skip
        self.lines.append(line)
        fold(entry, line)
        self.overlay[task_id] = entry

    def event(self, entity: str, entity_id: str, trigger: str, dest: str, *, reason: str) -> None:
        """Record an event that changes no entity's state (e.g. a review requested)."""
        self.lines.append(
            _journal_line(entity, entity_id, None, dest, trigger, actor=self.actor, reason=reason)
        )

    def _cascade(self, task_id: str, dest: str) -> None:
        """Commit what ``task_id`` reaching ``dest`` implies, in this transaction."""
        dependents = self._dependents().get(task_id, ())
        if dest in DONE:
            for dependent in dependents:
                self.enqueue_if_ready(dependent, reason=f"{task_id} {dest}")
        elif dest in BLOCKING or (dest == "failed" and self._failed_for_good(task_id)):
            self.block_downstream(task_id, f"{task_id} {dest} for good")
        elif dest == "pending":
            self.enqueue_if_ready(task_id, reason="dependencies done")

    def _failed_for_good(self, task_id: str) -> bool:
        """No retry follows: the catalog decided so (``failure.final``), or none remain."""
        entry = self.entry(task_id)
        final = bool(entry.get("failure", {}).get("final", False))
        return final or not self._guards(task_id)["attempts_remaining"]

    def ready_to_run(self, task_id: str) -> bool:
        """Whether every dependency of the task succeeded or was skipped."""
        return all(self.status(dep) in DONE for dep in self.entry(task_id).get("dependencies", ()))

    def enqueue_if_ready(self, task_id: str, *, reason: str) -> None:
        """``enqueue`` a pending task whose dependencies are all done (SM-DEF-005)."""
        if self.status(task_id) == "pending" and self.ready_to_run(task_id):
            self.record(task_id, "enqueue", "ready", actor="engine", reason=reason)

    def block_downstream(self, task_id: str, reason: str) -> None:
        """Block every pending or ready task downstream of ``task_id`` (ERR-FM-006)."""
        stack = list(self._dependents().get(task_id, ()))
        seen: set[str] = set()
        while stack:
            dependent = stack.pop()
            if dependent in seen:
                continue
            seen.add(dependent)
            if self.status(dependent) in ("pending", "ready"):
                self.record(
                    dependent, "block", "blocked", actor="engine", reason=reason, severity="warning"
                )
            stack.extend(self._dependents().get(dependent, ()))

    def _dependents(self) -> dict[str, list[str]]:
        return self.store.dependents if self.dependents is None else self.dependents


class Store:
    """The state of one pipeline, opened for reading and writing."""

    def __init__(self, root: Path, lifecycles: Mapping[str, Lifecycle], *, actor: str) -> None:
        self.root = root
        self.lifecycles = lifecycles
        self.actor = actor
        self.folder = root / ".state"
        self.journal = Journal(self.folder / "transitions.jsonl")
        self.snapshot_path = self.folder / "current.json"
        self.state = State()
        self.dependents: dict[str, list[str]] = {}
        self._members: dict[str, list[str]] = {}
        self.active: set[str] = set()  # tasks holding a lease (claimed or running)
        self.ready: set[str] = set()  # tasks that may be claimed
        self.leases = self.folder / "leases"  # heartbeat files renewing leases
        self._mutex = threading.RLock()
        self._file_lock = FileLock(self.folder / ".lock", thread_local=False)
        self._written_seq = -1
        self._pending_seq = -1  # == _written_seq while the snapshot is current
        self._pending_since = 0.0  # when the oldest change not in the snapshot committed
        self._written_at = 0.0  # when the last snapshot write ended
        self._indexed_at = 0.0  # when index.json was last written
        self._indexed_seq = -1  # the seq index.json reflects
        self._index_cost = 0.0  # seconds the last index.json write took
        self._write_cost = 0.0  # seconds the last snapshot write took
        self._flusher: threading.Thread | None = None
        self._closed = False
        self.repairs: list[str] = []

    # --- opening and recovery -------------------------------------------------

    @classmethod
    @contextmanager
    def open(
        cls, root: Path, lifecycles: Mapping[str, Lifecycle], *, actor: str
    ) -> Iterator[Store]:
        """Open (creating or repairing) the store of the pipeline at ``root``."""
        store = cls(root, lifecycles, actor=actor)
        try:
            store.folder.mkdir(exist_ok=True)
        except OSError as bad:
            msg = f"cannot create {store.folder}: {bad.strerror}"
            raise StateError(msg) from bad
        with store._writing(), gc_paused():
            store._recover()
        try:
            yield store
        finally:
            store.close()

    def _recover(self) -> None:
        """Bring the snapshot in line with the journal (STATE-OBS-011)."""
        for leftover in [*self.folder.glob(".*.tmp"), *self.folder.glob("backups/.*.tmp")]:
            leftover.unlink(missing_ok=True)  # a replacement a crash stopped before its rename
        try:
            state = read_snapshot(self.snapshot_path)
        except SnapshotError as bad:
            if "not supported" in str(bad):
                raise
            self.repairs.append(f"snapshot unreadable ({bad}); rebuilt from backups and journal")
            state = self._from_backups()
        if state is None:
            state = self._from_backups()
        else:
            self._written_seq = state.last_seq  # current.json already says this much
            if (self.folder / "index.json").exists():
                self._indexed_seq = state.last_seq
        size = self.journal.path.stat().st_size if self.journal.path.exists() else 0
        if state.journal_offset > size:
            self.repairs.append("snapshot ahead of the journal; rebuilt from the journal")
            state = State()
            self._written_seq = -1
        tail = self.journal.read(state.journal_offset, state.last_seq)
        self.state = state
        self._replay(tail.lines)
        self.state.journal_offset = tail.end
        if tail.torn:
            self.journal.cut(tail.end)
            self.repairs.append(
                f"cut {len(tail.torn)} bytes of an unfinished transaction at the end of "
                f"{self.journal.path.name}"
            )
        kind = "journal_repaired"
        for repair in self.repairs:
            event = _journal_line("engine", kind, None, None, kind, actor="engine", reason=repair,
                                 severity="warning")  # fmt: skip
            self._commit([event])
        if self.state.last_seq != self._written_seq:
            self._write_snapshot()

    def _from_backups(self) -> State:
        backups = sorted(self.folder.glob("backups/current-*.json"), reverse=True)
        for backup in backups:
            try:
                state = read_snapshot(backup)
            except SnapshotError:
                continue
            if state is not None:
                return state
        return State()

    def _replay(self, lines: list[dict[str, Any]]) -> None:
        if not lines:
            if not self._members and self.state.tasks:
                self._index()
            return
        redefined = False
        touched: set[str] = set()
        for line in lines:
            self.state.apply(line)
            redefined = redefined or line["trigger"] in ("create", "redefine", "archive")
            entry = self.state.tasks.get(line["id"]) if line["entity"] == "task" else None
            if entry is not None:
                touched.add(entry["workstream_id"])
                status = entry["status"]
                (self.active.add if status in LEASED else self.active.discard)(line["id"])
                (self.ready.add if status == "ready" else self.ready.discard)(line["id"])
            elif line["trigger"] == "archive":
                self.active.discard(line["id"])
                self.ready.discard(line["id"])
        derive = self.lifecycles["workstream"].derive
        if redefined or not self._members:
            self._index()
            self.state.derive_workstreams(derive)
        else:
            # Only the workstreams this change touched: O(their size), not O(pipeline).
            for workstream in touched:
                statuses = [self.state.tasks[t]["status"] for t in self._members[workstream]]
                self.state.workstreams[workstream] = {"status": derive(statuses)}

    def _index(self) -> None:
        dependents: dict[str, list[str]] = {}
        members: dict[str, list[str]] = {}
        self.active, self.ready = set(), set()
        for task_id, entry in self.state.tasks.items():
            members.setdefault(entry["workstream_id"], []).append(task_id)
            if entry["status"] in LEASED:
                self.active.add(task_id)
            elif entry["status"] == "ready":
                self.ready.add(task_id)
            for dep in entry.get("dependencies", ()):
                dependents.setdefault(dep, []).append(task_id)
        self.dependents, self._members = dependents, members

    # --- writing --------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the writer locks and see every line other writers committed."""
        with self._mutex:
            try:
                self._file_lock.acquire()
            except OSError as bad:
                msg = f"cannot lock {self.folder / '.lock'}: {bad.strerror}"
                raise StateError(msg) from bad
            try:
                if self.state.journal_offset:
                    tail = self.journal.read(self.state.journal_offset, self.state.last_seq)
                    self._replay(tail.lines)
                    self.state.journal_offset = tail.end
                yield
            finally:
                self._file_lock.release()

    @contextmanager
    def transaction(self, actor: str | None = None) -> Iterator[Transaction]:
        """Prepare changes and commit them together, or not at all."""
        with self._writing():
            tx = Transaction(self, actor or self.actor, [], {})
            yield tx
            if tx.lines:
                self._commit(tx.lines)

    def refresh(self) -> None:
        """See the transactions other writers committed, without taking the writer lock.

        Readers never lock (STATE-OBS-008): only committed transactions are
        read, so an append in flight is simply not seen yet.
        """
        with self._mutex:
            tail = self.journal.read(self.state.journal_offset, self.state.last_seq)
            if tail.lines:
                self._replay(tail.lines)
                self.state.journal_offset = tail.end

    def apply(self, task_id: str, trigger: str, *, reason: str = "") -> list[dict[str, Any]]:
        """Apply one trigger (and what it implies) in its own transaction."""
        with self.transaction() as tx:
            tx.apply(task_id, trigger, reason=reason)
        return tx.lines

    def _commit(self, lines: list[dict[str, Any]]) -> None:
        stamp = now()
        for number, line in enumerate(lines, start=self.state.last_seq + 1):
            line["seq"] = number
            line["ts"] = stamp
        try:
            end = self.journal.append(lines)
        except OSError as bad:
            msg = (
                f"cannot write {self.journal.path}: {bad.strerror}; the change was not "
                "committed and the state is unchanged"
            )
            raise StateError(msg) from bad
        self._replay(lines)
        self.state.journal_offset = end
        self._snapshot_soon()

    def sync(self, tasks: Mapping[str, Task], actor: str | None = None) -> list[dict[str, Any]]:
        """Reconcile the state with the task definitions (STATE-OBS-014, -015).

        New tasks are created in the lifecycle's initial state; tasks whose
        mirrored definition changed are redefined; removed tasks are archived
        (their history stays); a declared ``cancelled``/``skipped`` is applied;
        then every task whose dependencies are done is enqueued.
        """
        initial = self.lifecycles["task"].initial
        with self.transaction(actor or self.actor) as tx:
            for task_id, task in tasks.items():
                data = _mirror(task)
                current = self.state.tasks.get(task_id)
                if current is None:
                    tx.record(task_id, "create", initial, data=data, reason="new definition")
                elif _definition(current) != data:
                    tx.record(
                        task_id,
                        "redefine",
                        current["status"],
                        data=data,
                        reason="definition changed",
                    )
            for task_id in list(self.state.tasks):
                if task_id not in tasks:
                    tx.record(task_id, "archive", None, reason="definition removed")
            tx.dependents = {}
            for task_id, task in tasks.items():
                for dep in task.dependencies:
                    tx.dependents.setdefault(dep, []).append(task_id)
            for task_id, task in tasks.items():
                declared = str(task.status)
                if declared in ("cancelled", "skipped") and tx.status(task_id) != declared:
                    tx.apply(task_id, "cancel" if declared == "cancelled" else "skip",
                             reason="declared in the task file")  # fmt: skip
            for task_id in tasks:
                status = tx.status(task_id)
                if status == "ready" and not tx.ready_to_run(task_id):
                    tx.record(task_id, "requeue", "pending", actor="engine",
                              reason="a new dependency is not done yet")  # fmt: skip
                    status = "pending"
                if status == "pending":
                    tx.enqueue_if_ready(task_id, reason="dependencies done")
        return tx.lines

    # --- the snapshot -----------------------------------------------------------

    def _due(self) -> float:
        """When the snapshot must be started to show the oldest unwritten change in time.

        The oldest change not in the snapshot may wait SNAPSHOT_LAG in all; the
        write itself takes about as long as the last one did, so it starts that
        much earlier (with room for a slower one).
        """
        budget = max(0.0, SNAPSHOT_LAG - 1.5 * self._write_cost - 0.02)
        # ... but leave the writer at least as much time for changes as for
        # snapshots (a 100k-task snapshot takes longer to write than the lag allows).
        return max(self._pending_since + budget, self._written_at + self._write_cost)

    def _snapshot_soon(self) -> None:
        """Write the snapshot now if it is due, else make sure the flusher will."""
        if self._written_seq == self._pending_seq:
            self._pending_since = time.monotonic()
            self._pending_seq = self.state.last_seq
        if time.monotonic() >= self._due():
            self._write_snapshot()
        elif self._flusher is None or not self._flusher.is_alive():
            self._flusher = threading.Thread(target=self._flush_later, daemon=True)
            self._flusher.start()

    def _flush_later(self) -> None:
        time.sleep(max(0.0, self._due() - time.monotonic()))
        if not self._closed:
            with self._writing():
                if self.state.last_seq != self._written_seq:
                    self._write_snapshot()

    def _write_snapshot(self) -> None:
        started = time.monotonic()
        stamp = now()
        try:
            with gc_paused():  # the index builds a dict per task
                if self.snapshot_path.exists() and self._backup_due():
                    self._backup()
                write_snapshot(self.snapshot_path, self.state, stamp)
                written = time.monotonic()
                # The index may trail by more than the snapshot: it is written at
                # most every INDEX_EVERY, and never more than a tenth of the time.
                every = max(INDEX_EVERY, 10 * self._index_cost)
                if self._closed or started - self._indexed_at >= every:
                    index = orjson.dumps(self._index_document())
                    write_atomic(self.folder / "index.json", index)
                    self._indexed_at = time.monotonic()
                    self._index_cost = self._indexed_at - written
                    self._indexed_seq = self.state.last_seq
        except OSError as bad:
            msg = f"cannot write {self.snapshot_path}: {bad.strerror} (the journal is intact)"
            raise StateError(msg) from bad
        self._written_seq = self._pending_seq = self.state.last_seq
        self._written_at = time.monotonic()
        self._write_cost = written - started  # what the lag depends on

    def _backup_due(self) -> bool:
        """Whether the newest backup (of any writer) is BACKUP_EVERY old."""
        backups = self.folder.glob("backups/current-*.json")
        newest = max((path.stat().st_mtime for path in backups), default=0.0)
        return time.time() - newest >= BACKUP_EVERY

    def _backup(self) -> None:
        """Keep the snapshot about to be replaced: a hard link, so nothing is copied."""
        seq = _snapshot_seq(self.snapshot_path)
        if seq < 0:
            return  # never keep what is not a snapshot
        folder = self.folder / "backups"
        folder.mkdir(exist_ok=True)
        try:
            # The rename that follows gives current.json a new inode; this one,
            # the old snapshot, lives on under the backup's name.
            os.link(self.snapshot_path, folder / f"current-{seq:012d}.json")
        except FileExistsError:
            return
        for old in sorted(folder.glob("current-*.json"))[:-BACKUPS]:
            old.unlink(missing_ok=True)

    def _index_document(self) -> dict[str, Any]:
        by_status: dict[str, list[str]] = {}
        for task_id, entry in self.state.tasks.items():
            by_status.setdefault(entry["status"], []).append(task_id)
        return {
            "schema_version": "1.0.0",
            "last_seq": self.state.last_seq,
            "tasks": {
                task_id: {"workstream_id": entry["workstream_id"], "status": entry["status"]}
                for task_id, entry in self.state.tasks.items()
            },
            "by_status": by_status,
            "workstreams": self._members,
        }

    @classmethod
    def rebuild(cls, root: Path, lifecycles: Mapping[str, Lifecycle], *, actor: str) -> State:
        """Rewrite the snapshot from the whole journal, whatever the snapshot holds."""
        store = cls(root, lifecycles, actor=actor)
        store.folder.mkdir(exist_ok=True)
        with store._writing():
            store.state = replay(root, lifecycles)
            store._index()
            store._write_snapshot()
            store._closed = True
        return store.state

    def flush(self) -> None:
        """Write the exact snapshot now, if it trails the journal."""
        with self._writing():
            if self.state.last_seq != self._written_seq:
                self._write_snapshot()

    def close(self) -> None:
        """Write the exact snapshot and index (STATE-OBS-009) and stop the flusher."""
        if not self._closed:
            with self._writing():
                self._closed = True
                last = self.state.last_seq
                if self._written_seq != last or self._indexed_seq != last:
                    self._write_snapshot()


def _mirror(task: Task) -> dict[str, Any]:
    """What the state keeps of a task's definition to decide its transitions.

    Defaults are left out (see ``orchestration.state.snapshot``).
    """
    full = {
        "dependencies": list(task.dependencies),
        "max_retries": task.execution.max_retries,
        "priority": task.priority,
        "capabilities": list(task.worker_requirements.capabilities),
        "resources": dict(task.resources),
        "declared": str(task.status),
    }
    kept = {key: value for key, value in full.items() if value not in ([], {}, 0, "pending")}
    return {"workstream_id": task.workstream_id, **kept}


def _definition(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a state entry that mirrors the task's definition."""
    return {key: entry[key] for key in ("workstream_id", *DEFINITION) if key in entry}


def replay(root: Path, lifecycles: Mapping[str, Lifecycle], tail: Tail | None = None) -> State:
    """The state the whole journal describes, ignoring the snapshot (for verify/rebuild).

    Args:
        tail: the journal already read from its start, to spare reading it again.
    """
    state = State()
    if tail is None:
        tail = Journal(root / ".state" / "transitions.jsonl").read()
    for line in tail.lines:
        state.apply(line)
    state.journal_offset = tail.end
    state.derive_workstreams(lifecycles["workstream"].derive)
    return state
