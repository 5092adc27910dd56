"""Checks of the dependency graph (DAG-VIEW).

Stability: provisional.

The plan's own properties (stages, critical path, slack, the JSON shape) are
the planner's contract, proven by its property tests; a repository can only
break the graph itself.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import Problem
from .check import check
from .repository import Repository

__all__ = ["dependency_graph"]


@check("DAG-VIEW-001")
def dependency_graph(repo: Repository) -> Iterator[Problem]:
    """The dependencies form no cycle (each cycle is reported with its tasks and files)."""
    yield from repo.plan.problems
