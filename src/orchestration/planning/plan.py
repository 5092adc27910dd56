"""The execution plan: stages, critical path, earliest/latest times and slack.

Stability: stable.

``build_plan`` is a pure function of the tasks. Stages are the topological
generations of the dependency graph (DAG-VIEW-002); the schedule is the
critical path method over each task's estimate (DAG-VIEW-003): earliest start
is the latest finish among dependencies, latest finish is the earliest latest
start among dependents, slack is their difference, and the critical path is a
chain of zero-slack tasks as long as the whole plan.

The hot path is plain dictionaries (a 100k-task plan is a few hundred
milliseconds); networkx is imported only to explain a cycle and to export the
graph (:meth:`Plan.graph`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from ..bulk import gc_paused
from ..errors import DefinitionError, UsageError
from .cycles import cycle_problems

if TYPE_CHECKING:
    import networkx as nx

    from ..tasks.model import Task

__all__ = ["DEFAULT_ESTIMATE_SECONDS", "Plan", "PlanTask", "Slot", "build_plan", "scope"]

# What the planner assumes for a task without execution.estimated_seconds (TASK-DEF-007).
DEFAULT_ESTIMATE_SECONDS = 60.0


class PlanTask(NamedTuple):
    """What the planner reads of a task (light enough to cache and reload fast)."""

    task_id: str
    workstream_id: str
    name: str
    dependencies: tuple[str, ...]
    blocks: tuple[str, ...]
    estimated_seconds: float | None

    @classmethod
    def of(cls, task: Task) -> PlanTask:
        """The planner's view of a validated task."""
        return cls(
            task.task_id,
            task.workstream_id,
            task.name,
            tuple(task.dependencies),
            tuple(task.blocks),
            task.execution.estimated_seconds,
        )

    @property
    def estimate(self) -> float:
        """Estimated seconds, or the documented default when absent."""
        seconds = self.estimated_seconds
        return DEFAULT_ESTIMATE_SECONDS if seconds is None else seconds


class Slot(NamedTuple):
    """Where one task sits in the plan, in seconds from the plan's start."""

    stage: int
    estimate: float
    earliest_start: float
    earliest_finish: float
    latest_start: float
    latest_finish: float
    slack: float


@dataclass(frozen=True)
class Plan:
    """A planned DAG of tasks.

    Attributes:
        tasks: the tasks in the plan, by id.
        predecessors: task id → the ids it depends on (within the plan).
        stages: topological generations, ids sorted within each.
        schedule: task id → its :class:`Slot`.
        critical_path: ids of a longest chain, first to last.
        defaulted: how many tasks had no ``estimated_seconds``.
    """

    tasks: Mapping[str, PlanTask]
    predecessors: Mapping[str, tuple[str, ...]]
    stages: list[list[str]]
    schedule: dict[str, Slot]
    critical_path: list[str]
    defaulted: int

    @property
    def edges(self) -> int:
        """Number of dependency edges in the plan."""
        return sum(len(deps) for deps in self.predecessors.values())

    @property
    def critical_path_seconds(self) -> float:
        """Length of the critical path: the plan's shortest possible duration."""
        return self.schedule[self.critical_path[-1]].earliest_finish if self.critical_path else 0.0

    @property
    def total_seconds(self) -> float:
        """Sum of all estimates: the duration on a single worker."""
        return sum(slot.estimate for slot in self.schedule.values())

    def graph(self) -> nx.DiGraph:  # type: ignore[type-arg]
        """The plan as a networkx DiGraph, edges from dependency to dependent."""
        import networkx as nx

        graph: nx.DiGraph = nx.DiGraph()  # type: ignore[type-arg]
        for task_id, slot in self.schedule.items():
            graph.add_node(task_id, **slot._asdict())
        for task_id, deps in self.predecessors.items():
            graph.add_edges_from((dep, task_id) for dep in deps)
        return graph


def scope(
    tasks: Mapping[str, PlanTask], *, workstream: str | None = None, target: str | None = None
) -> dict[str, PlanTask]:
    """The tasks a narrowed plan covers (DAG-VIEW-006).

    Args:
        tasks: every task of the pipeline.
        workstream: keep only this workstream's tasks.
        target: keep only this task and what it transitively depends on.

    Raises:
        UsageError: the workstream or target does not exist.
    """
    chosen: Iterable[str] = tasks
    if target is not None:
        if target not in tasks:
            msg = f"--target {target!r} is not a task of this pipeline"
            raise UsageError(msg + _suggest(target, tasks))
        needed = {target}
        stack = [target]
        while stack:
            for dep in tasks[stack.pop()].dependencies:
                if dep not in needed and dep in tasks:
                    needed.add(dep)
                    stack.append(dep)
        chosen = [task_id for task_id in tasks if task_id in needed]
    if workstream is not None:
        known = {task.workstream_id for task in tasks.values()}
        if workstream not in known:
            msg = (
                f"--workstream {workstream!r} has no tasks; workstreams: {', '.join(sorted(known))}"
            )
            raise UsageError(msg)
        chosen = [task_id for task_id in chosen if tasks[task_id].workstream_id == workstream]
    return {task_id: tasks[task_id] for task_id in chosen}


def _suggest(name: str, known: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=3)
    return f"; did you mean {', '.join(map(repr, close))}?" if close else ""


def build_plan(tasks: Mapping[str, PlanTask], files: Mapping[str, str] | None = None) -> Plan:
    """Plan ``tasks``: stages, schedule and critical path.

    Dependencies on tasks outside ``tasks`` (a narrowed plan) are ignored.

    Args:
        tasks: the tasks to plan, by id.
        files: task id → file, to name files when reporting a cycle.

    Raises:
        DefinitionError: the dependencies form a cycle (DAG-VIEW-001); every
            cycle is reported with its tasks and files.
    """
    with gc_paused():
        return _build(tasks, files)


def _build(tasks: Mapping[str, PlanTask], files: Mapping[str, str] | None) -> Plan:
    # List comprehensions and local names, not generators: at 100k tasks this
    # loop is a noticeable share of `plan`.
    predecessors: dict[str, tuple[str, ...]] = {}
    successors: dict[str, list[str]] = {task_id: [] for task_id in tasks}
    waiting: dict[str, int] = {}
    for task_id, task in tasks.items():
        deps = [dep for dep in task.dependencies if dep in successors]
        if len(deps) > 1:
            deps = list(dict.fromkeys(deps))
        predecessors[task_id] = tuple(deps)
        waiting[task_id] = len(deps)
        for dep in deps:
            successors[dep].append(task_id)

    stages: list[list[str]] = []
    current = sorted([task_id for task_id, count in waiting.items() if count == 0])
    while current:
        stages.append(current)
        following = []
        for task_id in current:
            for successor in successors[task_id]:
                left = waiting[successor] - 1
                waiting[successor] = left
                if not left:
                    following.append(successor)
        following.sort()
        current = following

    if sum(map(len, stages)) != len(tasks):
        stuck = {task_id for task_id, count in waiting.items() if count > 0}
        raise DefinitionError(cycle_problems(tasks, stuck, files or {}))

    return _schedule(tasks, predecessors, successors, stages)


def _schedule(
    tasks: Mapping[str, PlanTask],
    predecessors: dict[str, tuple[str, ...]],
    successors: dict[str, list[str]],
    stages: list[list[str]],
) -> Plan:
    """Critical path method over the topological order given by ``stages``."""
    estimate = {task_id: task.estimate for task_id, task in tasks.items()}
    # Starts are kept, not recomputed as finish - estimate: the critical path
    # is found by exact equality of a start with a dependency's finish.
    start: dict[str, float] = {}
    finish: dict[str, float] = {}
    for stage in stages:
        for task_id in stage:
            deps = predecessors[task_id]
            begin = max([finish[dep] for dep in deps]) if deps else 0.0
            start[task_id] = begin
            finish[task_id] = begin + estimate[task_id]
    end = max(finish.values(), default=0.0)

    latest_start: dict[str, float] = {}
    for stage in reversed(stages):
        for task_id in stage:
            after = successors[task_id]
            latest_finish = min([latest_start[s] for s in after]) if after else end
            latest_start[task_id] = latest_finish - estimate[task_id]

    schedule: dict[str, Slot] = {}
    make = Slot._make
    for number, stage in enumerate(stages):
        for task_id in stage:
            cost = estimate[task_id]
            begin = start[task_id]
            late = latest_start[task_id]
            schedule[task_id] = make(
                (number, cost, begin, finish[task_id], late, late + cost, late - begin)
            )

    critical: list[str] = []
    if finish:
        # Walk back from the last task to finish, each time to the dependency
        # that finished exactly when this one could start; ties go to the lowest id.
        current = min(finish, key=lambda task_id: (-finish[task_id], task_id))
        while True:
            critical.append(current)
            binding = sorted(dep for dep in predecessors[current] if finish[dep] == start[current])
            if not binding:
                break
            current = binding[0]
        critical.reverse()

    defaulted = sum(1 for task in tasks.values() if task.estimated_seconds is None)
    return Plan(tasks, predecessors, stages, schedule, critical, defaulted)
