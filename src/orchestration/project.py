"""The pipeline root and the paths under it.

Stability: stable.

A pipeline is a folder holding ``tasks/``. Commands find it from ``--root``
or, like git, by walking up from the current directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

__all__ = ["TASKS_DIR", "Project", "located_files", "task_files"]

TASKS_DIR = "tasks"


def task_files(root: Path) -> list[str]:
    """Paths of every ``*.json`` below ``root/tasks``, sorted.

    Plain strings, not ``Path`` objects: at 100k files the conversions alone
    would cost a noticeable share of ``plan``.
    """
    top = os.path.join(root, TASKS_DIR)
    stack = [top] if os.path.isdir(top) else []
    found: list[str] = []
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir():
                    stack.append(entry.path)
                elif entry.name.endswith(".json"):
                    found.append(entry.path)
    found.sort()
    return found


def located_files(root: Path) -> list[tuple[str, str]]:
    """``(path, path relative to root with "/")`` of every task file, sorted."""
    prefix = len(os.path.join(root, ""))
    return [(path, path[prefix:].replace(os.sep, "/")) for path in task_files(root)]


@dataclass(frozen=True)
class Project:
    """A pipeline on disk: its root and the well-known paths below it."""

    root: Path

    @classmethod
    def find(cls, root: Path | None = None) -> Project:
        """The pipeline at ``root``, or the nearest one above the current directory.

        Raises:
            UsageError: there is no ``tasks/`` folder there (exit code 2).
        """
        if root is not None:
            root = root.resolve()
            if not (root / "tasks").is_dir():
                msg = (
                    f"no pipeline at {root}: it has no tasks/ folder; "
                    f"run `orchestration init {root}` to create one"
                )
                raise UsageError(msg)
            return cls(root)
        here = Path.cwd().resolve()
        for candidate in (here, *here.parents):
            if (candidate / "tasks").is_dir():
                return cls(candidate)
        msg = (
            f"no pipeline found in {here} or above it (no tasks/ folder); "
            "pass --root DIR, or run `orchestration init` to create one"
        )
        raise UsageError(msg)

    @property
    def tasks_dir(self) -> Path:
        """``tasks/``: one folder per workstream, one JSON file per task."""
        return self.root / "tasks"

    @property
    def state_dir(self) -> Path:
        """``.state/``: machine-written state; never edited by hand."""
        return self.root / ".state"

    @property
    def logs_dir(self) -> Path:
        """``.state/logs/``: tracebacks of internal errors and run logs."""
        return self.state_dir / "logs"

    @property
    def spec_file(self) -> Path:
        """The normative spec whose requirement IDs validators check."""
        return self.root / "specifications" / "content" / "orchestration" / "spec.md"
