"""What to dispatch next: order, scope and resource admission (EXEC-DOC-003, CONC-REG-002).

Stability: provisional.

Functions of the state and the definitions (only :func:`registry_for` reads
a file, the resource registry); :mod:`.runner` and the agents' API call them
inside the store's transaction, so that what they see is what every runner
on the repository sees. :func:`dry_run` puts them together for
``run --dry-run``, reading the snapshot without the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DefinitionError, Problem
from ..registry import Resource, ResourceKind, globs_overlap, load_resources
from ..registry.resources import potential_deadlocks
from ..state.layout import layout
from ..state.views import dispatch_key

if TYPE_CHECKING:
    from ..tasks.model import Task
    from .definitions import Definitions
    from .options import RunOptions

__all__ = [
    "Admission",
    "DryRun",
    "deadlocks",
    "dispatch_order",
    "dry_run",
    "in_scope",
    "registry_for",
    "slack_of",
]


def in_scope(
    dependencies: Mapping[str, Iterable[str]],
    workstreams: Mapping[str, str],
    *,
    workstream: str | None = None,
    target: str | None = None,
) -> set[str]:
    """The tasks a run may dispatch: all, one workstream's, or a target and what it needs."""
    chosen = set(dependencies)
    if workstream is not None:
        chosen = {task_id for task_id in chosen if workstreams.get(task_id) == workstream}
    if target is not None:
        needed: set[str] = set()
        stack = [target]
        while stack:
            task_id = stack.pop()
            if task_id not in needed:
                needed.add(task_id)
                stack.extend(dependencies.get(task_id, ()))
        chosen &= needed
    return chosen


def dispatch_order(
    dependencies: Mapping[str, Iterable[str]],
    entries: Mapping[str, Mapping[str, Any]],
    slack: Mapping[str, float],
    chosen: set[str],
) -> list[str]:
    """The order a run would dispatch ``chosen`` in if every attempt succeeded (``--dry-run``).

    Tasks already succeeded or skipped are done; cancelled, blocked and
    failed-for-good ones never run, nor does anything that waits on them.
    """
    done = {t for t, e in entries.items() if e.get("status") in ("succeeded", "skipped")}
    waiting = {
        t: [d for d in dependencies.get(t, ()) if d not in done] for t in chosen if t not in done
    }
    dependents: dict[str, list[str]] = {}
    for task_id, deps in waiting.items():
        for dep in deps:
            dependents.setdefault(dep, []).append(task_id)
    order: list[str] = []
    never = {"cancelled", "blocked"}
    ready = [t for t, deps in waiting.items() if not deps]
    while ready:
        ready.sort(key=lambda t: dispatch_key(t, entries.get(t, {}), slack))
        wave, ready = ready, []
        for task_id in wave:
            if entries.get(task_id, {}).get("status") in never:
                continue
            order.append(task_id)
            for dependent in dependents.get(task_id, ()):
                waiting[dependent].remove(task_id)
                if not waiting[dependent]:
                    ready.append(dependent)
    return order


class Admission:
    """Whether a task's resources can all be taken now (CONC-REG-002, CONC-REG-004).

    Counted resources admit up to their capacity in units. Path locks admit
    up to their capacity too, and never alongside a different lock whose
    globs overlap (CONC-REG-003: overlapping when undecidable).
    """

    def __init__(self, registry: Mapping[str, Resource]) -> None:
        self.registry = registry
        locks = [r for r in registry.values() if r.kind is ResourceKind.PATH_LOCK]
        self.conflicts: dict[str, set[str]] = {lock.name: set() for lock in locks}
        for i, first in enumerate(locks):
            for second in locks[i + 1 :]:
                if any(globs_overlap(a, b) for a in first.paths for b in second.paths):
                    self.conflicts[first.name].add(second.name)
                    self.conflicts[second.name].add(first.name)

    def refusal(self, wanted: Mapping[str, int], held: Iterable[Mapping[str, int]]) -> str | None:
        """Why ``wanted`` cannot be taken beside the ``held`` claims; ``None`` when it can."""
        if not wanted:
            return None
        used: dict[str, int] = {}
        for claim in held:
            for name, units in claim.items():
                used[name] = used.get(name, 0) + units
        for name, units in wanted.items():
            resource = self.registry.get(name)
            if resource is None:
                return f"resource {name!r} is not in the resource registry"
            if used.get(name, 0) + units > resource.capacity:
                return f"{name} has {resource.capacity - used.get(name, 0)} of {units} units free"
            for other in self.conflicts.get(name, ()):
                if used.get(other):
                    return f"path lock {name} overlaps {other}, which is held"
        return None


def registry_for(root: Path, tasks: Mapping[str, Task]) -> dict[str, Resource]:
    """The resource registry, when a task claims resources (CONC-REG-002, CONC-REG-004).

    Raises:
        DefinitionError: a task claims a resource the registry lacks, or more
            units than its capacity.
    """
    if not any(task.resources for task in tasks.values()):
        return {}
    registry = load_resources(root)
    problems = []
    for task_id, task in sorted(tasks.items()):
        for name, units in task.resources.items():
            resource = registry.get(name)
            if resource is None:
                problems.append(
                    Problem(
                        f"tasks/{task.workstream_id}/{task_id}.json",
                        f"task {task_id!r} claims resource {name!r}, which the registry lacks",
                        f"declare it in capabilities/resources.psd1, or use one of "
                        f"{', '.join(sorted(registry)) or '(none)'}",
                        "CONC-REG-002",
                        f"/resources/{name}",
                    )
                )
            elif units > resource.capacity:
                problems.append(
                    Problem(
                        f"tasks/{task.workstream_id}/{task_id}.json",
                        f"task {task_id!r} claims {units} units of {name!r}, whose capacity is "
                        f"{resource.capacity}: it could never run",
                        "claim at most the capacity",
                        "CONC-REG-004",
                        f"/resources/{name}",
                    )
                )
    if problems:
        raise DefinitionError(problems)
    return registry


def slack_of(tasks: Mapping[str, Task], files: Mapping[str, str] | None) -> dict[str, float]:
    """Each task's slack on the plan, from the tasks already loaded (no file read again)."""
    from ..planning.plan import PlanTask, build_plan

    plan = build_plan({t: PlanTask.of(task) for t, task in tasks.items()}, files)
    return {task_id: slot.slack for task_id, slot in plan.schedule.items()}


@dataclass(frozen=True)
class DryRun:
    """What ``run --dry-run`` prints: the order, and what stops or waits."""

    order: list[str]
    deadlocks: list[str]
    waiting: list[str]


def deadlocks(definitions: Definitions, scope: set[str]) -> list[str]:
    """Potential deadlocks among the tasks in scope, in words (CONC-REG-005)."""
    claims = definitions.claims.items()
    orders = {t: list(claim) for t, claim in claims if len(claim) > 1 and t in scope}
    if not orders:
        return []
    dependencies = definitions.dependencies
    return [
        f"tasks {', '.join(involved)} take {' → '.join(resources)} in opposite orders"
        for involved, resources in potential_deadlocks(orders, dependencies)
    ]


def dry_run(root: Path, definitions: Definitions, options: RunOptions) -> DryRun:
    """The dispatch order and potential deadlocks, reading ``.state/`` and writing nothing.

    Raises:
        DefinitionError: a task claims a resource the registry lacks, or more
            than its capacity.
    """
    from ..state.snapshot import read_snapshot

    state = read_snapshot(layout(root).snapshot)
    known = state.tasks if state is not None else {}
    priorities = definitions.priorities().items()
    entries = {t: {**known.get(t, {}), "priority": priority} for t, priority in priorities}
    dependencies = definitions.dependencies
    scope = in_scope(
        dependencies,
        definitions.workstreams,
        workstream=options.workstream,
        target=options.target,
    )
    order = dispatch_order(dependencies, entries, definitions.slack, scope)
    waiting = [t for t in order if t in definitions.manual]
    registry_for(root, definitions.claiming())
    return DryRun(order, deadlocks(definitions, scope), waiting)
