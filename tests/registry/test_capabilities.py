"""The capability registry: one file, .psd1 or YAML, every problem located (CAP-REG)."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import pytest
import yaml

import orchestration.registry
from orchestration.errors import DefinitionError, Problem
from orchestration.registry import Capability, load_capabilities
from orchestration.registry.psd1 import parse

from conftest import REPO

REGISTRY = """\
@{
    schema_version = '1.0.0'
    capabilities = @{
        shell = @{
            description = 'Runs a shell command'
            local = $true
            adapter = 'shell'
            version = '1.0.0'
        }
        claude = @{ description = 'The claude CLI'; local = $false }
    }
}
"""


def write(root: Path, text: str, name: str = "registry.psd1") -> Path:
    path = root / "capabilities" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(root: Path) -> list[Problem]:
    with pytest.raises(DefinitionError) as caught:
        load_capabilities(root)
    return list(caught.value.problems)


def test_CAP_REG_004_shipped_registry_has_local_shell() -> None:
    capabilities = load_capabilities(REPO)
    assert capabilities["shell"].local is True
    assert all(capability.description for capability in capabilities.values())


def test_CAP_REG_001_psd1_registry_loads(tmp_path: Path) -> None:
    write(tmp_path, REGISTRY)
    assert load_capabilities(tmp_path) == {
        "shell": Capability("shell", "Runs a shell command", True, "shell", "1.0.0"),
        "claude": Capability("claude", "The claude CLI", False),
    }


def test_CAP_REG_001_yaml_registry_is_equivalent(tmp_path: Path) -> None:
    psd1_root, yaml_root = tmp_path / "psd1", tmp_path / "yaml"
    write(psd1_root, REGISTRY)
    write(yaml_root, yaml.safe_dump(parse(REGISTRY, "r").value), "registry.yaml")
    assert load_capabilities(yaml_root) == load_capabilities(psd1_root)


def test_CAP_REG_006_both_files_is_one_problem_naming_both(tmp_path: Path) -> None:
    write(tmp_path, REGISTRY)
    write(tmp_path, yaml.safe_dump(parse(REGISTRY, "r").value), "registry.yaml")
    (problem,) = problems_of(tmp_path)
    assert problem.requirement == "CAP-REG-006"
    assert "capabilities/registry.psd1" in problem.message
    assert "capabilities/registry.yaml" in problem.message


def test_CAP_REG_001_missing_registry_says_how_to_create_it(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path)
    assert problem.requirement == "CAP-REG-001"
    assert "capabilities/registry.psd1" in problem.message
    assert "orchestration init" in problem.hint


def test_CAP_REG_003_syntax_error_is_located_in_the_registry_file(tmp_path: Path) -> None:
    write(tmp_path, REGISTRY.replace("$false", "$env:LOCAL"))
    (problem,) = problems_of(tmp_path)
    assert (problem.file, problem.requirement) == ("capabilities/registry.psd1", "CAP-REG-003")
    assert (problem.line, problem.column) == (10, 61)


def test_CAP_REG_003_utf16_and_utf8_with_bom_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, REGISTRY)
    for encoding in ("utf-16", "utf-8-sig"):
        path.write_bytes(REGISTRY.replace("\n", "\r\n").encode(encoding))
        assert set(load_capabilities(tmp_path)) == {"shell", "claude"}


def test_CAP_REG_003_invalid_utf8_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path, "").write_bytes(REGISTRY.encode() + b"\xff\n")
    (problem,) = problems_of(tmp_path)
    assert "not valid utf-8" in problem.message
    assert problem.requirement == "CAP-REG-001"


def test_CAP_REG_004_every_bad_entry_is_reported_with_its_position(tmp_path: Path) -> None:
    write(
        tmp_path,
        """\
@{
    schema_version = '1.0.0'
    capabilities = @{
        nodesc = @{ local = $true }
        emptydesc = @{ description = '  '; local = $true }
        nolocal = @{ description = 'x' }
        stringlocal = @{ description = 'x'; local = 'yes' }
        good = @{ description = 'x'; local = $false }
    }
}
""",
    )
    found = {(p.pointer, p.line, p.column, p.requirement) for p in problems_of(tmp_path)}
    assert found == {
        ("/capabilities/nodesc", 4, 9, "CAP-REG-004"),
        ("/capabilities/emptydesc/description", 5, 24, "CAP-REG-004"),
        ("/capabilities/nolocal", 6, 9, "CAP-REG-004"),
        ("/capabilities/stringlocal/local", 7, 45, "CAP-REG-004"),
    }


def test_CAP_REG_004_yaml_problems_are_located_too(tmp_path: Path) -> None:
    write(
        tmp_path,
        "schema_version: '1.0.0'\ncapabilities:\n  shell:\n    description: Shell\n"
        "    local: 'yes'\n",
        "registry.yaml",
    )
    (problem,) = problems_of(tmp_path)
    assert (problem.file, problem.pointer) == (
        "capabilities/registry.yaml",
        "/capabilities/shell/local",
    )
    assert (problem.line, problem.column, problem.requirement) == (5, 5, "CAP-REG-004")


def test_CAP_REG_001_unknown_keys_are_errors(tmp_path: Path) -> None:
    write(
        tmp_path, REGISTRY.replace("    capabilities = @{", "    extra = 1\n    capabilities = @{")
    )
    (problem,) = problems_of(tmp_path)
    assert (problem.pointer, problem.line, problem.column) == ("/extra", 3, 5)
    assert "unknown key 'extra'" in problem.message
    write(tmp_path, REGISTRY.replace("adapter = 'shell'", "adapter = 'shell'; lokal = 1"))
    (problem,) = problems_of(tmp_path)
    assert (problem.pointer, problem.line, problem.requirement) == (
        "/capabilities/shell/lokal",
        7,
        "CAP-REG-001",
    )
    assert "local" in problem.hint


def test_CAP_REG_005_version_must_be_semantic(tmp_path: Path) -> None:
    write(tmp_path, REGISTRY.replace("    version = '1.0.0'", "    version = 1.5"))
    (problem,) = problems_of(tmp_path)
    assert (problem.pointer, problem.requirement) == ("/capabilities/shell/version", "CAP-REG-005")


@pytest.mark.parametrize("version", ["1.1.0", "2.0.0"])
def test_SCHEMA_VER_003_newer_schema_version_says_to_upgrade(tmp_path: Path, version: str) -> None:
    write(tmp_path, REGISTRY.replace("'1.0.0'\n    capabilities", f"'{version}'\n    capabilities"))
    (problem,) = problems_of(tmp_path)
    assert (problem.requirement, problem.pointer, problem.line) == (
        "SCHEMA-VER-003",
        "/schema_version",
        2,
    )
    assert "upgrade" in problem.hint


def test_SCHEMA_VER_003_older_patch_of_the_same_minor_is_read(tmp_path: Path) -> None:
    write(tmp_path, REGISTRY.replace("'1.0.0'\n    capabilities", "'1.0.7'\n    capabilities"))
    assert set(load_capabilities(tmp_path)) == {"shell", "claude"}


@pytest.mark.parametrize(
    ("replacement", "fragment"),
    [
        ("", "no schema_version"),
        ("schema_version = 1\n", "not a version"),
        ("schema_version = '0.9.0'\n", "not supported"),
    ],
)
def test_SCHEMA_VER_001_missing_or_bad_schema_version(
    tmp_path: Path, replacement: str, fragment: str
) -> None:
    write(tmp_path, REGISTRY.replace("schema_version = '1.0.0'\n", replacement))
    problems = problems_of(tmp_path)
    assert [p.requirement for p in problems] == ["SCHEMA-VER-001"]
    assert fragment in problems[0].message


def test_CAP_REG_001_all_problems_at_once(tmp_path: Path) -> None:
    write(
        tmp_path,
        "@{\n    capabilities = @{ a = 'text'; b = @{}; 7 = @{ local = 1 } }\n    more = 1\n}\n",
    )
    requirements = sorted(p.requirement for p in problems_of(tmp_path))
    assert requirements == [
        "CAP-REG-001",  # a is not a hashtable
        "CAP-REG-001",  # more
        "CAP-REG-004",  # b: description
        "CAP-REG-004",  # b: local
        "CAP-REG-004",  # 7: description
        "CAP-REG-004",  # 7: local
        "SCHEMA-VER-001",
    ]


def test_CAP_REG_001_scaffolded_registry_loads(tmp_path: Path) -> None:
    shutil.copytree(
        REPO / "src/orchestration/scaffold/files/capabilities", tmp_path / "capabilities"
    )
    assert load_capabilities(tmp_path)["shell"].local is True


def test_registry_public_api_is_pinned() -> None:
    assert orchestration.registry.__all__ == [
        "Capability",
        "Resource",
        "ResourceKind",
        "glob_matches",
        "globs_overlap",
        "load_capabilities",
        "load_resources",
    ]


@pytest.mark.parametrize("name", ["", ".psd1", ".capabilities", ".resources", ".globs", "._source"])
def test_MOD_IDX_001_modules_state_stability_and_document_their_names(name: str) -> None:
    module = importlib.import_module("orchestration.registry" + name)
    assert module.__doc__ and "Stability: " in module.__doc__
    assert module.__all__ == sorted(module.__all__)
    for exported in module.__all__:
        value = getattr(module, exported)
        assert callable(value) or isinstance(value, int), exported
        if callable(value):
            assert value.__doc__, exported
