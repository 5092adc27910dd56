"""The dispatch queue keeps ready tasks in the scheduler's order as they come and go."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestration.state.views import DispatchQueue, dispatch_key

TASKS = [f"t{number}" for number in range(12)]
entries = st.fixed_dictionaries({task: st.fixed_dictionaries(
    {}, optional={"priority": st.integers(-2, 2)}) for task in TASKS})  # fmt: skip
slacks = st.dictionaries(st.sampled_from(TASKS), st.floats(0, 100))
# Each step: the ready set now (tasks come, go, and come back).
steps = st.lists(st.sets(st.sampled_from(TASKS)), min_size=1, max_size=12)


@settings(max_examples=300)
@given(tasks=entries, slack=slacks, ready_sets=steps, outside=st.sets(st.sampled_from(TASKS)))
def test_the_ready_tasks_come_in_dispatch_order_EXEC_DOC_003(
    tasks: dict[str, dict[str, Any]],
    slack: dict[str, float],
    ready_sets: list[set[str]],
    outside: set[str],
) -> None:
    queue = DispatchQueue(slack, lambda fresh: fresh - outside)
    for ready in ready_sets:
        offered = [t for _, t in queue.ordered(ready, tasks) if t in ready]  # callers skip stale
        expected = sorted(ready - outside, key=lambda t: dispatch_key(t, tasks[t], slack))
        assert offered == expected


def test_a_task_admit_leaves_out_is_not_asked_about_again() -> None:
    asked: list[set[str]] = []

    def admit(fresh: set[str]) -> set[str]:
        asked.append(set(fresh))
        return fresh - {"b"}

    queue = DispatchQueue({}, admit)
    tasks: dict[str, dict[str, Any]] = {"a": {}, "b": {}, "c": {}}
    assert [t for _, t in queue.ordered({"a", "b"}, tasks)] == ["a"]
    assert [t for _, t in queue.ordered({"a", "b", "c"}, tasks)] == ["a", "c"]
    assert asked == [{"a", "b"}, {"c"}]
