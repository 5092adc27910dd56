"""Real pipelines in git repositories, served by a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from orchestration.api.app import create_app
from orchestration.api.server import bind
from orchestration.enforcement.workflow import Workflow
from orchestration.sdk import AgentClient
from runs import pipeline, task

SECRET = "test-secret-of-at-least-32-bytes-0123456789"
QUICK_PYTEST = "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 python -m pytest"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]

# A tiny package for the agents to work on, and what `python -m pytest -q` needs in a sandbox.
PACKAGE = {
    "pytest.ini": "[pytest]\ntestpaths = tests\naddopts = -p no:cacheprovider\n",
    "calc/__init__.py": '"""A tiny package the agents of the API tests work on."""\n',
    "calc/core.py": "def add(a, b):\n    return 0  # not implemented yet\n",
}


PLANNED = {"plan": {"summary": "s", "acceptance_criteria": ["c"]}, "scope": {"files": ["calc/**"]}}
FAILING_TEST = "from calc.core import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
IMPLEMENTATION = "def add(a, b):\n    return a + b\n"


def into_impl(agent: AgentClient) -> None:
    """Take a claimed task from PLAN to IMPL: a failing test, run by the engine."""
    agent.request_transition("TDD", PLANNED)
    agent.write_file("tests/test_core.py", FAILING_TEST)
    agent.request_transition(
        "IMPL", {"tests": {"files": ["tests/test_core.py"]}, "test_result": agent.run_tests()}
    )


def into_review(agent: AgentClient) -> None:
    """Take a task in IMPL to REVIEW: the implementation, its tests passing in the engine."""
    agent.write_file("calc/core.py", IMPLEMENTATION)
    done = {"summary": "add adds", "files_changed": ["calc/core.py"]}
    agent.request_transition("REVIEW", {"implementation": done, "test_result": agent.run_tests()})


def agent_task(task_id: str, **fields: Any) -> dict[str, Any]:
    """A task for a coding agent offering ``python``."""
    fields.setdefault("worker_requirements", {"capabilities": ["python"]})
    return task(task_id, None, type="claude", **fields)


def agent_pipeline(
    root: Path,
    *tasks: dict[str, Any],
    mode: str = "strict",
    files: dict[str, str] | None = None,
    links: dict[str, str] | None = None,
) -> Path:
    """A committed pipeline holding ``tasks``, the tiny package, and ``files`` and ``links``."""
    pipeline(root, *tasks)
    contract = root / "agent_workflow.yaml"
    text = contract.read_text().replace("mode: strict", f"mode: {mode}")
    # The plugins installed for this suite (schemathesis, hypothesis) take seconds to load.
    text = text.replace("command: python -m pytest", f"command: {QUICK_PYTEST}")
    contract.write_text(text)
    for rel, text in {**PACKAGE, **(files or {})}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    for rel, target in (links or {}).items():
        (root / rel).symlink_to(target)
    subprocess.run([*GIT, "-C", str(root), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(root), "commit", "-qm", "package"], check=True)
    return root


@dataclass
class Served:
    """A pipeline served over HTTP by a real uvicorn server in a thread."""

    root: Path
    url: str
    workflow: Workflow

    def agent(self, agent_id: str, **options: Any) -> AgentClient:
        """An SDK client for ``agent_id`` (close it, or use it as a context manager)."""
        return AgentClient(agent_id, self.url, **options)

    def http(self) -> httpx.Client:
        """A plain HTTP client of the server."""
        return httpx.Client(base_url=self.url, timeout=30)


@contextmanager
def serving(root: Path, *, secret: str = SECRET, lease_ttl: float = 20.0) -> Iterator[Served]:
    """Open the workflow of ``root`` and serve it on a free port until the block ends."""
    with Workflow.open(root, secret=secret, lease_ttl=lease_ttl) as workflow:
        sock = bind("127.0.0.1", 0)
        app = create_app(workflow, stopping=lambda: server.should_exit)
        config = uvicorn.Config(app, log_config=None, log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=1)  # fmt: skip
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        try:
            yield Served(root, f"http://127.0.0.1:{sock.getsockname()[1]}", workflow)
        finally:
            server.should_exit = True
            thread.join(10)
            sock.close()


Serve = Callable[..., Served]


def problem_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem document of ``response``, checked to be RFC 9457 with ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    document: dict[str, Any] = response.json()
    for key in ("type", "title", "status", "detail", "instance", "requirement"):
        assert document.get(key), (key, document)
    assert document["status"] == status
    assert document["instance"] == response.request.url.path
    return document
