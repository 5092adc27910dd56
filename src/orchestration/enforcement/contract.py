"""The agent workflow contract, ``agent_workflow.yaml`` (AGENT-WF-001, AGENT-WF-002).

Stability: stable. The file format is versioned by its ``schema_version``
(1.0.0); fields may be added with defaults, none removed without a new version.

The contract declares the phases an agent moves a task through (by default
PLAN → TDD → IMPL → REVIEW → COMPLETE), the tools each phase allows or
forbids, and the transitions between phases with the artifacts they require
and the gates that guard them. :func:`load_contract` validates the file
against :class:`WorkflowDocument` (the source of
``schemas/agent_workflow.schema.json``), checks the declaration as a whole,
and compiles the phases with the same lifecycle compiler as the task, worker
and workstream lifecycles: phases are its states, gates its guards. Every
problem is reported at once, with file, line and JSON pointer.

Example::

    schema_version: "1.0.0"
    enforcement: {mode: strict, token_ttl_seconds: 3600}
    tests: {command: "python -m pytest -q", timeout_seconds: 600}
    initial: PLAN
    phases:
      PLAN:
        description: Read the code and plan the change.
        tools: {allowed: [read_file, list_files], forbidden: [write_file, run_command]}
      TDD:
        tools:
          allowed: [read_file, list_files, run_tests, {tool: write_file, paths: ["tests/**"]}]
      ...
    transitions:
      - {trigger: write_tests, source: PLAN, dest: TDD, artifacts: [plan, scope],
         gates: [plan_has_acceptance_criteria]}
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from ..errors import DefinitionError, Problem
from ..lifecycles import Lifecycle, LifecycleState, LifecycleTransition
from ..lifecycles.checking import did_you_mean, schema_problems
from ..lifecycles.definition import REQUIREMENT_PATTERN, VERSION_PATTERN
from ..lifecycles.source import YamlSource, pointer_of, read_yaml
from .artifacts import ARTIFACTS
from .gates import GATES
from .tools import TOOLS, ToolRule

__all__ = [
    "CONTRACT_FILE",
    "SCHEMA_FILE",
    "Contract",
    "Mode",
    "Phase",
    "Step",
    "WorkflowDocument",
    "load_contract",
    "workflow_json_schema",
]

CONTRACT_FILE = "agent_workflow.yaml"
SCHEMA_FILE = "schemas/agent_workflow.schema.json"
REQUIREMENT = "AGENT-WF-001"

PhaseName = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$", max_length=64)]
Trigger = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


def _one_of(kind: str, names: Collection[str]) -> Callable[[str], str]:
    """A validator accepting only ``names``; the error lists them (and the closest)."""

    def known(name: str) -> str:
        if name not in names:
            close = did_you_mean(name, frozenset(names))
            msg = f"unknown {kind} {name!r}{close}; known: {', '.join(names)}"
            raise ValueError(msg)
        return name

    return known


ToolName = Annotated[
    str,
    AfterValidator(_one_of("tool", TOOLS)),
    WithJsonSchema({"type": "string", "enum": list(TOOLS)}),
]
ArtifactName = Annotated[
    str,
    AfterValidator(_one_of("artifact", ARTIFACTS)),
    WithJsonSchema({"type": "string", "enum": list(ARTIFACTS)}),
]
GateName = Annotated[
    str,
    AfterValidator(_one_of("gate", sorted(GATES))),
    WithJsonSchema({"type": "string", "enum": sorted(GATES)}),
]


class Mode(StrEnum):
    """How violations of the contract are treated (AGENT-WF-005)."""

    STRICT = "strict"  # refused
    PERMISSIVE = "permissive"  # allowed, and recorded as an audit warning


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ToolRuleDocument(_Strict):
    """A tool allowed only on some paths."""

    tool: ToolName
    paths: list[str] = Field(
        default_factory=list,
        description="Globs relative to the sandbox (`**` spans folders); empty: anywhere.",
    )


class ToolsDocument(_Strict):
    """The tools of one phase."""

    allowed: list[ToolName | ToolRuleDocument] = Field(default_factory=list)
    forbidden: list[ToolName] = Field(default_factory=list)


class PhaseDocument(_Strict):
    """One phase an agent works in."""

    description: str = Field(min_length=1)
    terminal: bool = False
    tools: ToolsDocument = Field(default_factory=ToolsDocument)


class StepDocument(_Strict):
    """One declared move from a phase to the next."""

    trigger: Trigger = Field(description="The name journalled for the move, e.g. `implement`.")
    source: PhaseName
    dest: PhaseName
    artifacts: list[ArtifactName] = Field(
        default_factory=list, description="Artifacts the agent must submit, each schema-valid."
    )
    gates: list[GateName] = Field(
        default_factory=list, description="Gates that must hold, evaluated on the artifacts."
    )
    requests_review: bool = Field(
        default=False, description="Whether taking it requests a review task (AGENT-WF-006)."
    )
    requirement: Annotated[str, Field(pattern=REQUIREMENT_PATTERN)] = "AGENT-WF-002"
    description: str = ""


class EnforcementDocument(_Strict):
    """How strictly the contract is enforced, and for how long a phase token lives."""

    mode: Mode = Field(default=Mode.STRICT, strict=False)
    token_ttl_seconds: Annotated[int, Field(gt=0)] = 3600


class TestsDocument(_Strict):
    """What `run_tests` runs in the task's sandbox."""

    command: str = Field(default="python -m pytest -q", min_length=1)
    timeout_seconds: Annotated[float, Field(gt=0, strict=False)] = 600.0


class WorkflowDocument(_Strict):
    """``agent_workflow.yaml``: the contract agents are held to."""

    schema_version: Annotated[str, Field(pattern=VERSION_PATTERN)]
    description: str = ""
    enforcement: EnforcementDocument = Field(default_factory=EnforcementDocument)
    tests: TestsDocument = Field(default_factory=TestsDocument)
    initial: PhaseName
    phases: dict[PhaseName, PhaseDocument] = Field(
        min_length=1, json_schema_extra={"additionalProperties": False}
    )
    transitions: list[StepDocument] = Field(min_length=1)

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, title="Agent workflow contract v1.0.0"
    )


def workflow_json_schema() -> dict[str, Any]:
    """The JSON Schema of ``agent_workflow.yaml`` (published as ``SCHEMA_FILE``)."""
    return WorkflowDocument.model_json_schema()


@dataclass(frozen=True, slots=True)
class Phase:
    """One phase, compiled: its tools."""

    name: str
    description: str
    terminal: bool
    allowed: tuple[ToolRule, ...]
    forbidden: frozenset[str]


@dataclass(frozen=True, slots=True)
class Step:
    """One declared transition between phases, compiled."""

    trigger: str
    source: str
    dest: str
    artifacts: tuple[str, ...]
    gates: tuple[str, ...]
    requests_review: bool
    requirement: str


@dataclass(frozen=True, eq=False)
class Contract:
    """A valid contract: phases, steps, and the compiled phase lifecycle."""

    file: str
    mode: Mode
    token_ttl: float
    test_command: str
    test_timeout: float
    phases: Mapping[str, Phase]
    steps: tuple[Step, ...]
    lifecycle: Lifecycle

    @property
    def initial(self) -> str:
        """The phase a claimed task starts in."""
        return self.lifecycle.initial

    def step(self, source: str, dest: str) -> Step | None:
        """The declared step from ``source`` to ``dest``; ``None`` when there is none."""
        return next((s for s in self.steps if s.source == source and s.dest == dest), None)

    def next_phases(self, source: str) -> tuple[str, ...]:
        """The phases an agent may request from ``source``, in declaration order."""
        return tuple(s.dest for s in self.steps if s.source == source)


def load_contract(root: Path) -> Contract:
    """Read, check and compile ``agent_workflow.yaml`` at the pipeline ``root``.

    Raises:
        DefinitionError: the file is missing or invalid; every problem located.
    """
    path = root / CONTRACT_FILE
    try:
        raw = path.read_bytes()
    except OSError as bad:
        missing = isinstance(bad, FileNotFoundError)
        problem = Problem(
            CONTRACT_FILE,
            "the agent workflow contract is missing" if missing else f"cannot read: {bad.strerror}",
            "run `orchestration init` to add the default contract (it keeps existing files)",
            REQUIREMENT,
        )
        raise DefinitionError([problem]) from None
    source, problems = read_yaml(raw, CONTRACT_FILE, REQUIREMENT)
    if source is not None and not isinstance(source.data, dict):
        problems.append(
            source.problem(
                "the document is not a mapping",
                f"declare schema_version, initial, phases and transitions (see {SCHEMA_FILE})",
                REQUIREMENT,
            )
        )
    if problems or source is None:
        raise DefinitionError(problems)
    try:
        document = WorkflowDocument.model_validate(source.data)
    except ValidationError as error:
        problems = schema_problems(
            source, error, schema_file=SCHEMA_FILE, fields=_FIELDS, requirement=REQUIREMENT
        )
    else:
        problems = _declaration_problems(document, source)
    if problems:
        raise DefinitionError(sorted(problems, key=lambda p: (p.line, p.column)))
    return _compile(document)


_FIELDS: Mapping[str, tuple[str, ...]] = {
    "": tuple(WorkflowDocument.model_fields),
    "phases": tuple(PhaseDocument.model_fields),
    "transitions": tuple(StepDocument.model_fields),
    "enforcement": tuple(EnforcementDocument.model_fields),
    "tests": tuple(TestsDocument.model_fields),
}


def _declaration_problems(document: WorkflowDocument, source: YamlSource) -> list[Problem]:
    """What the schema cannot see: names that must be declared, reachability, ambiguity."""
    problems: list[Problem] = []
    phases = document.phases

    def problem(message: str, hint: str, *parts: str | int) -> None:
        problems.append(source.problem(message, hint, REQUIREMENT, pointer_of(*parts)))

    if document.initial not in phases:
        problem(
            f"initial phase {document.initial!r} is not declared"
            + did_you_mean(document.initial, phases),
            f"declare it under phases, or name one of: {', '.join(phases)}",
            "initial",
        )
    seen: dict[tuple[str, str], int] = {}
    triggers: dict[tuple[str, str], int] = {}
    for index, step in enumerate(document.transitions):
        for role in ("source", "dest"):
            name = getattr(step, role)
            if name not in phases:
                problem(
                    f"{role} phase {name!r} is not declared{did_you_mean(name, phases)}",
                    f"declare it under phases, or name one of: {', '.join(phases)}",
                    "transitions", index, role,
                )  # fmt: skip
        if step.source in phases and phases[step.source].terminal:
            problem(
                f"phase {step.source!r} is terminal but transition {step.trigger!r} leaves it",
                "remove the transition, or make the phase not terminal",
                "transitions", index, "source",
            )  # fmt: skip
        pair = (step.source, step.dest)
        if pair in seen:
            problem(
                f"a second transition from {step.source!r} to {step.dest!r} "
                f"(the first is transitions/{seen[pair]})",
                "an agent requests a phase by name: keep one transition per pair of phases",
                "transitions", index,
            )  # fmt: skip
        seen.setdefault(pair, index)
        named = (step.source, step.trigger)
        if named in triggers:
            problem(
                f"trigger {step.trigger!r} is declared twice from {step.source!r}",
                "give each transition from a phase its own trigger",
                "transitions", index, "trigger",
            )  # fmt: skip
        triggers.setdefault(named, index)
    for name, phase in phases.items():
        allowed = {rule if isinstance(rule, str) else rule.tool for rule in phase.tools.allowed}
        for tool in sorted(allowed & set(phase.tools.forbidden)):
            problem(
                f"tool {tool!r} is both allowed and forbidden in phase {name!r}",
                "keep it in one of the two lists",
                "phases", name, "tools", "forbidden",
            )  # fmt: skip
    if document.initial in phases:
        reached = {document.initial}
        stack = [document.initial]
        while stack:
            here = stack.pop()
            for step in document.transitions:
                if step.source == here and step.dest in phases and step.dest not in reached:
                    reached.add(step.dest)
                    stack.append(step.dest)
        for name in phases:
            if name not in reached:
                problem(
                    f"phase {name!r} cannot be reached from {document.initial!r}",
                    "add a transition into it, or remove it",
                    "phases", name,
                )  # fmt: skip
    if not any(phase.terminal for phase in phases.values()):
        problem(
            "no phase is terminal: no task could ever finish",
            "mark the last phase (e.g. COMPLETE) with `terminal: true`",
            "phases",
        )
    return problems


def _compile(document: WorkflowDocument) -> Contract:
    phases = {
        name: Phase(
            name,
            phase.description,
            phase.terminal,
            tuple(
                ToolRule(rule) if isinstance(rule, str) else ToolRule(rule.tool, tuple(rule.paths))
                for rule in phase.tools.allowed
            ),
            frozenset(phase.tools.forbidden),
        )
        for name, phase in document.phases.items()
    }
    steps = tuple(
        Step(
            s.trigger,
            s.source,
            s.dest,
            tuple(s.artifacts),
            tuple(s.gates),
            s.requests_review,
            s.requirement,
        )  # fmt: skip
        for s in document.transitions
    )
    lifecycle = Lifecycle(
        name="agent_workflow",
        initial=document.initial,
        states=MappingProxyType(
            {name: LifecycleState(p.description, p.terminal) for name, p in phases.items()}
        ),
        file=CONTRACT_FILE,
        description=document.description,
        transitions=tuple(
            LifecycleTransition(s.trigger, (s.source,), s.dest, s.gates, s.requirement)
            for s in steps
        ),
    )
    return Contract(
        CONTRACT_FILE,
        document.enforcement.mode,
        float(document.enforcement.token_ttl_seconds),
        document.tests.command,
        float(document.tests.timeout_seconds),
        MappingProxyType(phases),
        steps,
        lifecycle,
    )
