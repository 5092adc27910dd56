"""End-to-end through the command line: exit codes, formats, errors."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from orchestration.cli import main

from conftest import REPO, WriteTask

Capture = pytest.CaptureFixture[str]


def test_plan_json_has_the_documented_shape_DAG_VIEW_004_DAG_VIEW_007(capsys: Capture) -> None:
    assert main(["--root", str(REPO), "plan", "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert {"tasks", "edges", "stages", "critical_path", "critical_path_seconds"} <= set(plan)
    assert plan["tasks"] == sum(map(len, plan["stages"])) == len(plan["schedule"])
    assert plan["stage_widths"] == [len(stage) for stage in plan["stages"]]
    first = plan["schedule"][plan["critical_path"][0]]
    assert set(first) == {
        "workstream", "stage", "estimated_seconds", "earliest_start", "earliest_finish",
        "latest_start", "latest_finish", "slack", "critical",
    }  # fmt: skip
    assert plan["defaulted_estimates"] >= 1  # the repository exercises the default


def test_python_m_orchestration_plan_in_a_real_process_DAG_VIEW_009() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "orchestration", "plan"],
        cwd=REPO / "tasks",  # found by walking up, like git
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "critical path:" in done.stdout
    assert "without execution.estimated_seconds: assumed 60s each" in done.stdout
    assert "\x1b" not in done.stdout  # no terminal escapes in a pipe


def test_table_on_a_terminal_uses_rich() -> None:
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "160", "TERM": "xterm"}
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestration", "--root", str(REPO), "plan"],
        stdout=follower,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.stderr is not None
    with process.stderr:
        errors = process.stderr.read()
    assert process.wait(timeout=60) == 0, errors
    os.close(leader)
    screen = b"".join(chunks).decode()
    assert "Execution plan" in screen and "━" in screen  # a rich table, not plain lines


def test_invalid_definitions_exit_1_and_list_every_problem_DAG_VIEW_008(
    tmp_path: Path, write_task: WriteTask, capsys: Capture
) -> None:
    write_task("a", dependencies=["ghost"])
    write_task("b", priority="high")
    assert main(["--root", str(tmp_path), "plan"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "tasks/ws-001/a.json" in captured.err and "TASK-DEF-005" in captured.err
    assert "tasks/ws-001/b.json" in captured.err and "/priority" in captured.err
    assert "2 problems found" in captured.err
    assert "Traceback" not in captured.err


def test_invalid_definitions_as_json_keep_stdout_pure(
    tmp_path: Path, write_task: WriteTask, capsys: Capture
) -> None:
    write_task("a", dependencies=["ghost"])
    assert main(["--root", str(tmp_path), "plan", "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    [problem] = report["problems"]
    assert problem["pointer"] == "/dependencies/0" and problem["requirement"] == "TASK-DEF-005"


def test_cycle_exits_1_naming_tasks_and_files_DAG_VIEW_001(
    tmp_path: Path, write_task: WriteTask, capsys: Capture
) -> None:
    write_task("a", dependencies=["c"])
    write_task("b", dependencies=["a"])
    write_task("c", "ws-002", dependencies=["b"])
    write_task("d", dependencies=["a"])
    assert main(["--root", str(tmp_path), "plan"]) == 1
    err = capsys.readouterr().err
    assert "dependency cycle: a -> c -> b -> a" in err
    assert "c in tasks/ws-002/c.json" in err


def test_no_pipeline_is_a_usage_error(tmp_path: Path, capsys: Capture) -> None:
    assert main(["--root", str(tmp_path), "plan"]) == 2
    assert "orchestration init" in capsys.readouterr().err


def test_bad_flag_is_a_usage_error(capsys: Capture) -> None:
    assert main(["plan", "--no-such-flag"]) == 2
    assert "No such option" in capsys.readouterr().err


def test_unknown_target_is_a_usage_error(capsys: Capture) -> None:
    assert main(["--root", str(REPO), "plan", "--target", "task-0001"]) == 2
    assert "did you mean 'task-001'" in capsys.readouterr().err


def test_help_teaches(capsys: Capture) -> None:
    assert main(["plan", "--help"]) == 0
    out = capsys.readouterr().out
    assert "critical path" in out.lower() and "Examples:" in out


def test_target_and_workstream_narrow_the_plan(capsys: Capture) -> None:
    assert main(["--root", str(REPO), "plan", "--format", "json"]) == 0
    whole = json.loads(capsys.readouterr().out)
    last = whole["stages"][-1][0]
    assert main(["--root", str(REPO), "plan", "--format", "json", "--target", last]) == 0
    narrowed = json.loads(capsys.readouterr().out)
    assert narrowed["critical_path"][-1] == last
    assert narrowed["tasks"] <= whole["tasks"]
    workstream = whole["schedule"][last]["workstream"]
    assert main(["--root", str(REPO), "plan", "--format", "json", "-w", workstream]) == 0
    only = json.loads(capsys.readouterr().out)
    assert list(only["workstreams"]) == [workstream]


@pytest.mark.parametrize(("fmt", "marker"), [("mermaid", "flowchart LR"), ("dot", "digraph plan")])
def test_pictures_DAG_VIEW_005(fmt: str, marker: str, capsys: Capture) -> None:
    assert main(["--root", str(REPO), "plan", "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert out.startswith(marker)
    assert out.count("-->" if fmt == "mermaid" else "->") >= 10


def test_init_scaffolds_a_pipeline_that_plans_MOD_IDX_008(tmp_path: Path, capsys: Capture) -> None:
    target = tmp_path / "new"
    assert main(["init", str(target)]) == 0
    assert (target / "specifications/content/orchestration/spec.md").is_file()
    assert (target / "capabilities/registry.psd1").is_file()
    assert (target / "docs/state_machines/task_lifecycle.yaml").is_file()
    assert ".state/" in (target / ".gitignore").read_text().splitlines()
    capsys.readouterr()
    assert main(["--root", str(target), "plan", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["tasks"] >= 2


def test_init_never_overwrites_MOD_IDX_008(tmp_path: Path, capsys: Capture) -> None:
    (tmp_path / "capabilities").mkdir()
    (tmp_path / "capabilities" / "registry.psd1").write_text("@{ Mine = 1 }\n")
    (tmp_path / ".gitignore").write_text("node_modules/")
    assert main(["init", str(tmp_path), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "capabilities/registry.psd1" in report["kept"]
    assert (tmp_path / "capabilities" / "registry.psd1").read_text() == "@{ Mine = 1 }\n"
    assert (tmp_path / ".gitignore").read_text().splitlines()[0] == "node_modules/"
    assert main(["init", str(tmp_path), "--format", "json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["created"] == []


def test_lifecycle_diagrams_are_current_SM_DEF_010(tmp_path: Path, capsys: Capture) -> None:
    assert main(["--root", str(REPO), "lifecycles", "--check"]) == 0
    assert main(["init", str(tmp_path)]) == 0
    assert main(["--root", str(tmp_path), "lifecycles", "--check"]) == 0  # init ships it current
    worker = tmp_path / "docs" / "state_machines" / "worker_lifecycle.yaml"
    worker.write_text(worker.read_text().replace("description:", "description: Edited.", 1))
    assert main(["--root", str(tmp_path), "lifecycles", "--check"]) == 1
    assert "is stale" in capsys.readouterr().err
    assert main(["--root", str(tmp_path), "lifecycles"]) == 0
    assert main(["--root", str(tmp_path), "lifecycles", "--check"]) == 0
