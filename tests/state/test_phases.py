"""Agent phases in the store: journalled, folded into the snapshot, revoked with the lease."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from orchestration.lifecycles import load_lifecycles
from orchestration.state import Store
from orchestration.state.attempts import heartbeat_of, lease_expiry, write_heartbeat
from orchestration.state.views import verify
from orchestration.tasks.loading import load_tasks


def _journal(root: Path) -> list[dict[str, Any]]:
    text = (root / ".state" / "transitions.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def _claimed(store: Store, task_id: str, jti: str) -> int:
    with store.transaction(actor="agent:a1") as tx:
        epoch = tx.claim(task_id, holder="agent:a1", worker="a1", ttl=20.0)
        tx.start(task_id)
        tx.phase(task_id, "claim", "PLAN", agent="a1", jti=jti, reason="starts in PLAN")
    return epoch


def test_phase_lines_fold_into_the_snapshot_and_replay_AGENT_WF_009(pipeline: Path) -> None:
    lifecycles = load_lifecycles(pipeline)
    with Store.open(pipeline, lifecycles, actor="test") as store:
        store.sync(load_tasks(pipeline).tasks)
        _claimed(store, "a", "jti-1")
        with store.transaction() as tx:
            tx.phase("a", "write_tests", "TDD", agent="a1", jti="jti-2", reason="PLAN -> TDD")
            tx.event("review", "a", "request_review", "requested", reason="review of a")
        entry = store.state.tasks["a"]
        assert (entry["phase"], entry["jti"], entry["status"]) == ("TDD", "jti-2", "running")
    snapshot = json.loads((pipeline / ".state" / "current.json").read_text())
    assert snapshot["tasks"]["a"]["phase"] == "TDD" and snapshot["tasks"]["a"]["jti"] == "jti-2"
    phases = [line for line in _journal(pipeline) if line["entity"] == "phase"]
    assert [(p["from"], p["to"], p["trigger"], p["actor"]) for p in phases] == [
        (None, "PLAN", "claim", "agent:a1"),
        ("PLAN", "TDD", "write_tests", "agent:a1"),
    ]
    review = [line for line in _journal(pipeline) if line["entity"] == "review"]
    assert review[0]["id"] == "a" and review[0]["to"] == "requested"
    assert verify(pipeline, lifecycles) == []  # the snapshot is the replay of the journal


def test_every_token_is_revoked_when_the_agent_loses_the_task_AGENT_WF_009(
    pipeline: Path,
) -> None:
    with Store.open(pipeline, load_lifecycles(pipeline), actor="test") as store:
        store.sync(load_tasks(pipeline).tasks)
        epoch = _claimed(store, "a", "jti-1")
        with store.transaction() as tx:
            tx.finish("a", epoch, "complete", reason="done")
        entry = store.state.tasks["a"]
    assert entry["status"] == "succeeded"
    assert entry["phase"] == "PLAN"  # the last phase stays on record ...
    assert "jti" not in entry and "lease" not in entry  # ... its token does not


def test_agent_heartbeats_do_not_die_with_the_server_process(tmp_path: Path) -> None:
    """An agent's lease is renewed by time alone: a restarted server does not end it."""
    write_heartbeat(tmp_path, "agent:a1", process=False)
    data = json.loads((tmp_path / "agent_a1.json").read_text())
    assert "pid" not in data
    assert heartbeat_of(tmp_path, "agent:a1") is not None
    lease = {"holder": "agent:a1", "epoch": 1, "granted": time.time() - 100, "ttl": 20.0}
    assert lease_expiry(lease, tmp_path) > time.time() + 19


def test_refresh_sees_other_writers_without_the_lock(pipeline: Path) -> None:
    lifecycles = load_lifecycles(pipeline)
    with (
        Store.open(pipeline, lifecycles, actor="reader") as reader,
        Store.open(pipeline, lifecycles, actor="writer") as writer,
    ):
        writer.sync(load_tasks(pipeline).tasks)
        assert "a" not in reader.state.tasks
        reader.refresh()
        assert reader.state.tasks["a"]["status"] == "ready"
        assert reader.state.last_seq == writer.state.last_seq
