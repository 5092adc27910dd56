"""The task definition model, schema v2.0.0 (TASK-DEF-002).

Stability: stable. Fields may be added (optional, with defaults); none are
removed or change meaning without a new ``schema_version`` and a migration.

The model is the single source of ``schemas/task.schema.json``; unknown fields
are rejected everywhere so that a typo never passes silently.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..planning.plan import DEFAULT_ESTIMATE_SECONDS

__all__ = [
    "ID_PATTERN",
    "SCHEMA_VERSION",
    "ContextRequirements",
    "DeclaredStatus",
    "Execution",
    "Task",
    "TaskState",
    "TaskType",
    "ValidationRules",
    "WorkerRequirements",
]

SCHEMA_VERSION = "2.0.0"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"

Identifier = Annotated[str, Field(pattern=ID_PATTERN, max_length=128)]


class _Strict(BaseModel):
    # strict: "600" is not an integer; JSON input still accepts enum values and ISO dates.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class TaskType(StrEnum):
    """Which kind of worker adapter carries the task out."""

    SHELL = "shell"  # execution.command in a shell
    AIDER = "aider"  # the aider coding agent, given context_requirements
    CLAUDE = "claude"  # the claude CLI in print mode
    MANUAL = "manual"  # a person does it and records the outcome


class DeclaredStatus(StrEnum):
    """The status an engineer declares in the file; runtime status lives in ``.state/``."""

    PENDING = "pending"  # not started (the usual value)
    READY = "ready"  # every dependency succeeded
    CLAIMED = "claimed"  # a worker holds a lease on it
    RUNNING = "running"  # an attempt is executing
    SUCCEEDED = "succeeded"  # done
    FAILED = "failed"  # the last attempt failed
    BLOCKED = "blocked"  # cannot run until unblocked
    CANCELLED = "cancelled"  # will not be done
    SKIPPED = "skipped"  # deliberately not done; dependents may proceed


class WorkerRequirements(_Strict):
    """What a worker must offer to take the task."""

    capabilities: list[Identifier] = Field(
        default_factory=list, description="Capability names from capabilities/registry.psd1."
    )
    min_version: str | None = Field(default=None, description="Lowest worker version accepted.")


class Execution(_Strict):
    """How the task is run and how long it is expected to take."""

    command: str | None = Field(default=None, description="Command line for the worker.")
    timeout_seconds: int = Field(default=600, gt=0, description="Hard limit of one attempt.")
    max_retries: int = Field(default=0, ge=0, description="Attempts after the first failure.")
    estimated_seconds: float | None = Field(
        default=None,
        ge=0,
        description=f"Expected duration; the planner assumes {DEFAULT_ESTIMATE_SECONDS:g} s "
        "when absent.",
    )


class ContextRequirements(_Strict):
    """Context boundaries for AI workers (AIDER-INT)."""

    max_context_tokens: int | None = Field(default=None, gt=0)
    required_files: list[str] = Field(default_factory=list)
    exclude_patterns: list[str] = Field(default_factory=list)


class ValidationRules(_Strict):
    """Checks run before and after each attempt: rule names or shell commands."""

    pre_execution: list[str] = Field(default_factory=list)
    post_execution: list[str] = Field(default_factory=list)


class TaskState(_Strict):
    """Bookkeeping an engineer may record in the file; runtime state is in ``.state/``."""

    created_at: datetime | None = Field(default=None, strict=False)  # ISO 8601 text
    retry_count: int = Field(default=0, ge=0)


class Task(_Strict):
    """One task definition: a file ``tasks/<workstream_id>/<task_id>.json``."""

    schema_: str | None = Field(
        default=None,
        alias="$schema",
        description="Path or URL of task.schema.json, for editors.",
    )
    schema_version: Literal["2.0.0"]
    task_id: Identifier
    workstream_id: Identifier
    name: str = Field(min_length=1)
    description: str = ""
    # Not strict: Python callers may pass "shell" as well as TaskType.SHELL.
    type: TaskType = Field(strict=False)
    status: DeclaredStatus = Field(default=DeclaredStatus.PENDING, strict=False)
    priority: int = Field(default=0, description="Higher runs first among ready tasks.")
    dependencies: list[Identifier] = Field(default_factory=list)
    blocks: list[Identifier] = Field(
        default_factory=list,
        description="Tasks that depend on this one; must mirror their dependencies.",
    )
    resources: dict[str, Annotated[int, Field(gt=0)]] = Field(
        default_factory=dict,
        description="Resource name (capabilities/resources.psd1) to units claimed while running.",
    )
    worker_requirements: WorkerRequirements = Field(default_factory=WorkerRequirements)
    execution: Execution = Field(default_factory=Execution)
    context_requirements: ContextRequirements = Field(default_factory=ContextRequirements)
    validation_rules: ValidationRules = Field(default_factory=ValidationRules)
    state: TaskState = Field(default_factory=TaskState)

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        populate_by_name=True,
        title="Task definition v2.0.0",
    )
