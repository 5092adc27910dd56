"""Errors and problems: the one exception hierarchy of the engine.

Stability: stable.

A *problem* is one thing wrong with the definitions (a file, a position, a
JSON pointer, what is wrong, how to fix it, the requirement it violates).
Loading and validation collect every problem instead of stopping at the first;
an exception carries them to the edge, where the CLI renders them.

Hierarchy (the exit code lives on the class)::

    OrchestrationError            exit 1   base class
    ├── DefinitionError           exit 1   invalid task files, cycles (carries problems)
    └── UsageError                exit 2   bad flags, no pipeline at the root

Anything else that escapes to the CLI is a bug: exit 3, one line for the user,
the traceback in ``.state/logs/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

__all__ = ["DefinitionError", "OrchestrationError", "Problem", "UsageError", "relative"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the definitions, located as precisely as known.

    Args:
        file: the file at fault, relative to the pipeline root when possible.
        message: what is wrong, with ids quoted.
        hint: what to do about it.
        requirement: the spec requirement ID it violates (e.g. ``TASK-DEF-002``).
        pointer: JSON pointer (RFC 6901) to the offending value, ``""`` for the
            whole document.
        line: 1-based line, 0 when unknown.
        column: 1-based column, 0 when unknown.
    """

    file: str
    message: str
    hint: str
    requirement: str
    pointer: str = ""
    line: int = 0
    column: int = 0

    @property
    def location(self) -> str:
        """``file:line:column`` (as far as known), the form editors jump to."""
        where = self.file
        if self.line:
            where += f":{self.line}"
            if self.column:
                where += f":{self.column}"
        return where

    def as_dict(self) -> dict[str, object]:
        """The problem as the stable JSON shape printed by ``--format json``."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "pointer": self.pointer,
            "message": self.message,
            "hint": self.hint,
            "requirement": self.requirement,
        }

    def render(self) -> str:
        """Two lines for a terminal: where and what, then how to fix it."""
        pointer = f" at {self.pointer}" if self.pointer else ""
        return f"{self.location}: {self.message}{pointer} [{self.requirement}]\n  fix: {self.hint}"


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when it lies below it, else as given."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


class OrchestrationError(Exception):
    """Base of every error the engine raises on purpose."""

    exit_code: ClassVar[int] = 1


class DefinitionError(OrchestrationError):
    """The definitions are invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the definitions")


class UsageError(OrchestrationError):
    """The command was called wrongly, or there is no pipeline at the root."""

    exit_code: ClassVar[int] = 2
