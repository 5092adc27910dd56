"""The agent workflow service: what the REST API does, over the one store (AGENT-WF-003..016).

Stability: provisional. The API (``orchestration.api``) is a thin HTTP edge
over :class:`Workflow`; every refusal is a :class:`Refused` carrying the HTTP
status, the requirement it enforces and a message saying what to do.

An agent claims a ready task (a lease, as a runner's worker would hold one,
and the contract's first phase), then works in the task's sandbox — a git
worktree created on its first tool call — through tools the phase allows,
and asks to move to the next phase with the artifacts the step requires.
Reaching a terminal phase completes the task. Each phase token is a JWT
whose id the state records: a transition records a new one, which revokes
the old, and the task leaving the agent (expiry, release, completion)
revokes them all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import orjson

from ..errors import OrchestrationError
from ..state import Store, Transaction
from ..state.attempts import lease_expiry, write_artifact, write_heartbeat
from ..state.audit import ToolAudit, audit_record
from ..state.layout import layout
from ..state.snapshot import LEASED
from ..state.views import DispatchQueue
from ..tasks.model import Task
from .artifacts import ARTIFACTS, artifact_problems
from .contract import Contract, Mode
from .gates import GATE_ARTIFACTS, GATES
from .tokens import PhaseClaims, PhaseTokens, TokenRejected
from .tools import (
    READ_ONLY,
    PathEscape,
    ToolArgumentError,
    ToolError,
    audited_args,
    execute,
    refusal,
    relative_path,
    tool_path,
)

__all__ = ["Claim", "Refused", "Workflow"]


class Refused(OrchestrationError):
    """A request the workflow refuses; the API answers it as problem+json (AGENT-WF-015).

    Attributes:
        status: the HTTP status (400, 401, 403, 404, 409 or 422).
        title: a short, stable summary of the kind of refusal.
        requirement: the requirement ID the refusal enforces.
        pointer: the JSON pointer of the offending value in the request, if any.
        problems: each invalid value (``{"pointer", "message"}``), for 422.
    """

    exit_code: ClassVar[int] = 1

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        requirement: str,
        *,
        pointer: str | None = None,
        problems: Sequence[Mapping[str, str]] = (),
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.requirement = requirement
        self.pointer = pointer
        self.problems = list(problems)


@dataclass(frozen=True)
class Claim:
    """A task handed to an agent (AGENT-WF-014)."""

    task: dict[str, Any]  # the task's definition, as in its file
    phase: str
    phase_token: str
    lease_expires_at: str  # ISO 8601 UTC
    attempt: int


@dataclass
class _Wanted:
    """A claim waiting to be served: concurrent claims share one transaction, one fsync.

    Whoever takes the store's lock claims for every claim waiting then; the
    others find theirs served, committed, once they get the lock in turn.
    """

    agent_id: str
    offered: set[str] | None
    claimed: tuple[str, int, PhaseClaims, str] | None = None
    error: BaseException | None = None  # the commit that was to serve it failed
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Session:
    """What the server keeps about a task an agent holds, beside the state."""

    sandbox: Path | None = None
    # The engine's own run_tests result per phase token: gates trust it over the agent's word.
    test_runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


class Workflow:
    """Agents' requests against one pipeline's store, contract and sandboxes."""

    def __init__(
        self,
        root: Path,
        store: Store,
        contract: Contract,
        tokens: PhaseTokens,
        audit: ToolAudit,
        *,
        tasks: Mapping[str, Task],
        lease_ttl: float = 20.0,
    ) -> None:
        from ..execution.scheduler import Admission, registry_for, slack_of

        self.root = root
        self.store = store
        self.contract = contract
        self.tokens = tokens
        self.audit = audit
        self.tasks = tasks
        self.lease_ttl = lease_ttl
        self.files = layout(root)
        self.slack = slack_of(tasks, None)
        self.queue = DispatchQueue(self.slack)
        self.admission = Admission(registry_for(root, tasks))
        self._sessions: dict[str, _Session] = {}
        self._sessions_lock = threading.Lock()
        self._documents: dict[str, dict[str, Any]] = {}  # see _document
        self._wanted: list[_Wanted] = []  # claims waiting for the store's lock (see _Wanted)
        self._wanted_lock = threading.Lock()
        self._offsets: dict[int, int] = {}  # seq → journal offset just past it, for events
        self._sweep_at = 0.0  # when claims next look for agents that stopped heartbeating
        self._renewed: dict[str, float] = {}  # holder → when this server last renewed its lease
        self._renewals = ThreadPoolExecutor(max_workers=1, thread_name_prefix="renewal")
        self._verified: dict[str, PhaseClaims] = {}  # token → its claims, signature checked
        self._snapshot: tuple[int, bytes] = (-1, b"")  # the last snapshot served, by seq

    # --- claims and leases --------------------------------------------------------------

    def claim(self, agent_id: str, capabilities: Sequence[str] | None = None) -> Claim:
        """Lease the ready task the scheduler would dispatch first to this agent.

        Args:
            agent_id: who claims; the lease's holder is ``agent:<agent_id>``.
            capabilities: what the agent offers; ``None`` takes any task.

        Raises:
            Refused: 404 when no ready task fits the agent.
        """
        holder = f"agent:{agent_id}"
        offered = None if capabilities is None else set(capabilities)
        wanted = _Wanted(agent_id, offered)
        with self._wanted_lock:
            self._wanted.append(wanted)
        batch: list[_Wanted] = []
        try:
            with self.store.transaction(actor=holder) as tx:
                with self._wanted_lock:
                    batch, self._wanted = self._wanted, []
                self._serve(tx, batch)
        except BaseException as error:
            for each in batch:
                each.error = error
            with self._wanted_lock:  # not served yet: nobody will
                if wanted in self._wanted:
                    self._wanted.remove(wanted)
            raise
        finally:
            for each in batch:
                each.done.set()
        wanted.done.wait()  # served by this transaction or by the one before, committed now
        if wanted.error is not None and wanted not in batch:
            msg = f"the claim could not be committed: {wanted.error}"
            raise OrchestrationError(msg)
        claimed = wanted.claimed
        if claimed is None:
            needing = "" if offered is None else f" needing only {sorted(offered)}"
            msg = f"no ready task{needing}; try again later, or follow GET /api/v1/events"
            raise Refused(404, "Nothing to claim", msg, "AGENT-WF-014")
        task_id, attempt, claims, token = claimed
        # No heartbeat yet: the lease was granted now (the first request renews it).
        with self._sessions_lock:
            self._sessions[task_id] = _Session()
        lease = self.store.state.tasks[task_id]["lease"]
        return Claim(
            self._document(task_id),
            claims.phase,
            token,
            _iso(lease_expiry(lease, self.store.leases)),
            attempt,
        )

    def _document(self, task_id: str) -> dict[str, Any]:
        """The task's definition as its file holds it (made once per task; not to be changed)."""
        document = self._documents.get(task_id)
        if document is None:
            task = self.tasks.get(task_id)
            document = (
                task.model_dump(mode="json", by_alias=True, exclude_unset=True)
                if task
                else {"task_id": task_id}
            )
            self._documents[task_id] = document
        return document

    def _serve(self, tx: Transaction, batch: list[_Wanted]) -> None:
        """Claim, in ``tx``, a ready task for each claim of ``batch`` that one fits."""
        if not batch:
            return
        if time.monotonic() >= self._sweep_at:  # not every claim: it reads heartbeats
            self._expire_lost(tx)
            self._sweep_at = time.monotonic() + self.lease_ttl / 4
        held = [tx.entry(t).get("resources", {}) for t in tx.active()]
        for wanted in batch:
            agent_id, offered = wanted.agent_id, wanted.offered
            for _, task_id in self.queue.ordered(self.store.ready, self.store.state.tasks):
                entry = tx.entry(task_id)
                if entry["status"] != "ready":
                    continue
                if offered is not None and not set(entry.get("capabilities", ())) <= offered:
                    continue
                resources = entry.get("resources", {})
                if self.admission.refusal(resources, held) is not None:
                    continue
                tx.claim(task_id, holder=f"agent:{agent_id}", worker=agent_id, ttl=self.lease_ttl)
                attempt = tx.start(task_id)
                token, claims = self.tokens.issue(agent_id, task_id, self.contract.initial)
                tx.phase(
                    task_id,
                    "claim",
                    self.contract.initial,
                    agent=agent_id,
                    jti=claims.jti,
                    reason=f"attempt {attempt} starts in {self.contract.initial}",
                )
                held.append(resources)
                wanted.claimed = (task_id, attempt, claims, token)
                break

    def _expire_lost(self, tx: Transaction) -> None:
        """End the leases of agents that stopped heartbeating (their work ran: a retry is spent).

        A lease younger than its ttl is alive whatever its heartbeats say (an
        agent's has no process to be found dead): its file is not read.
        """
        now = time.time()
        for task_id in sorted(tx.active()):
            lease = tx.entry(task_id).get("lease")
            if lease is None or not str(lease["holder"]).startswith("agent:"):
                continue
            if float(lease["granted"]) + float(lease["ttl"]) > now:
                continue
            problem = tx.lease_problem(task_id, lease["epoch"])
            if problem is not None:
                tx.expire(
                    task_id, f"{lease['holder']} stopped heartbeating: {problem}", started=True
                )

    def heartbeat(self, token: str, task_id: str) -> dict[str, Any]:
        """Renew the lease of the agent holding ``task_id``; returns the new expiry."""
        claims, entry = self._authorized(token, task_id)
        write_heartbeat(self.store.leases, f"agent:{claims.agent_id}", process=False)
        self._renewed[f"agent:{claims.agent_id}"] = time.monotonic()
        expires = lease_expiry(entry["lease"], self.store.leases)
        return {"task_id": task_id, "phase": entry["phase"], "lease_expires_at": _iso(expires)}

    # --- tokens ---------------------------------------------------------------------------

    def _authorized(self, token: str, task_id: str | None) -> tuple[PhaseClaims, dict[str, Any]]:
        """The token's claims and the task's entry, if the token may act on the task now.

        Raises:
            Refused: 401 for a forged, expired or revoked (replayed) token;
                403 for a token of another task or another phase; 409 when
                the agent's lease has expired.
        """
        claims = self._verified.get(token)
        if claims is None or claims.expires_at <= time.time():
            try:
                claims = self.tokens.decode(token)
            except TokenRejected as bad:
                raise Refused(401, "Invalid phase token", str(bad), "AGENT-WF-009") from None
            if len(self._verified) >= 4096:  # tokens of a few thousand agents at most
                self._verified.clear()
            self._verified[token] = claims  # its signature holds; expiry is checked each use
        if task_id is not None and claims.task_id != task_id:
            msg = (
                f"the phase token is for task {claims.task_id!r}, not {task_id!r}; use the "
                "token returned when you claimed this task"
            )
            raise Refused(403, "Token for another task", msg, "AGENT-WF-009")
        self.store.refresh()
        entry = self.store.state.tasks.get(claims.task_id)
        if entry is None or entry["status"] not in LEASED or "jti" not in entry:
            msg = (
                f"task {claims.task_id!r} is no longer held by an agent; its tokens are revoked. "
                "Claim a task again"
            )
            raise Refused(401, "Revoked phase token", msg, "AGENT-WF-009")
        if entry.get("phase") != claims.phase:
            # A token of an earlier phase is revoked too; the phase is what the agent must fix.
            msg = (
                f"the token is for phase {claims.phase}, but task {claims.task_id!r} is in phase "
                f"{entry.get('phase')}; use the token the last transition returned"
            )
            raise Refused(403, "Token for another phase", msg, "AGENT-WF-009")
        if entry["jti"] != claims.jti:
            msg = (
                f"token {claims.jti} (phase {claims.phase}) was replaced by a newer one for task "
                f"{claims.task_id!r}: a transition or a new claim revokes the previous "
                "token; use the token the last transition returned"
            )
            raise Refused(401, "Revoked phase token", msg, "AGENT-WF-009")
        lease = entry["lease"]
        if lease["holder"] != f"agent:{claims.agent_id}":
            msg = f"task {claims.task_id!r} is leased to {lease['holder']}, not to you"
            raise Refused(403, "Not your task", msg, "AGENT-WF-009")
        late = datetime.now(UTC).timestamp() - lease_expiry(lease, self.store.leases)
        if late > 0:
            msg = (
                f"your lease on {claims.task_id!r} expired {late:.1f} s ago: heartbeat at least "
                f"every {self.lease_ttl / 2:g} s; the task will be retried"
            )
            raise Refused(409, "Lease expired", msg, "CONC-REG-007")
        # Any authorized request proves the agent alive: it renews the lease like a heartbeat,
        # written at most every ttl/8 and by another thread: a new file's inode can cost
        # more than the tool check itself.
        now = time.monotonic()
        if now - self._renewed.get(lease["holder"], 0.0) >= self.lease_ttl / 8:
            self._renewed[lease["holder"]] = now
            self._renewals.submit(write_heartbeat, self.store.leases, lease["holder"],
                                  process=False)  # fmt: skip
        return claims, entry

    # --- transitions ----------------------------------------------------------------------

    def transition(
        self,
        token: str,
        target_phase: str,
        artifacts: Mapping[str, Any],
        task_id: str | None = None,
    ) -> dict[str, Any]:
        """Move the token's task to ``target_phase`` if the contract allows it now.

        Args:
            task_id: the task the caller means, if it says; 403 when the token
                is for another.

        Returns:
            ``{task_id, previous_phase, phase, phase_token, task_status, warnings}``;
            the new token replaces the old one, which stops working.

        Raises:
            Refused: 409 for an undeclared step (AGENT-WF-002) or a failing gate
                (AGENT-WF-004); 422 for a missing or invalid artifact (AGENT-WF-003).
        """
        claims, entry = self._authorized(token, task_id)
        task_id, source = claims.task_id, claims.phase
        step = self.contract.step(source, target_phase)
        if step is None:
            allowed = ", ".join(self.contract.next_phases(source)) or "none (a terminal phase)"
            msg = (
                f"the contract declares no transition from {source} to {target_phase!r}; "
                f"from {source} you may request: {allowed}"
            )
            raise Refused(409, "Transition not declared", msg, "AGENT-WF-002")
        warnings: list[str] = []
        permissive = self.contract.mode is Mode.PERMISSIVE
        problems = self._artifact_problems(step.artifacts, artifacts)
        if problems:
            detail = "; ".join(f"{p['pointer']}: {p['message']}" for p in problems[:5])
            if not permissive:
                raise Refused(
                    422,
                    "Invalid artifacts",
                    f"leaving {source} for {target_phase} needs valid artifacts: {detail}",
                    "AGENT-WF-003",
                    pointer=problems[0]["pointer"],
                    problems=problems,
                )
            warnings.append(f"AGENT-WF-003: {detail}")
        session = self._session(task_id)
        evidence = dict(artifacts)
        # Gates on test results trust the engine's own run in this phase, not the agent's word.
        evidence.pop("test_result", None)
        if claims.jti in session.test_runs:
            evidence["test_result"] = session.test_runs[claims.jti]
        facts: dict[str, bool] = {}
        for gate in step.gates:
            if GATE_ARTIFACTS[gate] == "test_result" and "test_result" not in evidence:
                reason: str | None = (
                    f"the engine has not run the tests in phase {source}: call the run_tests "
                    "tool first (test gates trust the engine's own run, not a submitted result)"
                )
            else:
                reason = GATES[gate](evidence)
            facts[gate] = reason is None or permissive
            if reason is not None:
                if not permissive:
                    msg = f"gate {gate!r} refuses leaving {source} for {target_phase}: {reason}"
                    raise Refused(409, "Gate failed", msg, "AGENT-WF-004")
                warnings.append(f"AGENT-WF-004: gate {gate!r}: {reason}")
        for warning in warnings:
            self._audit(
                claims,
                "transition",
                {"target_phase": target_phase},
                "warned",
                warning,
                warning.split(":", 1)[0],
            )
        new_token, new_claims = self.tokens.issue(claims.agent_id, task_id, target_phase)
        late: str | None = None
        with self.store.transaction(actor=f"agent:{claims.agent_id}") as tx:
            current = tx.entry(task_id)
            if current.get("jti") != claims.jti or current.get("phase") != source:
                msg = f"task {task_id!r} moved on meanwhile; this token is revoked"
                raise Refused(401, "Revoked phase token", msg, "AGENT-WF-009")
            dest = self.contract.lifecycle.apply(task_id, source, step.trigger, facts)
            severity = "warning" if warnings else "info"
            tx.phase(
                task_id,
                step.trigger,
                dest,
                agent=claims.agent_id,
                jti=new_claims.jti,
                reason=f"{source} -> {dest}" + (f"; {'; '.join(warnings)}" if warnings else ""),
                severity=severity,
            )
            if step.requests_review:
                tx.event(
                    "review",
                    task_id,
                    "request_review",
                    "requested",
                    reason=f"review of {task_id} attempt {current.get('attempt', 0)} "
                    f"requested by {claims.agent_id} (AGENT-WF-006)",
                )
            if self.contract.phases[dest].terminal:
                late = tx.finish(
                    task_id,
                    int(current["lease"]["epoch"]),
                    "complete",
                    reason=f"{claims.agent_id} reached {dest}",
                )
        seq = next(line["seq"] for line in tx.lines if line["entity"] == "phase")
        folder = self.files.logs / task_id / str(entry.get("attempt", 0))
        for name, document in artifacts.items():
            if name in ARTIFACTS:
                write_artifact(folder, f"{seq}.{source}", name, document)
        if late is not None:
            raise Refused(
                409, "Lease expired", f"the completion was refused: {late}", "CONC-REG-007"
            )
        status = self.store.state.tasks[task_id]["status"]
        if status not in LEASED:
            self._forget(task_id)
        return {
            "task_id": task_id,
            "previous_phase": source,
            "phase": dest,
            "phase_token": new_token,
            "task_status": status,
            "warnings": warnings,
        }

    def _artifact_problems(
        self, required: Sequence[str], artifacts: Mapping[str, Any]
    ) -> list[dict[str, str]]:
        problems: list[dict[str, str]] = []
        for name in artifacts:
            if name not in ARTIFACTS:
                problems.append(
                    {
                        "pointer": f"/artifacts/{name}",
                        "message": f"unknown artifact; known: {', '.join(ARTIFACTS)}",
                    }
                )
        for name in required:
            if name not in artifacts:
                problems.append(
                    {
                        "pointer": f"/artifacts/{name}",
                        "message": f"required artifact {name!r} is missing "
                        f"(schema: schemas/artifacts/{name}.schema.json)",
                    }
                )
                continue
            for found in artifact_problems(name, artifacts[name]):
                problems.append(
                    {"pointer": f"/artifacts/{name}{found.pointer}", "message": found.message}
                )
        return problems

    # --- tools ----------------------------------------------------------------------------

    def use_tool(
        self, token: str, task_id: str, tool: str, args: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Check the phase's permissions for a tool call, audit the decision, then run it.

        Raises:
            Refused: 403 for a tool or path the phase forbids (AGENT-WF-010) or
                a path escaping the sandbox (AGENT-WF-011, refused in any mode);
                422 for bad arguments; 409 when the tool itself fails.
        """
        claims, _ = self._authorized(token, task_id)
        phase = self.contract.phases[claims.phase]
        try:
            raw = tool_path(tool, args)
        except ToolArgumentError as bad:
            self._audit(claims, tool, args, "denied", str(bad), "AGENT-WF-010")
            raise Refused(422, "Invalid tool arguments", str(bad), "AGENT-WF-010") from None
        session = self._session(task_id)
        with session.lock:
            sandbox = self._sandbox(task_id, session)
            try:  # the permission is decided on the resolved path: a symlink cannot widen it
                path = None if raw is None else relative_path(sandbox, raw)
            except PathEscape as bad:
                self._audit(claims, tool, args, "denied", str(bad), "AGENT-WF-011")
                raise Refused(403, "Path escapes the sandbox", str(bad), "AGENT-WF-011") from None
            why = refusal(phase.allowed, phase.forbidden, tool, path)
            decision = "allowed"
            if why is not None:
                if self.contract.mode is Mode.STRICT:
                    self._audit(claims, tool, args, "denied", why, "AGENT-WF-010")
                    msg = f"{why} (phase {claims.phase})"
                    raise Refused(403, "Tool not allowed", msg, "AGENT-WF-010")
                decision = "warned"
            self._audit(claims, tool, args, decision, why or "allowed by the phase", "AGENT-WF-010")
            try:
                output = execute(
                    tool,
                    args,
                    sandbox,
                    test_command=self.contract.test_command,
                    timeout=self.contract.test_timeout,
                )
            except PathEscape as bad:  # the path changed under us (a symlink appeared)
                raise Refused(403, "Path escapes the sandbox", str(bad), "AGENT-WF-011") from None
            except ToolArgumentError as bad:
                raise Refused(422, "Invalid tool arguments", str(bad), "AGENT-WF-010") from None
            except ToolError as bad:
                raise Refused(409, "Tool failed", str(bad), "AGENT-WF-010") from None
            if tool == "run_tests":
                session.test_runs[claims.jti] = output
        return {"tool": tool, "decision": decision, "phase": claims.phase, "result": output}

    def _audit(
        self,
        claims: PhaseClaims,
        tool: str,
        args: Mapping[str, Any],
        decision: str,
        reason: str,
        requirement: str,
    ) -> None:
        severity = {"allowed": "info", "warned": "warning"}.get(decision, "error")
        # Durable before the tool acts; a denial or a read has no effect to wait for.
        acts = decision != "denied" and tool not in READ_ONLY
        self.audit.append(
            audit_record(
                agent_id=claims.agent_id,
                task_id=claims.task_id,
                phase=claims.phase,
                tool=tool,
                args=audited_args(tool, args),
                decision=decision,
                reason=reason,
                requirement=requirement,
                severity=severity,
            ),
            wait=acts,
        )

    def _session(self, task_id: str) -> _Session:
        with self._sessions_lock:
            return self._sessions.setdefault(task_id, _Session())

    def _forget(self, task_id: str) -> None:
        with self._sessions_lock:
            self._sessions.pop(task_id, None)

    def _sandbox(self, task_id: str, session: _Session) -> Path:
        """The task's worktree, created on the first tool call of the attempt."""
        from ..execution.sandbox import SandboxError, create_sandbox, repository_of

        if session.sandbox is None:
            attempt = int(self.store.state.tasks[task_id].get("attempt", 0))
            path = self.files.sandboxes / f"{task_id}.{attempt}"
            try:
                if path.is_dir():
                    session.sandbox = path.resolve()
                else:
                    repo = repository_of(self.root)
                    session.sandbox = create_sandbox(repo, path, task_id, attempt).path
            except SandboxError as bad:
                raise Refused(409, "No sandbox", str(bad), "CONC-REG-012") from None
        return session.sandbox

    # --- reads ----------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The current state as JSON, as ``.state/current.json`` shows it once written.

        Without its ``metrics`` section, which ``GET /metrics`` serves: agents
        poll this document, and the metrics would add a third to it.
        Serialised under the store's lock (a commit must not change it half-way)
        and only again when the journal moved.
        """
        from ..state.journal import now

        with self.store._mutex:
            self.store.refresh()
            seq, data = self._snapshot
            if seq != self.store.state.last_seq:
                document = self.store.state.document(now())
                del document["metrics"]
                data = orjson.dumps(document)
                self._snapshot = (self.store.state.last_seq, data)
            return data

    def events(self, after: int, limit: int = 1000) -> list[dict[str, Any]]:
        """Journal lines with a seq above ``after`` (at most ``limit``), without waiting."""
        self.store.refresh()
        with self.store._mutex:
            last, end = self.store.state.last_seq, self.store.state.journal_offset
            self._offsets[last] = end
            if len(self._offsets) > 4096:
                for old in sorted(self._offsets)[:2048]:
                    del self._offsets[old]
        if after >= last:
            return []
        return self.store.read_after(after, self._offsets.get(after, 0))[:limit]

    def audit_records(self, **filters: Any) -> list[dict[str, Any]]:
        """Tool audit records (see :meth:`orchestration.state.audit.ToolAudit.read`)."""
        return self.audit.read(**filters)

    # --- opening ----------------------------------------------------------------------

    @classmethod
    @contextmanager
    def open(
        cls, root: Path, *, secret: str, lease_ttl: float = 20.0, audit_max_bytes: int = 104_857_600
    ) -> Iterator[Workflow]:
        """Load the pipeline at ``root`` (tasks synced, contract compiled) and serve it.

        Raises:
            DefinitionError: invalid task files or contract (exit 1).
        """
        from ..errors import DefinitionError
        from ..lifecycles import load_lifecycles
        from ..tasks.loading import load_tasks
        from .contract import load_contract

        contract = load_contract(root)
        loaded = load_tasks(root)
        if loaded.problems:
            raise DefinitionError(loaded.problems)
        lifecycles = load_lifecycles(root)
        tokens = PhaseTokens(secret, ttl_seconds=contract.token_ttl)
        audit = ToolAudit(layout(root).folder / "audit", max_bytes=audit_max_bytes)
        with Store.open(root, lifecycles, actor="api") as store:
            store.sync(loaded.tasks)
            workflow = cls(root, store, contract, tokens, audit, tasks=loaded.tasks,
                           lease_ttl=lease_ttl)  # fmt: skip
            try:
                yield workflow
            finally:
                workflow._renewals.shutdown(wait=True)
