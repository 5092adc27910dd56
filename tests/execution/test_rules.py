"""Validation rules run as real processes in the sandbox (EXEC-DOC-009)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from orchestration.execution.rules import BUILT_IN, run_rules
from orchestration.execution.sandbox import Sandbox

ENV = dict(os.environ)


def test_rules_run_in_sandbox_and_name_the_failing_rule_EXEC_DOC_009(sandbox: Sandbox) -> None:
    rules = ["test -f src/app.py", "echo checking; exit 3", "touch never-reached"]
    reason = run_rules("post_execution", rules, sandbox.path, ENV, 10)
    assert reason == "post_execution rule 'echo checking; exit 3' failed (exit 3): checking"
    assert not (sandbox.path / "never-reached").exists()


def test_all_rules_passing_gives_none_EXEC_DOC_009(sandbox: Sandbox) -> None:
    rules = ["git_clean", 'test "$STAGE_VAR" = yes']
    assert run_rules("pre_execution", rules, sandbox.path, {**ENV, "STAGE_VAR": "yes"}, 10) is None
    assert run_rules("pre_execution", [], sandbox.path, ENV, 10) is None


def test_git_clean_fails_on_changes_EXEC_DOC_009(sandbox: Sandbox) -> None:
    (sandbox.path / "README.md").write_text("edited\n")
    (sandbox.path / "stray.txt").write_text("new\n")
    reason = run_rules("pre_execution", ["git_clean"], sandbox.path, ENV, 10)
    assert reason is not None
    assert reason.startswith("pre_execution rule 'git_clean' failed: the sandbox has uncommitted")
    assert "M README.md" in reason and "?? stray.txt" in reason


@pytest.mark.parametrize(
    ("test_file", "verdict"),
    [
        ("def test_ok():\n    assert True\n", None),
        ("def test_broken():\n    assert 1 == 2\n", "failed (exit 1):"),
        (None, None),  # no tests collected (exit 5) passes
    ],
)
def test_tests_pass_EXEC_DOC_009(
    tmp_path: Path, test_file: str | None, verdict: str | None
) -> None:
    if test_file is not None:
        (tmp_path / "test_it.py").write_text(test_file)
    env = {**ENV, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # this machine's plugins take seconds
    reason = run_rules("post_execution", ["tests_pass"], tmp_path, env, 60)
    if verdict is None:
        assert reason is None
    else:
        assert reason is not None and reason.startswith(
            f"post_execution rule 'tests_pass' {verdict}"
        )
        assert "1 failed" in reason
    assert sorted(path.name for path in tmp_path.iterdir()) == (["test_it.py"] if test_file else [])


def test_no_lint_errors_EXEC_DOC_009(tmp_path: Path) -> None:
    (tmp_path / "clean.py").write_text("print('hi')\n")
    assert run_rules("post_execution", ["no_lint_errors"], tmp_path, ENV, 60) is None
    (tmp_path / "dirty.py").write_text("import os\n")
    reason = run_rules("post_execution", ["no_lint_errors"], tmp_path, ENV, 60)
    assert reason is not None and reason.startswith(
        "post_execution rule 'no_lint_errors' failed (exit 1):"
    )
    assert "F401" in reason
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.py", "dirty.py"]  # no cache


def test_reason_quotes_the_last_500_characters_EXEC_DOC_009(tmp_path: Path) -> None:
    rule = "printf 'x%.0s' $(seq 1 2000); echo END; exit 1"
    reason = run_rules("pre_execution", [rule], tmp_path, ENV, 10)
    assert reason is not None and reason.endswith("x" * 497 + "END")


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, killed but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_rule_that_times_out_fails_and_its_group_is_killed_EXEC_DOC_009(tmp_path: Path) -> None:
    rule = "echo started; sleep 30 & echo $! > child; sleep 30"
    began = time.monotonic()
    reason = run_rules("post_execution", [rule], tmp_path, ENV, 0.5)
    assert time.monotonic() - began < 5
    assert reason == f"post_execution rule {rule!r} timed out after 0.5 s: started"
    child = int((tmp_path / "child").read_text())
    deadline = time.monotonic() + 2
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(child)


def test_rule_that_cannot_start_names_the_program_EXEC_DOC_009(tmp_path: Path) -> None:
    reason = run_rules("pre_execution", ["git_clean"], tmp_path / "gone", ENV, 10)
    assert reason is not None and reason.startswith(
        "pre_execution rule 'git_clean' cannot run `git`"
    )


def test_unknown_stage_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown validation stage 'during'"):
        run_rules("during", [], tmp_path, ENV, 1)


def test_built_in_rule_names() -> None:
    assert sorted(BUILT_IN) == ["git_clean", "no_lint_errors", "tests_pass"]
