"""Resource orderings of a plan that can deadlock (CONC-REG-005).

Stability: stable. The fields of :class:`Deadlock` are part of ``plan
--format json`` (``"deadlocks"``, see :mod:`orchestration.planning.render`).

The engine takes a task's resources all at once, so it never deadlocks on
them; an agent or a tool that takes them one by one, in the order the task
lists them, can. ``plan`` warns of it before anything runs, as ``run`` and
``validate --section CONC-REG`` do, with the one detection they share:
:func:`orchestration.registry.resources.potential_deadlocks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from .plan import Plan, PlanTask

__all__ = ["Deadlock", "plan_deadlocks"]

# What to do about any of them, for the text rendering and the JSON document.
DEADLOCK_HINT = (
    "list shared resources in the same order in every task (the engine takes them all at "
    "once; agents and tools that take them one by one do not), or make one task depend on "
    "the other"
)


class Deadlock(NamedTuple):
    """Tasks that can run at the same time and take resources in orders forming a cycle."""

    tasks: tuple[str, ...]
    # In the order of the cycle, the first repeated at the end: ("a", "b", "a").
    resources: tuple[str, ...]

    def describe(self) -> str:
        """``tasks 'x', 'y' can run at the same time and take a → b → a in opposite orders``."""
        return (
            f"tasks {', '.join(map(repr, self.tasks))} can run at the same time and take "
            f"{' → '.join(self.resources)} in opposite orders"
        )


def plan_deadlocks(plan: Plan, tasks: Mapping[str, PlanTask] | None = None) -> list[Deadlock]:
    """The potential deadlocks among the tasks of ``plan``.

    Args:
        plan: the plan, whole or narrowed; only its tasks are looked at.
        tasks: every task of the pipeline (default: the plan's), so that two
            tasks of a narrowed plan ordered through a task outside it are
            known never to run together.

    Returns:
        Pairs of tasks that take two resources in opposite orders, then
        longer cycles, as :func:`~orchestration.registry.resources.potential_deadlocks`
        finds them.
    """
    orders = {t: task.resources for t, task in plan.tasks.items() if len(task.resources) > 1}
    if len(orders) < 2:
        return []  # the usual case, without importing the registry
    from ..registry.resources import potential_deadlocks

    every = plan.tasks if tasks is None else tasks
    dependencies = {task_id: task.dependencies for task_id, task in every.items()}
    return [Deadlock(*found) for found in potential_deadlocks(orders, dependencies)]
