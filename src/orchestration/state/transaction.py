"""A transaction: changes prepared together, committed by the store as one (STATE-OBS-008).

Stability: provisional (the store's API may grow).

A :class:`Transaction` sees its own changes before anyone else does: each
trigger is checked against the task lifecycle on the task's status *including*
this transaction's earlier changes, and a change that implies others records
them in the same transaction: a task that succeeds enqueues the dependents
whose dependencies are now all done; a task that fails for good, or is
cancelled, blocks its pending and ready dependents transitively. The store
commits the lines with one write and one fsync (``Store.transaction``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from .attempts import lease_expiry
from .snapshot import LEASED, fold

if TYPE_CHECKING:
    from .store import Store

__all__ = ["BLOCKING", "DONE", "Transaction", "journal_line"]

DONE = frozenset({"succeeded", "skipped"})  # a dependency in these lets dependents start
BLOCKING = frozenset({"cancelled"})  # ... in these (or failed for good) never will


def journal_line(
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
        record = journal_line(
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
        self.lines.append(journal_line(
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
        line = journal_line(
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
        self.lines.append(journal_line("worker", worker_id, status, dest, trigger,
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
        line = journal_line(
            "phase", task_id, entry.get("phase"), dest, trigger, actor=f"agent:{agent}",
            reason=reason, severity=severity, jti=jti,
        )  # fmt: skip
        self.lines.append(line)
        fold(entry, line)
        self.overlay[task_id] = entry

    def event(self, entity: str, entity_id: str, trigger: str, dest: str, *, reason: str) -> None:
        """Record an event that changes no entity's state (e.g. a review requested)."""
        self.lines.append(
            journal_line(entity, entity_id, None, dest, trigger, actor=self.actor, reason=reason)
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
