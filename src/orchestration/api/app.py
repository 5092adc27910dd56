"""The FastAPI application over a :class:`~orchestration.enforcement.workflow.Workflow`.

Stability: provisional (paths and shapes as documented by ``GET /openapi.json``).

=========================================  ===============================================
``POST /api/v1/tasks/claim``               claim a ready task (404 when none is ready)
``POST /api/v1/tasks/{task_id}/heartbeat`` renew the lease (Bearer)
``POST /api/v1/tasks/transition``          move to the next phase with artifacts (Bearer)
``POST /api/v1/tools/execute``             run a tool the phase allows (Bearer)
``GET /api/v1/state/snapshot``             ``.state/current.json`` without its metrics
``GET /api/v1/events?after=SEQ&wait=30``   journal lines after SEQ (a long poll)
``GET /api/v1/audit``                      tool audit records
``GET /health``                            liveness
``GET /metrics``                           Prometheus text format (OBS-002)
=========================================  ===============================================

The app keeps no task status of its own: every request goes through the
workflow to the one store (AGENT-WF-013). Each handler is a coroutine that
hands the workflow call, which touches files, to the thread pool once (the
store's locks make the workflow thread-safe) and answers with JSON written by
orjson: one thread hop per request, not FastAPI's three for a plain function
with a plain dependency and a validated response. The long poll sleeps
between non-blocking reads, so waiting agents hold no thread. The snapshot's
JSON is reused while the journal has not moved (it is the same document).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.openapi.utils import get_openapi
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from .. import __version__
from ..enforcement.workflow import Refused, Workflow
from . import problems
from .models import (
    TASK_ID_PATTERN,
    AuditResponse,
    ClaimRequest,
    ClaimResponse,
    EventsResponse,
    HealthResponse,
    HeartbeatResponse,
    SnapshotResponse,
    ToolRequest,
    ToolResponse,
    TransitionRequest,
    TransitionResponse,
    json_problems,
)

__all__ = ["DEFAULT_WAIT", "MAX_WAIT", "POLL_INTERVAL", "create_app"]

DEFAULT_WAIT = 30.0
"""Seconds ``GET /api/v1/events`` waits for a line by default (AGENT-WF-016)."""

MAX_WAIT = 60.0
"""The longest wait a client may ask for."""

POLL_INTERVAL = 0.05
"""Seconds between two reads of the journal while a long poll waits."""

_DESCRIPTION = """\
Agents claim tasks and move them through the phases of `agent_workflow.yaml`
(by default PLAN → TDD → IMPL → REVIEW → COMPLETE), using only the tools each
phase allows. Claiming returns a **phase token**: send it as
`Authorization: Bearer <token>`; each transition returns a new one and revokes
the old. Every error is `application/problem+json` (RFC 9457) naming the
requirement of the spec it enforces. `orchestration agent-prompt TASK_ID`
prints the contract in words; `orchestration.sdk.AgentClient` wraps it all.
"""


def _problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": problems.ProblemDocument} for status in statuses}


_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="PhaseToken",
    description="The phase token a claim or the last transition returned.",
)


async def _token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> str:
    """The Bearer token of the request; 401 when there is none."""
    if credentials is None or not credentials.credentials.strip():
        msg = (
            "this endpoint needs the phase token: send the header "
            "`Authorization: Bearer <phase_token>` with the token the claim (or the last "
            "transition) returned"
        )
        raise Refused(401, "Missing phase token", msg, "AGENT-WF-007")
    return credentials.credentials.strip()


Token = Annotated[str, Depends(_token)]


def _representable(value: Any, pointer: str) -> None:
    found = list(json_problems(value, pointer))
    if found:
        detail = "; ".join(f"{p['pointer']}: {p['message']}" for p in found[:5])
        msg = f"the request holds values JSON cannot carry here: {detail}"
        raise Refused(422, "Invalid request", msg, problems.GENERIC_REQUIREMENT,
                      pointer=found[0]["pointer"], problems=found)  # fmt: skip


def _json(document: Any) -> Response:
    return Response(orjson.dumps(document), media_type="application/json")


def create_app(workflow: Workflow, *, stopping: Callable[[], bool] = lambda: False) -> FastAPI:
    """The REST API over ``workflow`` (open for as long as the app serves).

    Args:
        workflow: the pipeline's workflow service, from :meth:`Workflow.open`.
        stopping: whether the server is shutting down; waiting long polls then
            answer at once (with what they have) instead of holding the shutdown.
    """
    app = FastAPI(
        title="orchestration agent API",
        version=__version__,
        description=_DESCRIPTION,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    problems.install(app)
    app.state.workflow = workflow

    @app.post(
        "/api/v1/tasks/claim",
        tags=["tasks"],
        response_model=ClaimResponse,
        responses=_problem_responses(400, 404, 422),
        summary="Claim a ready task",
    )
    async def claim(body: ClaimRequest) -> Response:
        """Lease the ready task the scheduler would dispatch first; it starts in the first phase.

        Answers 404 when no ready task fits the agent's capabilities (AGENT-WF-014);
        two agents never get the same task.
        """
        got = await run_in_threadpool(workflow.claim, body.agent_id, body.capabilities)
        return _json({
            "task_id": str(got.task.get("task_id", "")),
            "task": got.task,
            "phase": got.phase,
            "phase_token": got.phase_token,
            "lease_expires_at": got.lease_expires_at,
            "attempt": got.attempt,
        })  # fmt: skip

    @app.post(
        "/api/v1/tasks/{task_id}/heartbeat",
        tags=["tasks"],
        response_model=HeartbeatResponse,
        responses=_problem_responses(401, 403, 409, 422),
        summary="Renew the lease",
    )
    async def heartbeat(
        task_id: Annotated[str, Path(pattern=TASK_ID_PATTERN, max_length=128)], token: Token
    ) -> Response:
        """Renew the lease on the task (send one at least every half lease, 10 s by default)."""
        return _json(await run_in_threadpool(workflow.heartbeat, token, task_id))

    @app.post(
        "/api/v1/tasks/transition",
        tags=["tasks"],
        response_model=TransitionResponse,
        responses=_problem_responses(400, 401, 403, 409, 422),
        summary="Move to another phase",
    )
    async def transition(body: TransitionRequest, token: Token) -> Response:
        """Request the phase ``target_phase`` with the artifacts its step requires.

        409 for a step the contract does not declare (AGENT-WF-002) or a failing
        gate (AGENT-WF-004); 422 with the JSON pointer of a missing or invalid
        artifact (AGENT-WF-003). On success the answer carries a new phase token.
        """
        _representable(body.artifacts, "/artifacts")
        moved = await run_in_threadpool(
            workflow.transition, token, body.target_phase, body.artifacts, body.task_id
        )
        return _json(moved)

    @app.post(
        "/api/v1/tools/execute",
        tags=["tools"],
        response_model=ToolResponse,
        responses=_problem_responses(400, 401, 403, 409, 422),
        summary="Run a tool in the task's sandbox",
    )
    async def execute(body: ToolRequest, token: Token) -> Response:
        """Check the phase's permissions, audit the decision, then run the tool (AGENT-WF-010).

        403 for a tool or path the phase forbids, or a path leaving the sandbox
        (AGENT-WF-011); each decision is appended to the tool audit.
        """
        _representable(body.args, "/args")
        used = await run_in_threadpool(workflow.use_tool, token, body.task_id, body.tool, body.args)
        return _json(used)

    @app.get(
        "/api/v1/state/snapshot",
        tags=["state"],
        response_model=SnapshotResponse,
        summary="The current state",
    )
    async def snapshot() -> Response:
        """Every task's status, phase and lease, as ``.state/current.json`` holds it.

        ``timestamp`` says when the document was made from the journal: it is
        served again, unchanged, until the next journal line.
        """
        data = await run_in_threadpool(workflow.snapshot)
        return Response(data, media_type="application/json")

    @app.get(
        "/api/v1/events",
        tags=["state"],
        response_model=EventsResponse,
        responses=_problem_responses(422),
        summary="Journal lines after a seq (long poll)",
    )
    async def events(
        request: Request,
        after: Annotated[int, Query(ge=0, le=2**62, description="The last seq seen.")] = 0,
        wait: Annotated[
            float, Query(ge=0, le=MAX_WAIT, description="Seconds to wait for a first line.")
        ] = DEFAULT_WAIT,
        limit: Annotated[int, Query(ge=1, le=10_000, description="At most this many.")] = 1000,
    ) -> Response:
        """The journal lines with a seq above ``after``, waiting up to ``wait`` s for one.

        Returns as soon as a line is committed (AGENT-WF-016); an empty list once
        ``wait`` has passed. Continue with ``after=last_seq``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            found = await run_in_threadpool(workflow.events, after, limit)
            left = deadline - loop.time()
            if found or left <= 0 or stopping() or await request.is_disconnected():
                break
            await asyncio.sleep(min(POLL_INTERVAL, left))
        last = found[-1]["seq"] if found else min(after, workflow.store.state.last_seq)
        return _json({"events": found, "last_seq": last})

    @app.get(
        "/api/v1/audit",
        tags=["state"],
        response_model=AuditResponse,
        responses=_problem_responses(422),
        summary="Tool audit records",
    )
    async def audit(
        after: Annotated[int, Query(ge=0, le=2**62, description="The last `n` seen.")] = 0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
        task_id: Annotated[str | None, Query(pattern=TASK_ID_PATTERN, max_length=128)] = None,
        decision: Annotated[str | None, Query(pattern="^(allowed|denied|warned)$")] = None,
    ) -> Response:
        """Records of ``.state/audit/tool_audit.jsonl``, oldest first (AGENT-WF-012)."""
        found = await run_in_threadpool(
            functools.partial(workflow.audit_records, after=after, limit=limit,
                              task_id=task_id, decision=decision)
        )  # fmt: skip
        return _json({"records": found})

    @app.get(
        "/metrics",
        tags=["state"],
        summary="Metrics in the Prometheus text format",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}},
    )
    async def metrics() -> Response:
        """The pipeline's counters, gauges and histograms, for Prometheus to scrape (OBS-002).

        The names are those of spec section 13 (`orchestration_tasks`,
        `orchestration_transitions_total`, ...); the values are those of
        `.state/metrics.json` and of `orchestration metrics` at the same journal seq.
        """
        from prometheus_client import CONTENT_TYPE_LATEST

        from ..state.metrics import exposition

        def scrape() -> bytes:
            return exposition(workflow.store.metrics())

        return Response(await run_in_threadpool(scrape), media_type=CONTENT_TYPE_LATEST)

    @app.get("/health", tags=["state"], response_model=HealthResponse, summary="Liveness")
    async def health() -> Response:
        """``ok``, the last journal seq and the number of tasks."""
        await run_in_threadpool(workflow.store.refresh)
        state = workflow.store.state
        return _json({"status": "ok", "last_seq": state.last_seq, "tasks": len(state.tasks)})

    def openapi() -> dict[str, Any]:
        """The OpenAPI document, errors documented as ``application/problem+json``."""
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)  # fmt: skip
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    for status, response in operation.get("responses", {}).items():
                        content = response.get("content", {})
                        if status[:1] in "45" and "application/json" in content:
                            response["content"] = {problems.MEDIA_TYPE: content["application/json"]}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
