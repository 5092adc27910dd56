"""The execution plan: stages, critical path, earliest/latest times and slack.

Stability: stable.

``build_plan`` is a pure function of the tasks. Stages are the topological
generations of the dependency graph (DAG-VIEW-002); the schedule is the
critical path method over each task's estimate (DAG-VIEW-003): earliest start
is the latest finish among dependencies, latest finish is the earliest latest
start among dependents, slack is their difference, and the critical path is a
chain of zero-slack tasks as long as the whole plan.

The hot path numbers the tasks once and walks flat lists by number (a
100k-task plan takes well under a second); a :class:`TaskTable` (what
``plan_inputs`` returns) even brings the numbers of each task's dependencies
along. networkx is imported only to explain a cycle and to export the graph
(:meth:`Plan.graph`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import accumulate, chain, repeat
from math import isfinite
from operator import add, itemgetter, lt, sub
from typing import TYPE_CHECKING, Any, NamedTuple, Self, cast

from ..bulk import gc_paused
from ..errors import DefinitionError, UsageError
from .cycles import cycle_problems

if TYPE_CHECKING:
    import networkx as nx

    from ..tasks.model import Task

__all__ = [
    "DEFAULT_ESTIMATE_SECONDS",
    "Plan",
    "PlanTask",
    "Slot",
    "TaskTable",
    "build_plan",
    "scope",
]

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
    # The resources it claims, in the order its file lists them (CONC-REG-005).
    resources: tuple[str, ...] = ()

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
            tuple(task.resources),
        )

    @property
    def estimate(self) -> float:
        """Estimated seconds, or the documented default when absent."""
        seconds = self.estimated_seconds
        return DEFAULT_ESTIMATE_SECONDS if seconds is None else seconds


class TaskTable(dict[str, PlanTask]):
    """Tasks by id that also know where each one's dependencies are.

    ``heads`` lists, task after task in this mapping's order, the place of
    each of its dependencies in that same order; it is given only when every
    dependency is a task here and no task lists one twice. Whoever checked
    that found these places; :func:`build_plan` then need not look each id up
    again, which at 100k tasks is a fifth of its time. Any change to the
    mapping forgets them.
    """

    heads: list[int] | None

    def __init__(self, tasks: Iterable[tuple[str, PlanTask]], heads: list[int] | None) -> None:
        super().__init__(tasks)
        self.heads = heads

    # Every way to change a dict forgets the heads.

    def __setitem__(self, key: str, value: PlanTask) -> None:
        self.heads = None
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.heads = None
        super().__delitem__(key)

    def __ior__(self, other: Any) -> Self:  # type: ignore[misc,override]  # dict's overloads
        self.heads = None
        return super().__ior__(other)

    def clear(self) -> None:
        self.heads = None
        super().clear()

    def pop(self, *args: Any) -> Any:
        self.heads = None
        return super().pop(*args)

    def popitem(self) -> tuple[str, PlanTask]:
        self.heads = None
        return super().popitem()

    def setdefault(self, key: str, default: PlanTask) -> PlanTask:
        self.heads = None
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: PlanTask) -> None:
        self.heads = None
        super().update(*args, **kwargs)


class Slot(NamedTuple):
    """Where one task sits in the plan, in seconds from the plan's start."""

    stage: int
    estimate: float
    earliest_start: float
    earliest_finish: float
    latest_start: float
    latest_finish: float
    slack: float


# A Slot from a 7-tuple without a Python-level call per slot.
_slot = partial(tuple.__new__, Slot)
_estimate: Callable[[Slot], float] = itemgetter(Slot._fields.index("estimate"))


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
        return sum(map(len, self.predecessors.values()))

    @property
    def critical_path_seconds(self) -> float:
        """Length of the critical path: the plan's shortest possible duration."""
        return self.schedule[self.critical_path[-1]].earliest_finish if self.critical_path else 0.0

    @property
    def total_seconds(self) -> float:
        """Sum of all estimates: the duration on a single worker."""
        return sum(map(_estimate, self.schedule.values()))

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
    elif target is None and isinstance(tasks, dict):
        return tasks  # the whole pipeline, as it is (a TaskTable keeps its heads)
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


class _Graph(NamedTuple):
    """The dependency edges by task number, flat: task ``n``'s dependencies are
    ``heads[bounds[n] : bounds[n] + sizes[n]]`` (each once, first mention first),
    and ``tails`` holds, for each edge, the dependent."""

    heads: list[int]
    tails: list[int]
    sizes: list[int]
    bounds: list[int]


def _build(tasks: Mapping[str, PlanTask], files: Mapping[str, str] | None) -> Plan:
    # Tasks are numbered in the mapping's order; every pass after that walks
    # flat lists by number, mostly inside C (map, zip, chain), instead of
    # hashing ids into dictionaries of objects: at 100k tasks the dictionary
    # version spent most of its time on cache misses.
    ids = list(tasks)
    count = len(ids)
    listed = [task.dependencies for task in tasks.values()]
    sizes = list(map(len, listed))
    known = tasks.heads if isinstance(tasks, TaskTable) else None
    found: list[int | None]
    if known is not None and len(known) == sum(sizes):
        found, clean = cast(list[int | None], known), True
    else:
        number_of = dict(zip(ids, range(count), strict=True)).get
        found = list(map(number_of, chain.from_iterable(listed)))
        clean = None not in found and sum(map(len, map(set, listed))) == len(found)
    if clean:
        heads = cast(list[int], found)
        predecessors = dict(zip(ids, map(tuple, listed), strict=True))
    else:
        # Outside a narrowed plan, or listed twice: keep the first of each.
        predecessors, heads, sizes = _cleaned(ids, listed, found, sizes)
    tails = list(chain.from_iterable(map(repeat, range(count), sizes)))
    graph = _Graph(heads, tails, sizes, list(accumulate(sizes, initial=0)))
    if all(map(lt, heads, tails)):
        order: Sequence[int] = range(count)  # every dependency comes first: the usual case
    else:
        order = _topological(ids, graph, tasks, files)
    return _schedule(tasks, ids, predecessors, graph, order)


def _cleaned(
    ids: list[str], listed: Sequence[Sequence[str]], found: list[int | None], sizes: list[int]
) -> tuple[dict[str, tuple[str, ...]], list[int], list[int]]:
    """Each task's dependencies inside the plan, each once, first mention first.

    Returns:
        Predecessors by id, and the flat ``heads`` and ``sizes`` of :class:`_Graph`.
    """
    predecessors: dict[str, tuple[str, ...]] = {}
    heads: list[int] = []
    kept: list[int] = []
    at = 0
    for task_id, deps, size in zip(ids, listed, sizes, strict=True):
        mine = found[at : at + size]
        at += size
        if None in mine or len(set(mine)) < size:
            numbers = list(dict.fromkeys([n for n in mine if n is not None]))
            predecessors[task_id] = tuple([ids[n] for n in numbers])
        else:
            numbers = cast(list[int], mine)
            predecessors[task_id] = tuple(deps)
        heads.extend(numbers)
        kept.append(len(numbers))
    return predecessors, heads, kept


def _topological(
    ids: list[str], graph: _Graph, tasks: Mapping[str, PlanTask], files: Mapping[str, str] | None
) -> list[int]:
    """Task numbers in an order where each comes after its dependencies (Kahn).

    Raises:
        DefinitionError: some tasks wait on a cycle (DAG-VIEW-001).
    """
    successors: list[list[int]] = [[] for _ in ids]
    for head, tail in zip(graph.heads, graph.tails, strict=True):
        successors[head].append(tail)
    waiting = list(graph.sizes)
    order = [number for number, left in enumerate(waiting) if not left]
    for number in order:  # grows while it is walked
        for successor in successors[number]:
            left = waiting[successor] - 1
            waiting[successor] = left
            if not left:
                order.append(successor)
    if len(order) != len(ids):
        stuck = {ids[number] for number, left in enumerate(waiting) if left}
        raise DefinitionError(cycle_problems(tasks, stuck, files or {}))
    return order


def _schedule(
    tasks: Mapping[str, PlanTask],
    ids: list[str],
    predecessors: dict[str, tuple[str, ...]],
    graph: _Graph,
    order: Sequence[int],
) -> Plan:
    """Stages and the critical path method, walking ``order`` forward then back."""
    count = len(ids)
    heads, _, sizes, bounds = graph
    given = [task.estimated_seconds for task in tasks.values()]
    estimate = [DEFAULT_ESTIMATE_SECONDS if seconds is None else seconds for seconds in given]
    # Forward: a task's stage (topological generation, DAG-VIEW-002) is one
    # past its latest dependency's; it starts when its last dependency
    # finishes. Starts are kept, not recomputed as finish - estimate: the
    # critical path is found by exact equality of a start with a finish.
    stage_of = [0] * count
    start = [0.0] * count
    # 0.0 + estimate, as for any task: -0.0 becomes 0.0.
    finish = [seconds + 0.0 for seconds in estimate]
    # Each task's place in `heads`, count and estimate are zipped in C rather
    # than indexed in the loop; one and two dependencies, the usual counts,
    # are unrolled (`two if two > one else one` is exactly max(one, two)).
    steps = (map(bounds.__getitem__, order), map(sizes.__getitem__, order))
    costs = map(estimate.__getitem__, order)
    for number, at, size, cost in zip(order, *steps, costs, strict=True):
        if not size:
            continue
        if size == 1:
            first = heads[at]
            stage_of[number] = stage_of[first] + 1
            begin = finish[first]
        elif size == 2:
            first, second = heads[at], heads[at + 1]
            one, two = stage_of[first], stage_of[second]
            stage_of[number] = (two if two > one else one) + 1
            done, other = finish[first], finish[second]
            begin = other if other > done else done
        else:
            numbers = heads[at : at + size]
            stage_of[number] = max([stage_of[n] for n in numbers]) + 1
            begin = max([finish[n] for n in numbers])
        start[number] = begin
        finish[number] = begin + cost
    end = max(finish, default=0.0)

    # Backward: a task must finish by the earliest latest start among its
    # dependents (the plan's end without any), each pushed to its dependencies.
    latest_start = [0.0] * count
    backward = order[::-1]
    if isfinite(end):
        latest_finish = [end] * count
        steps = (map(bounds.__getitem__, backward), map(sizes.__getitem__, backward))
        costs = map(estimate.__getitem__, backward)
        for number, at, size, cost in zip(backward, *steps, costs, strict=True):
            late = latest_finish[number] - cost
            latest_start[number] = late
            if size == 1:
                dep = heads[at]
                if late < latest_finish[dep]:
                    latest_finish[dep] = late
            elif size:
                for dep in heads[at : at + size]:
                    if late < latest_finish[dep]:
                        latest_finish[dep] = late
    else:
        # An infinite estimate makes NaN (inf - inf), which min() treats by
        # position: pull from each task's dependents in task order instead.
        dependents: list[list[int]] = [[] for _ in ids]
        for head, tail in zip(graph.heads, graph.tails, strict=True):
            dependents[head].append(tail)
        for number in backward:
            after = dependents[number]
            finish_by = min([latest_start[n] for n in after]) if after else end
            latest_start[number] = finish_by - estimate[number]

    # Stages hold ids in sorted order: deal the sorted numbers out by stage.
    generations: list[list[int]] = [[] for _ in range(max(stage_of, default=-1) + 1)]
    for number in sorted(range(count), key=ids.__getitem__):
        generations[stage_of[number]].append(number)

    # Slots built column by column in task order, then listed in stage order.
    columns = zip(
        stage_of,
        estimate,
        start,
        finish,
        latest_start,
        map(add, latest_start, estimate),
        map(sub, latest_start, start),
        strict=True,
    )
    slots = list(map(_slot, columns))
    ordered = list(chain.from_iterable(generations))
    schedule = dict(
        zip(map(ids.__getitem__, ordered), map(slots.__getitem__, ordered), strict=True)
    )

    critical: list[str] = []
    if count:
        # Walk back from the last task to finish, each time to the dependency
        # that finished exactly when this one could start; ties go to the lowest id.
        current = min((n for n in range(count) if finish[n] == end), key=ids.__getitem__)
        while True:
            critical.append(ids[current])
            at = bounds[current]
            mine = heads[at : at + sizes[current]]
            binding = [n for n in mine if finish[n] == start[current]]
            if not binding:
                break
            current = min(binding, key=ids.__getitem__)
        critical.reverse()

    stages = [list(map(ids.__getitem__, generation)) for generation in generations]
    return Plan(tasks, predecessors, stages, schedule, critical, given.count(None))
