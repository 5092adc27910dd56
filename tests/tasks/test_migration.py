"""v1.0.0 → v2.0.0 migration, in place and idempotent (SCHEMA-VER-002)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestration.cli import main
from orchestration.tasks.loading import load_tasks
from orchestration.tasks.migration import migrate_tasks

V1 = {
    "id": "build",
    "workstream": "ws-001",
    "name": "Build",
    "type": "shell",
    "status": "todo",
    "depends_on": ["fetch"],
    "capabilities": ["shell"],
    "command": "make",
    "timeout": 300,
    "retries": 2,
    "estimate": 45,
    "files": ["Makefile"],
    "created_at": "2024-01-15T10:00:00Z",
}


@pytest.fixture
def v1_pipeline(tmp_path: Path) -> Path:
    folder = tmp_path / "tasks" / "ws-001"
    folder.mkdir(parents=True)
    (folder / "build.json").write_text(json.dumps(V1, indent=2))
    fetch = {"id": "fetch", "name": "Fetch", "type": "shell", "command": "git fetch"}
    (folder / "fetch.json").write_text(json.dumps(fetch))
    return tmp_path


def test_v1_files_become_valid_v2_SCHEMA_VER_002(v1_pipeline: Path) -> None:
    assert len(load_tasks(v1_pipeline).problems) == 2  # both are v1 before
    report = migrate_tasks(v1_pipeline)
    assert report.migrated == ["tasks/ws-001/build.json", "tasks/ws-001/fetch.json"]
    loaded = load_tasks(v1_pipeline)
    assert loaded.problems == []
    build = loaded.tasks["build"]
    assert build.dependencies == ["fetch"]
    assert build.status == "pending"
    assert (build.execution.timeout_seconds, build.execution.max_retries) == (300, 2)
    assert build.execution.estimated_seconds == 45
    assert build.context_requirements.required_files == ["Makefile"]
    assert loaded.tasks["fetch"].workstream_id == "ws-001"  # taken from the folder


def test_migrating_twice_equals_migrating_once_SCHEMA_VER_005(v1_pipeline: Path) -> None:
    migrate_tasks(v1_pipeline)
    before = {p: p.read_bytes() for p in v1_pipeline.rglob("*.json")}
    again = migrate_tasks(v1_pipeline)
    assert again.migrated == [] and again.current == 2
    assert {p: p.read_bytes() for p in v1_pipeline.rglob("*.json")} == before


def test_dry_run_shows_a_diff_and_writes_nothing(
    v1_pipeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {p: p.read_bytes() for p in v1_pipeline.rglob("*.json")}
    assert main(["--root", str(v1_pipeline), "migrate", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "--- a/tasks/ws-001/build.json" in out
    assert '+  "schema_version": "2.0.0",' in out
    assert {p: p.read_bytes() for p in v1_pipeline.rglob("*.json")} == before


def test_unmappable_field_is_refused_not_dropped_SCHEMA_VER_006(v1_pipeline: Path) -> None:
    path = v1_pipeline / "tasks" / "ws-001" / "build.json"
    path.write_text(json.dumps({**V1, "owner": "alice"}))
    before = path.read_bytes()
    report = migrate_tasks(v1_pipeline)
    [problem] = report.problems
    assert "'owner'" in problem.message and problem.requirement == "SCHEMA-VER-002"
    assert path.read_bytes() == before
    assert report.migrated == ["tasks/ws-001/fetch.json"]  # the others still migrate


def test_cli_migrate_reports_json(v1_pipeline: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(v1_pipeline), "migrate", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["migrated"]) == 2 and report["problems"] == []
