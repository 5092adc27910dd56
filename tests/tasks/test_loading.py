"""Loading collects every problem, located and explained (TASK-DEF-010)."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestration.errors import Problem
from orchestration.tasks.loading import load_tasks

from conftest import REPO, WriteTask, task_document


def _by_file(problems: list[Problem]) -> dict[str, list[Problem]]:
    found: dict[str, list[Problem]] = {}
    for problem in problems:
        found.setdefault(problem.file, []).append(problem)
    return found


def test_repository_pipeline_loads_without_problems() -> None:
    loaded = load_tasks(REPO)
    assert loaded.problems == []
    assert len(loaded.tasks) >= 18
    assert len({task.workstream_id for task in loaded.tasks.values()}) >= 2


def test_every_problem_is_reported_at_once_TASK_DEF_010(
    tmp_path: Path, write_task: WriteTask
) -> None:
    write_task("ok")
    folder = tmp_path / "tasks" / "ws-001"
    (folder / "empty.json").write_bytes(b"")
    (folder / "bom.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(task_document("bom")).encode())
    (folder / "broken.json").write_text('{\n  "task_id": "broken",\n  "name": "x"\n  "type": 1\n}')
    (folder / "list.json").write_text("[1, 2]")
    write_task("typo", execution={"timeout_secs": 5})
    loaded = load_tasks(tmp_path)
    files = _by_file(loaded.problems)
    assert set(files) == {
        "tasks/ws-001/empty.json",
        "tasks/ws-001/bom.json",
        "tasks/ws-001/broken.json",
        "tasks/ws-001/list.json",
        "tasks/ws-001/typo.json",
    }
    assert list(loaded.tasks) == ["ok"]
    assert all(p.requirement and p.hint and p.message for p in loaded.problems)


def test_malformed_json_reports_line_and_column_TASK_DEF_004(tmp_path: Path) -> None:
    folder = tmp_path / "tasks" / "ws-001"
    folder.mkdir(parents=True)
    (folder / "broken.json").write_text('{\n  "task_id": "broken",\n  "name": "x"\n  "type": 1\n}')
    [problem] = load_tasks(tmp_path).problems
    assert (problem.line, problem.column) == (4, 3)  # where the comma was expected
    assert "delimiter" in problem.message
    assert problem.requirement == "TASK-DEF-004"


def test_bom_is_reported_and_the_rest_still_validated(tmp_path: Path) -> None:
    folder = tmp_path / "tasks" / "ws-001"
    folder.mkdir(parents=True)
    document = task_document("bom", priority="high")
    (folder / "bom.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(document).encode())
    problems = load_tasks(tmp_path).problems
    assert [p.requirement for p in problems] == ["TASK-DEF-004", "TASK-DEF-002"]
    assert problems[1].pointer == "/priority"


def test_wrong_type_and_unknown_field_carry_pointer_and_position_TASK_DEF_015(
    tmp_path: Path, write_task: WriteTask
) -> None:
    write_task("a", execution={"timeout_seconds": "600", "max_retrie": 2})
    problems = {p.pointer: p for p in load_tasks(tmp_path).problems}
    assert set(problems) == {"/execution/timeout_seconds", "/execution/max_retrie"}
    unknown = problems["/execution/max_retrie"]
    assert "max_retries" in unknown.hint  # the allowed names are listed
    text = (tmp_path / "tasks/ws-001/a.json").read_text().splitlines()
    assert '"max_retrie"' in text[unknown.line - 1]
    assert text[unknown.line - 1][unknown.column - 1] == '"'


def test_missing_required_field_is_named(tmp_path: Path, write_task: WriteTask) -> None:
    path = write_task("a")
    document = json.loads(path.read_text())
    del document["name"]
    path.write_text(json.dumps(document))
    [problem] = load_tasks(tmp_path).problems
    assert problem.pointer == "/name"
    assert "missing" in problem.message


def test_duplicate_task_id_across_files_TASK_DEF_003(tmp_path: Path, write_task: WriteTask) -> None:
    write_task("a", "ws-001")
    second = write_task("a", "ws-002")
    [problem] = load_tasks(tmp_path).problems
    assert problem.requirement == "TASK-DEF-003"
    assert problem.file == second.relative_to(tmp_path).as_posix()
    assert "tasks/ws-001/a.json" in problem.message


def test_file_name_and_folder_must_match_ids_TASK_DEF_001(tmp_path: Path) -> None:
    folder = tmp_path / "tasks" / "ws-001"
    folder.mkdir(parents=True)
    (folder / "wrong-name.json").write_text(json.dumps(task_document("a", "ws-002")))
    problems = load_tasks(tmp_path).problems
    assert {p.pointer for p in problems} == {"/task_id", "/workstream_id"}
    assert all(p.requirement == "TASK-DEF-001" for p in problems)


def test_file_outside_a_workstream_folder_is_reported(tmp_path: Path) -> None:
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "a.json").write_text(json.dumps(task_document("a")))
    [problem] = load_tasks(tmp_path).problems
    assert "workstream folder" in problem.message


def test_unknown_dependency_TASK_DEF_005(tmp_path: Path, write_task: WriteTask) -> None:
    write_task("a", dependencies=["b", "ghost"])
    write_task("b")
    [problem] = load_tasks(tmp_path).problems
    assert (problem.requirement, problem.pointer) == ("TASK-DEF-005", "/dependencies/1")
    assert "'ghost'" in problem.message


def test_blocks_must_mirror_dependencies_TASK_DEF_006(
    tmp_path: Path, write_task: WriteTask
) -> None:
    write_task("a", blocks=["b", "c"])
    write_task("b", dependencies=["a"])
    write_task("c")
    [problem] = load_tasks(tmp_path).problems
    assert (problem.requirement, problem.pointer) == ("TASK-DEF-006", "/blocks/1")


def test_v1_file_points_to_migrate_SCHEMA_VER_001(tmp_path: Path) -> None:
    folder = tmp_path / "tasks" / "ws-001"
    folder.mkdir(parents=True)
    (folder / "a.json").write_text(json.dumps({"id": "a", "name": "A", "command": "true"}))
    (folder / "b.json").write_text(json.dumps(task_document("b", schema_version="9.0.0")))
    problems = load_tasks(tmp_path).problems
    assert [p.requirement for p in problems] == ["SCHEMA-VER-001", "SCHEMA-VER-001"]
    assert "migrate" in problems[0].hint
    assert "not supported" in problems[1].message


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=300))
def test_random_bytes_never_raise_TASK_DEF_011(tmp_path: Path, content: bytes) -> None:
    folder = tmp_path / "tasks" / "ws-001"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.json").write_bytes(content)
    loaded = load_tasks(tmp_path)
    assert bool(loaded.problems) != bool(loaded.tasks)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
task_like = st.fixed_dictionaries(
    {
        "schema_version": st.just("2.0.0"),
        "task_id": st.just("a"),
        "workstream_id": st.just("ws-001"),
    },
    optional={
        "name": json_values,
        "type": st.sampled_from(["shell", "aider", 3, None]),
        "execution": st.dictionaries(
            st.sampled_from(
                ["command", "timeout_seconds", "max_retries", "estimated_seconds", "x"]
            ),
            json_values,
        ),
        "dependencies": json_values,
        "state": json_values,
        "priority": json_values,
    },
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=json_values | task_like)
def test_random_json_never_raises_and_is_located_TASK_DEF_011(
    tmp_path: Path, document: object
) -> None:
    folder = tmp_path / "tasks" / "ws-001"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.json").write_text(json.dumps(document, indent=1))
    loaded = load_tasks(tmp_path)
    assert bool(loaded.problems) != bool(loaded.tasks)
    for problem in loaded.problems:
        assert problem.file == "tasks/ws-001/a.json"
        assert problem.requirement.startswith(("TASK-DEF-", "SCHEMA-VER-"))
        if problem.pointer:
            assert problem.pointer.startswith("/")
