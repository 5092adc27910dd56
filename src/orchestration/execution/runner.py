"""The runner behind ``orchestration run``: dispatch, attempts, leases, retries, recovery.

Stability: provisional (``run``'s flags, events and exit codes are stable).

One thread (the caller's) owns every decision and every commit: it syncs the
definitions, recovers what a crashed runner left (:meth:`Runner._recover`),
then loops: collect finished attempts and commit their outcome, sweep expired
leases of other holders, retry failed tasks whose backoff passed, and claim
ready tasks for free workers — highest priority, least slack, then id
(EXEC-DOC-003), on a worker offering every required capability, with every
resource admitted at once (CONC-REG-002, CONC-REG-004). Claims are checked and
committed in one store transaction, so several runners on one repository
never run the same attempt nor overlapping path locks (CONC-REG-011).

Each attempt runs in a worker thread (:func:`_execute`): sandbox, pre rules,
adapter, the process under the recording wrapper of
:mod:`orchestration.state.attempts`, evidence, post rules. A separate thread
renews this runner's leases by heartbeat (CONC-REG-006).

Signals: the first SIGINT or SIGTERM stops dispatching and lets attempts
finish; a second SIGINT stops them (process group SIGTERM, then SIGKILL) and
gives their leases back with ``release`` (EXEC-DOC-007, CONC-REG-009).
"""

from __future__ import annotations

import contextlib
import heapq
import os
import queue
import random
import signal
import socket
import subprocess
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DefinitionError, OrchestrationError, Problem, UsageError
from ..failures import Decision, FailureMode, backoff_seconds, decisions
from ..registry import Resource, load_capabilities, load_resources
from ..registry.resources import potential_deadlocks
from ..registry.workers import Worker, load_workers, local_workers
from ..state import Store
from ..state.attempts import (
    AttemptRecord,
    AttemptStatus,
    attempt_status,
    keep_tail,
    read_attempt,
    remove_heartbeat,
    wrap,
    write_attempt,
    write_evidence,
    write_heartbeat,
)
from ..state.layout import Layout, layout
from ..state.views import dispatch_key
from .scheduler import Admission, dispatch_order, in_scope

if TYPE_CHECKING:
    from ..lifecycles import Lifecycle
    from ..state import Transaction
    from ..tasks.model import Task
    from .sandbox import Sandbox

__all__ = ["DryRun", "RunOptions", "RunSummary", "Runner", "dry_run"]

KILL_GRACE = 10.0  # seconds between SIGTERM and SIGKILL of a timed-out attempt (ERR-FM-004)
WAITING = ("pending", "ready", "claimed", "running", "failed")


@dataclass(frozen=True)
class RunOptions:
    """How ``run`` runs (defaults from the spec's configuration table)."""

    max_workers: int | None = None  # None: the declared workers, or one local per CPU
    workstream: str | None = None
    target: str | None = None
    fail_fast: bool = False
    ttl: float = 20.0  # leases.ttl_seconds
    sweep_interval: float = 5.0  # leases.sweep_interval_seconds
    retry_base: float = 1.0  # retry.base_seconds
    retry_max: float = 300.0  # retry.max_seconds
    kill_grace: float = KILL_GRACE

    @classmethod
    def configured(cls, environ: Mapping[str, str], **given: Any) -> RunOptions:
        """Options from ``ORCHESTRATOR_*`` variables (the spec's keys), then ``given`` flags.

        Raises:
            UsageError: a variable is not a positive number (exit 2), naming it.
        """
        values: dict[str, Any] = {}
        for name, key in _ENVIRONMENT.items():
            text = environ.get(name)
            if text is None:
                continue
            try:
                value = float(text)
            except ValueError:
                value = -1.0
            if not value > 0:
                msg = f"{name}={text!r} is not a positive number of seconds; unset it or fix it"
                raise UsageError(msg)
            values[key] = value
        return cls(**values, **{k: v for k, v in given.items() if v is not None})


_ENVIRONMENT = {
    "ORCHESTRATOR_LEASES_TTL_SECONDS": "ttl",
    "ORCHESTRATOR_LEASES_SWEEP_INTERVAL_SECONDS": "sweep_interval",
    "ORCHESTRATOR_RETRY_BASE_SECONDS": "retry_base",
    "ORCHESTRATOR_RETRY_MAX_SECONDS": "retry_max",
}


@dataclass
class RunSummary:
    """What a run did; ``exit_code`` is 0 only when nothing failed (EXEC-DOC-011)."""

    scope: int = 0
    succeeded: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # for good, in scope, at the end
    blocked: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # for a person or another worker
    retries: int = 0
    refused: int = 0  # late results fenced off
    adopted: int = 0
    stopped: str = ""  # why the run stopped early, "" when it did not

    @property
    def exit_code(self) -> int:
        """0 when every dispatched task succeeded or was skipped, else 1."""
        return 1 if self.failed or self.blocked or self.stopped else 0

    def document(self) -> dict[str, Any]:
        """The summary as the last event of ``run --format json``."""
        return {
            "scope": self.scope,
            "succeeded": len(self.succeeded),
            "failed": self.failed,
            "blocked": self.blocked,
            "waiting": self.waiting,
            "retries": self.retries,
            "refused": self.refused,
            "adopted": self.adopted,
            "stopped": self.stopped,
            "exit_code": self.exit_code,
        }


@dataclass
class _Attempt:
    """An attempt this runner watches: one it started, or one it adopted."""

    task: Task
    number: int
    epoch: int
    worker: Worker | None  # None when adopted: it occupies no worker of this run
    folder: Path  # .state/attempts/<task>/<n>
    logs: Path  # .state/logs/<task>/<n>
    sandbox: Sandbox | None = None
    pristine: bool = False  # the sandbox holds exactly its base (see sandbox.Changes)
    process: subprocess.Popen[bytes] | None = None
    pid: int | None = None
    started: float = field(default_factory=time.time)
    timed_out: bool = False
    interrupted: bool = False


@dataclass(frozen=True)
class _Outcome:
    attempt: _Attempt
    failure: FailureMode | None
    reason: str


@dataclass(frozen=True)
class DryRun:
    """What ``run --dry-run`` prints: the order, and what stops or waits."""

    order: list[str]
    deadlocks: list[str]
    waiting: list[str]


def _holder() -> str:
    return f"run-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Runner:
    """One ``orchestration run`` on the pipeline at ``root``."""

    def __init__(
        self,
        root: Path,
        tasks: Mapping[str, Task],
        lifecycles: Mapping[str, Lifecycle],
        options: RunOptions,
        emit: Callable[[dict[str, Any]], None],
        files: Mapping[str, str] | None = None,
    ) -> None:
        """Prepare a run of ``tasks`` (validated); ``files`` (task id → file) locate a cycle."""
        from .sandbox import repository_of, resolve_commit

        self.root = root
        self.tasks = tasks
        self.lifecycles = lifecycles
        self.options = options
        self.emit = emit
        self.files: Layout = layout(root)
        self.repo = repository_of(root)
        self.base = resolve_commit(self.repo)  # every attempt of this run starts from it
        self.holder = _holder()
        capabilities = load_capabilities(root)
        self.resources = _resources(root, tasks)
        self.admission = Admission(self.resources)
        self.capabilities = capabilities
        self.declared = load_workers(root, capabilities)
        self.count = options.max_workers or os.cpu_count() or 1
        self.workers: list[Worker] = []
        self.decisions, _ = decisions(root)
        self.scope = in_scope(
            {t: task.dependencies for t, task in tasks.items()},
            {t: task.workstream_id for t, task in tasks.items()},
            workstream=options.workstream,
            target=options.target,
        )
        self.slack = _slack(tasks, files)
        self.random = random.Random()
        self.done: queue.Queue[_Outcome] = queue.Queue()
        self.running: dict[str, _Attempt] = {}
        self.free: list[Worker] = []
        self.retry_at: dict[str, float] = {}
        self.failed: set[str] = set()  # failed tasks of the scope whose retry is not planned yet
        self.queue: list[tuple[tuple[int, float, str], str]] = []  # see _candidates
        self.manual = {t for t, task in tasks.items() if task.type == "manual"}  # never dispatched
        # Worktrees of successful attempts to reuse, and whether each is pristine.
        self.spare: list[tuple[Sandbox, bool]] = []
        self._spare_lock = threading.Lock()
        self.draining = False
        self._drained = False
        self.summary = RunSummary(scope=len(self.scope))
        self._stop_heartbeat = threading.Event()

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> RunSummary:
        """Run until nothing in scope can move; returns the summary."""
        deadlocks = _deadlocks(self.tasks, self.scope)
        if deadlocks:
            self.summary.stopped = f"{FailureMode.DEADLOCK}: " + "; ".join(deadlocks)
            return self.summary
        # Threads start as attempts need them: one per attempt, its own or adopted.
        pool = ThreadPoolExecutor(max_workers=256, thread_name_prefix="attempt")
        previous = _install(self._interrupt)
        try:
            with Store.open(self.root, self.lifecycles, actor=self.holder) as store:
                self.store = store
                self.pool = pool
                write_heartbeat(self.files.leases, self.holder)
                beat = threading.Thread(target=self._heartbeat, daemon=True, name="heartbeat")
                beat.start()
                for line in store.sync(self.tasks, actor=self.holder):
                    self.emit(line)
                self.failed = {t for t in self.scope if store.state.tasks[t]["status"] == "failed"}
                self._start_workers()
                self._sweep()
                self._loop()
                self._stop_workers()
                for sandbox, _ in self.spare:
                    self._clean(sandbox)
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
        while True:
            self._collect(block=False)
            if time.monotonic() >= next_sweep:
                self._sweep()
                next_sweep = time.monotonic() + self.options.sweep_interval
            if not self.draining:
                self._retry_due()
                self._dispatch()
            elif not self._drained:
                self._drain_workers()
            if not self.running and (self.draining or not self._more_to_come()):
                return
            wait = next_sweep - time.monotonic()
            if self.retry_at and not self.draining:
                wait = min(wait, min(self.retry_at.values()) - time.monotonic())
            self._collect(block=True, timeout=max(0.0, min(wait, 1.0)))

    def _more_to_come(self) -> bool:
        """Whether a task of the scope may still be dispatched by this run."""
        if self.retry_at:
            return True
        state = self.store.state.tasks
        takers = self.workers
        for task_id in self.store.ready & self.scope:
            needs = state[task_id].get("capabilities", ())
            if self.tasks[task_id].type != "manual" and any(w.offers(needs) for w in takers):
                return True
        # Attempts of other runs may still end (a person's claim holds no lease: not waited for).
        return any(t in self.scope and state[t].get("lease") for t in self.store.active)

    # --- committing ---------------------------------------------------------------------

    def _commit(self, change: Callable[[Transaction], object]) -> Any:
        """Run ``change`` in one transaction and stream the lines it committed."""
        with self.store.transaction(self.holder) as tx:
            result = change(tx)
        for line in tx.lines:
            self.emit(line)
            if line["to"] == "failed" and line["entity"] == "task" and line["id"] in self.scope:
                self.failed.add(line["id"])  # a retry may be due
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

    def _dispatch(self) -> None:
        if not self.free:
            return
        candidates = self._candidates()
        if not candidates:
            return
        launched: list[tuple[_Attempt, Worker]] = []

        def claim(tx: Transaction) -> None:
            held = [tx.entry(t).get("resources", {}) for t in tx.active()]
            for task_id in candidates:
                if not self.free:
                    return
                entry = tx.entry(task_id)
                if entry["status"] != "ready":
                    continue
                worker = next(
                    (w for w in self.free if w.offers(entry.get("capabilities", ()))), None
                )
                if worker is None:
                    continue
                wanted = entry.get("resources", {})
                if self.admission.refusal(wanted, held) is not None:
                    continue
                epoch = tx.claim(
                    task_id, holder=self.holder, worker=worker.id, ttl=self.options.ttl
                )
                number = tx.start(task_id)
                tx.worker(worker.id, "assign", reason=f"{task_id} attempt {number}")
                held.append(wanted)
                self.free.remove(worker)
                launched.append((self._attempt(task_id, number, epoch, worker), worker))

        self._commit(claim)
        for attempt, _ in launched:
            self.running[attempt.task.task_id] = attempt
            self.pool.submit(self._execute, attempt)

    def _attempt(self, task_id: str, number: int, epoch: int, worker: Worker | None) -> _Attempt:
        return _Attempt(
            self.tasks[task_id],
            number,
            epoch,
            worker,
            self.files.attempts / task_id / str(number),
            self.files.logs / task_id / str(number),
        )

    def _candidates(self) -> list[str]:
        """The ready tasks of the scope in dispatch order, kept sorted between calls.

        Only tasks that became ready since the last call are sorted in: at 1,000
        tasks, sorting every ready task at every dispatch cost more than the
        dispatch itself.
        """
        state, ready = self.store.state.tasks, self.store.ready
        self.queue = [(key, t) for key, t in self.queue if t in ready]
        queued = {t for _, t in self.queue}
        fresh = (ready & self.scope) - queued - self.manual
        if fresh:
            blocked = self._refuse_incapable(fresh)
            new = sorted((dispatch_key(t, state[t], self.slack), t) for t in fresh - blocked)
            self.queue = list(heapq.merge(self.queue, new))  # both sorted: linear
        return [t for _, t in self.queue]

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

    def _execute(self, attempt: _Attempt) -> None:
        try:
            outcome = self._attempt_outcome(attempt)
        except Exception as bug:  # a bug must not leave the task running forever
            trace = attempt.logs / "internal-error.txt"
            with contextlib.suppress(OSError):
                attempt.logs.mkdir(parents=True, exist_ok=True)
                trace.write_text("".join(traceback.format_exception(bug)))
            why = f"{type(bug).__name__}: {bug} (a bug in the engine; traceback in {trace})"
            outcome = _Outcome(attempt, FailureMode.INTERNAL, why)
        if outcome.failure is not None:
            self._keep(attempt)
        self.done.put(outcome)

    def _keep(self, attempt: _Attempt) -> None:
        """Keep a failed attempt's worktree for inspection, named after it (CONC-REG-013)."""
        from .sandbox import keep_sandbox

        if attempt.worker is not None and attempt.sandbox is not None:
            path = self.files.sandboxes / f"{attempt.task.task_id}.{attempt.number}"
            attempt.sandbox = keep_sandbox(self.repo, attempt.sandbox, path)

    def _attempt_outcome(self, attempt: _Attempt) -> _Outcome:
        from .adapters import AttemptRefused, launch
        from .rules import run_rules
        from .sandbox import SandboxError

        task = attempt.task
        environ = dict(os.environ)
        if attempt.worker is not None:  # ours to start (an adopted one runs already)
            try:
                attempt.sandbox = self._sandbox(task.task_id, attempt.number)
            except SandboxError as error:
                return _Outcome(attempt, FailureMode.SANDBOX, str(error))
            sandbox = attempt.sandbox
            timeout = float(task.execution.timeout_seconds)
            why = run_rules(
                "pre_execution", task.validation_rules.pre_execution, sandbox.path, environ, timeout
            )
            if why is not None:
                return _Outcome(attempt, FailureMode.PRE_VALIDATION, why)
            try:
                command = launch(
                    task, sandbox, attempt.number, attempt.logs / "result.json", environ
                )
            except AttemptRefused as refused:
                return _Outcome(attempt, refused.failure_mode, refused.reason)
            lost = self._spawn(attempt, command.argv, command.env)
            if lost is not None:
                return _Outcome(attempt, FailureMode.LEASE_EXPIRED, lost)
        code = self._wait(attempt)
        return self._judge(attempt, code)

    def _spawn(self, attempt: _Attempt, argv: tuple[str, ...], env: dict[str, str]) -> str | None:
        """Start the attempt's process if its lease is still ours; else say why not.

        Under the store's writer lock, so that no sweep of another runner
        judges the attempt between the check and its record (CONC-REG-007):
        a runner frozen past its lease never starts what another now owns.
        """
        task, sandbox = attempt.task, attempt.sandbox
        assert sandbox is not None
        started = time.time()
        record = AttemptRecord(
            task.task_id,
            attempt.number,
            attempt.epoch,
            self.holder,
            started,
            str(sandbox.path),
            sandbox.branch,
            sandbox.base,
        )
        write_attempt(attempt.folder, record)  # before the check: a sweep waits for its pid
        attempt.logs.mkdir(parents=True, exist_ok=True)
        with (
            open(attempt.logs / "stdout.log", "wb") as out,
            open(attempt.logs / "stderr.log", "wb") as err,
            self.store.transaction(self.holder) as tx,
        ):
            lost = tx.lease_problem(task.task_id, attempt.epoch)
            if lost is not None:
                return f"{lost}; the process was not started"
            attempt.started = started
            attempt.process = subprocess.Popen(
                wrap(argv, attempt.folder),
                cwd=sandbox.path,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
            attempt.pid = attempt.process.pid
        return None

    def _sandbox(self, task_id: str, number: int) -> Sandbox:
        """A worktree for the attempt: a successful attempt's, reused, or a new one."""
        from .sandbox import SandboxError, create_sandbox, remove_sandbox, reuse_sandbox

        with self._spare_lock:
            spare = self.spare.pop() if self.spare else None
        if spare is not None:
            sandbox, pristine = spare
            try:
                return reuse_sandbox(
                    self.repo, sandbox.path, task_id, number, self.base, pristine=pristine
                )
            except SandboxError:
                with contextlib.suppress(SandboxError):
                    remove_sandbox(self.repo, sandbox)
        path = self.files.sandboxes / f"{task_id}.{number}"  # unique last part: git names by it
        return create_sandbox(self.repo, path, task_id, number, self.base)

    def _wait(self, attempt: _Attempt) -> int | None:
        """The attempt's exit code once it ends, stopping it at its timeout; None when lost."""
        deadline = attempt.started + attempt.task.execution.timeout_seconds
        while True:
            if not attempt.timed_out and time.time() >= deadline:
                attempt.timed_out = True
                self._kill(attempt)
            if attempt.process is not None:
                left = None if attempt.timed_out else max(0.01, deadline - time.time())
                try:
                    return attempt.process.wait(timeout=left)
                except subprocess.TimeoutExpired:
                    continue
            status, code = attempt_status(attempt.folder)  # adopted: its wrapper records the exit
            if status is AttemptStatus.FINISHED:
                return code
            if status is AttemptStatus.LOST:
                return None
            time.sleep(0.05)

    def _kill(self, attempt: _Attempt) -> None:
        """SIGTERM to the attempt's process group, SIGKILL after the grace (ERR-FM-004)."""
        if attempt.pid is None:
            return
        pgid = attempt.pid  # the wrapper leads its own session and group

        def escalate() -> None:
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                return
            end = time.monotonic() + self.options.kill_grace
            while time.monotonic() < end:
                try:
                    os.killpg(pgid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.05)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)

        threading.Thread(target=escalate, daemon=True, name=f"kill-{pgid}").start()

    def _judge(self, attempt: _Attempt, code: int | None) -> _Outcome:
        """Classify an ended attempt and gather its evidence (AIDER-INT-008)."""
        from .adapters import AttemptRefused, excluded_change, result_document
        from .rules import run_rules
        from .sandbox import Sandbox, SandboxError, changes

        task = attempt.task
        if attempt.sandbox is None:
            record = read_attempt(attempt.folder)
            if record is not None and record.sandbox:
                attempt.sandbox = Sandbox(Path(record.sandbox), record.branch, record.base)
        evidence: dict[str, Any] = {
            "schema_version": "1.0.0",
            "task_id": task.task_id,
            "attempt": attempt.number,
            "epoch": attempt.epoch,
            "holder": self.holder,
            "exit_code": code,
            "duration_seconds": round(time.time() - attempt.started, 3),
            "stdout": "stdout.log",
            "stderr": "stderr.log",
        }
        failure: FailureMode | None = None
        reason = "exit 0"
        if attempt.interrupted:
            failure, reason = FailureMode.CRASH, "stopped by the interrupted run"
        elif code is None:
            failure, reason = FailureMode.LEASE_EXPIRED, "the attempt's process was lost"
        elif attempt.timed_out and code != 0:
            failure = FailureMode.TIMEOUT
            reason = f"ran past {task.execution.timeout_seconds} s; process group stopped"
        elif code < 0 or code > 128:
            number = -code if code < 0 else code - 128
            failure, reason = FailureMode.CRASH, f"killed by signal {number}"
        elif code != 0:
            failure, reason = FailureMode.NONZERO_EXIT, f"exit {code}"
        for name in ("stdout.log", "stderr.log"):
            keep_tail(attempt.logs / name)
        sandbox = attempt.sandbox
        found = None
        if sandbox is not None and sandbox.path.is_dir():
            try:
                found = changes(sandbox)
            except SandboxError as error:
                if failure is None:
                    failure, reason = FailureMode.SANDBOX, str(error)
        if sandbox is not None and found is not None:
            # Post-execution rules may leave files: only an attempt without them stays pristine.
            attempt.pristine = found.pristine and not task.validation_rules.post_execution
            evidence["diff"] = {
                "files_changed": list(found.files_changed),
                "insertions": found.insertions,
                "deletions": found.deletions,
            }
            evidence["commits"] = list(found.commits)
            if failure is None:
                excluded = excluded_change(task, found)
                if excluded is not None:
                    failure, reason = FailureMode.EXCLUDED_PATH, excluded
            if failure is None and code is not None:
                try:
                    result = result_document(
                        task,
                        exit_code=code,
                        stdout_path=attempt.logs / "stdout.log",
                        changes=found,
                        result_path=attempt.logs / "result.json",
                    )
                    evidence["result"] = result
                    if result["status"] != "succeeded":
                        failure, reason = FailureMode.NONZERO_EXIT, "its result says failed"
                except AttemptRefused as refused:
                    failure, reason = refused.failure_mode, refused.reason
            if failure is None:
                why = run_rules(
                    "post_execution",
                    task.validation_rules.post_execution,
                    sandbox.path,
                    dict(os.environ),
                    float(task.execution.timeout_seconds),
                )
                if why is not None:
                    failure, reason = FailureMode.POST_VALIDATION, why
        if failure is not None:
            evidence["failure"] = {"mode": str(failure), "reason": reason}
            self._keep(attempt)
        if attempt.sandbox is not None:
            evidence["sandbox"] = {
                "path": str(attempt.sandbox.path),
                "branch": attempt.sandbox.branch,
            }
        write_evidence(attempt.logs, evidence)
        return _Outcome(attempt, failure, reason)

    # --- outcomes -------------------------------------------------------------------------

    def _collect(self, *, block: bool, timeout: float = 0.0) -> None:
        try:
            outcome = (
                self.done.get(block=block, timeout=timeout) if block else self.done.get_nowait()
            )
        except queue.Empty:
            return
        outcomes = [outcome]
        while True:
            try:
                outcomes.append(self.done.get_nowait())
            except queue.Empty:
                break

        def record(tx: Transaction) -> None:
            for found in outcomes:
                self._record(tx, found)

        self._commit(record)
        for found in outcomes:
            attempt = found.attempt
            self.running.pop(attempt.task.task_id, None)
            if attempt.worker is not None:
                self.free.append(attempt.worker)
            if found.failure is None and attempt.sandbox is not None:
                if attempt.worker is not None:  # CONC-REG-013: done with; the next one reuses it
                    with self._spare_lock:
                        self.spare.append((attempt.sandbox, attempt.pristine))
                else:
                    self.pool.submit(self._clean, attempt.sandbox)

    def _clean(self, sandbox: Sandbox) -> None:
        from .sandbox import SandboxError, remove_sandbox

        # CONC-REG-013 (a failed attempt's stays); one that resists is left to `git worktree prune`
        with contextlib.suppress(SandboxError, OSError):
            remove_sandbox(self.repo, sandbox)

    def _record(self, tx: Transaction, outcome: _Outcome) -> None:
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

    def _fail(self, tx: Transaction, attempt: _Attempt, outcome: _Outcome) -> str | None:
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

    def _retry_due(self) -> None:
        """Schedule retries of failed tasks with attempts left; apply those whose wait is over."""
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
        due = [t for t, at in self.retry_at.items() if at <= time.monotonic()]
        if not due:
            return

        def retry(tx: Transaction) -> None:
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

        for task_id in due:
            del self.retry_at[task_id]
        self._commit(retry)

    # --- leases of others: the sweep (CONC-REG-008) and recovery (CONC-REG-010) ------------

    def _sweep(self) -> None:
        """Find expired leases of other holders and adopt, record or re-run their attempts."""
        adopted: list[_Attempt] = []

        def recover(tx: Transaction) -> None:
            for task_id in sorted(tx.active()):
                entry = tx.entry(task_id)
                lease = entry.get("lease")
                if lease is None or lease["holder"] == self.holder or task_id not in self.tasks:
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
                epoch = tx.adopt(
                    task_id, holder=self.holder, worker=lease["worker"], ttl=self.options.ttl
                )
                attempt = self._attempt(task_id, entry.get("attempt", 0), epoch, None)
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
                self._kill(attempt)

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


def _worker_id(attempt: _Attempt) -> str:
    return attempt.worker.id if attempt.worker is not None else "adopted"


def _install(handler: Callable[[int, Any], None]) -> list[tuple[int, Any]]:
    """Handle SIGINT and SIGTERM with ``handler`` (in the main thread); returns the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return []
    return [(number, signal.signal(number, handler)) for number in (signal.SIGINT, signal.SIGTERM)]


def _resources(root: Path, tasks: Mapping[str, Task]) -> dict[str, Resource]:
    """The resource registry, when a task claims resources (CONC-REG-002, CONC-REG-004)."""
    if not any(task.resources for task in tasks.values()):
        return {}
    registry = load_resources(root)
    problems = []
    for task_id, task in sorted(tasks.items()):
        for name, units in task.resources.items():
            resource = registry.get(name)
            if resource is None:
                problems.append(
                    Problem(
                        f"tasks/{task.workstream_id}/{task_id}.json",
                        f"task {task_id!r} claims resource {name!r}, which the registry lacks",
                        f"declare it in capabilities/resources.psd1, or use one of "
                        f"{', '.join(sorted(registry)) or '(none)'}",
                        "CONC-REG-002",
                        f"/resources/{name}",
                    )
                )
            elif units > resource.capacity:
                problems.append(
                    Problem(
                        f"tasks/{task.workstream_id}/{task_id}.json",
                        f"task {task_id!r} claims {units} units of {name!r}, whose capacity is "
                        f"{resource.capacity}: it could never run",
                        "claim at most the capacity",
                        "CONC-REG-004",
                        f"/resources/{name}",
                    )
                )
    if problems:
        raise DefinitionError(problems)
    return registry


def _deadlocks(tasks: Mapping[str, Task], scope: set[str]) -> list[str]:
    """Potential deadlocks among the tasks in scope, in words (CONC-REG-005)."""
    orders = {t: list(tasks[t].resources) for t in scope if len(tasks[t].resources) > 1}
    if not orders:
        return []
    dependencies = {t: tuple(task.dependencies) for t, task in tasks.items()}
    return [
        f"tasks {', '.join(involved)} take {' → '.join(resources)} in opposite orders"
        for involved, resources in potential_deadlocks(orders, dependencies)
    ]


def _slack(tasks: Mapping[str, Task], files: Mapping[str, str] | None) -> dict[str, float]:
    """Each task's slack on the plan, from the tasks already loaded (no file read again)."""
    from ..planning.plan import PlanTask, build_plan

    plan = build_plan({t: PlanTask.of(task) for t, task in tasks.items()}, files)
    return {task_id: slot.slack for task_id, slot in plan.schedule.items()}


def dry_run(
    root: Path,
    tasks: Mapping[str, Task],
    options: RunOptions,
    files: Mapping[str, str] | None = None,
) -> DryRun:
    """The dispatch order and potential deadlocks, reading ``.state/`` and writing nothing."""
    from ..state.snapshot import read_snapshot

    state = read_snapshot(layout(root).snapshot)
    known = state.tasks if state is not None else {}
    entries = {t: {**known.get(t, {}), "priority": task.priority} for t, task in tasks.items()}
    dependencies = {t: task.dependencies for t, task in tasks.items()}
    scope = in_scope(
        dependencies,
        {t: task.workstream_id for t, task in tasks.items()},
        workstream=options.workstream,
        target=options.target,
    )
    order = dispatch_order(dependencies, entries, _slack(tasks, files), scope)
    waiting = [t for t in order if tasks[t].type == "manual"]
    _resources(root, tasks)
    return DryRun(order, _deadlocks(tasks, scope), waiting)
