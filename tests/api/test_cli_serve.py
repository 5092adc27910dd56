"""``orchestration serve`` and ``orchestration agent-prompt`` as users run them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from api.served import agent_pipeline, agent_task
from orchestration.cli import main


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without any ORCHESTRATOR_* variable, plus ``extra``."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    return {**kept, **extra}


def serve(root: Path, *args: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestration", "--root", str(root), "serve", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(**extra),
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return agent_pipeline(tmp_path / "p", agent_task("t1", description="Add numbers."))


@pytest.mark.parametrize("secret", [None, "ten-bytes!"])
def test_serve_refuses_to_start_without_a_strong_secret_AGENT_WF_008(
    root: Path, secret: str | None
) -> None:
    extra = {} if secret is None else {"ORCHESTRATOR_JWT_SECRET": secret}
    process = serve(root, "--port", str(free_port()), **extra)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2, err
    assert "ORCHESTRATOR_JWT_SECRET" in err and "--dev" in err and "secrets.token_urlsafe" in err


def test_serve_dev_answers_then_stops_on_sigterm_AGENT_WF_008_AGENT_WF_013(root: Path) -> None:
    port = free_port()
    process = serve(root, "--dev", "--port", str(port), "--format", "json")
    try:
        assert process.stdout is not None
        announced = json.loads("".join(iter(process.stdout.readline, "}\n")) + "}")
        assert announced["url"] == f"http://127.0.0.1:{port}" and announced["dev"] is True
        health = httpx.get(f"{announced['url']}/health", timeout=10).json()
        assert health["status"] == "ok" and health["tasks"] == 1
        claimed = httpx.post(f"{announced['url']}/api/v1/tasks/claim",
                             json={"agent_id": "agent-1"}, timeout=10)  # fmt: skip
        assert claimed.status_code == 200
        polled: list[httpx.Response] = []
        poll = threading.Thread(target=lambda: polled.append(httpx.get(
            f"{announced['url']}/api/v1/events", params={"after": 10**6, "wait": 30}, timeout=30,
        )))  # fmt: skip
        poll.start()
        time.sleep(0.3)  # the poll waits
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, err = process.communicate(timeout=10)
        poll.join(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert time.monotonic() - started < 5  # the waiting long poll does not hold the shutdown
    assert process.returncode == 0, err
    assert polled[0].status_code == 200 and polled[0].json()["events"] == []
    assert "warning: --dev" in err and f"serving {root} on http://127.0.0.1:{port}" in err
    snapshot = json.loads((root / ".state/current.json").read_text())
    assert snapshot["tasks"]["t1"]["phase"] == "PLAN"  # the store was closed: exact snapshot


def test_serve_stops_on_an_invalid_contract_with_located_problems_AGENT_WF_001(root: Path) -> None:
    contract = root / "agent_workflow.yaml"
    lines = contract.read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if text.startswith("initial:"))
    contract.write_text("\n".join(lines).replace("initial: PLAN", "initial: PLANNING") + "\n")
    process = serve(root, "--port", str(free_port()),
                    ORCHESTRATOR_JWT_SECRET="a-strong-secret-of-more-than-32-bytes")  # fmt: skip
    _, err = process.communicate(timeout=30)
    assert process.returncode == 1, err
    assert f"agent_workflow.yaml:{line}" in err and "PLANNING" in err and "AGENT-WF-001" in err


def test_serve_says_which_setting_to_change_when_the_port_is_taken_AGENT_WF_013(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("ORCHESTRATOR_JWT_SECRET", "a-strong-secret-of-more-than-32-bytes")
        code = main(["--root", str(root), "serve", "--port", str(port)])
    assert code == 2
    assert "server.port" in capsys.readouterr().err


def test_agent_prompt_gives_the_contract_in_words_and_an_sdk_example_AGENT_WF_019(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--root", str(root), "agent-prompt", "t1", "--url", "http://h:1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# Task t1: Task t1\n\nAdd numbers.")
    for phase in ("### PLAN", "### TDD", "### IMPL", "### REVIEW", "### COMPLETE (final)"):
        assert phase in text
    assert "write_file (only on tests/**" in text and "Tools forbidden: run_command" in text
    for gate in ("plan_has_acceptance_criteria", "tests_are_failing", "all_tests_pass",
                 "no_blocking_issues"):  # fmt: skip
        assert f"gate `{gate}`" in text
    assert "schemas/artifacts/plan.schema.json" in text and "enforced strictly" in text
    assert 'AgentClient("my-agent", "http://h:1")' in text and "request_transition" in text

    assert main(["--root", str(root), "agent-prompt", "t1", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in document["phases"]] == ["PLAN", "TDD", "IMPL", "REVIEW", "COMPLETE"]
    assert document["url"] == "http://127.0.0.1:8000" and document["mode"] == "strict"
    tdd = document["phases"][1]
    assert {"tool": "write_file", "paths": ["tests/**", "test/**", "**/test_*.py",
                                           "**/*_test.py"]} in tdd["allowed"]  # fmt: skip
    step = document["transitions"][0]
    assert [g["name"] for g in step["gates"]] == ["plan_has_acceptance_criteria"]
    assert "from orchestration.sdk import AgentClient" in document["sdk_example"]
    compile(document["sdk_example"], "example", "exec")


def test_agent_prompt_of_an_unknown_task_is_a_usage_error_AGENT_WF_019(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--root", str(root), "agent-prompt", "nope"]) == 2
    assert "'nope' is not in this pipeline" in capsys.readouterr().err


def test_a_client_may_connect_as_soon_as_the_address_is_announced() -> None:
    from orchestration.api.server import bind

    sock = bind("127.0.0.1", 0)  # what `serve` announces, before uvicorn runs
    try:
        with socket.create_connection(sock.getsockname()[:2], timeout=5) as client:
            sock.settimeout(5)
            accepted, peer = sock.accept()  # queued by the kernel until uvicorn accepts it
            accepted.close()
            assert peer == client.getsockname()
    finally:
        sock.close()
