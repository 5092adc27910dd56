"""The resource registry: counted resources and path locks (CONC-REG-001, CONC-REG-002)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from orchestration.errors import DefinitionError, Problem
from orchestration.registry import Resource, ResourceKind, globs_overlap, load_resources
from orchestration.registry.psd1 import parse

from conftest import REPO

RESOURCES = """\
@{
    schema_version = '1.0.0'
    resources = @{
        'llm-api' = @{ kind = 'counted'; capacity = 4; description = 'API requests' }
        docs = @{
            kind = 'path_lock'
            capacity = 1
            paths = @('docs/**', 'README.md')
        }
    }
}
"""


def write(root: Path, text: str, name: str = "resources.psd1") -> None:
    path = root / "capabilities" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def problems_of(root: Path) -> list[Problem]:
    with pytest.raises(DefinitionError) as caught:
        load_resources(root)
    return list(caught.value.problems)


def entry_problems(tmp_path: Path, entry: str) -> list[tuple[str, int, int, str]]:
    """Problems of a registry holding one resource ``r`` written as ``entry``."""
    write(
        tmp_path,
        f"@{{\n    schema_version = '1.0.0'\n    resources = @{{\n        r = {entry}\n    }}\n}}\n",
    )
    return [(p.pointer, p.line, p.column, p.requirement) for p in problems_of(tmp_path)]


def test_CONC_REG_001_shipped_resources_load_and_locks_do_not_overlap() -> None:
    resources = load_resources(REPO)
    assert resources["llm-api"].kind is ResourceKind.COUNTED
    assert resources["llm-api"].paths == ()
    locks = [r for r in resources.values() if r.kind is ResourceKind.PATH_LOCK]
    assert locks and all(lock.paths and lock.capacity == 1 for lock in locks)
    for first, second in itertools.combinations(locks, 2):
        assert not any(globs_overlap(a, b) for a in first.paths for b in second.paths)


def test_CONC_REG_001_psd1_resources_load(tmp_path: Path) -> None:
    write(tmp_path, RESOURCES)
    assert load_resources(tmp_path) == {
        "llm-api": Resource("llm-api", ResourceKind.COUNTED, 4, "API requests"),
        "docs": Resource("docs", ResourceKind.PATH_LOCK, 1, "", ("docs/**", "README.md")),
    }


def test_CONC_REG_001_yaml_resources_are_equivalent(tmp_path: Path) -> None:
    write(tmp_path / "psd1", RESOURCES)
    write(tmp_path / "yaml", yaml.safe_dump(parse(RESOURCES, "r").value), "resources.yaml")
    assert load_resources(tmp_path / "yaml") == load_resources(tmp_path / "psd1")


def test_CONC_REG_001_both_files_is_one_problem_naming_both(tmp_path: Path) -> None:
    write(tmp_path, RESOURCES)
    write(tmp_path, yaml.safe_dump(parse(RESOURCES, "r").value), "resources.yaml")
    (problem,) = problems_of(tmp_path)
    assert problem.requirement == "CONC-REG-001"
    assert "capabilities/resources.psd1" in problem.message
    assert "capabilities/resources.yaml" in problem.message


def test_CONC_REG_001_missing_registry_says_how_to_create_it(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path)
    assert problem.requirement == "CONC-REG-001"
    assert "orchestration init" in problem.hint


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("@{ kind = 'counted' }", [("", "", "CONC-REG-002")]),
        ("@{ kind = 'counted'; capacity = 0 }", [("/capacity", "capacity", "CONC-REG-002")]),
        ("@{ kind = 'counted'; capacity = -2 }", [("/capacity", "capacity", "CONC-REG-002")]),
        ("@{ kind = 'counted'; capacity = '2' }", [("/capacity", "capacity", "CONC-REG-002")]),
        ("@{ kind = 'counted'; capacity = 1.5 }", [("/capacity", "capacity", "CONC-REG-002")]),
        ("@{ kind = 'counted'; capacity = $true }", [("/capacity", "capacity", "CONC-REG-002")]),
        ("@{ capacity = 1 }", [("", "", "CONC-REG-001")]),
        ("@{ kind = 'gpu'; capacity = 1 }", [("/kind", "kind", "CONC-REG-001")]),
        (
            "@{ kind = 'counted'; capacity = 1; paths = @('a/**') }",
            [("/paths", "paths", "CONC-REG-001")],
        ),
        ("@{ kind = 'path_lock'; capacity = 1 }", [("", "", "CONC-REG-001")]),
        (
            "@{ kind = 'path_lock'; capacity = 1; paths = @() }",
            [("/paths", "paths", "CONC-REG-001")],
        ),
        (
            "@{ kind = 'path_lock'; capacity = 1; paths = 'docs/**' }",
            [("/paths", "paths", "CONC-REG-001")],
        ),
        (
            "@{ kind = 'path_lock'; capacity = 1; paths = '/abs/**', 'a\\b', 'dir/', 'ok/**', 3 }",
            [
                ("/paths/0", "'/abs", "CONC-REG-001"),
                ("/paths/1", "'a\\", "CONC-REG-001"),
                ("/paths/2", "'dir/'", "CONC-REG-001"),
                ("/paths/4", "3 }", "CONC-REG-001"),
            ],
        ),
        (
            "@{ kind = 'counted'; capacity = 1; description = 5; owner = 'me' }",
            [("/owner", "owner", "CONC-REG-001"), ("/description", "description", "CONC-REG-001")],
        ),
        ("'not a table'", [("", "", "CONC-REG-001")]),
    ],
)
def test_CONC_REG_002_entries_are_validated_with_positions(
    tmp_path: Path, entry: str, expected: list[tuple[str, str, str]]
) -> None:
    """Each problem points at the field at fault (``needle``), or at ``r`` when it is missing."""
    prefix = "        r = "
    assert entry_problems(tmp_path, entry) == [
        (
            "/resources/r" + pointer,
            4,
            len(prefix) + entry.index(needle) + 1 if needle else 9,
            requirement,
        )
        for pointer, needle, requirement in expected
    ]


def test_CONC_REG_002_all_problems_of_all_entries_at_once(tmp_path: Path) -> None:
    write(
        tmp_path,
        RESOURCES.replace("capacity = 4", "capacity = 0").replace(
            "capacity = 1", "capacity = 'one'"
        ),
    )
    found = [(p.pointer, p.requirement) for p in problems_of(tmp_path)]
    assert found == [
        ("/resources/llm-api/capacity", "CONC-REG-002"),
        ("/resources/docs/capacity", "CONC-REG-002"),
    ]


def test_SCHEMA_VER_003_newer_schema_version_says_to_upgrade(tmp_path: Path) -> None:
    write(
        tmp_path,
        RESOURCES.replace("'1.0.0'", "'1.3.0'").replace("kind = 'counted'", "kind = 'new'"),
    )
    (problem,) = problems_of(tmp_path)
    assert (problem.requirement, problem.line) == ("SCHEMA-VER-003", 2)
    assert "upgrade" in problem.hint


def test_CONC_REG_001_yaml_that_is_not_a_mapping(tmp_path: Path) -> None:
    write(tmp_path, "- just\n- a list\n", "resources.yaml")
    (problem,) = problems_of(tmp_path)
    assert (problem.file, problem.requirement, problem.line) == (
        "capabilities/resources.yaml",
        "CONC-REG-001",
        1,
    )
