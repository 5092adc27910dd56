"""The cached planner inputs: fast when nothing changed, never stale."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestration.errors import DefinitionError
from orchestration.planning.inputs import cache_file, plan_inputs

from conftest import WriteTask


def test_unchanged_pipeline_is_planned_without_pydantic(
    tmp_path: Path, write_task: WriteTask
) -> None:
    write_task("a", execution={"estimated_seconds": 5})
    write_task("b", dependencies=["a"])
    command = [sys.executable, "-X", "importtime", "-m", "orchestration", "--root", str(tmp_path), "plan", "--format", "json"]  # fmt: skip
    env = {**os.environ}
    first = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    second = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    assert "pydantic" in first.stderr
    assert "pydantic" not in second.stderr
    assert json.loads(first.stdout) == json.loads(second.stdout)


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
