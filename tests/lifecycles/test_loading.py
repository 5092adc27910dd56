"""Lifecycle files are checked on load, every problem located (SM-DEF-001, SM-DEF-002)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from orchestration.cache import cache_file
from orchestration.errors import DefinitionError, Problem
from orchestration.lifecycles import GUARDS, Lifecycle, load_lifecycle, load_lifecycles
from orchestration.tasks.schema import published_schemas

from conftest import REPO

MACHINES = REPO / "docs" / "state_machines"

# A small valid lifecycle; tests edit its text, so line numbers stay easy to follow.
DOOR = """\
schema_version: "1.0.0"
name: door
description: A door.
initial: closed
states:
  closed: {description: "Shut.", terminal: false}
  open:   {description: "Open.", terminal: false}
  gone:   {description: "Removed.", terminal: true}
transitions:
  - trigger: open
    source: closed
    dest: open
    requirement: SM-DEF-004
  - trigger: close
    source: open
    dest: closed
    guards: [lease_valid]
    requirement: SM-DEF-004
  - trigger: remove
    source: [closed, open]
    dest: gone
    requirement: SM-DEF-004
"""


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the ``occurrence``-th line containing ``needle``."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    return found[occurrence - 1]


def problems_of(tmp_path: Path, text: str, name: str = "door") -> list[Problem]:
    path = tmp_path / "docs" / "state_machines" / f"{name}_lifecycle.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    with pytest.raises(DefinitionError) as raised:
        load_lifecycle(path, tmp_path)
    problems = list(raised.value.problems)
    assert all(p.file == f"docs/state_machines/{name}_lifecycle.yaml" for p in problems)
    assert all(p.message and p.hint and p.requirement for p in problems)
    return problems


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, [p.render() for p in problems]
    return problems[0]


@pytest.fixture
def pipeline_root(tmp_path: Path) -> Path:
    """A pipeline holding copies of the repository's three lifecycles."""
    shutil.copytree(MACHINES, tmp_path / "docs" / "state_machines")
    return tmp_path


def edit(root: Path, kind: str, old: str, new: str) -> str:
    path = root / "docs" / "state_machines" / f"{kind}_lifecycle.yaml"
    text = path.read_text()
    assert old in text
    text = text.replace(old, new, 1)
    path.write_text(text)
    return text


# --- the files that ship ----------------------------------------------------------


def test_repository_lifecycles_load_and_compile_SM_DEF_001() -> None:
    lifecycles = load_lifecycles(REPO)
    assert list(lifecycles) == ["task", "workstream", "worker"]
    assert {kind: lc.name for kind, lc in lifecycles.items()} == {
        "task": "task",
        "workstream": "workstream",
        "worker": "worker",
    }
    assert lifecycles["task"].file == "docs/state_machines/task_lifecycle.yaml"
    assert all(isinstance(lc, Lifecycle) for lc in lifecycles.values())


def test_a_valid_file_loads_on_its_own(tmp_path: Path) -> None:
    path = tmp_path / "door_lifecycle.yaml"
    path.write_text(DOOR)
    door = load_lifecycle(path)
    assert (door.name, door.initial, list(door.states)) == (
        "door",
        "closed",
        ["closed", "open", "gone"],
    )
    assert door.file == path.as_posix()


def test_published_schema_accepts_the_repository_files_SM_DEF_002() -> None:
    schema = json.loads(published_schemas()["lifecycle.schema.json"])
    assert (REPO / "schemas" / "lifecycle.schema.json").read_text() == published_schemas()[
        "lifecycle.schema.json"
    ]
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted(MACHINES.glob("*.yaml")):
        validator.validate(yaml.safe_load(path.read_text()))
    bad = yaml.safe_load(DOOR.replace("[lease_valid]", "[door_is_shut]"))
    assert list(validator.iter_errors(bad))
    assert (
        set(schema["$defs"]["TransitionDocument"]["properties"]["guards"]["items"]["enum"])
        == GUARDS
    )


# --- compiled once ------------------------------------------------------------------


def test_loading_twice_returns_the_same_compiled_lifecycle_SM_DEF_003(pipeline_root: Path) -> None:
    first = load_lifecycles(pipeline_root)
    assert cache_file("lifecycles", pipeline_root).exists()  # so the next load is a hit on disk
    again = load_lifecycles(pipeline_root)
    assert all(first[kind] is again[kind] for kind in first)
    path = pipeline_root / "docs" / "state_machines" / "task_lifecycle.yaml"
    assert load_lifecycle(path, pipeline_root) is first["task"]


def test_an_edited_file_is_compiled_again_SM_DEF_003(pipeline_root: Path) -> None:
    first = load_lifecycles(pipeline_root)["worker"]
    edit(pipeline_root, "worker", "Shut down cleanly;", "Shut down cleanly, for good;")
    again = load_lifecycles(pipeline_root)["worker"]
    assert again is not first
    assert (
        again.states["stopped"].description
        == "Shut down cleanly, for good; a later run may start it again."
    )


def test_same_size_and_time_is_the_cache_key(tmp_path: Path) -> None:
    """An unchanged stat means an unchanged file: no re-read, no recompilation."""
    path = tmp_path / "door_lifecycle.yaml"
    path.write_text(DOOR)
    first = load_lifecycle(path)
    stat = path.stat()
    path.write_text(DOOR.replace("A door.", "A dorr."))  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert load_lifecycle(path) is first


# --- every problem, with its line ------------------------------------------------------


def test_missing_files_are_reported_together_SM_DEF_001(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError) as raised:
        load_lifecycles(tmp_path)
    assert [(p.file, p.requirement) for p in raised.value.problems] == [
        ("docs/state_machines/task_lifecycle.yaml", "SM-DEF-001"),
        ("docs/state_machines/workstream_lifecycle.yaml", "SM-DEF-001"),
        ("docs/state_machines/worker_lifecycle.yaml", "SM-DEF-001"),
    ]


def test_yaml_syntax_error_has_line_and_column_SM_DEF_002(tmp_path: Path) -> None:
    text = DOOR.replace("terminal: false}\n  open:", "terminal: false\n  open:", 1)
    problem = only(problems_of(tmp_path, text))
    assert problem.requirement == "SM-DEF-002"
    assert problem.message.startswith("invalid YAML")
    assert problem.line == line_of(text, "open:   {") and problem.column > 0


def test_a_document_that_is_not_a_mapping_is_an_error_SM_DEF_002(tmp_path: Path) -> None:
    assert "empty" in only(problems_of(tmp_path, "# nothing\n")).message
    assert "list" in only(problems_of(tmp_path, "- a\n- b\n")).message


def test_unknown_field_is_an_error_with_line_SM_DEF_002(tmp_path: Path) -> None:
    text = DOOR.replace("    dest: gone\n", "    dest: gone\n    colour: red\n")
    problem = only(problems_of(tmp_path, text))
    assert (problem.pointer, problem.line, problem.column) == (
        "/transitions/2/colour",
        line_of(text, "colour"),
        5,
    )
    assert "unknown field 'colour'" in problem.message
    assert "allowed here: trigger, source, dest" in problem.hint


def test_wrong_types_and_missing_fields_are_errors_with_lines_SM_DEF_002(tmp_path: Path) -> None:
    text = (
        DOOR.replace('"Open.", terminal: false', '"Open.", terminal: "no"')
        .replace("    source: closed\n", "    source: 5\n")
        .replace("    requirement: SM-DEF-004\n  - trigger: remove", "  - trigger: remove")
    )
    problems = problems_of(tmp_path, text)
    found = {(p.pointer, p.line) for p in problems}
    assert found == {
        ("/states/open/terminal", line_of(text, "open:   {")),
        ("/transitions/0/source", line_of(text, "source: 5")),
        ("/transitions/1/requirement", line_of(text, "trigger: close")),  # the item missing it
    }
    assert all(p.requirement == "SM-DEF-002" for p in problems)
    assert any("wrong type (got 5)" in p.message for p in problems)


def test_bad_state_name_points_at_the_key_SM_DEF_002(tmp_path: Path) -> None:
    text = DOOR.replace("  gone:   {", "  Gone:   {")
    problem = only(problems_of(tmp_path, text))
    assert (problem.pointer, problem.line, problem.column) == (
        "/states/Gone",
        line_of(text, "Gone"),
        3,
    )
    assert problem.message.startswith("key 'Gone'")


def test_newer_schema_version_says_to_upgrade_SCHEMA_VER_003(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, DOOR.replace('"1.0.0"', '"1.1.0"')))
    assert (problem.requirement, problem.pointer, problem.line) == (
        "SCHEMA-VER-003",
        "/schema_version",
        1,
    )
    assert "upgrade" in problem.hint


def test_state_declared_twice_is_an_error_SM_DEF_002(tmp_path: Path) -> None:
    text = DOOR.replace(
        "  gone:   {", '  open:   {description: "Ajar.", terminal: false}\n  gone:   {'
    )
    problems = problems_of(tmp_path, text)
    assert any(
        p.line == line_of(text, "Ajar")
        and "given twice" in p.message
        and p.pointer == "/states/open"
        for p in problems
    )


def test_initial_must_be_a_declared_state_SM_DEF_002(tmp_path: Path) -> None:
    text = DOOR.replace("initial: closed", "initial: shut")
    problem = only(problems_of(tmp_path, text))
    assert (problem.pointer, problem.line) == ("/initial", 4)
    assert "'shut' is not a declared state" in problem.message


def test_undeclared_source_and_dest_are_errors_with_lines_SM_DEF_002(tmp_path: Path) -> None:
    text = DOOR.replace("source: [closed, open]", "source: [closed, opne]").replace(
        "dest: gone", "dest: away"
    )
    problems = problems_of(tmp_path, text)
    assert {(p.pointer, p.line) for p in problems} >= {
        ("/transitions/2/source/1", line_of(text, "opne")),
        ("/transitions/2/dest", line_of(text, "away")),
    }
    assert "did you mean 'open'?" in next(p.hint for p in problems if "opne" in p.message)


def test_unknown_guard_is_an_error_with_line_SM_DEF_002(tmp_path: Path) -> None:
    text = DOOR.replace("guards: [lease_valid]", "guards: [lease_valid, lease_vaild]")
    problem = only(problems_of(tmp_path, text))
    assert (problem.requirement, problem.pointer, problem.line) == (
        "SM-DEF-002",
        "/transitions/1/guards/1",
        line_of(text, "lease_vaild"),
    )
    assert "unknown guard 'lease_vaild'" in problem.message
    assert "did you mean 'lease_valid'?" in problem.hint


def test_unreachable_state_is_an_error_with_line_SM_DEF_002(tmp_path: Path) -> None:
    text = DOOR.replace("    dest: open\n", "    dest: closed\n")
    problem = only(problems_of(tmp_path, text))
    assert (problem.pointer, problem.line) == ("/states/open", line_of(text, "open:   {"))
    assert "unreachable" in problem.message


def test_terminal_state_with_an_outgoing_transition_is_an_error_SM_DEF_002(tmp_path: Path) -> None:
    text = (
        DOOR
        + "  - trigger: restore\n    source: gone\n    dest: closed\n    requirement: SM-DEF-004\n"
    )
    problem = only(problems_of(tmp_path, text))
    assert (problem.pointer, problem.line) == (
        "/transitions/3/source",
        line_of(text, "source: gone"),
    )
    assert "terminal state 'gone' has an outgoing transition 'restore'" in problem.message


def test_trigger_declared_twice_from_the_same_source_is_an_error_SM_DEF_002(tmp_path: Path) -> None:
    text = (
        DOOR
        + "  - trigger: open\n    source: [gone, closed]\n    dest: gone\n    requirement: SM-DEF-004\n"
    )
    text = text.replace("source: [gone, closed]", "source: [open, closed]")
    problem = only(problems_of(tmp_path, text))
    assert (problem.pointer, problem.line) == (
        "/transitions/3/source/1",
        line_of(text, "source: [open, closed]"),
    )
    assert "'open' is declared twice from state 'closed'" in problem.message
    assert "line 10" in problem.message  # where the first one is


def test_same_source_listed_twice_in_one_transition_is_an_error_SM_DEF_002(tmp_path: Path) -> None:
    text = DOOR.replace("source: [closed, open]", "source: [closed, open, closed]")
    problem = only(problems_of(tmp_path, text))
    assert problem.pointer == "/transitions/2/source/2"


def test_name_must_match_the_file_SM_DEF_002(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, DOOR, name="task"))
    assert (problem.pointer, problem.line) == ("/name", 2)
    assert "set name: task" in problem.hint


def test_derive_rule_naming_an_unknown_status_is_an_error_SM_DEF_002(tmp_path: Path) -> None:
    text = DOOR + "derive:\n  - {when: any, statuses: [running], status: opened}\n"
    problem = only(problems_of(tmp_path, text))
    assert (problem.pointer, problem.line) == ("/derive/0/status", line_of(text, "opened"))


def test_derive_rules_need_statuses_except_always_SM_DEF_002(tmp_path: Path) -> None:
    text = (
        DOOR
        + "derive:\n  - {when: all, status: open}\n  - {when: always, statuses: [x], status: closed}\n"
    )
    problems = problems_of(tmp_path, text)
    assert [(p.pointer, p.line) for p in problems] == [
        ("/derive/0", line_of(text, "when: all")),
        ("/derive/1/statuses", line_of(text, "when: always")),
    ]


def test_a_state_only_derived_counts_as_reachable_SM_DEF_008(tmp_path: Path) -> None:
    text = DOOR.replace("    dest: open\n", "    dest: closed\n") + (
        "derive:\n  - {when: any, statuses: [running], status: open}\n  - {when: always, status: closed}\n"
    )
    path = tmp_path / "door_lifecycle.yaml"
    path.write_text(text)
    assert load_lifecycle(path).derive(["running"]) == "open"


def test_every_problem_of_every_file_is_reported_at_once_SM_DEF_002(pipeline_root: Path) -> None:
    edit(pipeline_root, "task", "guards: [lease_valid]", "guards: [lease_ok]")
    edit(pipeline_root, "task", "initial: pending", "initial: waiting")
    edit(pipeline_root, "worker", "source: lost", "source: stopped")
    edit(pipeline_root, "worker", "terminal: false}\ntransitions", "terminal: true}\ntransitions")
    (pipeline_root / "docs" / "state_machines" / "workstream_lifecycle.yaml").write_text(
        "name: [\n"
    )
    with pytest.raises(DefinitionError) as raised:
        load_lifecycles(pipeline_root)
    by_file: dict[str, list[str]] = {}
    for problem in raised.value.problems:
        assert problem.line > 0
        by_file.setdefault(problem.file.rsplit("/", 1)[1], []).append(problem.message)
    assert set(by_file) == {
        "task_lifecycle.yaml",
        "workstream_lifecycle.yaml",
        "worker_lifecycle.yaml",
    }
    assert any("lease_ok" in m for m in by_file["task_lifecycle.yaml"])
    assert any("'waiting'" in m for m in by_file["task_lifecycle.yaml"])
    assert any("terminal state 'stopped'" in m for m in by_file["worker_lifecycle.yaml"])
    assert any("invalid YAML" in m for m in by_file["workstream_lifecycle.yaml"])


# --- across the three files ---------------------------------------------------------------


def test_task_lifecycle_must_have_the_required_triggers_SM_DEF_004(pipeline_root: Path) -> None:
    text = edit(pipeline_root, "task", "trigger: unblock", "trigger: resume")
    with pytest.raises(DefinitionError) as raised:
        load_lifecycles(pipeline_root)
    [problem] = raised.value.problems
    assert (problem.requirement, problem.pointer, problem.line) == (
        "SM-DEF-004",
        "/transitions",
        line_of(text, "transitions:"),
    )
    assert "unblock" in problem.message


def test_worker_lifecycle_must_start_idle_SM_DEF_009(pipeline_root: Path) -> None:
    edit(pipeline_root, "worker", "initial: idle", "initial: busy")
    with pytest.raises(DefinitionError) as raised:
        load_lifecycles(pipeline_root)
    assert [(p.requirement, p.pointer) for p in raised.value.problems] == [
        ("SM-DEF-009", "/initial")
    ]


def test_derive_statuses_must_be_task_statuses_SM_DEF_002(pipeline_root: Path) -> None:
    text = edit(
        pipeline_root, "workstream", "statuses: [running, claimed]", "statuses: [running, clamed]"
    )
    with pytest.raises(DefinitionError) as raised:
        load_lifecycles(pipeline_root)
    [problem] = raised.value.problems
    assert (problem.requirement, problem.pointer, problem.line) == (
        "SM-DEF-002",
        "/derive/2/statuses/1",
        line_of(text, "clamed"),
    )
    assert "did you mean 'claimed'?" in problem.hint


def test_workstream_lifecycle_must_declare_derive_rules_SM_DEF_008(pipeline_root: Path) -> None:
    path = pipeline_root / "docs" / "state_machines" / "workstream_lifecycle.yaml"
    document = yaml.safe_load(path.read_text())
    del document["derive"]
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(DefinitionError) as raised:
        load_lifecycles(pipeline_root)
    assert [p.requirement for p in raised.value.problems] == ["SM-DEF-008"]


# --- cached across processes ----------------------------------------------------------------

# Prints every field of the lifecycles of the pipeline at argv[1], in order.
LOAD = (
    "import sys; from pathlib import Path; from orchestration.lifecycles import load_lifecycles; "
    "print(repr(load_lifecycles(Path(sys.argv[1]))))"
)


def load_elsewhere(root: Path) -> tuple[str, str]:
    """The lifecycles of ``root`` loaded by a new process: their repr, and its import times."""
    command = [sys.executable, "-X", "importtime", "-c", LOAD, str(root)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return done.stdout, done.stderr


def test_importing_the_package_imports_neither_pydantic_nor_yaml() -> None:
    code = "import sys, orchestration.lifecycles; sys.exit('pydantic' in sys.modules or 'yaml' in sys.modules)"  # fmt: skip
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_a_warm_load_builds_the_same_lifecycles_without_pydantic_or_yaml(
    pipeline_root: Path,
) -> None:
    cold, cold_imports = load_elsewhere(pipeline_root)
    warm, warm_imports = load_elsewhere(pipeline_root)
    assert "pydantic" in cold_imports and "yaml" in cold_imports
    assert "pydantic" not in warm_imports and "yaml" not in warm_imports
    assert warm == cold == repr(load_lifecycles(pipeline_root)) + "\n"


def test_a_warm_task_command_imports_neither_pydantic_nor_yaml(pipeline: Path) -> None:
    """The command agents call most often, end to end."""
    command = [sys.executable, "-X", "importtime", "-m", "orchestration", "--root", str(pipeline)]
    subprocess.run([*command, "sync"], capture_output=True, check=True)
    cache_file("lifecycles", pipeline).unlink()
    cold = subprocess.run([*command, "task", "a", "claim"], capture_output=True, text=True)
    warm = subprocess.run([*command, "task", "a", "release"], capture_output=True, text=True)
    assert (cold.returncode, warm.returncode) == (0, 0), cold.stderr[-500:] + warm.stderr[-500:]
    assert "ready -> claimed" in cold.stdout and "claimed -> ready" in warm.stdout
    assert "pydantic" in cold.stderr and "yaml" in cold.stderr
    assert "pydantic" not in warm.stderr and "yaml" not in warm.stderr


def test_an_edit_invalidates_the_cache_even_to_an_older_time(pipeline_root: Path) -> None:
    load_elsewhere(pipeline_root)
    path = pipeline_root / "docs" / "state_machines" / "worker_lifecycle.yaml"
    text = path.read_text()
    path.write_text(text.replace("Shut down cleanly;", "Shut down quickly;"))  # same size
    os.utime(path, ns=(1, 1))
    assert path.stat().st_size == len(text)
    assert (
        "'Shut down quickly; a later run may start it again.'" in load_elsewhere(pipeline_root)[0]
    )
    assert load_lifecycles(pipeline_root)["worker"].states["stopped"].description == (
        "Shut down quickly; a later run may start it again."
    )


def test_an_invalid_file_is_never_served_from_cache(pipeline_root: Path) -> None:
    load_elsewhere(pipeline_root)
    edit(pipeline_root, "task", "guards: [lease_valid]", "guards: [lease_ok]")
    for _ in range(2):
        with pytest.raises(DefinitionError) as raised:
            load_lifecycles(pipeline_root)
        assert any("lease_ok" in p.message for p in raised.value.problems)
        command = [sys.executable, "-c", LOAD, str(pipeline_root)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        assert done.returncode != 0 and "DefinitionError" in done.stderr


def test_lifecycles_with_problems_across_files_are_not_cached(pipeline_root: Path) -> None:
    edit(pipeline_root, "workstream", "statuses: [running, claimed]", "statuses: [running, clamed]")
    for _ in range(2):
        with pytest.raises(DefinitionError):
            load_lifecycles(pipeline_root)
    assert not cache_file("lifecycles", pipeline_root).exists()


def test_a_corrupt_cache_file_is_ignored_and_replaced(pipeline_root: Path) -> None:
    expected, _ = load_elsewhere(pipeline_root)
    stored = cache_file("lifecycles", pipeline_root)
    written = stored.read_bytes()
    for corrupt in (b'{"signature": ', b"[]", b"{}", b'{"data": {}}', written[:-1]):
        stored.write_bytes(corrupt)
        assert load_elsewhere(pipeline_root)[0] == expected
        assert stored.read_bytes() == written


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("task", "states", 5),
        ("task", "name", None),  # None: the field is left out
        ("workstream", "derive", [["sometimes", ["ready"], "ready"]]),
        ("worker", "transitions", [["stop"]]),
    ],
)
def test_cached_data_in_another_form_is_ignored_and_replaced(
    pipeline_root: Path, kind: str, field: str, value: Any
) -> None:
    """The right signature over data that the loader does not write: the files are loaded."""
    expected, _ = load_elsewhere(pipeline_root)
    stored = cache_file("lifecycles", pipeline_root)
    written = stored.read_bytes()
    document = json.loads(written)
    entry = document["data"][kind]
    if value is None:
        del entry[field]
    else:
        entry[field] = value
    stored.write_text(json.dumps(document))
    assert load_elsewhere(pipeline_root)[0] == expected
    assert stored.read_bytes() == written


def test_problems_across_files_are_located_in_a_file_served_from_cache(pipeline_root: Path) -> None:
    """A lifecycle built from the cache has no parsed file; a problem in it still has its line."""
    load_elsewhere(pipeline_root)
    load_lifecycles(pipeline_root)  # built from the cache in this process
    workstream = (
        pipeline_root / "docs" / "state_machines" / "workstream_lifecycle.yaml"
    ).read_text()
    task = pipeline_root / "docs" / "state_machines" / "task_lifecycle.yaml"
    task.write_text(task.read_text().replace("skipped", "omitted"))
    with pytest.raises(DefinitionError) as raised:
        load_lifecycles(pipeline_root)
    located = [
        (p.file.rsplit("/", 1)[1], p.requirement, p.pointer, p.line) for p in raised.value.problems
    ]
    assert located == [
        ("task_lifecycle.yaml", "SM-DEF-004", "/states", line_of(task.read_text(), "states:")),
        (
            "workstream_lifecycle.yaml",
            "SM-DEF-002",
            "/derive/1/statuses/1",
            line_of(workstream, "statuses: [succeeded, skipped"),
        ),
    ]
