"""Validation rules: the checks run in the sandbox before and after an attempt (EXEC-DOC-009).

Stability: provisional.

A task's ``validation_rules.pre_execution`` and ``post_execution`` list rule
names or shell commands. Three names are built in:

- ``git_clean``: ``git status --porcelain`` prints nothing;
- ``tests_pass``: ``python -m pytest -q`` passes (exit 5, no test collected,
  passes too);
- ``no_lint_errors``: ``python -m ruff check .`` finds nothing.

Any other entry runs as ``/bin/sh -c <entry>`` and passes when it exits 0.
The built-in tools run with the engine's own interpreter and leave no cache
in the sandbox (no ``.pytest_cache``, ``.ruff_cache`` or ``__pycache__``), so
that a rule never shows up among the attempt's changes.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["BUILT_IN", "STAGES", "run_rules"]

BUILT_IN: frozenset[str] = frozenset({"git_clean", "tests_pass", "no_lint_errors"})
STAGES = ("pre_execution", "post_execution")
# How much of a failing rule's output its reason quotes (the end, where the verdict is).
_TAIL = 500
# Seconds to collect the output of a rule after its process group was killed.
_DRAIN = 5.0


def run_rules(
    stage: str, rules: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float
) -> str | None:
    """Run ``rules`` in order in ``cwd``; None when all pass, else why the first failed.

    Each rule runs in a process group of its own with ``env`` and gets
    ``timeout`` seconds; a rule that runs longer fails, and its whole group
    is killed. The reason names the stage and the rule and ends with the last
    500 characters of its output, e.g. ``post_execution rule 'tests_pass'
    failed (exit 1): ...``.

    Args:
        stage: ``"pre_execution"`` or ``"post_execution"``.
        rules: the task's rules for that stage.
        cwd: the sandbox.
        env: the environment of every rule.
        timeout: seconds each rule may take.

    Raises:
        ValueError: ``stage`` is not one of :data:`STAGES` (a bug of the caller).
    """
    if stage not in STAGES:
        msg = f"unknown validation stage {stage!r}; use one of {', '.join(STAGES)}"
        raise ValueError(msg)
    for rule in rules:
        if (reason := _run(rule, cwd, env, timeout)) is not None:
            return f"{stage} rule {rule!r} {reason}"
    return None


def _run(rule: str, cwd: Path, env: Mapping[str, str], timeout: float) -> str | None:
    """Why ``rule`` fails, after "rule 'x' ", or None when it passes."""
    python = [sys.executable, "-B"]  # -B: no __pycache__ in the sandbox
    passing = {0}
    if rule == "git_clean":
        argv = ["git", "status", "--porcelain"]
    elif rule == "tests_pass":
        argv = [*python, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        passing = {0, 5}  # 5: no tests were collected
    elif rule == "no_lint_errors":
        if importlib.util.find_spec("ruff") is None:
            return f"cannot run: ruff is not installed for {sys.executable}; pip install ruff"
        argv = [*python, "-m", "ruff", "check", "--no-cache", "."]
    else:
        argv = ["/bin/sh", "-c", rule]
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env={**env, "PYTHONDONTWRITEBYTECODE": "1"} if rule == "tests_pass" else dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as error:
        return f"cannot run `{argv[0]}` in {cwd}: {error.strerror or error}"
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        try:
            output, _ = process.communicate(timeout=_DRAIN)
        except subprocess.TimeoutExpired as error:  # one left the group and holds the pipe
            output = error.output or b""
            if process.stdout is not None:
                process.stdout.close()
            process.wait()
        return f"timed out after {timeout:g} s: {_tail(output)}"
    if process.returncode not in passing:
        return f"failed (exit {process.returncode}): {_tail(output)}"
    if rule == "git_clean" and output.strip():
        return f"failed: the sandbox has uncommitted changes: {_tail(output)}"
    return None


def _tail(output: bytes) -> str:
    text = output.decode("utf-8", errors="replace").strip()
    return text[-_TAIL:] if text else "(no output)"
