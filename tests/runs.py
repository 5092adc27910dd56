"""Pipelines for `run` tests: real git repositories made by `orchestration init`, run by the CLI."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

FAKES = Path(__file__).resolve().parent / "fakes" / "bin"
FAST = {
    "ORCHESTRATOR_RETRY_BASE_SECONDS": "0.05",
    "ORCHESTRATOR_RETRY_MAX_SECONDS": "0.1",
}


def task(task_id: str, command: str | None = None, **fields: Any) -> dict[str, Any]:
    """A task document: a shell task running ``command`` unless ``fields`` say otherwise."""
    execution = {"command": command, "timeout_seconds": 30, **fields.pop("execution", {})}
    return {
        "schema_version": "2.0.0", "task_id": task_id,
        "workstream_id": fields.pop("workstream_id", "ws"), "name": f"Task {task_id}",
        "type": "shell", "worker_requirements": {"capabilities": ["shell"]},
        "execution": execution, **fields,
    }  # fmt: skip


_TEMPLATE: list[Path] = []


def _template() -> Path:
    """A pipeline made once by `orchestration init` (without its example tasks), to copy."""
    if not _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="orchestration-template-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "orchestration", "init", str(folder / "p")],
                       check=True, capture_output=True)  # fmt: skip
        for path in (folder / "p" / "tasks").rglob("*.json"):
            path.unlink()
        _TEMPLATE.append(folder / "p")
    return _TEMPLATE[0]


def pipeline(root: Path, *tasks: dict[str, Any], resources: str = "") -> Path:
    """A committed git pipeline as `orchestration init` makes it, holding ``tasks``."""
    shutil.copytree(_template(), root)
    for document in tasks:
        folder = root / "tasks" / document["workstream_id"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{document['task_id']}.json").write_text(json.dumps(document, indent=2))
    if resources:
        (root / "capabilities" / "resources.psd1").write_text(resources)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run([*git, "-C", str(root), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(root), "commit", "-qm", "pipeline"], check=True)
    return root


def run(root: Path, *args: str, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``orchestration --root ROOT run ARGS`` in a fresh process."""
    environ = {**os.environ, **FAST, "PATH": f"{FAKES}:{os.environ['PATH']}", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "orchestration", "--root", str(root), "run", *args],
        capture_output=True, text=True, env=environ, timeout=timeout, check=False,
    )  # fmt: skip


def snapshot(root: Path) -> dict[str, Any]:
    return json.loads((root / ".state" / "current.json").read_text())


def journal(root: Path) -> list[dict[str, Any]]:
    text = (root / ".state" / "transitions.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def statuses(root: Path) -> dict[str, str]:
    return {t: e["status"] for t, e in snapshot(root)["tasks"].items()}


def evidence(root: Path, task_id: str, attempt: int = 1) -> dict[str, Any]:
    path = root / ".state" / "logs" / task_id / str(attempt) / "evidence.json"
    return json.loads(path.read_text())
