"""Declared workers: ``workers.yaml`` at the pipeline root (EXEC-DOC-006).

Stability: provisional.

::

    schema_version: "1.0.0"
    workers:
      builder-1:
        capabilities: [shell, python]
        labels: {pool: ci}
      reviewer:
        capabilities: [review]

Each worker runs one attempt at a time and offers its capabilities, which
must be in the capability registry. With no ``workers.yaml`` and none
registered by ``orchestration worker register``, ``run --max-workers N``
starts N local workers offering what the registry marks ``local``
(:func:`local_workers`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DefinitionError, Problem
from ..tasks.model import ID_PATTERN
from ._source import RegistryFile, describe, entries, pointer_of, unknown_keys
from .capabilities import Capability

__all__ = ["WORKERS_FILE", "Worker", "load_workers", "local_workers"]

WORKERS_FILE = "workers.yaml"
_ID = re.compile(ID_PATTERN)


@dataclass(frozen=True)
class Worker:
    """A worker: an execution slot offering capabilities.

    Attributes:
        id: its name, unique in the pipeline.
        capabilities: what it offers; a task runs on it only when it offers
            every capability the task requires.
        labels: free-form ``key: value`` tags (pool, host, ...).
        local: started by ``run`` itself rather than declared.
    """

    id: str
    capabilities: frozenset[str]
    labels: Mapping[str, str] = field(default_factory=dict)
    local: bool = False

    def offers(self, required: Iterable[str]) -> bool:
        """Whether this worker offers every capability in ``required``."""
        return self.capabilities.issuperset(required)


def local_workers(capabilities: Mapping[str, Capability], count: int) -> list[Worker]:
    """``count`` local workers ``local-1`` ... offering the registry's local capabilities."""
    offered = frozenset(name for name, capability in capabilities.items() if capability.local)
    return [Worker(f"local-{n}", offered, local=True) for n in range(1, count + 1)]


def load_workers(root: Path, capabilities: Mapping[str, Capability]) -> list[Worker]:
    """The workers declared in ``workers.yaml``, ``[]`` when there is no such file.

    Raises:
        DefinitionError: the file is not YAML, not of a supported schema
            version, or declares a worker badly (unknown capability, bad id,
            unknown field); every problem, located.
    """
    path = root / WORKERS_FILE
    if not path.is_file():
        return []
    from ..lifecycles.source import read_yaml

    parsed, problems = read_yaml(path.read_bytes(), WORKERS_FILE, "EXEC-DOC-006")
    if parsed is None or problems:
        raise DefinitionError(problems)
    source = RegistryFile(WORKERS_FILE, parsed.data, parsed.position)
    named, problems = entries(source, "workers", "EXEC-DOC-006")
    workers = []
    for name, entry in named.items():
        found = list(_problems(source, name, entry, capabilities))
        problems.extend(found)
        if not found:
            labels = entry.get("labels") or {}
            assert isinstance(labels, dict)
            offered = entry.get("capabilities")
            assert isinstance(offered, list)
            workers.append(
                Worker(
                    name, frozenset(map(str, offered)), {str(k): str(v) for k, v in labels.items()}
                )
            )
    if problems:
        raise DefinitionError(problems)
    return workers


def _problems(
    source: RegistryFile, name: str, entry: dict[str, object], known: Mapping[str, Capability]
) -> Iterable[Problem]:
    pointer = pointer_of("workers", name)
    yield from unknown_keys(source, pointer, entry, ("capabilities", "labels"), "EXEC-DOC-006")
    if not _ID.match(name):
        yield source.problem(
            pointer,
            f"worker id {name!r} is not letters, digits, '.', '_' or '-'",
            "rename it, e.g. builder-1",
            "EXEC-DOC-006",
        )
    offered = entry.get("capabilities")
    if not isinstance(offered, list) or not offered:
        yield source.problem(
            pointer + "/capabilities",
            f"worker {name!r} offers no capabilities ({describe(offered)})",
            "list what it offers: capabilities: [shell]",
            "EXEC-DOC-006",
        )
    else:
        for index, capability in enumerate(offered):
            if capability not in known:
                yield source.problem(
                    f"{pointer}/capabilities/{index}",
                    f"worker {name!r} offers {capability!r}, which the capability registry "
                    "does not declare",
                    f"use one of {', '.join(sorted(known))}, or add it to capabilities/",
                    "CAP-REG-002",
                )
    labels = entry.get("labels")
    if labels is not None and not isinstance(labels, dict):
        yield source.problem(
            pointer + "/labels",
            f"the labels of worker {name!r} are {describe(labels)}, not a mapping",
            "write labels: {pool: ci}",
            "EXEC-DOC-006",
        )
