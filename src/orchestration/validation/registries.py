"""Checks of the capability and resource registries and of what tasks claim (CAP-REG, CONC-REG).

Stability: provisional.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from ..errors import Problem
from ..registry import Resource
from ..registry.resources import potential_deadlocks
from .check import NotApplicable, check
from .repository import Repository

__all__ = [
    "capability_registry",
    "claimed_resources",
    "required_capabilities",
    "resource_deadlocks",
    "resource_registry",
]

SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")
# More potential deadlocks than this are summarised: the first ones say what to fix.
SHOWN_DEADLOCKS = 20


def version_key(text: str) -> tuple[int, int, int] | None:
    """``(major, minor, patch)`` of a semantic version, ``None`` when it is not one."""
    match = SEMVER.match(text)
    return None if match is None else (int(match[1]), int(match[2]), int(match[3]))


@check("CAP-REG-001", "CAP-REG-003", "CAP-REG-004", "CAP-REG-006")
def capability_registry(repo: Repository) -> Iterator[Problem]:
    """The capability registry reads as data and ships `shell`, offered by local workers."""
    capabilities = repo.capabilities
    for problem in capabilities.problems:
        if problem.requirement.startswith("CAP-REG-"):
            yield problem
    if capabilities.problems:
        return
    shell = capabilities.value.get("shell")
    if shell is None or not shell.local:
        yield Problem(
            "capabilities/registry.psd1",
            "the registry has no `shell` capability offered by local workers",
            "add `shell = @{ description = 'Runs a shell command'; local = $true }`",
            "CAP-REG-004",
        )


@check("CAP-REG-002", "CAP-REG-005")
def required_capabilities(repo: Repository) -> Iterator[Problem]:
    """Every capability a task requires is registered, at a version no lower than it asks."""
    registry = repo.capabilities
    if registry.problems:
        msg = "the capability registry has problems (see CAP-REG-001)"
        raise NotApplicable(msg)
    known = registry.value
    for task_id, task in repo.tasks.tasks.items():
        rel = repo.tasks.files[task_id]
        wanted = task.worker_requirements
        for number, name in enumerate(wanted.capabilities):
            if name not in known:
                yield repo.located(
                    rel,
                    f"/worker_requirements/capabilities/{number}",
                    f"task {task_id!r} requires capability {name!r}, which is not registered "
                    f"(known: {', '.join(sorted(known))})",
                    "fix the name, or declare it in capabilities/registry.psd1",
                    "CAP-REG-002",
                )
        if wanted.min_version is None:
            continue
        minimum = version_key(wanted.min_version)
        if minimum is None:
            yield repo.located(
                rel,
                "/worker_requirements/min_version",
                f"min_version {wanted.min_version!r} of task {task_id!r} is not a semantic version",
                "write it as MAJOR.MINOR.PATCH, e.g. 1.2.0",
                "CAP-REG-005",
            )
            continue
        for name in wanted.capabilities:
            offered = known[name].version if name in known else None
            key = version_key(offered) if offered else None
            if key is not None and key < minimum:
                yield repo.located(
                    rel,
                    "/worker_requirements/min_version",
                    f"task {task_id!r} needs {name!r} at {wanted.min_version} or later, but the "
                    f"registry offers {offered}: no worker can take it",
                    "lower min_version, or upgrade the capability and its registry version",
                    "CAP-REG-005",
                )


@check("CONC-REG-001", "CONC-REG-002")
def resource_registry(repo: Repository) -> Iterator[Problem]:
    """The resource registry reads as data; every resource and path lock has a capacity."""
    for problem in repo.resources.problems:
        if problem.requirement.startswith("CONC-REG-"):
            yield problem


def _resources(repo: Repository) -> Mapping[str, Resource]:
    if repo.resources.problems:
        msg = "the resource registry has problems (see CONC-REG-001)"
        raise NotApplicable(msg)
    return repo.resources.value


@check("CONC-REG-002", "CONC-REG-004")
def claimed_resources(repo: Repository) -> Iterator[Problem]:
    """Every resource a task claims is registered, and no claim exceeds its capacity."""
    registry = _resources(repo)
    for task_id, task in repo.tasks.tasks.items():
        rel = repo.tasks.files[task_id]
        for name, units in task.resources.items():
            pointer = "/resources/" + name.replace("~", "~0").replace("/", "~1")
            resource = registry.get(name)
            if resource is None:
                yield repo.located(
                    rel,
                    pointer,
                    f"task {task_id!r} claims resource {name!r}, which is not registered "
                    f"(known: {', '.join(sorted(registry)) or 'none'})",
                    "fix the name, or declare it in capabilities/resources.psd1",
                    "CONC-REG-002",
                )
            elif units > resource.capacity:
                yield repo.located(
                    rel,
                    pointer,
                    f"task {task_id!r} claims {units} units of {name!r}, whose capacity is "
                    f"{resource.capacity}: it could never start",
                    "claim at most the capacity, or raise the capacity in the registry",
                    "CONC-REG-004",
                )


@check("CONC-REG-005")
def resource_deadlocks(repo: Repository) -> Iterator[Problem]:
    """No two tasks that can run together take the same resources in opposite orders."""
    registry = _resources(repo)
    tasks = repo.tasks.tasks
    orders = {
        task_id: [name for name in task.resources if name in registry]
        for task_id, task in tasks.items()
        if len(task.resources) > 1
    }
    found = list(
        potential_deadlocks(orders, {t: tuple(task.dependencies) for t, task in tasks.items()})
    )
    for tasks_involved, resources in found[:SHOWN_DEADLOCKS]:
        first = tasks_involved[0]
        yield repo.located(
            repo.tasks.files[first],
            "/resources",
            f"tasks {', '.join(map(repr, tasks_involved))} can run at the same time and take "
            f"{' → '.join(resources)} in opposite orders: taken one by one they can deadlock",
            "list shared resources in the same order in every task (the engine takes them all "
            "at once; agents and tools that take them one by one do not)",
            "CONC-REG-005",
        )
    if len(found) > SHOWN_DEADLOCKS:
        yield Problem(
            "tasks/",
            f"... and {len(found) - SHOWN_DEADLOCKS} more potential deadlocks",
            "fix the ones above first",
            "CONC-REG-005",
        )
