"""Requirement IDs read from the normative spec.

Stability: stable.

Each requirement is one line of ``spec.md``::

    - [TASK-DEF-002] MUST: Task files MUST conform to schema v2.0.0 ...

The ID is ``FAMILY-NNN``; the level is MUST, SHOULD or MAY (RFC 2119); the
statement is one sentence. Validators and tests cite these IDs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from .errors import Problem

__all__ = ["Level", "Requirement", "parse_spec", "read_spec"]

LINE = re.compile(
    r"^- \[(?P<id>[A-Z]+(?:-[A-Z]+)*-\d{3})\] (?P<level>MUST|SHOULD|MAY): (?P<text>.+)$"
)
# A line that tries to be a requirement but does not match LINE exactly.
ATTEMPT = re.compile(r"^\s*[-*]\s*\[?[A-Z]+(?:-[A-Z]+)*-\d{3}\]?")


class Level(StrEnum):
    """Requirement levels of RFC 2119."""

    MUST = "MUST"  # an absolute requirement
    SHOULD = "SHOULD"  # may be ignored only for a valid, understood reason
    MAY = "MAY"  # truly optional


@dataclass(frozen=True, slots=True)
class Requirement:
    """One requirement of the spec."""

    id: str
    level: Level
    text: str
    line: int

    @property
    def family(self) -> str:
        """``TASK-DEF`` for ``TASK-DEF-002``."""
        return self.id.rsplit("-", 1)[0]


def parse_spec(text: str, file: str = "spec.md") -> tuple[list[Requirement], list[Problem]]:
    """Every requirement of ``text``, and what is malformed or duplicated."""
    requirements: list[Requirement] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = LINE.match(line)
        if match is None:
            if ATTEMPT.match(line):
                problems.append(
                    Problem(
                        file,
                        "requirement line is malformed",
                        "write it as `- [FAMILY-NNN] MUST|SHOULD|MAY: One sentence.`",
                        "COMPLIANCE-011",
                        line=number,
                        column=1,
                    )
                )
            continue
        requirement = Requirement(match["id"], Level(match["level"]), match["text"].strip(), number)
        if requirement.id in seen:
            problems.append(
                Problem(
                    file,
                    f"requirement {requirement.id!r} is defined again (first on line "
                    f"{seen[requirement.id]})",
                    "give the new requirement the next free number of its family",
                    "COMPLIANCE-011",
                    line=number,
                    column=1,
                )
            )
            continue
        seen[requirement.id] = number
        requirements.append(requirement)
    return requirements, problems


def read_spec(path: Path) -> tuple[list[Requirement], list[Problem]]:
    """Requirements of the spec file at ``path`` (see :func:`parse_spec`)."""
    return parse_spec(path.read_text(encoding="utf-8"), path.name)
