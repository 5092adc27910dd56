"""The runner behind ``orchestration run``: dispatch, attempts, leases, retries, recovery.

Stability: provisional (``run``'s flags, events and exit codes are stable).

One thread (the caller's) owns every decision and every commit: it opens the
state, loads and syncs the definitions (:mod:`.definitions`: columns for the
whole pipeline, a validated model only for each task it dispatches), then
loops: collect finished attempts and commit their outcome, sweep expired
leases of other holders and adopt, record or re-run what a crashed runner
left (CONC-REG-008, CONC-REG-010), retry failed tasks whose backoff passed,
and claim ready tasks for free workers — highest priority, least slack, then
id (EXEC-DOC-003), on a worker offering every required capability, with
every resource admitted at once (CONC-REG-002, CONC-REG-004). Claims are
checked and committed in one store transaction, so several runners on one
repository never run the same attempt nor overlapping path locks
(CONC-REG-011).

Each attempt runs in a worker thread, carried out by the
:class:`~.executor.Executor`: sandbox, pre rules, adapter, the process under
the recording wrapper of :mod:`orchestration.state.attempts`, evidence, post
rules. A separate thread renews this runner's leases by heartbeat
(CONC-REG-006).

Signals: the first SIGINT or SIGTERM stops dispatching and lets attempts
finish; a second SIGINT stops them (process group SIGTERM, then SIGKILL) and
gives their leases back with ``release`` (EXEC-DOC-007, CONC-REG-009).
"""

from __future__ import annotations

import contextlib
import os
import queue
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DefinitionError, OrchestrationError
from ..failures import Decision, FailureMode, backoff_seconds, decisions
from ..logs import EventLog, journal_event
from ..registry import load_capabilities
from ..registry.workers import Worker, load_workers, local_workers
from ..state import Store
from ..state.attempts import (
    AttemptStatus,
    attempt_status,
    read_attempt,
    remove_heartbeat,
    write_heartbeat,
)
from ..state.layout import Layout, layout
from ..state.views import DispatchQueue
from .definitions import check_scope
from .executor import Attempt, Executor, Outcome
from .options import KILL_GRACE, RunOptions, RunSummary
from .scheduler import Admission, DryRun, deadlocks, dry_run, in_scope, registry_for

if TYPE_CHECKING:
    from ..lifecycles import Lifecycle
    from ..state import Transaction
    from .definitions import Definitions

# RunOptions, RunSummary, DryRun and dry_run live beside, re-exported: `run`'s API is here.
__all__ = ["KILL_GRACE", "DryRun", "RunOptions", "RunSummary", "Runner", "dry_run"]

WAITING = ("pending", "ready", "claimed", "running", "failed")


def _holder() -> str:
    return f"run-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Runner:
    """One ``orchestration run`` on the pipeline at ``root``."""

    def __init__(
        self,
        root: Path,
        load: Callable[[], Definitions],
        lifecycles: Mapping[str, Lifecycle],
        options: RunOptions,
        emit: Callable[[dict[str, Any]], None],
    ) -> None:
        """Prepare a run of the definitions ``load`` returns (see :mod:`.definitions`).

        ``load`` is called once by :meth:`run`: when a state exists, after
        opening it, so that a large pipeline's files are checked meanwhile.
        """
        from .sandbox import repository_of, resolve_commit

        self.root = root
        self.load = load
        self.definitions: Definitions  # set by _prepare
        self.lifecycles = lifecycles
        self.options = options
        self.emit = emit
        self.files: Layout = layout(root)
        self.repo = repository_of(root)
        self.base = resolve_commit(self.repo)  # every attempt of this run starts from it
        self.holder = _holder()
        capabilities = load_capabilities(root)
        self.capabilities = capabilities
        self.declared = load_workers(root, capabilities)
        self.count = options.max_workers or os.cpu_count() or 1
        self.workers: list[Worker] = []
        self.decisions, _ = decisions(root)
        self.random = random.Random()
        self.done: queue.Queue[Outcome] = queue.Queue()
        self.running: dict[str, Attempt] = {}
        self.free: list[Worker] = []
        self.retry_at: dict[str, float] = {}
        self.failed: set[str] = set()  # failed tasks of the scope whose retry is not planned yet
        self.draining = False
        self._drained = False
        self._readied = False  # a task became ready in the last commit
        self.summary = RunSummary()
        self._stop_heartbeat = threading.Event()
        self.log = EventLog(self.files.logs, component="run", holder=self.holder)  # OBS-005

    def _prepare(self, definitions: Definitions) -> None:
        """What the run derives from the definitions: scope, slack, resources, manual tasks.

        Raises:
            UsageError: ``--target`` or ``--workstream`` names no task of the pipeline.
            DefinitionError: a task claims a resource the registry lacks, or
                more than its capacity.
        """
        options = self.options
        check_scope(definitions, target=options.target, workstream=options.workstream)
        self.definitions = definitions
        self.resources = registry_for(self.root, definitions.claiming())
        self.admission = Admission(self.resources)
        self.scope = in_scope(
            definitions.dependencies,
            definitions.workstreams if options.workstream else {},
            workstream=options.workstream,
            target=options.target,
        )
        self.slack = definitions.slack
        self.queue = DispatchQueue(self.slack, self._admit)
        self.manual = definitions.manual  # never dispatched
        self.summary.scope = len(self.scope)

    def _ready(self, definitions: Definitions) -> bool:
        """Prepare the run of ``definitions``; False when potential deadlocks stop it."""
        self._prepare(definitions)
        found = deadlocks(definitions, self.scope)
        if found:
            self.summary.stopped = f"{FailureMode.DEADLOCK}: " + "; ".join(found)
        return not found

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> RunSummary:
        """Run until nothing in scope can move; returns the summary.

        Raises:
            DefinitionError: the definitions have problems (see :meth:`_prepare`).
            UsageError: ``--target`` or ``--workstream`` names no task.
        """
        try:
            return self._run()
        finally:
            self.log.close()

    def _run(self) -> RunSummary:
        # Resuming, the state is read while the task files' signatures are
        # taken (see definitions.start_loading); a new pipeline's definitions
        # are checked before anything under .state/ is created.
        resuming = self.files.snapshot.exists()
        if not resuming and not self._ready(self.load()):
            return self.summary
        # Threads start as attempts need them: one per attempt, its own or adopted.
        pool = ThreadPoolExecutor(max_workers=256, thread_name_prefix="attempt")
        previous = _install(self._interrupt)
        try:
            with Store.open(self.root, self.lifecycles, actor=self.holder) as store:
                self.store = store
                self.pool = pool
                self.executor = Executor(store, self.holder, self.repo, self.base, self.files,
                                         self.options.kill_grace)  # fmt: skip
                if resuming and not self._ready(self.load()):
                    return self.summary
                write_heartbeat(self.files.leases, self.holder)
                beat = threading.Thread(target=self._heartbeat, daemon=True, name="heartbeat")
                beat.start()
                for line in self.definitions.sync(store, self.holder):
                    self.emit(line)
                entries = store.state.tasks.items()
                self.failed = {t for t, e in entries if e["status"] == "failed"} & self.scope
                self._schedule_retries()
                self._start_workers()
                self.log.info("run.started", scope=len(self.scope), workers=len(self.workers))
                self._sweep()
                self._loop()
                self._stop_workers()
                self.executor.clean_spares()
        finally:
            for number, handler in previous:
                signal.signal(number, handler)
            self._stop_heartbeat.set()
            pool.shutdown(wait=True, cancel_futures=True)
            remove_heartbeat(self.files.leases, self.holder)
        self._summarise()
        return self.summary

    def _loop(self) -> None:
        next_sweep = time.monotonic() + self.options.sweep_interval
        outcomes = self._take(block=False)
        while True:
            if time.monotonic() >= next_sweep:
                self._sweep()
                next_sweep = time.monotonic() + self.options.sweep_interval
            self._readied = False
            self._step(outcomes)
            if self.draining and not self._drained:
                self._drain_workers()
            if not self.running and (self.draining or not self._more_to_come()):
                return
            wait = next_sweep - time.monotonic()
            if self.retry_at and not self.draining:
                wait = min(wait, min(self.retry_at.values()) - time.monotonic())
            # Tasks made ready by this step are claimed by the next, without waiting.
            again = self._readied and bool(self.free) and not self.draining
            outcomes = self._take(block=not again, timeout=max(0.0, min(wait, 1.0)))

    def _step(self, outcomes: list[Outcome]) -> None:
        """Record ended attempts, retry what is due and claim ready tasks: one transaction.

        One commit (one ``fsync``) per turn of the loop, however many attempts
        ended meanwhile and however many tasks it dispatches.
        """
        due = self._due_retries()
        freed = sum(found.attempt.worker is not None for found in outcomes)
        wanted = (self.free or freed) and not self.draining
        candidates = self._candidates() if wanted else []
        # Validate the likely first ones outside the store's lock (the model's import too).
        for _, task_id in candidates[: len(self.free) + freed]:
            with contextlib.suppress(DefinitionError):
                self.definitions.task(task_id)
        if not (outcomes or due or candidates):
            return
        launched: list[Attempt] = []

        def change(tx: Transaction) -> None:
            for found in outcomes:
                self._record(tx, found)
            self._release(outcomes)
            self._retry(tx, due)
            if not self.draining:
                launched.extend(self._claim(tx, candidates))

        self._commit(change)
        for attempt in launched:
            self.running[attempt.task.task_id] = attempt
            self.pool.submit(self._execute, attempt)

    def _more_to_come(self) -> bool:
        """Whether a task of the scope may still be dispatched by this run."""
        if self.retry_at:
            return True
        state = self.store.state.tasks
        takers = self.workers
        for task_id in self.store.ready & self.scope:
            needs = state[task_id].get("capabilities", ())
            if task_id not in self.manual and any(w.offers(needs) for w in takers):
                return True
        # Attempts of other runs may still end (a person's claim holds no lease: not waited for).
        return any(t in self.scope and state[t].get("lease") for t in self.store.active)

    # --- committing ---------------------------------------------------------------------

    def _commit(self, change: Callable[[Transaction], object]) -> Any:
        """Run ``change`` in one transaction and stream the lines it committed."""
        with self.store.transaction(self.holder) as tx:
            result = change(tx)
        tasks = self.store.state.tasks
        for line in tx.lines:
            self.emit(line)
            if line["entity"] == "task" and line["to"] == "ready":
                self._readied = True
            elif line["to"] == "failed" and line["entity"] == "task" and line["id"] in self.scope:
                self.failed.add(line["id"])  # a retry may be due
            event = journal_event(line, tasks)
            if event is not None:
                self.log.log(event[0], event[1], **event[2])
        if self.failed:
            self._schedule_retries()
        return result

    # --- workers ------------------------------------------------------------------------

    def _start_workers(self) -> None:
        """Register this run's workers: the first free ones (live runs' workers are theirs)."""

        def register(tx: Transaction) -> None:
            workers = tx.store.state.workers
            known = {worker.id for worker in self.declared}
            candidates = self.declared + [
                Worker(worker_id, frozenset(entry.get("capabilities", ())), entry.get("labels", {}))
                for worker_id, entry in sorted(workers.items())
                if entry.get("registered") and worker_id not in known
            ]
            if candidates:
                self.count = self.options.max_workers or len(candidates)
            else:  # EXEC-DOC-006: none declared, so N local workers
                candidates = local_workers(self.capabilities, self.count + 64)
            for worker in candidates:
                if len(self.workers) == self.count:
                    return
                status = workers.get(worker.id, {}).get("status")
                if status in ("idle", "busy", "draining"):
                    continue  # held by a live run (dead runs' workers were just lost)
                data = {
                    "capabilities": sorted(worker.capabilities),
                    "holder": self.holder,
                    "local": worker.local,
                }
                trigger = "recover" if status == "lost" else "register"
                tx.worker(worker.id, trigger, reason=f"started by {self.holder}", data=data)
                self.workers.append(worker)

        self._lose_dead_workers()
        self._commit(register)
        if not self.workers:
            msg = (
                "every declared worker is "
                "held by another live run; wait for it, or declare more in workers.yaml"
            )
            raise OrchestrationError(msg)
        self.free = list(self.workers)

    def _lose_dead_workers(self) -> None:
        """Workers whose runner stopped heartbeating are lost (SM-DEF-009)."""
        from ..state.attempts import heartbeat_of

        def lose(tx: Transaction) -> None:
            for worker_id, entry in tx.store.state.workers.items():
                holder = entry.get("holder")
                alive = holder is not None and heartbeat_of(self.files.leases, holder) is not None
                if entry.get("status") in ("idle", "busy", "draining") and not alive:
                    tx.worker(worker_id, "lose", reason=f"{holder} stopped heartbeating")

        self._commit(lose)

    def _stop_workers(self) -> None:
        def stop(tx: Transaction) -> None:
            for worker in self.workers:
                status = tx.workers.get(worker.id, tx.store.state.workers.get(worker.id, {}))
                if status.get("status") == "busy":
                    tx.worker(worker.id, "finish")
                if status.get("status") != "draining":
                    tx.worker(worker.id, "drain", reason="the run ends")
                tx.worker(worker.id, "stop", reason="the run ends")

        self._commit(stop)

    def _drain_workers(self) -> None:
        """Stop taking work: every worker of this run drains (SM-DEF-009)."""
        self._drained = True

        def drain(tx: Transaction) -> None:
            for worker in self.workers:
                status = tx.store.state.workers.get(worker.id, {}).get("status")
                if status in ("idle", "busy"):
                    tx.worker(worker.id, "drain", reason=self.summary.stopped or "stopping")

        self._commit(drain)

    def _heartbeat(self) -> None:
        interval = max(0.05, self.options.ttl / 4)
        while not self._stop_heartbeat.wait(interval):
            with contextlib.suppress(OSError):  # the next beat tries again; the ttl has room
                write_heartbeat(self.files.leases, self.holder)

    # --- dispatching --------------------------------------------------------------------

    def _claim(
        self, tx: Transaction, candidates: list[tuple[tuple[int, float, str], str]]
    ) -> list[Attempt]:
        """Claim ``candidates`` (see :meth:`_candidates`) in order for free workers.

        Returns the attempts to launch.
        """
        launched: list[Attempt] = []
        held = [tx.entry(t).get("resources", {}) for t in tx.active()]
        for _, task_id in candidates:
            if not self.free:
                break
            entry = tx.entry(task_id)
            if entry["status"] != "ready":
                continue
            worker = next((w for w in self.free if w.offers(entry.get("capabilities", ()))), None)
            if worker is None:
                continue
            wanted = entry.get("resources", {})
            if self.admission.refusal(wanted, held) is not None:
                continue
            try:
                task = self.definitions.checked(task_id, entry)
            except DefinitionError as invalid:
                _refuse_invalid(tx, task_id, invalid)
                continue
            epoch = tx.claim(task_id, holder=self.holder, worker=worker.id, ttl=self.options.ttl)
            number = tx.start(task_id)
            tx.worker(worker.id, "assign", reason=f"{task_id} attempt {number}")
            held.append(wanted)
            self.free.remove(worker)
            launched.append(self.executor.attempt(task, number, epoch, worker))
        return launched

    def _candidates(self) -> list[tuple[tuple[int, float, str], str]]:
        """The ready tasks of the scope in dispatch order (see :class:`DispatchQueue`)."""
        return self.queue.ordered(self.store.ready, self.store.state.tasks)

    def _admit(self, fresh: set[str]) -> set[str]:
        """Of the tasks newly ready, those this run may dispatch; blocks those none can take."""
        mine = {t for t in fresh if t in self.scope and t not in self.manual}
        return mine - self._refuse_incapable(mine) if mine else mine

    def _refuse_incapable(self, candidates: set[str]) -> set[str]:
        """Block ready tasks that no worker of this run or registered elsewhere can take."""
        state = self.store.state
        offered = [w.capabilities for w in self.workers] + [
            frozenset(entry.get("capabilities", ()))
            for entry in state.workers.values()
            if entry.get("status") in ("idle", "busy") and not entry.get("local")
        ]
        hopeless = {
            t
            for t in candidates
            if not any(caps.issuperset(state.tasks[t].get("capabilities", ())) for caps in offered)
        }
        if not hopeless:
            return hopeless

        def block(tx: Transaction) -> None:
            for task_id in sorted(hopeless):
                needs = ", ".join(tx.entry(task_id).get("capabilities", ()))
                reason = (
                    f"{FailureMode.NO_CAPABLE_WORKER}: no worker offers {needs}; declare "
                    "one in workers.yaml or `orchestration worker register`"
                )
                tx.apply(task_id, "block", reason=reason, actor="engine", severity="error")
                tx.block_downstream(task_id, f"{task_id} blocked: {FailureMode.NO_CAPABLE_WORKER}")

        self._commit(block)
        return hopeless

    # --- attempts (worker threads) --------------------------------------------------------

    def _execute(self, attempt: Attempt) -> None:
        self.done.put(self.executor.execute(attempt))

    # --- outcomes -------------------------------------------------------------------------

    def _take(self, *, block: bool, timeout: float = 0.0) -> list[Outcome]:
        """The attempts that ended: all there are, waiting up to ``timeout`` if ``block``."""
        outcomes: list[Outcome] = []
        try:
            outcomes.append(
                self.done.get(block=block, timeout=timeout) if block else self.done.get_nowait()
            )
            while True:
                outcomes.append(self.done.get_nowait())
        except queue.Empty:
            return outcomes

    def _release(self, outcomes: list[Outcome]) -> None:
        """Give the workers of ended attempts back, and successful attempts' worktrees."""
        for found in outcomes:
            attempt = found.attempt
            self.running.pop(attempt.task.task_id, None)
            if attempt.worker is not None:
                self.free.append(attempt.worker)
            if found.failure is None and attempt.sandbox is not None:
                if attempt.worker is not None:  # CONC-REG-013: done with; the next one reuses it
                    self.executor.reuse(attempt.sandbox, attempt.pristine)
                else:
                    self.pool.submit(self.executor.clean, attempt.sandbox)

    def _record(self, tx: Transaction, outcome: Outcome) -> None:
        attempt = outcome.attempt
        task_id = attempt.task.task_id
        worker = attempt.worker
        if worker is not None:
            current = tx.workers.get(worker.id, tx.store.state.workers.get(worker.id, {}))
            if current.get("status") == "busy":
                tx.worker(worker.id, "finish", reason=f"{task_id} attempt {attempt.number}")
        if attempt.interrupted:
            if tx.lease_problem(task_id, attempt.epoch) is None:
                tx.apply(
                    task_id,
                    "release",
                    actor=f"worker:{_worker_id(attempt)}",
                    reason=f"attempt {attempt.number} stopped by Ctrl-C; no retry spent",
                )
            return
        never_started = attempt.process is None and attempt.worker is not None
        if never_started and outcome.failure is FailureMode.LEASE_EXPIRED:
            # Its lease was lost before the process started: no retry is spent.
            refused = tx.finish(
                task_id, attempt.epoch, "fail", reason=outcome.reason, started=False
            )
            self.summary.refused += refused is not None
            return
        if outcome.failure is None:
            refused = tx.finish(
                task_id,
                attempt.epoch,
                "complete",
                reason=f"attempt {attempt.number}: {outcome.reason}",
            )
        else:
            refused = self._fail(tx, attempt, outcome)
        if refused is not None:
            self.summary.refused += 1
        elif (
            outcome.failure is not None and self.decisions.get(outcome.failure) == Decision.STOP_RUN
        ):
            self.draining = True
            self.summary.stopped = f"{outcome.failure}: {outcome.reason}"

    def _fail(self, tx: Transaction, attempt: Attempt, outcome: Outcome) -> str | None:
        assert outcome.failure is not None
        task_id = attempt.task.task_id
        entry = tx.entry(task_id)
        decision = self.decisions.get(outcome.failure, Decision.BLOCK_DOWNSTREAM)
        left = entry.get("max_retries", 0) - entry.get("retry_count", 0)
        retry = decision == Decision.RETRY and left > 0
        if retry:
            then = f"retry {entry.get('retry_count', 0) + 1} of {entry.get('max_retries', 0)}"
        elif decision == Decision.RETRY:
            then = "no retry left; dependents blocked"
        else:
            then = f"{decision}"
        refused = tx.finish(
            task_id,
            attempt.epoch,
            "fail",
            reason=f"{outcome.failure}: attempt {attempt.number}: {outcome.reason}; {then}",
            failure={"mode": str(outcome.failure), "final": not retry},
        )
        if refused is None and not retry and self.options.fail_fast:
            self.draining = True
            self.summary.stopped = f"--fail-fast: {task_id} failed ({outcome.failure})"
        return refused

    def _due_retries(self) -> list[str]:
        """The failed tasks whose wait for a retry is over (none when draining)."""
        if self.draining:
            return []
        due = [t for t, at in self.retry_at.items() if at <= time.monotonic()]
        for task_id in due:
            del self.retry_at[task_id]
        return due

    def _schedule_retries(self) -> None:
        """Plan when failed tasks with attempts left are retried (exponential backoff, jitter)."""
        state = self.store.state.tasks
        for task_id in sorted(self.failed):
            entry = state.get(task_id)
            self.failed.discard(task_id)
            if entry is None or entry["status"] != "failed" or task_id in self.retry_at:
                continue
            final = entry.get("failure", {}).get("final", False)
            done = entry.get("retry_count", 0)
            if not final and done < entry.get("max_retries", 0):
                delay = backoff_seconds(
                    done + 1, self.options.retry_base, self.options.retry_max, self.random
                )
                self.retry_at[task_id] = time.monotonic() + delay

    def _retry(self, tx: Transaction, due: list[str]) -> None:
        for task_id in due:
            entry = tx.entry(task_id)
            if entry["status"] != "failed":
                continue
            mode = entry.get("failure", {}).get("mode", "FM-NONZERO-EXIT")
            n = entry.get("retry_count", 0) + 1
            tx.apply(
                task_id,
                "retry",
                actor="engine",
                severity="warning",
                reason=f"{mode}: retry {n} of {entry.get('max_retries', 0)}",
            )
            self.summary.retries += 1

    # --- leases of others: the sweep (CONC-REG-008) and recovery (CONC-REG-010) ------------

    def _sweep(self) -> None:
        """Find expired leases of other holders and adopt, record or re-run their attempts."""
        adopted: list[Attempt] = []

        def recover(tx: Transaction) -> None:
            for task_id in sorted(tx.active()):
                entry = tx.entry(task_id)
                lease = entry.get("lease")
                if lease is None or lease["holder"] == self.holder:
                    continue
                if task_id not in self.definitions.dependencies:
                    continue
                if tx.lease_problem(task_id, lease["epoch"]) is None:
                    continue  # alive and well
                if entry["status"] == "claimed":
                    tx.expire(task_id, f"{lease['holder']} stopped heartbeating", started=False)
                    continue
                folder = self.files.attempts / task_id / str(entry.get("attempt", 0))
                status, _ = attempt_status(folder)
                if status is AttemptStatus.STARTING:
                    continue
                if status is AttemptStatus.LOST:
                    ran = (folder / "pid").exists()
                    tx.expire(
                        task_id,
                        f"{lease['holder']} stopped heartbeating and attempt "
                        f"{entry.get('attempt', 0)} left no exit status",
                        started=ran,
                    )
                    continue
                try:
                    task = self.definitions.checked(task_id, entry)
                except DefinitionError as invalid:  # it cannot be judged: not adopted
                    why = "; ".join(p.render().replace("\n ", "") for p in invalid.problems)
                    tx.expire(task_id, f"its definition is invalid now: {why}", started=True)
                    continue
                epoch = tx.adopt(
                    task_id, holder=self.holder, worker=lease["worker"], ttl=self.options.ttl
                )
                attempt = self.executor.attempt(task, entry.get("attempt", 0), epoch, None)
                record = read_attempt(folder)
                if record is not None:
                    attempt.started = record.started_at
                pid = folder / "pid"
                attempt.pid = int(pid.read_text().strip()) if pid.exists() else None
                adopted.append(attempt)

        self._lose_dead_workers()
        self._commit(recover)
        for attempt in adopted:
            self.summary.adopted += 1
            self.running[attempt.task.task_id] = attempt
            self.pool.submit(self._execute, attempt)

    # --- signals and the end ---------------------------------------------------------------

    def _interrupt(self, signum: int, frame: object) -> None:
        """First SIGINT/SIGTERM: drain. A second one: stop the attempts now (EXEC-DOC-007).

        Only flags and signals here: the handler may run in the middle of a
        transaction, so the loop commits what follows.
        """
        if not self.draining:
            self.draining = True
            self.summary.stopped = f"interrupted by {signal.Signals(signum).name}"
            return
        for attempt in list(self.running.values()):  # the second signal: stop them now
            if not attempt.interrupted:
                attempt.interrupted = True
                self.executor.kill(attempt)

    def _summarise(self) -> None:
        state = self.store.state.tasks
        for task_id in sorted(self.scope):
            entry = state.get(task_id, {})
            status = entry.get("status")
            if status == "succeeded":
                self.summary.succeeded.append(task_id)
            elif status == "failed" and entry.get("failure", {}).get("final", True):
                self.summary.failed.append(task_id)
            elif status == "blocked":
                self.summary.blocked.append(task_id)
            elif status in WAITING:
                self.summary.waiting.append(task_id)
        summary = self.summary.document()
        self.log.log("error" if summary["exit_code"] else "info", "run.finished", **summary)


def _worker_id(attempt: Attempt) -> str:
    return attempt.worker.id if attempt.worker is not None else "adopted"


def _install(handler: Callable[[int, Any], None]) -> list[tuple[int, Any]]:
    """Handle SIGINT and SIGTERM with ``handler`` (in the main thread); returns the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return []
    return [(number, signal.signal(number, handler)) for number in (signal.SIGINT, signal.SIGTERM)]


def _refuse_invalid(tx: Transaction, task_id: str, invalid: DefinitionError) -> None:
    """Block a ready task whose file no longer holds it validly: it never runs (TASK-DEF-002)."""
    problems = "; ".join(problem.render().replace("\n ", "") for problem in invalid.problems)
    reason = (
        f"invalid definition: {problems}; fix the file, then "
        f"`orchestration task {task_id} unblock` and run again"
    )
    tx.apply(task_id, "block", reason=reason, actor="engine", severity="error")
    tx.block_downstream(task_id, f"{task_id} blocked: its definition is invalid")
