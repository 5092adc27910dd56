"""The agent SDK: a small client of ``orchestration serve``'s REST API (AGENT-WF-018).

Stability: provisional (the names below are stable; methods may gain keyword arguments).

It needs only httpx: importing it loads neither FastAPI nor pydantic, so an
agent's own environment stays small. The client keeps the current phase
token: each successful :meth:`AgentClient.request_transition` replaces it.

Example::

    from orchestration.sdk import AgentClient, GateFailed

    with AgentClient("agent-1", "http://127.0.0.1:8000") as agent:
        claimed = agent.claim_task()              # NothingToClaim when nothing is ready
        print(claimed.task_id, agent.phase)       # ... PLAN
        source = agent.read_file("src/app.py")
        agent.request_transition("TDD", {
            "plan": {"summary": "...", "acceptance_criteria": ["..."]},
            "scope": {"files": ["src/app.py", "tests/test_app.py"]},
        })
        agent.write_file("tests/test_app.py", "...")
        result = agent.run_tests()                # a test_result artifact
        try:
            agent.request_transition("IMPL", {"tests": {"files": ["tests/test_app.py"]},
                                              "test_result": result})
        except GateFailed as refused:
            print(refused.gate, refused.detail)

Leases expire ``leases.ttl_seconds`` (20 s by default) after the last
heartbeat: call :meth:`AgentClient.heartbeat` between long tool calls.

Errors (each carries the problem document's ``status``, ``title``,
``detail``, ``requirement`` and ``errors``)::

    OrchestrationError
    └── AgentError                 any refusal of the API, or no answer
        ├── NotClaimed             a task method called before claim_task
        ├── NothingToClaim         404: no ready task fits (AGENT-WF-014)
        ├── InvalidToken           401: forged, expired or replaced token (AGENT-WF-009)
        ├── Forbidden              403: another task or phase, a forbidden tool or path
        ├── TransitionRefused      409: the contract declares no such step (AGENT-WF-002)
        ├── GateFailed             409: a gate refuses leaving the phase (AGENT-WF-004)
        ├── LeaseExpired           409: the lease ran out; the task will be retried
        ├── ToolFailed             409: the tool ran into the sandbox's files
        ├── InvalidRequest         400/422: the request itself is wrong
        │   └── InvalidArtifacts   422: a missing or invalid artifact (AGENT-WF-003)
        ├── ServerError            5xx: a bug in the server
        └── ServerUnavailable      no answer: not running, unreachable, timed out
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar

import httpx

from .errors import OrchestrationError

__all__ = [
    "AgentClient",
    "AgentError",
    "ClaimedTask",
    "Forbidden",
    "GateFailed",
    "InvalidArtifacts",
    "InvalidRequest",
    "InvalidToken",
    "LeaseExpired",
    "NotClaimed",
    "NothingToClaim",
    "ServerError",
    "ServerUnavailable",
    "ToolFailed",
    "TransitionRefused",
]

DEFAULT_URL = "http://127.0.0.1:8000"
_GATE = re.compile(r"gate '([a-z0-9_]+)'")


class AgentError(OrchestrationError):
    """The API refused a request (a problem document), or did not answer.

    Attributes:
        status: the HTTP status; 0 when there was no answer.
        title: the problem's short, stable summary.
        detail: what went wrong and what to do.
        requirement: the requirement ID of the spec the refusal enforces.
        errors: each invalid value (``{"pointer", "message"}``), for 422.
        problem: the whole problem document as received.
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        requirement: str = "",
        errors: Sequence[Mapping[str, Any]] = (),
        problem: Mapping[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.requirement = requirement
        self.errors = [dict(error) for error in errors]
        self.problem = dict(problem or {})
        cited = f" [{requirement}]" if requirement else ""
        super().__init__(f"{status or 'no answer'} {title}: {detail}{cited}")


class NotClaimed(AgentError):
    """A task method was called before :meth:`AgentClient.claim_task` succeeded."""


class NothingToClaim(AgentError):
    """No ready task fits the agent (404); try again later or follow the events."""


class InvalidToken(AgentError):
    """The phase token is forged, expired or replaced by a newer one (401)."""


class Forbidden(AgentError):
    """The token is for another task or phase, or the phase forbids the tool or path (403)."""


class TransitionRefused(AgentError):
    """The contract declares no transition from the current phase to the one asked (409)."""


class GateFailed(AgentError):
    """A gate refuses leaving the phase (409); :attr:`gate` names it."""

    @property
    def gate(self) -> str:
        """The gate that refused, e.g. ``all_tests_pass`` (``""`` if the detail names none)."""
        found = _GATE.search(self.detail)
        return found.group(1) if found else ""


class LeaseExpired(AgentError):
    """The lease on the task expired (409): heartbeat more often; the task will be retried."""


class ToolFailed(AgentError):
    """The tool was allowed but could not work on the sandbox's files (409)."""


class InvalidRequest(AgentError):
    """The request is malformed (400) or holds invalid values (422, see :attr:`errors`)."""


class InvalidArtifacts(InvalidRequest):
    """An artifact the transition requires is missing or invalid (422, AGENT-WF-003)."""


class ServerError(AgentError):
    """The server failed (5xx): a bug in orchestration, detailed in the server's log."""


class ServerUnavailable(AgentError):
    """The server did not answer: not running, unreachable, or too slow."""


_CONFLICTS: Mapping[str, type[AgentError]] = {
    "AGENT-WF-002": TransitionRefused,
    "AGENT-WF-004": GateFailed,
    "CONC-REG-007": LeaseExpired,
    "AGENT-WF-010": ToolFailed,
}


def _error_class(status: int, requirement: str, path: str) -> type[AgentError]:
    if status == 404 and path.endswith("/tasks/claim"):
        return NothingToClaim
    if status == 401:
        return InvalidToken
    if status == 403:
        return Forbidden
    if status == 409:
        return _CONFLICTS.get(requirement, AgentError)
    if status == 422 and requirement == "AGENT-WF-003":
        return InvalidArtifacts
    if status in (400, 422):
        return InvalidRequest
    if status >= 500:
        return ServerError
    return AgentError


@dataclass(frozen=True)
class ClaimedTask:
    """A task the agent holds."""

    task_id: str
    task: dict[str, Any]  # its definition, as in its file
    phase: str  # the phase it starts in
    lease_expires_at: str  # ISO 8601 UTC; heartbeat before
    attempt: int


class AgentClient:
    """One agent's connection to ``orchestration serve``; holds the current phase token.

    Args:
        agent_id: who the agent is (letters, digits, ``.``, ``_``, ``-``; up to 64).
        url: the server's base URL.
        timeout: seconds to wait for an answer (``run_tests`` may take long).
        capabilities: what the agent offers; :meth:`claim_task` claims only
            tasks needing no others. ``None``: any task.
        transport: an httpx transport, e.g. for tests.
    """

    HEADERS: ClassVar[dict[str, str]] = {"Accept": "application/json, application/problem+json"}

    def __init__(
        self,
        agent_id: str,
        url: str = DEFAULT_URL,
        *,
        timeout: float = 60.0,
        capabilities: Sequence[str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.agent_id = agent_id
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.capabilities = None if capabilities is None else list(capabilities)
        # Plain HTTP needs no TLS context, whose CA bundle takes ~70 ms to load; the
        # client only ever requests paths below ``url``.
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout, headers=self.HEADERS, transport=transport,
            verify=not self.url.startswith("http://"),
        )  # fmt: skip
        self._token: str | None = None
        self._phase: str | None = None
        self._task_id: str | None = None
        self._lease_expires_at: str | None = None

    def __repr__(self) -> str:  # never the token
        return f"AgentClient({self.agent_id!r}, {self.url!r}, task={self._task_id!r})"

    # --- what the client holds ---------------------------------------------------------

    @property
    def token(self) -> str | None:
        """The current phase token (``None`` before a claim)."""
        return self._token

    @property
    def phase(self) -> str | None:
        """The phase the held task is in (``None`` before a claim)."""
        return self._phase

    @property
    def task_id(self) -> str | None:
        """The task held (``None`` before a claim)."""
        return self._task_id

    @property
    def lease_expires_at(self) -> str | None:
        """When the lease expires unless renewed (ISO 8601 UTC)."""
        return self._lease_expires_at

    # --- tasks ---------------------------------------------------------------------

    def claim_task(self, capabilities: Sequence[str] | None = None) -> ClaimedTask:
        """Claim the ready task the scheduler would dispatch first; it starts in the first phase.

        Args:
            capabilities: overrides the client's ``capabilities`` for this claim.

        Raises:
            NothingToClaim: no ready task fits.
        """
        offered = self.capabilities if capabilities is None else list(capabilities)
        body: dict[str, Any] = {"agent_id": self.agent_id}
        if offered is not None:
            body["capabilities"] = offered
        answer = self._call("POST", "/api/v1/tasks/claim", json=body)
        self._token = answer["phase_token"]
        self._phase = answer["phase"]
        self._task_id = answer["task_id"]
        self._lease_expires_at = answer["lease_expires_at"]
        return ClaimedTask(answer["task_id"], answer["task"], answer["phase"],
                           answer["lease_expires_at"], answer["attempt"])  # fmt: skip

    def heartbeat(self) -> dict[str, Any]:
        """Renew the lease on the held task; returns ``{task_id, phase, lease_expires_at}``."""
        task_id = self._held()
        answer = self._call("POST", f"/api/v1/tasks/{task_id}/heartbeat", auth=True)
        self._lease_expires_at = answer["lease_expires_at"]
        return answer

    def request_transition(
        self, target_phase: str, artifacts: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Move the held task to ``target_phase``, submitting the artifacts its step requires.

        On success the new phase token replaces the old one (which stops working).

        Returns:
            ``{task_id, previous_phase, phase, phase_token, task_status, warnings}``.

        Raises:
            TransitionRefused: the contract declares no such step.
            GateFailed: a gate refuses (see :attr:`GateFailed.gate`).
            InvalidArtifacts: an artifact is missing or invalid (see ``errors``).
        """
        task_id = self._held()
        body = {"target_phase": target_phase, "artifacts": dict(artifacts or {}),
                "task_id": task_id}  # fmt: skip
        answer = self._call("POST", "/api/v1/tasks/transition", json=body, auth=True)
        self._token = answer["phase_token"]
        self._phase = answer["phase"]
        return answer

    # --- tools ---------------------------------------------------------------------

    def use_tool(self, tool: str, **args: Any) -> dict[str, Any]:
        """Run ``tool`` in the task's sandbox, if the phase allows it.

        Returns:
            ``{tool, decision, phase, result}``; ``decision`` is ``warned`` for
            a violation let through in permissive mode.

        Raises:
            Forbidden: the phase forbids the tool or the path (the refusal is audited).
            ToolFailed: the tool could not work (a missing file, ...).
        """
        task_id = self._held()
        body = {"task_id": task_id, "tool": tool, "args": args}
        return self._call("POST", "/api/v1/tools/execute", json=body, auth=True)

    def read_file(self, path: str) -> str:
        """The text of ``path``, relative to the sandbox."""
        return str(self.use_tool("read_file", path=path)["result"]["content"])

    def write_file(self, path: str, content: str) -> dict[str, Any]:
        """Write ``content`` to ``path`` in the sandbox (folders created); ``{path, bytes}``."""
        result: dict[str, Any] = self.use_tool("write_file", path=path, content=content)["result"]
        return result

    def list_files(self, path: str = ".", pattern: str | None = None) -> list[str]:
        """Files below ``path`` (matching the glob ``pattern``), relative to the sandbox."""
        args = {"path": path} if pattern is None else {"path": path, "pattern": pattern}
        return list(self.use_tool("list_files", **args)["result"]["files"])

    def run_tests(self) -> dict[str, Any]:
        """Run the contract's test command in the sandbox; a ``test_result`` artifact."""
        result: dict[str, Any] = self.use_tool("run_tests")["result"]
        return result

    def run_command(
        self, command: str | Sequence[str], timeout: float | None = None
    ) -> dict[str, Any]:
        """Run ``command`` in the sandbox; ``{exit_code, stdout_tail, stderr_tail, ...}``."""
        args: dict[str, Any] = {"command": command if isinstance(command, str) else list(command)}
        if timeout is not None:
            args["timeout"] = timeout
        result: dict[str, Any] = self.use_tool("run_command", **args)["result"]
        return result

    # --- reading the state -----------------------------------------------------------

    def get_state_snapshot(self) -> dict[str, Any]:
        """The state, as ``.state/current.json`` holds it."""
        return self._call("GET", "/api/v1/state/snapshot")

    def audit_records(
        self, *, after: int = 0, limit: int = 100, task_id: str | None = None,
        decision: str | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Tool audit records, oldest first, each numbered ``n`` (pass the last as ``after``)."""
        params: dict[str, Any] = {"after": after, "limit": limit}
        if task_id is not None:
            params["task_id"] = task_id
        if decision is not None:
            params["decision"] = decision
        return list(self._call("GET", "/api/v1/audit", params=params)["records"])

    def events(self, after: int = 0, wait: float = 30.0) -> Iterator[dict[str, Any]]:
        """Journal lines with a seq above ``after``, as they are committed, for ever.

        Each request waits up to ``wait`` seconds on the server for a first
        line; stop by leaving the loop (or closing the generator).
        """
        timeout = httpx.Timeout(self.timeout, read=wait + 15.0)
        while True:
            answer = self._call("GET", "/api/v1/events", timeout=timeout,
                                params={"after": after, "wait": wait})  # fmt: skip
            yield from answer["events"]
            after = int(answer["last_seq"])

    def health(self) -> dict[str, Any]:
        """``{status, last_seq, tasks}`` of the server."""
        return self._call("GET", "/health")

    # --- the connection ------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (the lease is not released: it expires unless renewed)."""
        self._http.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _held(self) -> str:
        if self._task_id is None or self._token is None:
            msg = "no task is held: call claim_task() first"
            raise NotClaimed(0, "Not claimed", msg, "AGENT-WF-018")
        return self._task_id

    def _call(
        self, method: str, path: str, *, auth: bool = False, **options: Any
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._token}"} if auth else None
        try:
            response = self._http.request(method, path, headers=headers, **options)
        except httpx.TimeoutException as error:
            msg = f"{method} {self.url}{path} timed out ({error}); is the server overloaded?"
            raise ServerUnavailable(0, "No answer", msg) from error
        except httpx.TransportError as error:
            msg = (
                f"{method} {self.url}{path} failed: {error}; is `orchestration serve` running "
                "there?"
            )
            raise ServerUnavailable(0, "No answer", msg) from error
        if not response.is_success:
            raise _problem(response, path)
        answer: dict[str, Any] = response.json()
        return answer


def _problem(response: httpx.Response, path: str) -> AgentError:
    """The typed error for a refused request."""
    status = response.status_code
    try:
        document = response.json()
    except ValueError:
        document = None
    if not isinstance(document, dict):
        text = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
        document = {"title": response.reason_phrase or "Error", "detail": text or "no detail"}
    kind = _error_class(status, str(document.get("requirement", "")), path)
    errors = document.get("errors") or ()
    return kind(
        status, str(document.get("title", "")), str(document.get("detail", "")),
        str(document.get("requirement", "")),
        [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else (),
        document,
    )  # fmt: skip
