"""The REST API itself: claims under contention, the long poll, problem documents, modes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

import pytest

from api.served import Serve, agent_task, problem_of
from orchestration.sdk import AgentClient, NothingToClaim
from runs import journal

PLAN = {"plan": {"summary": "s", "acceptance_criteria": ["c"]}, "scope": {"files": ["calc/**"]}}


def test_fifty_agents_claiming_at_once_never_share_a_task_AGENT_WF_014(serve: Serve) -> None:
    served = serve(*(agent_task(f"t{n:02d}") for n in range(30)))
    start = threading.Barrier(50)
    claimed: list[str] = []
    refused: list[int] = []
    errors: list[BaseException] = []

    def agent(number: int) -> None:
        with AgentClient(f"agent-{number}", served.url) as client:
            start.wait()
            try:
                claimed.append(client.claim_task().task_id)
            except NothingToClaim as nothing:
                refused.append(nothing.status)
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert len(claimed) == 30 and len(set(claimed)) == 30
    assert refused == [404] * 20
    claims = [line["id"] for line in journal(served.root)
              if line["entity"] == "task" and line["trigger"] == "claim"]  # fmt: skip
    assert sorted(claims) == sorted(claimed)
    holders = Counter(line["actor"] for line in journal(served.root)
                      if line["entity"] == "phase" and line["trigger"] == "claim")  # fmt: skip
    assert len(holders) == 30 and set(holders.values()) == {1}
    per_commit, batches = 0, []  # concurrent claims share a transaction: one fsync
    for line in journal(served.root):
        per_commit += line["entity"] == "task" and line["trigger"] == "claim"
        if line.get("commit"):
            batches.append(per_commit)
            per_commit = 0
    assert max(batches) > 1


def test_the_long_poll_answers_as_soon_as_a_line_commits_AGENT_WF_016(serve: Serve) -> None:
    served = serve(agent_task("t1"))
    with served.http() as http:
        last = http.get("/health").json()["last_seq"]
        found: dict[str, Any] = {}

        def poll() -> None:
            answer = http.get("/api/v1/events", params={"after": last, "wait": 5})
            found.update(answer.json(), at=time.monotonic())

        waiting = threading.Thread(target=poll)
        waiting.start()
        time.sleep(0.3)
        assert waiting.is_alive()  # nothing yet: it waits
        with served.agent("agent-1") as agent:
            agent.claim_task()
        committed = time.monotonic()
        waiting.join(5)
        assert found["at"] - committed < 1.0
        assert found["events"][0]["seq"] == last + 1
        assert found["last_seq"] == found["events"][-1]["seq"]
        assert {e["trigger"] for e in found["events"]} >= {"claim"}

        started = time.monotonic()
        idle = http.get("/api/v1/events", params={"after": found["last_seq"], "wait": 1})
        assert 0.9 <= time.monotonic() - started < 3.0
        assert idle.json() == {"events": [], "last_seq": found["last_seq"]}

        everything = http.get("/api/v1/events", params={"after": 0, "wait": 0, "limit": 2}).json()
        assert [e["seq"] for e in everything["events"]] == [1, 2] and everything["last_seq"] == 2


def test_sdk_events_follow_the_journal_AGENT_WF_016_AGENT_WF_018(serve: Serve) -> None:
    served = serve(agent_task("t1"))
    with served.agent("agent-1") as agent:
        last = agent.health()["last_seq"]
        stream = agent.events(after=0, wait=1)
        assert [next(stream)["seq"] for _ in range(last)] == list(range(1, last + 1))
        agent.claim_task()  # while the stream is between two polls
        assert next(stream)["seq"] == last + 1
        stream.close()


def test_errors_are_problem_documents_with_their_requirement_AGENT_WF_015(serve: Serve) -> None:
    served = serve(agent_task("t1"))
    with served.http() as http, served.agent("agent-1") as agent:
        bad_json = http.post("/api/v1/tasks/claim", content=b"{not json",
                             headers={"Content-Type": "application/json"})  # fmt: skip
        assert problem_of(bad_json, 400)["requirement"] == "AGENT-WF-015"
        not_json = http.post("/api/v1/tasks/claim", content=b"agent_id=a",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        problem_of(not_json, 400)
        invalid = problem_of(http.post("/api/v1/tasks/claim",
                                       json={"agent_id": "no spaces", "extra": 1}), 422)  # fmt: skip
        assert invalid["requirement"] == "AGENT-WF-015"
        assert sorted(e["pointer"] for e in invalid["errors"]) == ["/agent_id", "/extra"]
        query = problem_of(http.get("/api/v1/events", params={"after": -1, "wait": 0}), 422)
        assert query["errors"] == [{"parameter": "after", "in": "query",
                                    "message": query["errors"][0]["message"]}]  # fmt: skip
        unauthenticated = http.post("/api/v1/tools/execute",
                                    json={"task_id": "t1", "tool": "read_file", "args": {}})  # fmt: skip
        assert problem_of(unauthenticated, 401)["requirement"] == "AGENT-WF-007"
        assert problem_of(http.get("/nowhere"), 404)["requirement"] == "AGENT-WF-015"
        problem_of(http.delete("/api/v1/tasks/claim"), 405)

        agent.claim_task()
        headers = {"Authorization": f"Bearer {agent.token}"}
        forbidden = http.post("/api/v1/tools/execute", headers=headers,
                              json={"task_id": "t1", "tool": "run_command",
                                    "args": {"command": "true"}})  # fmt: skip
        assert problem_of(forbidden, 403)["requirement"] == "AGENT-WF-010"
        skipped = http.post("/api/v1/tasks/transition", headers=headers,
                            json={"target_phase": "COMPLETE"})  # fmt: skip
        assert problem_of(skipped, 409)["requirement"] == "AGENT-WF-002"
        missing = http.post("/api/v1/tasks/transition", headers=headers,
                            json={"target_phase": "TDD", "artifacts": {"plan": {"summary": ""}}})  # fmt: skip
        artifacts = problem_of(missing, 422)
        assert artifacts["requirement"] == "AGENT-WF-003"
        assert {e["pointer"] for e in artifacts["errors"]} == {
            "/artifacts/plan/summary", "/artifacts/plan/acceptance_criteria", "/artifacts/scope"}  # fmt: skip
        huge = http.post("/api/v1/tools/execute", headers=headers,
                         json={"task_id": "t1", "tool": "read_file", "args": {"path": 10**30}})  # fmt: skip
        assert problem_of(huge, 422)["errors"][0]["pointer"] == "/args/path"
        arguments = http.post("/api/v1/tools/execute", headers=headers,
                              json={"task_id": "t1", "tool": "read_file", "args": {}})  # fmt: skip
        problem_of(arguments, 422)
        nothing = http.post("/api/v1/tasks/claim", json={"agent_id": "agent-2"})
        assert problem_of(nothing, 404)["requirement"] == "AGENT-WF-014"


def test_permissive_mode_allows_violations_and_audits_warnings_AGENT_WF_005(serve: Serve) -> None:
    served = serve(agent_task("t1"), mode="permissive")
    with served.agent("agent-1") as agent:
        agent.claim_task()
        wrote = agent.use_tool("write_file", path="notes.txt", content="plan\n")
        assert (wrote["decision"], wrote["phase"]) == ("warned", "PLAN")
        moved = agent.request_transition("TDD", {"plan": {"summary": "s", "acceptance_criteria": []},
                                                 "scope": {"files": ["calc/**"]}})  # fmt: skip
        assert moved["phase"] == "TDD" and moved["warnings"]
        assert "plan_has_acceptance_criteria" in moved["warnings"][0]
        with pytest.raises(Exception, match="AGENT-WF-011"):
            agent.read_file("../outside")  # leaving the sandbox is refused in any mode
        records = agent.audit_records(task_id="t1", decision="warned")
    tool = [r for r in records if r["tool"] == "write_file"]
    assert len(tool) == 1
    assert (tool[0]["severity"], tool[0]["requirement"]) == ("warning", "AGENT-WF-010")
    gate = [r for r in records if r["tool"] == "transition"]
    assert gate and gate[0]["severity"] == "warning" and gate[0]["requirement"] == "AGENT-WF-004"
    phase = [line for line in journal(served.root) if line["entity"] == "phase"][-1]
    assert phase["severity"] == "warning"


def test_snapshot_and_health_read_the_one_store_AGENT_WF_013(serve: Serve) -> None:
    served = serve(agent_task("t1"), agent_task("t2"))
    with served.http() as http, served.agent("agent-1") as agent:
        agent.claim_task()
        snapshot = http.get("/api/v1/state/snapshot").json()
        health = http.get("/health").json()
        assert health == {"status": "ok", "last_seq": snapshot["last_seq"], "tasks": 2}
        assert snapshot["tasks"][agent.task_id]["phase"] == "PLAN"
        assert {snapshot["tasks"][t]["status"] for t in ("t1", "t2")} == {"running", "ready"}
        docs = http.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        spec = http.get("/openapi.json").json()
        assert {"/api/v1/tasks/claim", "/api/v1/tasks/{task_id}/heartbeat",
                "/api/v1/tasks/transition", "/api/v1/tools/execute", "/api/v1/state/snapshot",
                "/api/v1/events", "/api/v1/audit", "/health"} <= set(spec["paths"])  # fmt: skip
        claim = spec["paths"]["/api/v1/tasks/claim"]["post"]["responses"]
        assert set(claim["404"]["content"]) == {"application/problem+json"}


def test_the_sdk_imports_without_the_server_dependencies_AGENT_WF_018() -> None:
    heavy = ("fastapi", "uvicorn", "starlette", "pydantic", "jwt", "orchestration.api",
             "orchestration.enforcement")  # fmt: skip
    code = (
        "import sys, orchestration.sdk\n"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_an_unexpected_error_is_a_500_problem_in_one_line_AGENT_WF_015(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = serve(agent_task("t1"))

    def broken() -> dict[str, Any]:
        msg = "disk on fire\nsecond line"
        raise RuntimeError(msg)

    monkeypatch.setattr(served.workflow, "snapshot", broken)
    with served.http() as http:
        problem = problem_of(http.get("/api/v1/state/snapshot"), 500)
        assert "RuntimeError: disk on fire" in problem["detail"]
        assert "\n" not in problem["detail"] and "second line" not in problem["detail"]
        assert http.get("/health").status_code == 200  # the server goes on
