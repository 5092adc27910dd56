"""Carrying out one attempt: sandbox, rules, the process, its end, and the evidence.

Stability: internal.

The runner (:mod:`.runner`) decides and commits; an :class:`Executor` does
the work of each attempt in a worker thread, one per attempt:
:meth:`Executor.execute` takes a worktree (a successful attempt's, reused,
or a new one, CONC-REG-013), runs the pre-execution rules, launches the
task's adapter under the recording wrapper of
:mod:`orchestration.state.attempts` (only while the attempt's lease is still
the runner's, CONC-REG-007), waits for its end or its timeout (its process
group stopped, ERR-FM-004), classifies how it ended (AIDER-INT-008) and
writes the evidence. An adopted attempt, started by a runner that died, is
only watched and judged. What the state must know is committed by the
runner from the :class:`Outcome`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..failures import FailureMode
from ..state.attempts import (
    AttemptRecord,
    AttemptStatus,
    attempt_status,
    keep_tail,
    read_attempt,
    wrap,
    write_attempt,
    write_evidence,
)

if TYPE_CHECKING:
    from ..registry.workers import Worker
    from ..state import Store
    from ..state.layout import Layout
    from ..tasks.model import Task
    from .sandbox import Sandbox

__all__ = ["Attempt", "Executor", "Outcome"]


@dataclass
class Attempt:
    """An attempt a runner watches: one it started, or one it adopted."""

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
class Outcome:
    """How an attempt ended: its failure mode (``None``: it succeeded) and why."""

    attempt: Attempt
    failure: FailureMode | None
    reason: str


class Executor:
    """Carries out the attempts of one runner (``holder``) on the repository ``repo``.

    Args:
        store: the open store; a process starts under its writer lock.
        holder: the runner's lease holder name.
        repo: the git repository of the pipeline.
        base: the commit every attempt of the run starts from.
        files: the pipeline's state layout.
        kill_grace: seconds between SIGTERM and SIGKILL of a timed-out attempt.
    """

    def __init__(
        self, store: Store, holder: str, repo: Path, base: str, files: Layout, kill_grace: float
    ) -> None:
        self.store = store
        self.holder = holder
        self.repo = repo
        self.base = base
        self.files = files
        self.kill_grace = kill_grace
        # Worktrees of successful attempts to reuse, and whether each is pristine.
        self.spare: list[tuple[Sandbox, bool]] = []
        self._spare_lock = threading.Lock()

    def attempt(self, task: Task, number: int, epoch: int, worker: Worker | None) -> Attempt:
        """Attempt ``number`` of ``task`` under lease ``epoch``, its folders named."""
        folder = Path(task.task_id, str(number))
        return Attempt(
            task, number, epoch, worker, self.files.attempts / folder, self.files.logs / folder
        )

    def reuse(self, sandbox: Sandbox, pristine: bool) -> None:
        """Keep a successful attempt's worktree for the next attempt (CONC-REG-013)."""
        with self._spare_lock:
            self.spare.append((sandbox, pristine))

    def clean_spares(self) -> None:
        """Remove the worktrees kept for reuse (the run ends)."""
        with self._spare_lock:
            spares, self.spare = self.spare, []
        for sandbox, _ in spares:
            self.clean(sandbox)

    def execute(self, attempt: Attempt) -> Outcome:
        """Carry out ``attempt`` (or watch an adopted one) to its end; never raises.

        An exception is a bug of the engine: the attempt fails with
        ``FM-INTERNAL`` and the traceback is kept in its logs. A failed
        attempt's worktree is kept for inspection (CONC-REG-013).
        """
        try:
            outcome = self._outcome(attempt)
        except Exception as bug:  # a bug must not leave the task running forever
            trace = attempt.logs / "internal-error.txt"
            with contextlib.suppress(OSError):
                attempt.logs.mkdir(parents=True, exist_ok=True)
                trace.write_text("".join(traceback.format_exception(bug)))
            why = f"{type(bug).__name__}: {bug} (a bug in the engine; traceback in {trace})"
            outcome = Outcome(attempt, FailureMode.INTERNAL, why)
        if outcome.failure is not None:
            self.keep(attempt)
        return outcome

    def keep(self, attempt: Attempt) -> None:
        """Keep a failed attempt's worktree for inspection, named after it (CONC-REG-013)."""
        from .sandbox import keep_sandbox

        if attempt.worker is not None and attempt.sandbox is not None:
            path = self.files.sandboxes / f"{attempt.task.task_id}.{attempt.number}"
            attempt.sandbox = keep_sandbox(self.repo, attempt.sandbox, path)

    def _outcome(self, attempt: Attempt) -> Outcome:
        from .adapters import AttemptRefused, launch
        from .rules import run_rules
        from .sandbox import SandboxError

        task = attempt.task
        environ = dict(os.environ)
        if attempt.worker is not None:  # ours to start (an adopted one runs already)
            try:
                attempt.sandbox = self._sandbox(task.task_id, attempt.number)
            except SandboxError as error:
                return Outcome(attempt, FailureMode.SANDBOX, str(error))
            sandbox = attempt.sandbox
            timeout = float(task.execution.timeout_seconds)
            why = run_rules(
                "pre_execution", task.validation_rules.pre_execution, sandbox.path, environ, timeout
            )
            if why is not None:
                return Outcome(attempt, FailureMode.PRE_VALIDATION, why)
            try:
                command = launch(
                    task, sandbox, attempt.number, attempt.logs / "result.json", environ
                )
            except AttemptRefused as refused:
                return Outcome(attempt, refused.failure_mode, refused.reason)
            lost = self._spawn(attempt, command.argv, command.env)
            if lost is not None:
                return Outcome(attempt, FailureMode.LEASE_EXPIRED, lost)
        code = self._wait(attempt)
        return self._judge(attempt, code)

    def _spawn(self, attempt: Attempt, argv: tuple[str, ...], env: dict[str, str]) -> str | None:
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
        if attempt.interrupted:  # a second SIGINT came while it started: it found no pid
            self.kill(attempt)
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
                    self.repo, sandbox, task_id, number, self.base, pristine=pristine
                )
            except SandboxError:
                with contextlib.suppress(SandboxError):
                    remove_sandbox(self.repo, sandbox)
        path = self.files.sandboxes / f"{task_id}.{number}"  # unique last part: git names by it
        return create_sandbox(self.repo, path, task_id, number, self.base)

    def _wait(self, attempt: Attempt) -> int | None:
        """The attempt's exit code once it ends, stopping it at its timeout; None when lost."""
        deadline = attempt.started + attempt.task.execution.timeout_seconds
        while True:
            if not attempt.timed_out and time.time() >= deadline:
                attempt.timed_out = True
                self.kill(attempt)
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

    def kill(self, attempt: Attempt) -> None:
        """SIGTERM to the attempt's process group, SIGKILL after the grace (ERR-FM-004)."""
        if attempt.pid is None:
            return
        pgid = attempt.pid  # the wrapper leads its own session and group

        def escalate() -> None:
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                return
            end = time.monotonic() + self.kill_grace
            while time.monotonic() < end:
                try:
                    os.killpg(pgid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.05)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)

        threading.Thread(target=escalate, daemon=True, name=f"kill-{pgid}").start()

    def _judge(self, attempt: Attempt, code: int | None) -> Outcome:
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
            self.keep(attempt)
        if attempt.sandbox is not None:
            evidence["sandbox"] = {
                "path": str(attempt.sandbox.path),
                "branch": attempt.sandbox.branch,
            }
        write_evidence(attempt.logs, evidence)
        return Outcome(attempt, failure, reason)

    def clean(self, sandbox: Sandbox) -> None:
        from .sandbox import SandboxError, remove_sandbox

        # CONC-REG-013 (a failed attempt's stays); one that resists is left to `git worktree prune`
        with contextlib.suppress(SandboxError, OSError):
            remove_sandbox(self.repo, sandbox)
