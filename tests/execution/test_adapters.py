"""Worker adapters against real sandboxes and the fake agents in tests/fakes/bin."""

from __future__ import annotations

import json
import pickle
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from orchestration.execution.adapters import (
    AttemptRefused,
    Launch,
    estimate_tokens,
    excluded_change,
    launch,
    result_document,
)
from orchestration.execution.sandbox import Changes, Sandbox, changes
from orchestration.failures import FailureMode
from orchestration.tasks.model import Task

from conftest import REPO

MakeTask = Callable[..., Task]
SECRET = {"ORCHESTRATOR_JWT_SECRET": "s3cret", "HOME": "/home/x", "PATH": "/usr/bin:/bin"}
NO_CHANGES = Changes((), 0, 0, ())


def _launch(task: Task, sandbox: Sandbox, environ: dict[str, str] | None = None) -> Launch:
    result = sandbox.path.parent / "result.json"
    return launch(task, sandbox, 1, result, SECRET if environ is None else environ)


def _spawn(spec: Launch, sandbox: Sandbox, **extra: str) -> Path:
    """Run the launched process as the runner would; the path of its stdout."""
    stdout = sandbox.path.parent / "stdout.txt"
    with stdout.open("wb") as out:
        done = subprocess.run(
            spec.argv, cwd=sandbox.path, env={**spec.env, **extra},
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE, check=False,
        )  # fmt: skip
    assert done.returncode == int(extra.get("FAKE_AGENT_EXIT", "0")), done.stderr
    return stdout


def _refusal(task: Task, sandbox: Sandbox) -> AttemptRefused:
    with pytest.raises(AttemptRefused) as caught:
        _launch(task, sandbox)
    return caught.value


def test_shell_runs_its_command_with_sh(make_task: MakeTask, sandbox: Sandbox) -> None:
    task = make_task("shell", execution={"command": "make test && echo ok"})
    assert _launch(task, sandbox).argv == ("/bin/sh", "-c", "make test && echo ok")


def test_shell_without_command_is_refused(make_task: MakeTask, sandbox: Sandbox) -> None:
    refused = _refusal(make_task("shell"), sandbox)
    assert refused.failure_mode is FailureMode.PRE_VALIDATION
    assert str(refused) == refused.reason
    assert "task 't' has type shell but no execution.command; add one" in str(refused)


def test_manual_task_is_never_launched(make_task: MakeTask, sandbox: Sandbox) -> None:
    refused = _refusal(make_task("manual"), sandbox)
    assert refused.failure_mode is FailureMode.PRE_VALIDATION
    assert "orchestration task t complete" in refused.reason


def test_refusal_survives_pickling(make_task: MakeTask, sandbox: Sandbox) -> None:
    refused = _refusal(make_task("manual"), sandbox)
    copy = pickle.loads(pickle.dumps(refused))
    assert (copy.failure_mode, copy.reason, copy.requirement) == (
        refused.failure_mode, refused.reason, refused.requirement,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("type_", "fields"),
    [("shell", {"execution": {"command": "true"}}), ("aider", {}), ("claude", {})],
)
def test_agent_env_has_no_jwt_secret_AIDER_INT_006(
    make_task: MakeTask, sandbox: Sandbox, type_: str, fields: dict[str, Any]
) -> None:
    env = _launch(make_task(type_, **fields), sandbox).env
    assert "ORCHESTRATOR_JWT_SECRET" not in env
    assert env["HOME"] == "/home/x" and env["PATH"] == "/usr/bin:/bin"
    assert env["ORCHESTRATION_TASK_ID"] == "t"
    assert env["ORCHESTRATION_ATTEMPT"] == "1"
    assert env["ORCHESTRATION_SANDBOX"] == str(sandbox.path)
    assert env["ORCHESTRATION_RESULT"] == str(sandbox.path.parent / "result.json")
    assert (env.get("GIT_TERMINAL_PROMPT") == "0") is (type_ != "shell")
    assert "ORCHESTRATOR_JWT_SECRET" in SECRET  # the caller's mapping is untouched


def test_aider_gets_only_required_files_AIDER_INT_001(
    make_task: MakeTask, sandbox: Sandbox, agent_env: dict[str, str]
) -> None:
    task = make_task(
        "aider",
        description="Make answer return 43",
        context_requirements={"required_files": ["src/app.py"], "max_context_tokens": 1000},
    )
    spec = _launch(task, sandbox, agent_env)
    assert spec.argv == (
        "aider", "--yes-always", "--message", "Make answer return 43", "--map-tokens", "0",
        "src/app.py",
    )  # fmt: skip
    stdout = _spawn(spec, sandbox)
    found = changes(sandbox)
    assert found.files_changed == ("src/app.py",)
    assert len(found.commits) == 1 and found.insertions == 1
    assert "Applied edit to src/app.py" in stdout.read_text()
    assert (
        (sandbox.path / "src" / "app.py")
        .read_text()
        .endswith("# edited by fake aider: Make answer return 43\n")
    )


def test_aider_command_keeps_the_users_flags_AIDER_INT_001(
    make_task: MakeTask, sandbox: Sandbox
) -> None:
    task = make_task(
        "aider",
        execution={"command": "aider --yes --model 'gpt x' --map-tokens 1024"},
        context_requirements={"required_files": ["README.md"]},
    )
    assert _launch(task, sandbox).argv == (
        "aider", "--yes", "--model", "gpt x", "--map-tokens", "1024", "--message", "Task t",
        "README.md",
    )  # fmt: skip


def test_agent_command_with_broken_quoting_is_refused(
    make_task: MakeTask, sandbox: Sandbox
) -> None:
    refused = _refusal(make_task("claude", execution={"command": "claude --model 'opus"}), sandbox)
    assert refused.failure_mode is FailureMode.PRE_VALIDATION
    assert "cannot be split into words (No closing quotation); fix its quoting" in refused.reason


def test_aider_command_giving_files_itself_is_refused_AIDER_INT_001(
    make_task: MakeTask, sandbox: Sandbox
) -> None:
    task = make_task("aider", execution={"command": "aider --read=secrets/key.txt"})
    refused = _refusal(task, sandbox)
    assert (refused.failure_mode, refused.requirement) == (
        FailureMode.PRE_VALIDATION, "AIDER-INT-001",
    )  # fmt: skip
    assert "--read" in refused.reason


@pytest.mark.parametrize("type_", ["aider", "claude"])
def test_missing_required_file_is_refused_AIDER_INT_004(
    make_task: MakeTask, sandbox: Sandbox, type_: str
) -> None:
    task = make_task(type_, context_requirements={"required_files": ["src/gone.py"]})
    refused = _refusal(task, sandbox)
    assert (refused.failure_mode, refused.requirement) == (
        FailureMode.PRE_VALIDATION, "AIDER-INT-004",
    )  # fmt: skip
    assert "required file 'src/gone.py' of task 't' is not a file in the sandbox" in str(refused)


def _outside(sandbox: Sandbox) -> str:
    (sandbox.path.parent / "outside.txt").write_text("not yours\n")
    return "../outside.txt"


def _absolute(sandbox: Sandbox) -> str:
    return str(sandbox.path / "README.md")


def _link_out(sandbox: Sandbox) -> str:
    (sandbox.path.parent / "outside.txt").write_text("not yours\n")
    (sandbox.path / "src" / "link.py").symlink_to(sandbox.path.parent / "outside.txt")
    return "src/link.py"


def _link_loop(sandbox: Sandbox) -> str:
    (sandbox.path / "loop").symlink_to(sandbox.path / "loop")
    return "loop"


@pytest.mark.parametrize("escape", [_outside, _absolute, _link_out, _link_loop])
def test_required_file_outside_the_sandbox_is_refused_AIDER_INT_004(
    make_task: MakeTask, sandbox: Sandbox, escape: Callable[[Sandbox], str]
) -> None:
    name = escape(sandbox)
    task = make_task("aider", context_requirements={"required_files": [name]})
    refused = _refusal(task, sandbox)
    assert (refused.failure_mode, refused.requirement) == (
        FailureMode.PRE_VALIDATION, "AIDER-INT-004",
    )  # fmt: skip
    assert f"required file {name!r} of task 't' resolves outside the sandbox" in str(refused)


@pytest.mark.parametrize("type_", ["aider", "claude"])
def test_excluded_required_file_is_refused_AIDER_INT_002(
    make_task: MakeTask, sandbox: Sandbox, type_: str
) -> None:
    context = {
        "required_files": ["README.md", "secrets/key.txt"],
        "exclude_patterns": ["*.log", "secrets/**"],
    }
    refused = _refusal(make_task(type_, context_requirements=context), sandbox)
    assert (refused.failure_mode, refused.requirement) == (
        FailureMode.EXCLUDED_PATH, "AIDER-INT-002",
    )  # fmt: skip
    assert "'secrets/key.txt' of task 't' matches its exclude pattern 'secrets/**'" in str(refused)


def test_link_to_an_excluded_file_is_refused_AIDER_INT_002(
    make_task: MakeTask, sandbox: Sandbox
) -> None:
    (sandbox.path / "key.txt").symlink_to(sandbox.path / "secrets" / "key.txt")
    context = {"required_files": ["key.txt"], "exclude_patterns": ["secrets/**"]}
    refused = _refusal(make_task("aider", context_requirements=context), sandbox)
    assert refused.failure_mode is FailureMode.EXCLUDED_PATH


@pytest.mark.parametrize("type_", ["aider", "claude"])
def test_context_over_budget_is_refused_with_both_numbers_AIDER_INT_003(
    make_task: MakeTask, sandbox: Sandbox, type_: str
) -> None:
    (sandbox.path / "big.txt").write_text("é" * 2000)  # 4000 UTF-8 bytes
    message = "Summarise big.txt"  # 17 bytes
    fits = (4000 + 17 + 3) // 4
    context = {"required_files": ["big.txt"], "max_context_tokens": fits}
    assert _launch(make_task(type_, description=message, context_requirements=context), sandbox)
    context["max_context_tokens"] = fits - 1
    refused = _refusal(make_task(type_, description=message, context_requirements=context), sandbox)
    assert (refused.failure_mode, refused.requirement) == (
        FailureMode.CONTEXT_TOO_LARGE, "AIDER-INT-003",
    )  # fmt: skip
    assert (
        f"~{fits} tokens" in refused.reason and f"max_context_tokens {fits - 1}" in refused.reason
    )


def test_estimate_is_utf8_bytes_over_four_rounded_up_AIDER_INT_003() -> None:
    assert [estimate_tokens(size) for size in (0, 1, 4, 5, 8, 9)] == [0, 1, 1, 2, 2, 3]


def test_claude_runs_in_print_mode_with_stream_json_AIDER_INT_005(
    make_task: MakeTask, sandbox: Sandbox
) -> None:
    task = make_task("claude", name="Fix the bug")
    assert _launch(task, sandbox).argv == (
        "claude", "-p", "Fix the bug", "--output-format", "stream-json", "--verbose",
    )  # fmt: skip
    task = make_task("claude", execution={"command": "claude --model opus --output-format json"})
    assert _launch(task, sandbox).argv == (
        "claude", "--model", "opus", "-p", "Task t", "--output-format", "stream-json", "--verbose",
    )  # fmt: skip


def test_claude_session_id_recorded_AIDER_INT_005(
    make_task: MakeTask, sandbox: Sandbox, agent_env: dict[str, str]
) -> None:
    task = make_task("claude", description="Write notes")
    spec = _launch(task, sandbox, agent_env)
    stdout = _spawn(spec, sandbox, FAKE_AGENT_WRITE="notes.md")
    init = json.loads(stdout.read_text().splitlines()[0])
    found = changes(sandbox)
    document = result_document(
        task,
        exit_code=0,
        stdout_path=stdout,
        changes=found,
        result_path=Path(spec.env["ORCHESTRATION_RESULT"]),
    )
    assert document["session_id"] == init["session_id"]
    assert document["status"] == "succeeded"
    assert document["files_changed"] == ["notes.md"] and document["commits"] == []
    assert document["summary"] == "Done: Write notes (edited notes.md)"


def test_failing_claude_is_failed_even_with_exit_0_AIDER_INT_005(
    make_task: MakeTask, tmp_path: Path
) -> None:
    stdout = tmp_path / "stdout.txt"
    stdout.write_text(
        'warning: not JSON\n{"type":"result","is_error":true,"session_id":"s-1","result":"no"}\n'
    )
    document = result_document(
        make_task("claude"), exit_code=0, stdout_path=stdout, changes=NO_CHANGES,
        result_path=tmp_path / "none.json",
    )  # fmt: skip
    assert (document["status"], document["session_id"]) == ("failed", "s-1")


def test_claude_without_session_id_is_invalid_AIDER_INT_007(
    make_task: MakeTask, tmp_path: Path
) -> None:
    stdout = tmp_path / "stdout.txt"
    stdout.write_text("plain text, no stream-json\n")
    with pytest.raises(AttemptRefused, match="reported no session id") as caught:
        result_document(
            make_task("claude"), exit_code=0, stdout_path=stdout, changes=NO_CHANGES,
            result_path=tmp_path / "none.json",
        )  # fmt: skip
    assert caught.value.failure_mode is FailureMode.INVALID_RESULT


def test_result_document_validates_against_published_schema_AIDER_INT_007(
    make_task: MakeTask, tmp_path: Path
) -> None:
    schema = json.loads((REPO / "schemas" / "worker_result.schema.json").read_text())
    found = Changes(("a.py", "b.py"), 3, 1, ("c" * 40,))
    document = result_document(
        make_task("shell"), exit_code=0, stdout_path=tmp_path / "out", changes=found,
        result_path=tmp_path / "none.json",
    )  # fmt: skip
    jsonschema.Draft202012Validator(schema).validate(document)
    assert document == {
        "schema_version": "1.0.0", "task_id": "t", "status": "succeeded",
        "files_changed": ["a.py", "b.py"], "commits": ["c" * 40],
        "tests": {"passed": 0, "failed": 0}, "session_id": None,
        "summary": "exit 0; 2 files changed (+3 -1) in 1 commit",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("exit_code", "own", "status"),
    [
        (0, {"status": "failed", "tests": {"passed": 3, "failed": 1}}, "failed"),
        (0, {"tests": {"passed": 3, "failed": 0}, "summary": "all good"}, "succeeded"),
        (1, {"status": "succeeded"}, "failed"),  # a process cannot overrule its exit code
    ],
)
def test_process_result_is_merged_AIDER_INT_007(
    make_task: MakeTask, tmp_path: Path, exit_code: int, own: dict[str, Any], status: str
) -> None:
    result = tmp_path / "result.json"
    result.write_text(json.dumps({**own, "files_changed": ["claimed.py"]}))
    document = result_document(
        make_task("shell"), exit_code=exit_code, stdout_path=tmp_path / "out",
        changes=Changes(("real.py",), 1, 0, ()), result_path=result,
    )  # fmt: skip
    assert document["status"] == status
    assert document["files_changed"] == ["real.py"]  # the engine's observation wins
    assert document["tests"] == own.get("tests", {"passed": 0, "failed": 0})
    assert document["summary"] == own.get(
        "summary", f"exit {exit_code}; 1 file changed (+1 -0) in 0 commits"
    )


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("{not json", "is not valid JSON (line 1 column 2"),
        ("[1, 2]", "holds a JSON list at '' (the root), not an object"),
        (
            '{"tests": {"passed": "3", "failed": 0}}',
            "at /tests/passed: Input should be a valid integer",
        ),
        ('{"tests": {"passed": 1}}', "at /tests/failed: Field required"),
        ('{"status": "done"}', "at /status: Input should be 'succeeded' or 'failed'"),
        ('{"verdict": "ok"}', "at /verdict: Extra inputs are not permitted"),
        ('{"schema_version": "2.0.0"}', "at /schema_version:"),
    ],
)
def test_invalid_result_fails_AIDER_INT_007(
    make_task: MakeTask, tmp_path: Path, text: str, where: str
) -> None:
    result = tmp_path / "result.json"
    result.write_text(text)
    with pytest.raises(AttemptRefused) as caught:
        result_document(
            make_task("shell"), exit_code=0, stdout_path=tmp_path / "out", changes=NO_CHANGES,
            result_path=result,
        )  # fmt: skip
    refused = caught.value
    assert (refused.failure_mode, refused.requirement) == (
        FailureMode.INVALID_RESULT, "AIDER-INT-007",
    )  # fmt: skip
    assert where in refused.reason and str(result) in refused.reason


def test_changes_to_excluded_path_are_named_AIDER_INT_002(
    make_task: MakeTask, sandbox: Sandbox, agent_env: dict[str, str]
) -> None:
    context = {"required_files": ["src/app.py"], "exclude_patterns": ["*.log", "secrets/**"]}
    task = make_task("aider", context_requirements=context)
    assert excluded_change(task, NO_CHANGES) is None
    _spawn(_launch(task, sandbox, agent_env), sandbox, FAKE_AGENT_WRITE="secrets/more.txt")
    found = changes(sandbox)
    assert found.files_changed == ("secrets/more.txt", "src/app.py")
    assert (
        excluded_change(task, found)
        == "path 'secrets/more.txt' matches exclude pattern 'secrets/**'"
    )
    shell = make_task("shell", context_requirements={"exclude_patterns": ["src/*.py"]})
    assert excluded_change(shell, found) == "path 'src/app.py' matches exclude pattern 'src/*.py'"
