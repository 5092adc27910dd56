"""Explain dependency cycles: which tasks, in which files (DAG-VIEW-001).

Stability: internal.

Runs only when planning found tasks that can never start. Each strongly
connected component of those tasks holds at least one cycle; one cycle per
component is reported, so fixing the reported cycles resolves or reveals every
other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from typing import Protocol

from ..errors import Problem


class _Dependent(Protocol):
    @property
    def dependencies(self) -> Sequence[str]: ...


__all__ = ["cycle_problems"]


def cycle_problems(
    tasks: Mapping[str, _Dependent], stuck: Set[str], files: Mapping[str, str]
) -> list[Problem]:
    """One problem per cycle among the ``stuck`` tasks.

    Args:
        tasks: the planned tasks.
        stuck: tasks whose dependencies can never all finish.
        files: task id → file, for the message.
    """
    import networkx as nx

    # Edges point from a task to what it depends on, so a cycle reads
    # "a depends on b depends on ... depends on a".
    graph: nx.DiGraph = nx.DiGraph()  # type: ignore[type-arg]
    for task_id in stuck:
        graph.add_edges_from((task_id, dep) for dep in tasks[task_id].dependencies if dep in stuck)
    problems = []
    components = sorted(
        (sorted(c) for c in nx.strongly_connected_components(graph)), key=lambda c: c[0]
    )
    for component in components:
        first = component[0]
        if len(component) == 1 and not graph.has_edge(first, first):
            continue  # waits on a cycle without being part of one
        edges = nx.find_cycle(graph.subgraph(component), source=first)
        chain = [edge[0] for edge in edges] + [edges[0][0]]
        where = ", ".join(f"{task_id} in {files.get(task_id, '?')}" for task_id in chain[:-1])
        index = tasks[chain[0]].dependencies.index(chain[1])
        problems.append(
            Problem(
                files.get(chain[0], "tasks/"),
                f"dependency cycle: {' -> '.join(chain)} (each depends on the next; {where})",
                "remove one of these dependencies so that the tasks can run in some order",
                "DAG-VIEW-001",
                f"/dependencies/{index}",
            )
        )
    return problems
