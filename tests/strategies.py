"""Hypothesis strategies (random DAGs of tasks) and the spec's tables they are checked against."""

from __future__ import annotations

from hypothesis import strategies as st

from orchestration.planning.plan import PlanTask
from orchestration.tasks.model import Task


def make_task(task_id: str, dependencies: list[str], estimate: float | None) -> PlanTask:
    """The planner's view of a real, validated task."""
    execution = {} if estimate is None else {"estimated_seconds": estimate}
    task = Task.model_validate(
        {
            "schema_version": "2.0.0",
            "task_id": task_id,
            "workstream_id": "ws-a" if hash(task_id) % 2 else "ws-b",
            "name": task_id,
            "type": "shell",
            "dependencies": dependencies,
            "execution": execution,
        }
    )
    return PlanTask.of(task)


@st.composite
def dags(draw: st.DrawFn, max_tasks: int = 30) -> dict[str, PlanTask]:
    """Random acyclic task sets: edges only go from a lower to a higher rank."""
    count = draw(st.integers(min_value=0, max_value=max_tasks))
    ids = draw(st.permutations([f"t{n:03d}" for n in range(count)]))
    tasks = {}
    for rank, task_id in enumerate(ids):
        deps = draw(st.lists(st.sampled_from(ids[:rank]), unique=True, max_size=4)) if rank else []
        estimate = draw(st.none() | st.integers(0, 500).map(float) | st.floats(0, 1e4))
        tasks[task_id] = make_task(task_id, deps, estimate)
    return tasks


# The spec's task lifecycle table (section 9): trigger → (sources, destination),
# written out independently of docs/state_machines/task_lifecycle.yaml.
SPEC_TASK_TABLE = {
    "enqueue": ({"pending"}, "ready"),
    "claim": ({"ready"}, "claimed"),
    "release": ({"claimed", "running"}, "ready"),
    "abandon": ({"claimed", "running"}, "ready"),
    "start": ({"ready", "claimed"}, "running"),
    "complete": ({"running"}, "succeeded"),
    "fail": ({"claimed", "running"}, "failed"),
    "retry": ({"failed"}, "ready"),
    "requeue": ({"ready"}, "pending"),
    "block": ({"pending", "ready"}, "blocked"),
    "unblock": ({"blocked"}, "pending"),
    "cancel": ({"pending", "ready", "claimed", "running", "failed", "blocked"}, "cancelled"),
    "skip": ({"pending", "ready", "failed", "blocked"}, "skipped"),
}


@st.composite
def bursts(draw: st.DrawFn, quiet: float, longest: float) -> list[float]:
    """Event times (seconds, ascending) each within ``quiet`` of the last, spanning less
    than ``longest``: one burst, however many events."""
    # A hair under the window: a gap of exactly `quiet` may round either way.
    gaps = draw(st.lists(st.floats(0, quiet * 0.999), max_size=200))
    times = [0.0]
    for gap in gaps:
        if times[-1] + gap >= longest:
            break
        times.append(times[-1] + gap)
    return times
