"""The planner: stages, critical path, slack, cycles and narrowing (DAG-VIEW)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestration.errors import DefinitionError, UsageError
from orchestration.planning.cycles import cycle_problems
from orchestration.planning.plan import Plan, Slot, TaskTable, build_plan, scope
from orchestration.planning.plan import PlanTask as Task

from strategies import dags, make_task


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


@given(dags())
def test_stages_are_topological_generations_DAG_VIEW_002(tasks: dict[str, Task]) -> None:
    plan = build_plan(tasks)
    stage_of = {task_id: n for n, stage in enumerate(plan.stages) for task_id in stage}
    assert sorted(stage_of) == sorted(tasks)
    assert sum(map(len, plan.stages)) == len(tasks)
    for stage in plan.stages:
        assert stage == sorted(stage)
    for task_id, task in tasks.items():
        for dep in task.dependencies:
            assert stage_of[dep] < stage_of[task_id]
        # A generation is as early as possible: it follows a dependency one stage before.
        if stage_of[task_id]:
            assert max(stage_of[dep] for dep in task.dependencies) == stage_of[task_id] - 1
    expected = [sorted(generation) for generation in nx.topological_generations(_graph(tasks))]
    assert plan.stages == expected


def _graph(tasks: dict[str, Task]) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(tasks)
    for task_id, task in tasks.items():
        graph.add_edges_from((dep, task_id) for dep in task.dependencies)
    return graph


def _longest(tasks: dict[str, Task]) -> float:
    """Independent longest path: networkx over edges weighted by the head's estimate."""
    graph = _graph(tasks)
    weighted = nx.DiGraph()
    for task_id in tasks:
        weighted.add_edge("__start__", task_id, w=tasks[task_id].estimate)
    for dep, task_id in graph.edges:
        weighted.add_edge(dep, task_id, w=tasks[task_id].estimate)
    return float(nx.dag_longest_path_length(weighted, weight="w")) if tasks else 0.0


@given(dags())
def test_critical_path_is_a_real_longest_chain_DAG_VIEW_003(tasks: dict[str, Task]) -> None:
    plan = build_plan(tasks)
    path = plan.critical_path
    assert bool(path) == bool(tasks)
    for earlier, later in zip(path, path[1:], strict=False):
        assert earlier in tasks[later].dependencies
    assert _close(sum(tasks[t].estimate for t in path), plan.critical_path_seconds)
    assert _close(plan.critical_path_seconds, _longest(tasks))
    if path:
        assert not tasks[path[0]].dependencies or plan.schedule[path[0]].earliest_start == 0


@given(dags())
def test_schedule_respects_dependencies_and_slack_DAG_VIEW_003(tasks: dict[str, Task]) -> None:
    plan = build_plan(tasks)
    end = plan.critical_path_seconds
    for task_id, task in tasks.items():
        slot = plan.schedule[task_id]
        assert _close(slot.earliest_finish - slot.earliest_start, task.estimate)
        assert _close(slot.latest_finish - slot.latest_start, task.estimate)
        assert slot.slack >= -1e-6
        assert slot.latest_finish <= end + 1e-6
        for dep in task.dependencies:
            assert plan.schedule[dep].earliest_finish <= slot.earliest_start + 1e-9
            assert plan.schedule[dep].latest_finish <= slot.latest_start + 1e-6
    for task_id in plan.critical_path:
        assert _close(plan.schedule[task_id].slack, 0.0)
    assert _close(plan.total_seconds, sum(task.estimate for task in tasks.values()))


@settings(max_examples=80)
@given(
    dags(max_tasks=20).filter(lambda t: any(task.dependencies for task in t.values())), st.data()
)
def test_injected_cycle_is_reported_with_a_real_cycle_DAG_VIEW_001(
    tasks: dict[str, Task], data: st.DataObject
) -> None:
    graph = _graph(tasks)
    dependent = data.draw(st.sampled_from(sorted(t for t in tasks if tasks[t].dependencies)))
    ancestor = data.draw(st.sampled_from(sorted(nx.ancestors(graph, dependent))))
    # The ancestor now also depends on its descendant: a cycle.
    old = tasks[ancestor]
    tasks[ancestor] = make_task(ancestor, [*old.dependencies, dependent], old.estimated_seconds)
    files = {task_id: f"tasks/ws/{task_id}.json" for task_id in tasks}
    with pytest.raises(DefinitionError) as raised:
        build_plan(tasks, files)
    problems = raised.value.problems
    assert problems and all(p.requirement == "DAG-VIEW-001" for p in problems)
    for problem in problems:
        match = re.search(r"dependency cycle: (\S+(?: -> \S+)+)", problem.message)
        assert match, problem.message
        chain = match[1].split(" -> ")
        assert chain[0] == chain[-1]
        for task_id, needs in zip(chain, chain[1:], strict=False):
            assert needs in tasks[task_id].dependencies
        assert problem.file == files[chain[0]]
        assert f"{chain[1]} in {files[chain[1]]}" in problem.message or len(chain) == 2


def test_self_dependency_is_a_cycle() -> None:
    tasks = {"a": make_task("a", ["a"], 1.0), "b": make_task("b", ["a"], 1.0)}
    with pytest.raises(DefinitionError) as raised:
        build_plan(tasks, {"a": "tasks/ws/a.json"})
    [problem] = raised.value.problems
    assert "a -> a" in problem.message
    assert problem.pointer == "/dependencies/0"


def test_known_plan_numbers() -> None:
    #   a(10) -> b(20) -> d(5)
    #   a(10) -> c(1)  -> d(5)
    tasks = {
        "a": make_task("a", [], 10),
        "b": make_task("b", ["a"], 20),
        "c": make_task("c", ["a"], 1),
        "d": make_task("d", ["b", "c"], 5),
        "e": make_task("e", [], 3),
    }
    plan = build_plan(tasks)
    assert plan.stages == [["a", "e"], ["b", "c"], ["d"]]
    assert plan.critical_path == ["a", "b", "d"]
    assert plan.critical_path_seconds == 35
    assert plan.total_seconds == 39
    assert plan.schedule["c"] == (1, 1, 10, 11, 29, 30, 19)
    assert plan.schedule["e"].slack == 32
    assert plan.defaulted == 0
    assert plan.edges == 4


def test_default_estimate_can_dominate_the_critical_path() -> None:
    tasks = {"a": make_task("a", [], 10), "e": make_task("e", [], None)}
    plan = build_plan(tasks)
    assert plan.critical_path == ["e"]
    assert plan.critical_path_seconds == 60
    assert plan.schedule["a"].slack == 50


def test_target_keeps_only_what_it_needs_DAG_VIEW_006() -> None:
    tasks = {
        "a": make_task("a", [], 1),
        "b": make_task("b", ["a"], 1),
        "c": make_task("c", [], 1),
        "d": make_task("d", ["b"], 1),
    }
    assert sorted(scope(tasks, target="b")) == ["a", "b"]
    with pytest.raises(UsageError, match="did you mean 'd'"):
        scope(tasks, target="dd")


def test_workstream_narrows_and_ignores_outside_dependencies_DAG_VIEW_006() -> None:
    tasks = {tid: make_task(tid, deps, 1) for tid, deps in [("a", []), ("b", ["a"]), ("c", ["b"])]}
    workstream = tasks["b"].workstream_id
    chosen = scope(tasks, workstream=workstream)
    assert all(task.workstream_id == workstream for task in chosen.values())
    plan = build_plan(chosen)
    assert sum(map(len, plan.stages)) == len(chosen)
    with pytest.raises(UsageError, match="workstreams:"):
        scope(tasks, workstream="nope")


def test_graph_export_is_the_same_dag() -> None:
    tasks = {"a": make_task("a", [], 1), "b": make_task("b", ["a"], 2)}
    graph = build_plan(tasks).graph()
    assert list(graph.edges) == [("a", "b")]
    assert graph.nodes["b"]["earliest_start"] == 1


# --- the planner against the plain dictionary version it replaced ------------

ESTIMATES = (
    st.none()
    | st.sampled_from([0.0, -0.0, 0.5, 1e-300, 1e308, math.inf])
    | st.floats(0, 1e6)
    | st.integers(0, 1000).map(float)
)


@st.composite
def task_maps(draw: st.DrawFn, max_tasks: int = 12) -> dict[str, Task]:
    """Tasks in any order, with repeated, unknown and (sometimes) cyclic dependencies."""
    count = draw(st.integers(0, max_tasks))
    pool = [f"t{n}" for n in range(count)]
    hidden = {task_id: n for n, task_id in enumerate(draw(st.permutations(pool)))}
    acyclic = draw(st.booleans())
    tasks = {}
    for task_id in draw(st.permutations(pool)):
        allowed = [t for t in pool if not acyclic or hidden[t] < hidden[task_id]]
        deps = draw(st.lists(st.sampled_from([*allowed, "ghost"]), max_size=4))
        workstream = draw(st.sampled_from(["ws-a", "ws-b"]))
        tasks[task_id] = Task(task_id, workstream, task_id, tuple(deps), (), draw(ESTIMATES))
    return tasks


def _reference(tasks: dict[str, Task], files: dict[str, str]) -> Plan:
    """The planner as it was: dictionaries keyed by id, Kahn's generations, CPM."""
    predecessors: dict[str, tuple[str, ...]] = {}
    successors: dict[str, list[str]] = {task_id: [] for task_id in tasks}
    waiting: dict[str, int] = {}
    for task_id, task in tasks.items():
        deps = list(dict.fromkeys(dep for dep in task.dependencies if dep in successors))
        predecessors[task_id] = tuple(deps)
        waiting[task_id] = len(deps)
        for dep in deps:
            successors[dep].append(task_id)
    stages: list[list[str]] = []
    current = sorted(task_id for task_id, count in waiting.items() if count == 0)
    while current:
        stages.append(current)
        following = []
        for task_id in current:
            for successor in successors[task_id]:
                waiting[successor] -= 1
                if not waiting[successor]:
                    following.append(successor)
        current = sorted(following)
    if sum(map(len, stages)) != len(tasks):
        stuck = {task_id for task_id, count in waiting.items() if count > 0}
        raise DefinitionError(cycle_problems(tasks, stuck, files))
    estimate = {task_id: task.estimate for task_id, task in tasks.items()}
    start: dict[str, float] = {}
    finish: dict[str, float] = {}
    for stage in stages:
        for task_id in stage:
            deps = predecessors[task_id]
            start[task_id] = max([finish[dep] for dep in deps]) if deps else 0.0
            finish[task_id] = start[task_id] + estimate[task_id]
    end = max(finish.values(), default=0.0)
    latest_start: dict[str, float] = {}
    for stage in reversed(stages):
        for task_id in stage:
            after = successors[task_id]
            latest_finish = min([latest_start[s] for s in after]) if after else end
            latest_start[task_id] = latest_finish - estimate[task_id]
    schedule = {}
    for number, stage in enumerate(stages):
        for task_id in stage:
            cost, begin, late = estimate[task_id], start[task_id], latest_start[task_id]
            schedule[task_id] = Slot(
                number, cost, begin, finish[task_id], late, late + cost, late - begin
            )
    critical: list[str] = []
    if finish:
        current = min(finish, key=lambda task_id: (-finish[task_id], task_id))
        while True:
            critical.append(current)
            binding = sorted(d for d in predecessors[current] if finish[d] == start[current])
            if not binding:
                break
            current = binding[0]
        critical.reverse()
    defaulted = sum(1 for task in tasks.values() if task.estimated_seconds is None)
    return Plan(tasks, predecessors, stages, schedule, critical, defaulted)


def _outcome(plan: Callable[[], Plan]) -> object:
    """Everything a plan shows, exactly (repr: NaN and -0.0 included), or its problems."""
    try:
        made = plan()
    except DefinitionError as error:
        return error.problems
    return (
        made.stages,
        list(made.predecessors.items()),
        repr(list(made.schedule.items())),
        made.critical_path,
        made.defaulted,
        made.edges,
    )


@settings(max_examples=400)
@given(task_maps())
def test_plan_is_exactly_the_dictionary_version(tasks: dict[str, Task]) -> None:
    """Stages, schedule (bit for bit), critical path, cycles: as the replaced planner."""
    files = {task_id: f"tasks/ws/{task_id}.json" for task_id in tasks}
    expected = _outcome(lambda: _reference(tasks, files))
    assert _outcome(lambda: build_plan(tasks, files)) == expected
    if all(
        dep in tasks and task.dependencies.count(dep) == 1
        for task in tasks.values()
        for dep in task.dependencies
    ):
        place = {task_id: n for n, task_id in enumerate(tasks)}
        heads = [place[dep] for task in tasks.values() for dep in task.dependencies]
        table = TaskTable(tasks.items(), heads)
        assert _outcome(lambda: build_plan(table, files)) == expected


def test_a_task_table_forgets_its_heads_when_changed() -> None:
    tasks = {"a": make_task("a", [], 1), "b": make_task("b", ["a"], 2)}
    for change in (
        lambda t: t.__setitem__("c", make_task("c", [], 1)),
        lambda t: t.__delitem__("b"),
        lambda t: t.update({"c": make_task("c", [], 1)}),
        lambda t: t.pop("b"),
        lambda t: t.popitem(),
        lambda t: t.setdefault("c", make_task("c", [], 1)),
        lambda t: t.clear(),
        lambda t: t.__ior__({"c": make_task("c", [], 1)}),
    ):
        table = TaskTable(tasks.items(), [0])
        change(table)
        assert table.heads is None


def test_whole_pipeline_scope_is_the_mapping_itself() -> None:
    """No copy when nothing narrows, so that a TaskTable's heads reach build_plan."""
    table = TaskTable({"a": make_task("a", [], 1)}.items(), [])
    assert scope(table) is table
    assert scope(table, target="a") is not table
