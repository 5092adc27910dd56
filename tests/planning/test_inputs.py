"""The cached planner inputs: fast when nothing changed, never stale."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestration.errors import DefinitionError
from orchestration.planning.inputs import cache_file, plan_inputs
from orchestration.planning.plan import PlanTask, build_plan

from conftest import WriteTask, task_document


def test_unchanged_pipeline_is_planned_without_pydantic(
    tmp_path: Path, write_task: WriteTask
) -> None:
    write_task("a", execution={"estimated_seconds": 5})
    write_task("b", dependencies=["a"])
    command = [sys.executable, "-X", "importtime", "-m", "orchestration", "--root", str(tmp_path), "plan", "--format", "json"]  # fmt: skip
    env = {**os.environ}
    first = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    second = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    assert "pydantic" not in second.stderr
    assert json.loads(first.stdout) == json.loads(second.stdout)


def test_pydantic_is_imported_only_for_files_the_screen_does_not_accept(
    tmp_path: Path, write_task: WriteTask
) -> None:
    """A cold plan of plainly valid files never imports pydantic; any other file does."""
    write_task("a", execution={"estimated_seconds": 5})
    write_task("b", dependencies=["a"])
    command = [sys.executable, "-X", "importtime", "-m", "orchestration", "--root", str(tmp_path), "plan", "--format", "json"]  # fmt: skip
    cold = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cold")}
    screened = subprocess.run(command, capture_output=True, text=True, env=cold, check=True)
    assert "pydantic" not in screened.stderr
    # Valid, but in a form the screen leaves to the model: a space for the "T".
    write_task("b", dependencies=["a"], state={"created_at": "2026-01-01 10:00:00"})
    modelled = subprocess.run(command, capture_output=True, text=True, env=cold, check=True)
    assert "pydantic" in modelled.stderr
    assert json.loads(modelled.stdout) == json.loads(screened.stdout)


def test_an_edit_invalidates_the_cache(tmp_path: Path, write_task: WriteTask) -> None:
    write_task("a", execution={"estimated_seconds": 5})
    assert plan_inputs(tmp_path)[0]["a"].estimated_seconds == 5
    path = write_task("a", execution={"estimated_seconds": 7})
    os.utime(path, ns=(1, 1))  # even an older mtime differs from the cached one
    assert plan_inputs(tmp_path)[0]["a"].estimated_seconds == 7


def test_new_and_removed_files_invalidate_the_cache(tmp_path: Path, write_task: WriteTask) -> None:
    write_task("a")
    assert list(plan_inputs(tmp_path)[0]) == ["a"]
    extra = write_task("b")
    assert sorted(plan_inputs(tmp_path)[0]) == ["a", "b"]
    extra.unlink()
    assert list(plan_inputs(tmp_path)[0]) == ["a"]


def test_invalid_pipeline_is_never_served_from_cache(tmp_path: Path, write_task: WriteTask) -> None:
    write_task("a")
    plan_inputs(tmp_path)
    write_task("a", priority="high")
    for _ in range(2):
        with pytest.raises(DefinitionError):
            plan_inputs(tmp_path)


def test_corrupt_cache_is_ignored(tmp_path: Path, write_task: WriteTask) -> None:
    write_task("a")
    plan_inputs(tmp_path)
    cache_file(tmp_path).write_bytes(b'{"signature": ')
    assert list(plan_inputs(tmp_path)[0]) == ["a"]
    cache_file(tmp_path).write_text('{"signature": 1, "tasks": 5}')
    assert list(plan_inputs(tmp_path)[0]) == ["a"]


def test_parallel_validation_reports_exactly_what_load_tasks_reports(tmp_path: Path) -> None:
    """Forked workers and the serial loader find the same tasks and the same problems."""
    from orchestration.planning import inputs
    from orchestration.tasks.loading import load_tasks

    count = inputs.PARALLEL_FILES + 500
    for number in range(count):
        folder = tmp_path / "tasks" / f"ws-{number // 500}"
        folder.mkdir(parents=True, exist_ok=True)
        deps = [f"t{number - 1}"] if number else []
        document = {"schema_version": "2.0.0", "task_id": f"t{number}", "workstream_id": folder.name, "name": "x", "type": "shell", "dependencies": deps}  # fmt: skip
        (folder / f"t{number}.json").write_text(json.dumps(document))
    (tmp_path / "tasks" / "ws-1" / "t600.json").write_text('{"broken": ')
    (tmp_path / "tasks" / "ws-7" / "t3999.json").write_text(json.dumps({**document, "task_id": "t3999", "priority": "x"}))  # fmt: skip
    serial = load_tasks(tmp_path)
    with pytest.raises(DefinitionError) as raised:
        plan_inputs(tmp_path)
    assert list(raised.value.problems) == serial.problems
    assert len(serial.problems) == 4  # two broken files, two dangling dependencies
    (tmp_path / "tasks" / "ws-1" / "t600.json").unlink()
    (tmp_path / "tasks" / "ws-7" / "t3999.json").unlink()
    for number in (601, 4000):
        path = next((tmp_path / "tasks").glob(f"*/t{number}.json"))
        fixed = json.loads(path.read_text())
        fixed["dependencies"] = []
        path.write_text(json.dumps(fixed))
    tasks, files = plan_inputs(tmp_path)
    serial = load_tasks(tmp_path)
    assert serial.problems == []
    assert list(tasks) == list(serial.tasks) and files == serial.files


def _pipeline_files(tmp_path: Path, documents: list[tuple[str, bytes]]) -> None:
    import shutil

    shutil.rmtree(tmp_path / "tasks", ignore_errors=True)
    for rel, raw in documents:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)


ids = st.sampled_from(["a", "b", "c", "d"])


@st.composite
def pipelines(draw: st.DrawFn) -> list[tuple[str, bytes]]:
    """A few task files: screened, valid only to the model, invalid, misplaced, repeated."""
    documents = []
    for _ in range(draw(st.integers(0, 6))):
        task_id, workstream = draw(ids), draw(st.sampled_from(["ws-1", "ws-2"]))
        fields = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "dependencies": st.lists(ids | st.just("ghost"), max_size=3),
                    "blocks": st.lists(ids, max_size=2),
                    "execution": st.fixed_dictionaries(
                        {}, optional={"estimated_seconds": st.integers(0, 9) | st.just(-1)}
                    ),
                    # Valid, but left by the screen to the model:
                    "state": st.just({"created_at": "2026-01-01 10:00:00"}),
                    "priority": st.just("high") | st.just(1),
                },
            )
        )
        raw = json.dumps(task_document(task_id, workstream, **fields)).encode()
        raw = draw(st.sampled_from([raw, raw, raw, b"", b"{", b"[]", raw[:-1]]))
        name = draw(st.sampled_from([task_id, task_id, task_id, "other"]))
        folder = draw(st.sampled_from([workstream, workstream, "ws-3"]))
        documents.append((f"tasks/{folder}/{name}.json", raw))
    return documents


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(documents=pipelines())
def test_plan_inputs_agrees_with_load_tasks_TASK_DEF_010(
    tmp_path: Path, documents: list[tuple[str, bytes]]
) -> None:
    """Screen or model, cold or cached: the same tasks, files and problems as load_tasks."""
    from orchestration.tasks.loading import load_tasks

    _pipeline_files(tmp_path, documents)
    if cache_file(tmp_path).exists():
        cache_file(tmp_path).unlink()
    serial = load_tasks(tmp_path)
    for _ in range(2):  # cold, then (for a valid pipeline) from the cache
        try:
            tasks, files = plan_inputs(tmp_path)
        except DefinitionError as error:
            # Each file's problems, then those across files (load_tasks reports a
            # repeated id as it meets it, among the files' own).
            across = ("TASK-DEF-003", "TASK-DEF-005", "TASK-DEF-006")
            expected = sorted(serial.problems, key=lambda p: p.requirement in across)
            assert list(error.problems) == expected
            assert serial.problems
            continue
        assert serial.problems == []
        assert files == serial.files
        assert list(tasks.items()) == [(k, PlanTask.of(t)) for k, t in serial.tasks.items()]
        assert cache_file(tmp_path).exists()
        # The heads the table brings along plan exactly as looking every id up.
        assert _shown(tasks, files) == _shown(dict(tasks), files)


def _shown(tasks: Mapping[str, PlanTask], files: dict[str, str]) -> object:
    try:
        made = build_plan(tasks, files)
    except DefinitionError as error:
        return error.problems
    return made.stages, repr(made.schedule), made.critical_path, made.predecessors


def test_a_cold_run_keys_the_cache_as_a_lookup_does(tmp_path: Path, write_task: WriteTask) -> None:
    """With no cache, the workers take each file's signature (fstat): the next run hits."""
    from orchestration import cache
    from orchestration.planning import inputs

    write_task("a")
    write_task("b", dependencies=["a"])
    plan_inputs(tmp_path)
    located = inputs.located_files(tmp_path)
    key = cache.signature(inputs._CODE, [(rel, os.stat(path)) for path, rel in located])
    assert cache.read(cache_file(tmp_path), key) is not None


def test_a_stale_cache_is_replaced(tmp_path: Path, write_task: WriteTask) -> None:
    write_task("a")
    assert list(plan_inputs(tmp_path)[0]) == ["a"]
    write_task("b", dependencies=["a"])
    tasks, files = plan_inputs(tmp_path)
    assert list(tasks) == ["a", "b"] and files["b"] == "tasks/ws-001/b.json"
    assert tasks.heads == [0]
    assert plan_inputs(tmp_path)[0].heads == [0]  # from the cache


def test_unreadable_file_is_reported_as_by_load_tasks(
    tmp_path: Path, write_task: WriteTask
) -> None:
    from orchestration.tasks.loading import load_tasks

    write_task("a")
    (tmp_path / "tasks" / "ws-001" / "b.json").mkdir()  # not a file: read fails
    (tmp_path / "tasks" / "ws-001" / "c.json").symlink_to(tmp_path / "missing")
    with pytest.raises(DefinitionError) as raised:
        plan_inputs(tmp_path)
    assert list(raised.value.problems) == load_tasks(tmp_path).problems
    assert [p.requirement for p in raised.value.problems] == ["TASK-DEF-004"]


def test_every_valid_pipeline_is_served_from_the_cache(
    tmp_path: Path, write_task: WriteTask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even one whose table carries no heads (a dependency listed twice)."""
    from orchestration.planning import inputs

    write_task("a")
    write_task("b", dependencies=["a", "a"])
    first, _ = plan_inputs(tmp_path)
    assert first.heads is None

    def fail(*args: object, **kwargs: object) -> None:
        msg = "the files were read again"
        raise AssertionError(msg)

    monkeypatch.setattr(inputs, "_check", fail)
    again, _ = plan_inputs(tmp_path)
    assert again == first and again.heads is None
