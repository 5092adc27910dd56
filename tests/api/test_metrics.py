"""``GET /metrics`` of the real server: the Prometheus exposition of the store (OBS-002, OBS-004)."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from api.served import Serve, agent_task
from orchestration.cli import main


def test_get_metrics_serves_the_stores_values_OBS_002_OBS_004(
    serve: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    served = serve(agent_task("t1"), agent_task("t2"), agent_task("t3", dependencies=["t1"]))
    with served.agent("agent-1", capabilities=["python"]) as agent:
        claimed = agent.claim_task().task_id
    with served.http() as http:
        response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    tasks = {
        (s.labels["status"], s.labels["workstream"]): s.value
        for s in families["orchestration_tasks"].samples
    }
    # An agent's claim starts its attempt at once: claimed, then running.
    assert tasks == {("running", "ws"): 1, ("ready", "ws"): 1, ("pending", "ws"): 1}
    claims = families["orchestration_transitions"].samples
    assert {(s.labels["entity"], s.labels["trigger"]): s.value for s in claims}[
        ("task", "claim")
    ] == 1
    wait = next(s for s in families["orchestration_queue_wait_seconds"].samples
                if s.name.endswith("_count"))  # fmt: skip
    assert wait.value == 1
    [seq] = families["orchestration_last_seq"].samples

    served.workflow.store.flush()  # what the CLI reads: the snapshot, now exact
    capsys.readouterr()
    assert main(["--root", str(served.root), "status", "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["last_seq"] == seq.value
    rows = {row["task_id"]: row["status"] for row in status["tasks"]}
    assert rows[claimed] == "running"  # an agent's claim starts its attempt
    assert sorted(rows.values()) == sorted(s for (s, _), n in tasks.items() for _ in range(int(n)))
