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

``seal`` (``audit rotate``, and every commit that takes the live journal past
``audit.segment_max_bytes``) moves the journal's lines into sealed segments
(``orchestration.state.segments``) and starts a new, empty live file. The
snapshot's ``journal_offset`` is a position in the live file; a store that
finds the file replaced (another process sealed it) or the offset stale
finds its place by ``seq`` instead, in the segments if need be.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from filelock import FileLock

from .. import faults
from ..atomic import write_atomic
from ..bulk import gc_paused
from ..errors import OrchestrationError
from .audit import ToolAudit
from .journal import Journal, JournalError, Tail, now
from .layout import layout
from .segments import Entry, Manifest, read_history, seal_journal, sealed_lines
from .snapshot import DEFINITION, LEASED, SnapshotError, State, read_snapshot, write_snapshot
from .transaction import Transaction, journal_line

if TYPE_CHECKING:
    from ..lifecycles import Lifecycle
    from ..tasks.model import Task

__all__ = ["SNAPSHOT_LAG", "StateError", "Store", "Transaction", "replay"]

SNAPSHOT_LAG = (
    0.25  # seconds the snapshot may trail the journal while a writer runs (STATE-OBS-009)
)
BACKUP_EVERY = 60.0  # seconds between backups
BACKUPS = 10  # snapshots kept in .state/backups/, unless `state.backups` says otherwise
SEGMENT_MAX_BYTES = 64 << 20  # the live journal is sealed past this (`audit.segment_max_bytes`)
# The variables that set the store's two settings (see orchestration.config).
_VARIABLES = ("ORCHESTRATOR_STATE_BACKUPS", "ORCHESTRATOR_AUDIT_SEGMENT_MAX_BYTES")
INDEX_EVERY = 1.0  # seconds between index.json writes while a writer runs (exact at close)


_LAST_SEQ = re.compile(rb'"last_seq":(\d+)')


def _snapshot_seq(path: Path) -> int:
    """The seq of the snapshot at ``path``, read from its head; -1 when unknown."""
    try:
        with open(path, "rb") as handle:
            found = _LAST_SEQ.search(handle.read(256))
    except OSError:
        return -1
    return int(found[1]) if found else -1


class StateError(OrchestrationError):
    """The state cannot be opened or written (read-only, full disk, ...)."""


class Store:
    """The state of one pipeline, opened for reading and writing."""

    def __init__(self, root: Path, lifecycles: Mapping[str, Lifecycle], *, actor: str) -> None:
        self.root = root
        self.lifecycles = lifecycles
        self.actor = actor
        self.files = layout(root)
        self.folder = self.files.folder
        self.journal = Journal(self.files.journal)
        self._journal_id: tuple[int, int] | None = None  # the live file the offset is in
        self.snapshot_path = self.files.snapshot
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
        self.backups = BACKUPS  # copies of current.json kept in .state/backups/
        # Seal the live journal into segments past this size (AUDIT-008); None: never.
        self.seal_past: int | None = None

    # --- opening and recovery -------------------------------------------------

    @classmethod
    @contextmanager
    def open(
        cls, root: Path, lifecycles: Mapping[str, Lifecycle], *, actor: str
    ) -> Iterator[Store]:
        """Open (creating or repairing) the store of the pipeline at ``root``."""
        store = cls(root, lifecycles, actor=actor)
        store.backups, store.seal_past = _settings(root)
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
        sealed = Manifest.read(self.files.audit).sealed_seq
        first = self.journal.first_seq()
        if first is not None and first <= sealed:
            dropped = self.journal.drop_through(sealed)
            self.repairs.append(
                f"dropped {dropped} bytes at the start of {self.journal.path.name} that a "
                "crash during `audit rotate` left there: they are sealed in a segment"
            )
        tail = self._catch_up(state.journal_offset, state.last_seq)
        if tail is None:
            self.repairs.append("snapshot ahead of the journal; rebuilt from the journal")
            state = State()
            self._written_seq = -1
            tail = self._catch_up(0, 0)
            assert tail is not None  # an empty state is behind every journal
        self.state = state
        self._replay(tail.lines)
        self.state.journal_offset = tail.end
        self._journal_id = tail.identity
        if tail.torn:
            self.journal.cut(tail.end)
            self.repairs.append(
                f"cut {len(tail.torn)} bytes of an unfinished transaction at the end of "
                f"{self.journal.path.name}"
            )
        kind = "journal_repaired"
        for repair in self.repairs:
            event = journal_line("engine", kind, None, None, kind, actor="engine", reason=repair,
                                 severity="warning")  # fmt: skip
            self._commit([event])
        if self.state.last_seq != self._written_seq:
            self._write_snapshot()

    def read_after(self, seq: int, offset: int = 0) -> list[dict[str, Any]]:
        """The committed journal lines with a seq above ``seq``, sealed or live, oldest first.

        Args:
            offset: where line ``seq`` ends in the live journal, if known: a
                hint that spares reading the whole file (checked, so a stale
                one costs only the read).
        """
        tail = self._catch_up(offset, seq)
        return tail.lines if tail is not None else []

    def _catch_up(self, offset: int, seq: int) -> Tail | None:
        """The lines after ``seq``, found by seq where ``offset`` (its end) is stale.

        The offset is a position in the live journal; it is stale once the
        journal was sealed into segments (a new live file), or when the state
        came from a backup. Then the lines are found by seq, in the segments
        if need be (AUDIT-006). ``None`` when ``seq`` is ahead of the
        journal: lines it reflects are gone.
        """
        first = self.journal.first_seq()
        base = first - 1 if first is not None else Manifest.read(self.files.audit).sealed_seq
        if (offset == 0 and seq == base) or self.journal.ends_at(offset, seq):
            return self.journal.read(offset, seq)
        live = self.journal.read(0, base)
        if seq > (live.lines[-1]["seq"] if live.lines else base):
            return None
        lines = [line for line in live.lines if line["seq"] > seq]
        if seq < base:
            lines = [*sealed_lines(self.files, seq), *lines]
        return Tail(lines, live.end, live.torn, live.identity)

    def _follow(self) -> None:
        """Fold the lines other writers committed, into the new live file after a seal."""
        offset, seq = self.state.journal_offset, self.state.last_seq
        if self._unchanged():
            return
        try:
            tail: Tail | None = self.journal.read(offset, seq, expect=self._journal_id)
            assert tail is not None
            moved = self._journal_id is not None and tail.identity != self._journal_id
        except JournalError:
            moved = True  # read while the journal was being sealed: find the lines by seq
        if moved:
            tail = self._catch_up(offset, seq)
            if tail is None:
                msg = (
                    f"{self.journal.path} lost lines this process saw (seq {seq}); restore "
                    "it from a backup or run `orchestration state rebuild`"
                )
                raise StateError(msg)
        assert tail is not None
        if tail.lines:
            self._replay(tail.lines)
        self.state.journal_offset = tail.end
        self._journal_id = tail.identity

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
                if self.state.journal_offset or self._journal_id is not None:
                    self._follow()
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
        read, so an append in flight is simply not seen yet. When the journal
        did not grow, not even this process's mutex is taken: a request need
        not wait for a snapshot being written.
        """
        if self._unchanged():
            return
        with self._mutex:
            self._follow()

    def _unchanged(self) -> bool:
        """Whether the live journal is the file, and the size, this process last read."""
        if self._journal_id is None:
            return False
        try:
            stat = os.stat(self.journal.path)
        except FileNotFoundError:
            return False
        return (stat.st_dev, stat.st_ino) == self._journal_id and (
            stat.st_size == self.state.journal_offset
        )

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
        if self.seal_past is not None and end > self.seal_past:
            self.seal(self.seal_past)  # the writer lock is held: a nested hold

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
                metrics = self.state.metrics.document(self.state.last_seq, stamp)
                # OBS-001. Not fsynced: a view of the snapshot, rewritten with every change.
                write_atomic(self.files.metrics, orjson.dumps(metrics), durable=False)
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
        for old in sorted(folder.glob("current-*.json"))[: -self.backups or None]:
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

    def seal(self, max_bytes: int) -> list[Entry]:
        """Seal the live journal and the tool audit into gzip segments (AUDIT-002).

        Journal segments hold at most ``max_bytes`` of lines, unless one
        transaction alone is larger.

        Under the writer lock: the snapshot is brought up to date, every
        committed line is written into segments (whole transactions each, so
        ``seq`` stays contiguous, AUDIT-005) recorded in the manifest, then a
        new, empty live journal replaces the old one (a new file, which other
        processes notice and follow) and the snapshot points into it.

        Returns:
            The manifest entries of the new segments (none when nothing was live).
        """
        with self._writing():
            size = self.journal.path.stat().st_size if self.journal.path.exists() else 0
            end = self.state.journal_offset
            if size != end:
                msg = f"{self.journal.path} has {size - end} bytes past its last transaction"
                raise StateError(msg)
            manifest = Manifest.read(self.files.audit)
            with open(self.journal.path, "rb") as handle:
                data = handle.read(end)
            entries = seal_journal(
                manifest, self.files.audit, data, max_bytes, source=self.journal.path.name
            )
            if entries:
                faults.crash_point("seal.before_new_journal")
                write_atomic(self.journal.path, b"")  # a new file: readers follow by seq
                faults.crash_point("seal.before_snapshot")
                self.state.journal_offset = 0
                self._journal_id = self.journal.identity()
                self._write_snapshot()
            entries += ToolAudit(self.files.audit).seal(manifest)
        return entries

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

    def metrics(self) -> dict[str, Any]:
        """The ``metrics.json`` document of the state now, other writers' changes included."""
        with self._mutex:
            self.refresh()
            return self.state.metrics.document(self.state.last_seq, now())

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
                stale = self._written_seq != last or self._indexed_seq != last
                if stale or not self.files.metrics.exists():
                    self._write_snapshot()


def _settings(root: Path) -> tuple[int, int]:
    """``state.backups`` and ``audit.segment_max_bytes`` of the pipeline at ``root``.

    Without ``orchestration.yaml`` and their variables, the defaults, without
    importing the configuration's models (a warm ``task`` command stays fast);
    else the validated configuration (``ConfigError``: located, exit 2).
    """
    if not (root / "orchestration.yaml").exists() and not any(map(os.environ.get, _VARIABLES)):
        return BACKUPS, SEGMENT_MAX_BYTES
    from ..config import load_config

    config = load_config(root)
    return config.state.backups, config.audit.segment_max_bytes


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
        "type": str(task.type),
        "declared": str(task.status),
    }
    defaults: tuple[Any, ...] = ([], {}, 0, "shell", "pending")
    kept = {key: value for key, value in full.items() if value not in defaults}
    return {"workstream_id": task.workstream_id, **kept}


def _definition(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a state entry that mirrors the task's definition."""
    return {key: entry[key] for key in ("workstream_id", *DEFINITION) if key in entry}


def replay(root: Path, lifecycles: Mapping[str, Lifecycle], tail: Tail | None = None) -> State:
    """The state the whole journal describes, ignoring the snapshot (for verify/rebuild).

    The whole journal: its sealed segments, archived or not, then the live
    file (AUDIT-006).

    Args:
        tail: the journal already read from its start (``read_history``), to
            spare reading it again.
    """
    state = State()
    if tail is None:
        tail = read_history(layout(root))
    for line in tail.lines:
        state.apply(line)
    state.journal_offset = tail.end
    state.derive_workstreams(lifecycles["workstream"].derive)
    return state
