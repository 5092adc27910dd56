"""The state commands end to end: sync, task, status, next, history, state verify|rebuild."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestration.cli import main

from conftest import WriteTask

Capture = pytest.CaptureFixture[str]


def _json(capsys: Capture, argv: list[str], code: int = 0) -> dict[str, Any]:
    assert main(argv) == code
    return json.loads(capsys.readouterr().out)


def test_sync_then_task_then_status_in_real_processes_SM_DEF_011(pipeline: Path) -> None:
    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "orchestration", "--root", str(pipeline), *argv],
            capture_output=True, text=True, check=False,
        )  # fmt: skip

    assert run("sync").returncode == 0
    done = run("task", "a", "start", "--reason", "go", "--actor", "agent:7")
    assert done.returncode == 0, done.stderr
    assert "ready -> running" in done.stdout and "agent:7" in done.stdout
    done = run("task", "a", "complete")
    assert "b " in done.stdout and "enqueue" in done.stdout  # the cascade is shown
    status = json.loads(run("status", "--format", "json").stdout)
    assert {row["task_id"]: row["status"] for row in status["tasks"]}["b"] == "ready"


def test_rejected_trigger_exits_1_with_allowed_triggers_SM_DEF_006(
    pipeline: Path, capsys: Capture
) -> None:
    assert main(["--root", str(pipeline), "sync"]) == 0
    capsys.readouterr()
    assert main(["--root", str(pipeline), "task", "b", "complete"]) == 1
    err = capsys.readouterr().err
    assert "allowed there:" in err and "Traceback" not in err


def test_status_filters_and_flags_declared_status_STATE_OBS_015(
    pipeline: Path, capsys: Capture, write_task: WriteTask
) -> None:
    assert main(["--root", str(pipeline), "sync"]) == 0
    capsys.readouterr()
    report = _json(capsys, ["--root", str(pipeline), "status", "-s", "ready", "--format", "json"])
    assert [row["task_id"] for row in report["tasks"]] == ["a", "d"]
    assert report["workstreams"]["ws-001"]["status"] == "ready"
    write_task("a", execution={"max_retries": 1}, status="succeeded")
    assert main(["--root", str(pipeline), "sync"]) == 0
    capsys.readouterr()
    assert main(["--root", str(pipeline), "status", "-w", "ws-001"]) == 0
    assert "(file declares succeeded)" in capsys.readouterr().out


def test_next_orders_by_priority_then_slack(
    pipeline: Path, capsys: Capture, write_task: WriteTask
) -> None:
    write_task("d", "ws-002", priority=5)
    assert main(["--root", str(pipeline), "sync"]) == 0
    capsys.readouterr()
    report = _json(capsys, ["--root", str(pipeline), "next", "--all", "--format", "json"])
    assert [row["task_id"] for row in report["tasks"]] == ["d", "a"]
    report = _json(
        capsys, ["--root", str(pipeline), "next", "-c", "gpu", "--format", "json"], code=0
    )
    assert report["tasks"] == [row for row in report["tasks"] if not row["capabilities"]]


def test_next_exits_1_when_nothing_is_ready(pipeline: Path, capsys: Capture) -> None:
    assert main(["--root", str(pipeline), "sync"]) == 0
    for task_id in ("a", "d"):
        assert main(["--root", str(pipeline), "task", task_id, "skip"]) == 0
    assert main(["--root", str(pipeline), "task", "b", "cancel"]) == 0
    capsys.readouterr()
    assert main(["--root", str(pipeline), "next"]) == 1
    assert "no ready task" in capsys.readouterr().err


def test_history_lists_every_change_of_a_task_STATE_OBS_016(
    pipeline: Path, capsys: Capture
) -> None:
    assert main(["--root", str(pipeline), "sync"]) == 0
    assert main(["--root", str(pipeline), "task", "a", "claim"]) == 0
    capsys.readouterr()
    report = _json(capsys, ["--root", str(pipeline), "history", "a", "--format", "json"])
    assert [line["trigger"] for line in report["history"]] == ["create", "enqueue", "claim"]


def test_state_verify_and_rebuild_STATE_OBS_012(pipeline: Path, capsys: Capture) -> None:
    assert main(["--root", str(pipeline), "sync"]) == 0
    assert main(["--root", str(pipeline), "state", "verify"]) == 0
    snapshot = pipeline / ".state" / "current.json"
    document = json.loads(snapshot.read_text())
    document["tasks"]["a"]["status"] = "running"
    snapshot.write_text(json.dumps(document))
    capsys.readouterr()
    report = _json(capsys, ["--root", str(pipeline), "state", "verify", "--format", "json"], code=1)
    assert report["differences"][0]["where"] == "tasks/a"
    assert main(["--root", str(pipeline), "state", "rebuild"]) == 0
    assert main(["--root", str(pipeline), "state", "verify"]) == 0


def test_status_before_sync_is_a_usage_error(pipeline: Path, capsys: Capture) -> None:
    assert main(["--root", str(pipeline), "status"]) == 2
    assert "orchestration sync" in capsys.readouterr().err


def test_invalid_definitions_change_nothing_at_sync(pipeline: Path, capsys: Capture) -> None:
    assert main(["--root", str(pipeline), "sync"]) == 0
    journal = (pipeline / ".state" / "transitions.jsonl").read_bytes()
    (pipeline / "tasks" / "ws-001" / "b.json").write_text("{")
    assert main(["--root", str(pipeline), "sync"]) == 1
    assert (pipeline / ".state" / "transitions.jsonl").read_bytes() == journal
