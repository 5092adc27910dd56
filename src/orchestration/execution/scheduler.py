"""What to dispatch next: order, scope and resource admission (EXEC-DOC-003, CONC-REG-002).

Stability: provisional.

Pure functions of the state and the definitions; :mod:`.runner` calls them
inside the store's transaction, so that what they see is what every runner
on the repository sees.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..registry import Resource, ResourceKind, globs_overlap
from ..state.views import dispatch_key

__all__ = ["Admission", "dispatch_order", "in_scope"]


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
