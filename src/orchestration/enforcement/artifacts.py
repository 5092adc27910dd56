"""The artifacts an agent submits to leave a phase, and their JSON Schemas (AGENT-WF-003).

Stability: stable. An artifact's shape changes incompatibly only in a new
major version; fields may be added with defaults.

Seven artifacts, each a JSON object checked against its model here, the
single source of ``schemas/artifacts/<name>.schema.json``:

=================  ==========================================================
``plan``           what the agent means to do and how to tell it is done
``scope``          the files the work will touch, and what it leaves alone
``tests``          the test files written in TDD
``test_result``    one run of the tests (what the ``run_tests`` tool returns)
``implementation`` what was changed, and the commits
``review``         the verdict and the issues found
``completion``     what was delivered
=================  ==========================================================

The schemas check shape only: whether a plan has a non-blank acceptance
criterion, or the tests fail, is for the gates (:mod:`.gates`).
:func:`artifact_problems` reports every problem of a document at once, each
at an RFC 6901 JSON pointer relative to the artifact.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "ARTIFACTS",
    "ARTIFACT_MODELS",
    "ArtifactProblem",
    "CompletionArtifact",
    "ImplementationArtifact",
    "PlanArtifact",
    "ReviewArtifact",
    "ReviewIssue",
    "ScopeArtifact",
    "TestResultArtifact",
    "TestsArtifact",
    "artifact_json_schemas",
    "artifact_problems",
]

NonBlank = Annotated[str, Field(min_length=1)]
Count = Annotated[int, Field(ge=0)]


class _Artifact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class PlanArtifact(_Artifact):
    """What the agent means to do and how to tell it is done (to leave PLAN)."""

    model_config = ConfigDict(title="Plan artifact")

    summary: NonBlank = Field(description="The change, in a paragraph.")
    acceptance_criteria: list[str] = Field(
        description="Checkable statements that hold once the work is done; the gate "
        "plan_has_acceptance_criteria needs at least one that is not blank."
    )
    steps: list[str] = Field(default_factory=list, description="The planned steps, in order.")


class ScopeArtifact(_Artifact):
    """The files the work will touch, and what it leaves alone (to leave PLAN)."""

    model_config = ConfigDict(title="Scope artifact")

    files: list[NonBlank] = Field(
        min_length=1,
        description="Paths or globs relative to the sandbox (`**` spans folders) the work touches.",
    )
    out_of_scope: list[str] = Field(
        default_factory=list, description="What the work deliberately leaves alone."
    )


class TestsArtifact(_Artifact):
    """The test files written in TDD (to leave TDD)."""

    __test__ = False  # not a pytest test class, whatever its name
    model_config = ConfigDict(title="Tests artifact")

    files: list[NonBlank] = Field(
        min_length=1, description="Test files written or changed, relative to the sandbox."
    )
    cases: list[str] = Field(
        default_factory=list, description="The test cases, e.g. `tests/test_x.py::test_y`."
    )


class TestResultArtifact(_Artifact):
    """One run of the tests, as the run_tests tool returns it (to leave TDD and IMPL)."""

    __test__ = False  # not a pytest test class, whatever its name
    model_config = ConfigDict(title="Test result artifact")

    command: NonBlank = Field(description="The command that ran the tests.")
    passed: Count
    failed: Count
    errors: Count = Field(default=0, description="Tests that could not run (collection errors).")
    exit_code: int | None = Field(
        default=None, description="The command's exit code; null when it was killed."
    )
    output_tail: str = Field(default="", description="The end of the command's output.")


class ImplementationArtifact(_Artifact):
    """What was changed, and the commits (to leave IMPL)."""

    model_config = ConfigDict(title="Implementation artifact")

    summary: NonBlank = Field(description="What changed and why, in a paragraph.")
    files_changed: list[NonBlank] = Field(description="Paths changed, relative to the sandbox.")
    commits: list[NonBlank] = Field(default_factory=list, description="Commits made, oldest first.")


class ReviewIssue(_Artifact):
    """One issue a review found."""

    model_config = ConfigDict(title="Review issue")

    severity: Literal["blocking", "major", "minor", "nit"] = Field(
        description="`blocking` refuses leaving REVIEW (gate no_blocking_issues)."
    )
    description: NonBlank
    file: str | None = Field(default=None, description="The file, relative to the sandbox.")
    line: Annotated[int, Field(ge=1)] | None = Field(default=None, description="1-based line.")


class ReviewArtifact(_Artifact):
    """The verdict and the issues found (to leave REVIEW)."""

    model_config = ConfigDict(title="Review artifact")

    verdict: Literal["approve", "request_changes"]
    issues: list[ReviewIssue] = Field(default_factory=list)
    summary: str = Field(default="", description="The review, in a paragraph.")


class CompletionArtifact(_Artifact):
    """What was delivered (to reach COMPLETE)."""

    model_config = ConfigDict(title="Completion artifact")

    summary: NonBlank = Field(description="What was delivered, in a paragraph.")


ARTIFACT_MODELS: Mapping[str, type[BaseModel]] = MappingProxyType(
    {
        "plan": PlanArtifact,
        "scope": ScopeArtifact,
        "tests": TestsArtifact,
        "test_result": TestResultArtifact,
        "implementation": ImplementationArtifact,
        "review": ReviewArtifact,
        "completion": CompletionArtifact,
    }
)
"""Artifact name → the pydantic model its documents are checked against."""

ARTIFACTS: tuple[str, ...] = tuple(ARTIFACT_MODELS)
"""The artifact names, in the order of the default workflow."""


@dataclass(frozen=True, slots=True)
class ArtifactProblem:
    """One thing wrong with a submitted artifact.

    Args:
        pointer: RFC 6901 JSON pointer into the artifact (``""`` for the
            whole document), e.g. ``/acceptance_criteria/0``.
        message: what is wrong, with names quoted.
    """

    pointer: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """The problem as JSON: ``{"pointer": ..., "message": ...}``."""
        return {"pointer": self.pointer, "message": self.message}


def artifact_json_schemas() -> dict[str, dict[str, Any]]:
    """Path under ``schemas/`` → JSON Schema of each artifact, as published.

    The keys are ``artifacts/<name>.schema.json``; the documents carry an
    ``$id`` and a title, and no ``$schema`` (the publisher adds the dialect,
    as for the other schemas).
    """
    return {
        f"artifacts/{name}.schema.json": {
            "$id": f"urn:orchestration:schemas:artifacts:{name}",
            **model.model_json_schema(),
        }
        for name, model in ARTIFACT_MODELS.items()
    }


def artifact_problems(name: str, document: object) -> list[ArtifactProblem]:
    """Every problem of ``document`` as the artifact ``name``; empty when it is valid.

    Never raises for a bad document: a value that is not a JSON object is one
    problem at pointer ``""``.

    Raises:
        KeyError: ``name`` is not one of :data:`ARTIFACTS` (the caller's bug:
            the contract names only known artifacts).
    """
    try:
        model = ARTIFACT_MODELS[name]
    except KeyError:
        msg = f"unknown artifact {name!r}; the artifacts are {', '.join(ARTIFACTS)}"
        raise KeyError(msg) from None
    if not isinstance(document, Mapping):
        return [
            ArtifactProblem(
                "", f"the {name} artifact must be a JSON object, got {_json_type(document)}"
            )
        ]
    try:
        model.model_validate(dict(document))
    except ValidationError as error:
        return [_problem(model, detail) for detail in error.errors(include_url=False)]
    return []


def _problem(model: type[BaseModel], detail: Mapping[str, Any]) -> ArtifactProblem:
    loc = tuple(detail["loc"])
    pointer = "".join(f"/{str(part).replace('~', '~0').replace('/', '~1')}" for part in loc)
    kind = detail["type"]
    if kind == "missing":
        message = f"required field {str(loc[-1])!r} is missing"
    elif kind == "extra_forbidden":
        allowed = _fields(model, loc[:-1])
        message = f"unknown field {str(loc[-1])!r}"
        if allowed:
            message += f"; allowed here: {', '.join(allowed)}"
    else:
        message = f"{detail['msg']} (got {_shown(detail.get('input'))})"
    return ArtifactProblem(pointer, message)


def _fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the object at ``loc`` (the artifact itself, or a review issue)."""
    if loc == ():
        return list(model.model_fields)
    if model is ReviewArtifact and len(loc) == 2 and loc[0] == "issues":
        return list(ReviewIssue.model_fields)
    return []


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def _shown(value: object) -> str:
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):  # keys JSON cannot hold, a circular structure
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
