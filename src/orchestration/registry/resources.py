"""The resource registry: capacity-limited resources and path locks (CONC-REG-001, CONC-REG-002).

Stability: provisional.

``capabilities/resources.psd1`` (or ``capabilities/resources.yaml``, never
both) holds::

    @{
        schema_version = '1.0.0'
        resources = @{
            'llm-api' = @{ kind = 'counted'; capacity = 4; description = 'API requests' }
            'docs' = @{ kind = 'path_lock'; capacity = 1; paths = @('docs/**', 'README.md') }
        }
    }

Every resource has a ``kind`` and a positive ``capacity``; a path lock lists
the globs of repository paths it guards (see :mod:`orchestration.registry.globs`),
and a counted resource has none.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from ..errors import DefinitionError, Problem
from ._source import RegistryFile, describe, entries, pointer_of, read_registry, unknown_keys

__all__ = ["Resource", "ResourceKind", "load_resources", "potential_deadlocks"]

_FIELDS = ("capacity", "description", "kind", "paths")


class ResourceKind(Enum):
    """What a resource limits."""

    # Units of something scarce (API quota, CPU slots): at most `capacity` claimed at once.
    COUNTED = "counted"
    # Repository paths matching `paths`: tasks whose locks overlap never run together.
    PATH_LOCK = "path_lock"


@dataclass(frozen=True, slots=True)
class Resource:
    """One resource of the registry.

    Attributes:
        name: the name tasks claim in their ``resources`` field.
        kind: counted units or a path lock.
        capacity: units that may be claimed at once (at least 1).
        description: what it is, ``""`` when the registry says nothing.
        paths: for a path lock, the globs of repository paths it guards;
            empty for a counted resource.
    """

    name: str
    kind: ResourceKind
    capacity: int
    description: str = ""
    paths: tuple[str, ...] = ()


def load_resources(root: Path) -> dict[str, Resource]:
    """The resource registry of the pipeline at ``root``, by name.

    Raises:
        DefinitionError: the registry is missing or declared twice
            (CONC-REG-001), not valid ``.psd1`` (CAP-REG-003) or YAML, of an
            unsupported schema version (SCHEMA-VER-001, SCHEMA-VER-003), or
            has invalid entries (CONC-REG-001, CONC-REG-002); every problem
            found, located.
    """
    example = "cpu = @{ kind = 'counted'; capacity = 2 }"
    source = read_registry(
        root, "resources", missing="CONC-REG-001", both="CONC-REG-001", example=example
    )
    named, problems = entries(source, "resources", "CONC-REG-001")
    resources: dict[str, Resource] = {}
    for name, entry in named.items():
        found = list(_entry_problems(source, name, entry))
        problems.extend(found)
        if not found:
            description, paths = entry.get("description"), entry.get("paths")
            capacity = entry["capacity"]
            assert isinstance(capacity, int)  # checked by _entry_problems
            resources[name] = Resource(
                name,
                ResourceKind(entry["kind"]),
                capacity,
                description if isinstance(description, str) else "",
                tuple(str(path) for path in paths) if isinstance(paths, list) else (),
            )
    if problems:
        raise DefinitionError(problems)
    return resources


def _entry_problems(source: RegistryFile, name: str, entry: dict[str, object]) -> Iterator[Problem]:
    pointer = pointer_of("resources", name)
    yield from unknown_keys(source, pointer, entry, _FIELDS, "CONC-REG-001")
    description = entry.get("description")
    if "description" in entry and not isinstance(description, str):
        yield source.problem(
            pointer + "/description",
            f"the description of resource {name!r} is {describe(description)}, not text",
            "write description = 'what it is', or remove it",
            "CONC-REG-001",
        )
    capacity = entry.get("capacity")
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        found = "has no capacity" if "capacity" not in entry else f"has capacity {capacity!r}"
        yield source.problem(
            pointer + ("/capacity" if "capacity" in entry else ""),
            f"resource {name!r} {found}; it must be a whole number of at least 1",
            "write capacity = N, the units that may be claimed at once (1 for a path lock)",
            "CONC-REG-002",
        )
    kinds = [kind.value for kind in ResourceKind]
    kind = entry.get("kind")
    if kind not in kinds:
        found = "has no kind" if "kind" not in entry else f"has kind {kind!r}"
        yield source.problem(
            pointer + ("/kind" if "kind" in entry else ""),
            f"resource {name!r} {found}; it must be one of {', '.join(map(repr, kinds))}",
            "write kind = 'counted' for units, or kind = 'path_lock' with paths = @('glob', ...)",
            "CONC-REG-001",
        )
    elif kind == ResourceKind.COUNTED.value and "paths" in entry:
        yield source.problem(
            pointer + "/paths",
            f"counted resource {name!r} lists paths; only a path lock guards paths",
            "remove paths, or make it kind = 'path_lock'",
            "CONC-REG-001",
        )
    elif kind == ResourceKind.PATH_LOCK.value:
        yield from _paths_problems(source, name, pointer, entry.get("paths"))


def _paths_problems(
    source: RegistryFile, name: str, pointer: str, paths: object
) -> Iterator[Problem]:
    if not isinstance(paths, list) or not paths:
        found = "lists no paths" if paths is None or paths == [] else f"has paths {paths!r}"
        yield source.problem(
            pointer + ("/paths" if paths is not None else ""),
            f"path lock {name!r} {found}; it must list at least one glob",
            "write paths = @('src/module/**', 'tests/module/**')",
            "CONC-REG-001",
        )
        return
    for index, glob in enumerate(paths):
        at = f"{pointer}/paths/{index}"
        why = ""
        if not isinstance(glob, str) or not glob:
            why = f"is {describe(glob)}, not a glob"
        elif glob.startswith("/") or "\\" in glob:
            why = "is not relative to the repository root with '/' between folders"
        elif glob.endswith("/"):
            why = "ends with '/', which no file path matches"
        if why:
            yield source.problem(
                at,
                f"path {glob!r} of path lock {name!r} {why}",
                "write a glob like 'docs/**' (a folder and everything in it) or 'src/*.py'",
                "CONC-REG-001",
            )


def potential_deadlocks(
    orders: Mapping[str, Sequence[str]], dependencies: Mapping[str, Sequence[str]]
) -> Iterator[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Tasks that can run together and take resources in orders that form a cycle (CONC-REG-005).

    Args:
        orders: task id → the resources it claims, in the order it lists them.
        dependencies: task id → the tasks it depends on (tasks ordered by
            dependencies never run together).

    Yields:
        ``(tasks involved, resources in cycle order with the first repeated)``:
        pairs of independent tasks that take two resources in opposite orders,
        then longer cycles.
    """
    before: dict[tuple[str, str], list[str]] = {}
    for task_id, order in orders.items():
        for i, first in enumerate(order):
            for second in order[i + 1 :]:
                before.setdefault((first, second), []).append(task_id)
    ancestors: dict[str, set[str]] = {}

    def upstream(task_id: str) -> set[str]:
        if task_id not in ancestors:
            seen: set[str] = set()
            stack = list(dependencies.get(task_id, ()))
            while stack:
                dep = stack.pop()
                if dep not in seen:
                    seen.add(dep)
                    stack.extend(dependencies.get(dep, ()))
            ancestors[task_id] = seen
        return ancestors[task_id]

    for (first, second), holders in sorted(before.items()):
        if first > second or (second, first) not in before:
            continue
        pair = next(
            (
                (a, b)
                for a in holders
                for b in before[(second, first)]
                if a not in upstream(b) and b not in upstream(a)
            ),
            None,
        )
        if pair is not None:
            yield tuple(sorted(pair)), (first, second, first)
    if not before:
        return
    import networkx as nx

    graph: nx.DiGraph = nx.DiGraph(list(before))  # type: ignore[type-arg]
    for cycle in nx.simple_cycles(graph):
        if len(cycle) > 2:
            start = cycle.index(min(cycle))
            cycle = cycle[start:] + cycle[:start]
            steps = zip(cycle, [*cycle[1:], cycle[0]], strict=True)
            holders = sorted({before[step][0] for step in steps})
            yield tuple(holders), (*cycle, cycle[0])
