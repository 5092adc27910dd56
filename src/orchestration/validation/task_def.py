"""Checks of the task files (TASK-DEF) and of AI tasks' context boundaries (AIDER-INT).

Stability: provisional.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from ..errors import Problem
from ..execution.adapters import BYTES_PER_TOKEN, estimate_tokens
from .check import check
from .repository import Repository

__all__ = ["ai_context", "ai_tasks_declare_limits", "task_files"]

# Schema violations (TASK-DEF-002) of these fields break a narrower requirement.
_FIELD_REQUIREMENTS = {
    "/task_id": "TASK-DEF-012",
    "/workstream_id": "TASK-DEF-012",
    "/type": "TASK-DEF-013",
    "/priority": "TASK-DEF-014",
    "/resources": "TASK-DEF-014",
}
AI_TYPES = ("aider", "claude")


def _narrowed(problem: Problem) -> Problem:
    if problem.requirement != "TASK-DEF-002":
        return problem
    for prefix, requirement in _FIELD_REQUIREMENTS.items():
        if problem.pointer == prefix or problem.pointer.startswith(prefix + "/"):
            return replace(problem, requirement=requirement)
    return problem


@check(
    "TASK-DEF-001",
    "TASK-DEF-002",
    "TASK-DEF-003",
    "TASK-DEF-004",
    "TASK-DEF-005",
    "TASK-DEF-006",
    "TASK-DEF-012",
    "TASK-DEF-013",
    "TASK-DEF-014",
    "TASK-DEF-015",
)
def task_files(repo: Repository) -> Iterator[Problem]:
    """Every task file loads: placement, schema v2.0.0, unique ids, known dependencies."""
    for problem in repo.tasks.problems:
        if problem.requirement.startswith("TASK-DEF-"):
            yield _narrowed(problem)


@check("TASK-DEF-008")
def ai_tasks_declare_limits(repo: Repository) -> Iterator[Problem]:
    """Tasks for aider and claude declare context_requirements.max_context_tokens."""
    for task_id, task in repo.tasks.tasks.items():
        if task.type in AI_TYPES and task.context_requirements.max_context_tokens is None:
            yield repo.located(
                repo.tasks.files[task_id],
                "/context_requirements",
                f"{task.type} task {task_id!r} declares no max_context_tokens",
                "set context_requirements.max_context_tokens to the agent's context budget",
                "TASK-DEF-008",
            )


@check("AIDER-INT-002", "AIDER-INT-003", "AIDER-INT-004")
def ai_context(repo: Repository) -> Iterator[Problem]:
    """Each required file exists inside the repository, is not excluded, and fits the budget."""
    from ..registry import glob_matches

    root = repo.root.resolve()
    for task_id, task in repo.tasks.tasks.items():
        context = task.context_requirements
        rel = repo.tasks.files[task_id]
        total = 0
        for number, name in enumerate(context.required_files):
            pointer = f"/context_requirements/required_files/{number}"
            path = (root / name).resolve()
            if Path(name).is_absolute() or not path.is_relative_to(root):
                yield repo.located(
                    rel,
                    pointer,
                    f"required file {name!r} of task {task_id!r} resolves outside the repository",
                    "list paths relative to the repository root, without `..`",
                    "AIDER-INT-004",
                )
                continue
            if not path.is_file():
                yield repo.located(
                    rel,
                    pointer,
                    f"required file {name!r} of task {task_id!r} does not exist",
                    "fix the path, or remove the entry",
                    "AIDER-INT-004",
                )
                continue
            total += path.stat().st_size
            for pattern in context.exclude_patterns:
                if glob_matches(pattern, name):
                    yield repo.located(
                        rel,
                        pointer,
                        f"required file {name!r} of task {task_id!r} matches its exclude "
                        f"pattern {pattern!r}",
                        "remove the file from required_files or narrow the pattern",
                        "AIDER-INT-002",
                    )
        limit = context.max_context_tokens
        estimate = estimate_tokens(total)
        if limit is not None and estimate > limit:
            yield repo.located(
                rel,
                "/context_requirements/max_context_tokens",
                f"the required files of task {task_id!r} alone are ~{estimate} tokens "
                f"(bytes / {BYTES_PER_TOKEN}), over max_context_tokens {limit}",
                "raise max_context_tokens, or give the task fewer or smaller files",
                "AIDER-INT-003",
            )
