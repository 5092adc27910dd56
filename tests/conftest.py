"""Shared fixtures: pipelines written to a real temporary folder."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent

SEED_TASK = REPO / "tasks" / "ws-001" / "task-001.json"


def task_document(task_id: str, workstream: str = "ws-001", /, **fields: Any) -> dict[str, Any]:
    """A minimal valid v2.0.0 task document, with ``fields`` overriding."""
    document: dict[str, Any] = {
        "schema_version": "2.0.0",
        "task_id": task_id,
        "workstream_id": workstream,
        "name": f"Task {task_id}",
        "type": "shell",
    }
    document.update(fields)
    return document


WriteTask = Callable[..., Path]


@pytest.fixture
def write_task(tmp_path: Path) -> WriteTask:
    """Write a task file under ``tmp_path/tasks/<ws>/<id>.json``; returns its path."""
    (tmp_path / "tasks").mkdir(exist_ok=True)

    def write(task_id: str, workstream: str = "ws-001", /, **fields: Any) -> Path:
        folder = tmp_path / "tasks" / workstream
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{task_id}.json"
        path.write_text(json.dumps(task_document(task_id, workstream, **fields), indent=2))
        return path

    return write


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test gets its own plan cache, so none sees another's results."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def pipeline(tmp_path: Path, write_task: WriteTask) -> Path:
    """A pipeline with the repository's lifecycles and tasks a -> b -> c, d (no deps)."""
    import shutil

    shutil.copytree(REPO / "docs" / "state_machines", tmp_path / "docs" / "state_machines")
    write_task("a", execution={"max_retries": 1})
    write_task("b", dependencies=["a"])
    write_task("c", dependencies=["b"])
    write_task("d", "ws-002")
    return tmp_path
