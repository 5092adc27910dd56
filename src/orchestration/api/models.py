"""The request and response bodies of the REST API (pydantic, published in its OpenAPI).

Stability: provisional (fields may be added to responses; requests reject unknown fields).

Requests forbid unknown fields, so a misspelt field is a 422 naming it rather
than a value silently ignored. Identifiers follow the task files' rules;
artifacts and tool arguments are free JSON objects, checked by the workflow
(each artifact against its schema in ``schemas/artifacts/``) and by
:func:`json_problems` (values JSON tools cannot carry: integers beyond 64
bits, lone surrogates).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AGENT_ID_PATTERN",
    "AuditResponse",
    "ClaimRequest",
    "ClaimResponse",
    "EventsResponse",
    "HealthResponse",
    "HeartbeatResponse",
    "SnapshotResponse",
    "ToolRequest",
    "ToolResponse",
    "TransitionRequest",
    "TransitionResponse",
    "json_problems",
]

AGENT_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
"""What an agent id may be: it names the lease holder ``agent:<id>`` and audit records."""

TASK_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"  # tasks.model.ID_PATTERN
PHASE_PATTERN = r"^[A-Z][A-Z0-9_]*$"  # enforcement.contract's phase names
TOOL_PATTERN = r"^[a-z][a-z_]*$"

AgentId = Annotated[
    str, Field(pattern=AGENT_ID_PATTERN, description="Who claims: letters, digits, . _ -")
]
TaskId = Annotated[str, Field(pattern=TASK_ID_PATTERN, max_length=128)]
Capability = Annotated[str, Field(pattern=TASK_ID_PATTERN, max_length=128)]
PhaseName = Annotated[str, Field(pattern=PHASE_PATTERN, max_length=64)]
ToolName = Annotated[str, Field(pattern=TOOL_PATTERN, max_length=64)]

_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # what orjson writes


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClaimRequest(_Request):
    """``POST /api/v1/tasks/claim``: lease the ready task the scheduler would dispatch first."""

    agent_id: AgentId
    capabilities: list[Capability] | None = Field(
        default=None,
        max_length=256,
        description="The capabilities the agent offers; only tasks needing no others are "
        "claimed. Omitted: any task.",
    )


class ClaimResponse(BaseModel):
    """A claimed task: its definition, the first phase and the token to act in it."""

    task_id: str
    task: dict[str, Any] = Field(description="The task's definition, as in its file.")
    phase: str = Field(description="The phase the task starts in (the contract's initial).")
    phase_token: str = Field(description="Send it as `Authorization: Bearer <phase_token>`.")
    lease_expires_at: str = Field(description="ISO 8601 UTC; heartbeat before it passes.")
    attempt: int = Field(description="The attempt number of the task, from 1.")


class HeartbeatResponse(BaseModel):
    """The renewed lease."""

    task_id: str
    phase: str
    lease_expires_at: str = Field(description="ISO 8601 UTC.")


class TransitionRequest(_Request):
    """``POST /api/v1/tasks/transition``: move the token's task to ``target_phase``."""

    target_phase: PhaseName
    artifacts: dict[str, Any] = Field(
        default_factory=dict,
        description="Artifact name → document, each valid against "
        "schemas/artifacts/<name>.schema.json; the contract lists those the step requires.",
    )
    task_id: TaskId | None = Field(
        default=None, description="When given, it must be the task of the token (else 403)."
    )


class TransitionResponse(BaseModel):
    """The phase reached, and the new token (the previous one is revoked)."""

    task_id: str
    previous_phase: str
    phase: str
    phase_token: str = Field(description="Use this token from now on.")
    task_status: str = Field(description="The task's status: `succeeded` once a terminal phase.")
    warnings: list[str] = Field(description="Violations let through in permissive mode.")


class ToolRequest(_Request):
    """``POST /api/v1/tools/execute``: run a tool the phase allows, in the task's sandbox."""

    task_id: TaskId
    tool: ToolName = Field(
        description="read_file, write_file, list_files, run_tests or run_command."
    )
    args: dict[str, Any] = Field(
        default_factory=dict,
        description="The tool's arguments, e.g. {path} for read_file, {path, content} for "
        "write_file, {path?, pattern?} for list_files, {} for run_tests, "
        "{command, timeout?} for run_command.",
    )


class ToolResponse(BaseModel):
    """What the tool returned, and the decision recorded in the tool audit."""

    tool: str
    decision: Literal["allowed", "warned"]
    phase: str
    result: dict[str, Any]


class SnapshotResponse(BaseModel):
    """The state as ``.state/current.json`` holds it (STATE-OBS-003)."""

    model_config = ConfigDict(extra="allow")

    schema_version: str
    timestamp: str
    last_seq: int
    tasks: dict[str, Any]


class EventsResponse(BaseModel):
    """Journal lines after ``after``, oldest first."""

    events: list[dict[str, Any]]
    last_seq: int = Field(description="Pass it as `after` to get the lines that follow.")


class AuditResponse(BaseModel):
    """Tool audit records of the live file, each numbered ``n`` (pass the last as `after`)."""

    records: list[dict[str, Any]]


class HealthResponse(BaseModel):
    """Liveness, and how far the journal goes."""

    status: Literal["ok"]
    last_seq: int
    tasks: int


def json_problems(value: Any, pointer: str) -> Iterator[dict[str, str]]:
    """Each value below ``value`` that JSON cannot carry through the engine, with its pointer.

    Integers outside 64 bits, non-finite numbers and strings holding lone
    surrogates parse from JSON text, but cannot be written to the audit or the
    logs as JSON.
    """
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            yield {"pointer": pointer, "message": "an integer beyond 64 bits"}
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            yield {"pointer": pointer, "message": "not a finite number"}
    elif isinstance(value, str):
        if not _encodes(value):
            yield {"pointer": pointer, "message": "a string holding a lone surrogate"}
    elif isinstance(value, dict):
        for key, item in value.items():
            escaped = str(key).replace("~", "~0").replace("/", "~1")
            if not _encodes(str(key)):
                yield {"pointer": pointer, "message": "a key holding a lone surrogate"}
            else:
                yield from json_problems(item, f"{pointer}/{escaped}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from json_problems(item, f"{pointer}/{index}")


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
