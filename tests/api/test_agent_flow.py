"""An agent takes a task from PLAN to COMPLETE through the SDK and the real server."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from api.served import FAILING_TEST, IMPLEMENTATION, Serve, agent_task
from orchestration.sdk import (
    AgentClient,
    Forbidden,
    GateFailed,
    InvalidArtifacts,
    NotClaimed,
    NothingToClaim,
    TransitionRefused,
)
from orchestration.state.audit import AUDIT_FIELDS
from runs import journal

PLAN = {"summary": "Make calc.core.add add.", "acceptance_criteria": ["add(2, 3) == 5"]}
SCOPE = {"files": ["calc/core.py", "tests/test_core.py"]}


def settled(root: Path, task_id: str, seconds: float = 5.0) -> dict[str, Any]:
    """The task's entry in ``.state/current.json`` once the snapshot shows it succeeded."""
    deadline = time.monotonic() + seconds
    while True:
        entry: dict[str, Any] = json.loads((root / ".state/current.json").read_text())["tasks"][
            task_id
        ]
        if entry["status"] == "succeeded" or time.monotonic() > deadline:
            return entry
        time.sleep(0.05)


def test_an_agent_moves_a_task_from_plan_to_complete_AGENT_WF_002_AGENT_WF_003_AGENT_WF_004_AGENT_WF_018(
    serve: Serve,
) -> None:
    served = serve(agent_task("feature"))
    with served.agent("agent-1", capabilities=["python"]) as agent:
        with pytest.raises(NotClaimed):
            agent.read_file("calc/core.py")
        claimed = agent.claim_task()
        assert (claimed.task_id, claimed.phase, claimed.attempt) == ("feature", "PLAN", 1)
        assert claimed.task["task_id"] == "feature" and agent.token
        assert agent.heartbeat()["task_id"] == "feature"
        with pytest.raises(NothingToClaim) as nothing:
            agent.claim_task()
        assert nothing.value.status == 404 and nothing.value.requirement == "AGENT-WF-014"

        # PLAN: read, then leave only with a plan that has acceptance criteria, and a scope.
        assert "return 0" in agent.read_file("calc/core.py")
        assert "calc/core.py" in agent.list_files("calc")
        with pytest.raises(GateFailed) as gate:
            agent.request_transition("TDD", {"plan": {**PLAN, "acceptance_criteria": []},
                                             "scope": SCOPE})  # fmt: skip
        assert gate.value.gate == "plan_has_acceptance_criteria" and gate.value.status == 409
        assert gate.value.requirement == "AGENT-WF-004"
        with pytest.raises(InvalidArtifacts) as invalid:
            agent.request_transition("TDD", {"plan": PLAN})
        assert invalid.value.status == 422
        assert [e["pointer"] for e in invalid.value.errors] == ["/artifacts/scope"]
        with pytest.raises(TransitionRefused) as skipped:
            agent.request_transition("IMPL", {"plan": PLAN, "scope": SCOPE})
        assert skipped.value.requirement == "AGENT-WF-002" and agent.phase == "PLAN"
        plan_token = agent.token
        moved = agent.request_transition("TDD", {"plan": PLAN, "scope": SCOPE})
        assert (moved["previous_phase"], moved["phase"], agent.phase) == ("PLAN", "TDD", "TDD")
        assert agent.token != plan_token

        # TDD: tests only, and they must fail.
        with pytest.raises(Forbidden) as outside:
            agent.write_file("calc/core.py", IMPLEMENTATION)
        assert outside.value.requirement == "AGENT-WF-010"
        agent.write_file("tests/test_core.py", FAILING_TEST)
        red = agent.run_tests()
        assert red["failed"] > 0 and red["exit_code"] != 0, red
        agent.request_transition("IMPL", {"tests": {"files": ["tests/test_core.py"]},
                                          "test_result": red})  # fmt: skip

        # IMPL: a claim of failing tests does not pass all_tests_pass; the engine's run does.
        implementation = {"summary": "add adds", "files_changed": ["calc/core.py"]}
        with pytest.raises(GateFailed) as failing:
            agent.request_transition("REVIEW", {"implementation": implementation,
                                                "test_result": red})  # fmt: skip
        assert failing.value.gate == "all_tests_pass"
        agent.write_file("calc/core.py", IMPLEMENTATION)
        green = agent.run_tests()
        assert (green["passed"], green["failed"], green["errors"]) == (1, 0, 0), green
        agent.request_transition("REVIEW", {"implementation": implementation,
                                            "test_result": green})  # fmt: skip

        # REVIEW: no writing; a blocking issue keeps the task from completing.
        with pytest.raises(Forbidden):
            agent.write_file("calc/core.py", "oops")
        blocking = {"verdict": "approve",
                    "issues": [{"severity": "blocking", "description": "no docstring"}]}  # fmt: skip
        completion = {"summary": "add adds"}
        with pytest.raises(GateFailed) as review:
            agent.request_transition("COMPLETE", {"review": blocking, "completion": completion})
        assert review.value.gate == "no_blocking_issues"
        done = agent.request_transition("COMPLETE", {"review": {"verdict": "approve"},
                                                     "completion": completion})  # fmt: skip
        assert (done["phase"], done["task_status"]) == ("COMPLETE", "succeeded")
        assert agent.get_state_snapshot()["tasks"]["feature"]["status"] == "succeeded"

    root = served.root
    entry = settled(root, "feature")
    assert (entry["status"], entry["phase"]) == ("succeeded", "COMPLETE")
    lines = journal(root)
    phases = [(line["from"], line["to"]) for line in lines if line["entity"] == "phase"]
    assert phases == [(None, "PLAN"), ("PLAN", "TDD"), ("TDD", "IMPL"), ("IMPL", "REVIEW"),
                      ("REVIEW", "COMPLETE")]  # fmt: skip
    reviews = [line for line in lines if line["entity"] == "review"]
    assert [(r["id"], r["trigger"]) for r in reviews] == [("feature", "request_review")]
    records = [json.loads(line) for line in
               (root / ".state/audit/tool_audit.jsonl").read_text().splitlines()]  # fmt: skip
    assert {r["decision"] for r in records} == {"allowed", "denied"}
    for record in records:
        assert list(record)[: len(AUDIT_FIELDS)] == list(AUDIT_FIELDS)
        assert record["agent_id"] == "agent-1" and record["task_id"] == "feature"
    denied = [(r["phase"], r["tool"], r["args"]["path"]) for r in records
              if r["decision"] == "denied"]  # fmt: skip
    assert denied == [
        ("TDD", "write_file", "calc/core.py"),
        ("REVIEW", "write_file", "calc/core.py"),
    ]
    artifacts = root / ".state/logs/feature/1/artifacts"
    names = [path.name.split(".", 1) for path in artifacts.iterdir()]  # <seq>.<PHASE>.<name>
    assert all(seq.isdigit() for seq, _ in names)
    assert sorted(rest for _, rest in names) == [
        "IMPL.implementation.json", "IMPL.test_result.json", "PLAN.plan.json", "PLAN.scope.json",
        "REVIEW.completion.json", "REVIEW.review.json", "TDD.test_result.json", "TDD.tests.json",
    ]  # fmt: skip
    [plan] = artifacts.glob("*.PLAN.plan.json")
    assert json.loads(plan.read_text()) == PLAN


def test_the_sdk_keeps_no_token_until_a_claim_AGENT_WF_018() -> None:
    with AgentClient("agent-1", "http://127.0.0.1:9") as agent:
        assert (agent.token, agent.phase, agent.task_id) == (None, None, None)
        with pytest.raises(NotClaimed):
            agent.request_transition("TDD", {})
        assert "token" not in repr(agent).lower() or agent.token is None
