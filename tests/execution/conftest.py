"""Real git repositories and sandboxes for the execution tests."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestration.execution.sandbox import Sandbox, create_sandbox
from orchestration.tasks.model import Task

from conftest import REPO, task_document

FAKES = REPO / "tests" / "fakes" / "bin"
IDENTITY = ("-c", "user.name=test", "-c", "user.email=test@example.invalid")

Git = Callable[..., str]
MakeTask = Callable[..., Task]


def run_git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` with a test identity; its stdout, stripped."""
    done = subprocess.run(
        ["git", *IDENTITY, "-c", "commit.gpgsign=false", *args],
        cwd=cwd, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


@pytest.fixture
def git() -> Git:
    """``git(cwd, *args)``: run git with a test identity and return its output."""
    return run_git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one commit: README.md, src/app.py, secrets/key.txt, .gitignore."""
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "secrets").mkdir()
    (root / "README.md").write_text("# demo\n")
    (root / "src" / "app.py").write_text("def answer():\n    return 42\n")
    (root / "secrets" / "key.txt").write_text("hunter2\n")
    (root / ".gitignore").write_text("*.log\n")
    run_git(root, "init", "--quiet", "--initial-branch=main")
    run_git(root, "add", "--all")
    run_git(root, "commit", "--quiet", "-m", "init")
    return root


@pytest.fixture
def sandbox(repo: Path, tmp_path: Path) -> Sandbox:
    """Attempt 1 of task ``t`` in its own worktree of ``repo``."""
    return create_sandbox(repo, tmp_path / "sandboxes" / "t" / "1", "t", 1)


@pytest.fixture
def agent_env() -> dict[str, str]:
    """This process's environment with the fake agents first on PATH."""
    return {**os.environ, "PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}"}


@pytest.fixture
def make_task() -> MakeTask:
    """``make_task(type, **fields)``: a valid task ``t`` of that type."""

    def make(type_: str, /, **fields: Any) -> Task:
        return Task.model_validate(task_document("t", type=type_, **fields))

    return make
