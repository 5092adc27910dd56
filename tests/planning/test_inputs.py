"""The cached planner inputs: fast when nothing changed, never stale."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import WriteTask

from orchestration.errors import DefinitionError
from orchestration.planning.inputs import cache_file, plan_inputs


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
