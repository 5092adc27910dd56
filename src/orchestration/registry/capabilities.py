"""The capability registry: what workers offer and tasks require (CAP-REG-001, CAP-REG-004).

Stability: provisional.

``capabilities/registry.psd1`` (or ``capabilities/registry.yaml``, never both,
CAP-REG-006) holds::

    @{
        schema_version = '1.0.0'
        capabilities = @{
            shell = @{ description = 'Runs a shell command'; local = $true; adapter = 'shell' }
        }
    }

Each entry has a non-empty ``description`` and a boolean ``local`` (whether
local workers offer it), and optionally the ``adapter`` that runs it and its
``version`` (``MAJOR.MINOR.PATCH``, compared by semantic-version order,
CAP-REG-005).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import DefinitionError, Problem
from ._source import RegistryFile, describe, entries, pointer_of, read_registry, unknown_keys

__all__ = ["Capability", "load_capabilities"]

_FIELDS = ("description", "local", "adapter", "version")
_SEMVER = re.compile(r"\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?\Z")


@dataclass(frozen=True, slots=True)
class Capability:
    """One capability of the registry.

    Attributes:
        name: the name tasks use in ``worker_requirements.capabilities``.
        description: what it offers.
        local: whether local workers offer it.
        adapter: the worker adapter that runs it, if the registry names one.
        version: its semantic version, if declared.
    """

    name: str
    description: str
    local: bool
    adapter: str | None = None
    version: str | None = None


def load_capabilities(root: Path) -> dict[str, Capability]:
    """The capability registry of the pipeline at ``root``, by name.

    Raises:
        DefinitionError: the registry is missing (CAP-REG-001), declared twice
            (CAP-REG-006), not valid ``.psd1`` (CAP-REG-003) or YAML, of an
            unsupported schema version (SCHEMA-VER-001, SCHEMA-VER-003), or
            has invalid entries (CAP-REG-004); every problem found, located.
    """
    example = "shell = @{ description = 'Runs a shell command'; local = $true }"
    source = read_registry(
        root, "registry", missing="CAP-REG-001", both="CAP-REG-006", example=example
    )
    named, problems = entries(source, "capabilities", "CAP-REG-001")
    capabilities: dict[str, Capability] = {}
    for name, entry in named.items():
        found = list(_entry_problems(source, name, entry))
        problems.extend(found)
        if not found:
            adapter, version = entry.get("adapter"), entry.get("version")
            capabilities[name] = Capability(
                name,
                str(entry["description"]),
                entry["local"] is True,
                adapter if isinstance(adapter, str) else None,
                version if isinstance(version, str) else None,
            )
    if problems:
        raise DefinitionError(problems)
    return capabilities


def _entry_problems(source: RegistryFile, name: str, entry: dict[str, object]) -> Iterator[Problem]:
    pointer = pointer_of("capabilities", name)
    yield from unknown_keys(source, pointer, entry, _FIELDS, "CAP-REG-001")
    description = entry.get("description")
    if not isinstance(description, str) or not description.strip():
        found = "has no description" if description is None else "has an empty description"
        if description is not None and not isinstance(description, str):
            found = f"has a description that is {describe(description)}, not text"
        yield source.problem(
            pointer + ("/description" if "description" in entry else ""),
            f"capability {name!r} {found}",
            "add description = 'what the capability offers'",
            "CAP-REG-004",
        )
    local = entry.get("local")
    if not isinstance(local, bool):
        found = "has no 'local'" if local is None else f"has 'local' {describe(local)} {local!r}"
        yield source.problem(
            pointer + ("/local" if "local" in entry else ""),
            f"capability {name!r} {found}; it must be $true or $false",
            "add local = $true if local workers offer it, else local = $false",
            "CAP-REG-004",
        )
    adapter = entry.get("adapter")
    if "adapter" in entry and (not isinstance(adapter, str) or not adapter.strip()):
        yield source.problem(
            pointer + "/adapter",
            f"the adapter of capability {name!r} is {describe(adapter)}, not a name",
            "write adapter = 'shell' (or another adapter's name), or remove it",
            "CAP-REG-001",
        )
    version = entry.get("version")
    if "version" in entry and not (isinstance(version, str) and _SEMVER.match(version)):
        yield source.problem(
            pointer + "/version",
            f"the version {version!r} of capability {name!r} is not a semantic version",
            "write version = 'MAJOR.MINOR.PATCH', e.g. '1.0.0', quoted",
            "CAP-REG-005",
        )
