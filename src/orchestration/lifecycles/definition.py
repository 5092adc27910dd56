"""The lifecycle file format, schema v1.0.0 (SM-DEF-001, SM-DEF-002).

Stability: stable. Fields may be added (optional, with defaults); none are
removed or change meaning without a new ``schema_version``.

This pydantic model is the boundary: a YAML document is validated against it
and it is the single source of ``schemas/lifecycle.schema.json``. It checks
the shape of one file (types, names, no unknown fields); what needs the whole
document (declared states, reachability, duplicate triggers) is checked by
:mod:`orchestration.lifecycles.checking`. Inside the engine a lifecycle is a
:class:`~orchestration.lifecycles.Lifecycle`, never this model.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from .guards import GUARDS
from .machine import Match

__all__ = [
    "NAME_PATTERN",
    "SCHEMA_VERSION",
    "VERSION_PATTERN",
    "DeriveDocument",
    "LifecycleDocument",
    "Match",
    "StateDocument",
    "TransitionDocument",
    "lifecycle_json_schema",
]

SCHEMA_VERSION = "1.0.0"
# SCHEMA-VER-003: this reader takes major 1, minor 0, any patch.
VERSION_PATTERN = r"^1\.0\.\d+$"
# State and trigger names: lower-case identifiers, safe in Mermaid and as attribute names.
NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
REQUIREMENT_PATTERN = r"^[A-Z]+(?:-[A-Z]+)*-\d{3}$"

Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]
GuardName = Annotated[
    str,
    Field(pattern=NAME_PATTERN, max_length=64),
    # Editors list the registered guards; the loader reports an unknown one with its line.
    WithJsonSchema({"type": "string", "enum": sorted(GUARDS)}),
]


class _Strict(BaseModel):
    # strict: YAML's `terminal: "no"` is a string, not a boolean.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class StateDocument(_Strict):
    """One state of the lifecycle."""

    description: str = Field(min_length=1, description="What being in this state means.")
    terminal: bool = Field(description="True when no transition may leave the state.")


class TransitionDocument(_Strict):
    """One trigger, from one or more source states to a destination."""

    trigger: Name = Field(description="The name callers apply, e.g. `claim`.")
    source: Name | Annotated[list[Name], Field(min_length=1)] = Field(
        description="The state, or the states, the trigger may be applied in."
    )
    dest: Name = Field(description="The state the entity is in afterwards.")
    guards: list[GuardName] = Field(
        default_factory=list,
        description="Named guards that must all be true for the transition to happen.",
    )
    requirement: Annotated[str, Field(pattern=REQUIREMENT_PATTERN)] = Field(
        description="The spec requirement ID the transition implements, e.g. `SM-DEF-004`."
    )
    description: str = ""

    @property
    def sources(self) -> list[str]:
        """``source`` as a list, whichever way it was written."""
        return [self.source] if isinstance(self.source, str) else list(self.source)


class DeriveDocument(_Strict):
    """One rule deriving a status from the statuses of member entities (SM-DEF-008)."""

    when: Match = Field(strict=False)
    statuses: list[Name] = Field(
        default_factory=list,
        description="Member statuses the rule looks for; required by `all` and `any`.",
    )
    status: Name = Field(description="The status derived when the rule matches.")


class LifecycleDocument(_Strict):
    """A lifecycle file: ``docs/state_machines/<name>_lifecycle.yaml``."""

    schema_version: Annotated[str, Field(pattern=VERSION_PATTERN)] = Field(
        description=f"Version of this format; this engine reads {SCHEMA_VERSION}."
    )
    name: Name = Field(description="`task`, `workstream`, `worker`: the file's name prefix.")
    description: str = ""
    initial: Name = Field(description="The state every new entity starts in.")
    states: dict[Name, StateDocument] = Field(
        min_length=1,
        # pydantic writes the key pattern as patternProperties; other keys must fail too.
        json_schema_extra={"additionalProperties": False},
    )
    transitions: list[TransitionDocument]
    derive: list[DeriveDocument] = Field(
        default_factory=list,
        description="Ordered rules; the first that matches gives the status. Workstreams only.",
    )

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, title="Lifecycle definition v1.0.0"
    )


def lifecycle_json_schema() -> dict[str, Any]:
    """The JSON Schema of a lifecycle file, as published in ``schemas/``."""
    return LifecycleDocument.model_json_schema()
