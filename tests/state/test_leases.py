"""Leases, fencing epochs and attempt records in the store (CONC-REG-006..010)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from orchestration.lifecycles import load_lifecycles
from orchestration.state import Store
from orchestration.state.attempts import (
    AttemptRecord,
    AttemptStatus,
    attempt_status,
    lease_expiry,
    wrap,
    write_attempt,
    write_heartbeat,
)
from orchestration.state.views import verify
from orchestration.tasks.loading import load_tasks


def _open(root: Path) -> Any:
    return Store.open(root, load_lifecycles(root), actor="test")


def _journal(root: Path) -> list[dict[str, Any]]:
    text = (root / ".state" / "transitions.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def _claim(store: Store, task_id: str, ttl: float = 20.0, holder: str = "run-1") -> int:
    with store.transaction() as tx:
        epoch = tx.claim(task_id, holder=holder, worker="local-1", ttl=ttl)
        tx.start(task_id)
    return epoch


def test_claims_record_a_lease_whose_epoch_grows_with_every_claim_CONC_REG_006(
    pipeline: Path,
) -> None:
    with _open(pipeline) as store:
        store.sync(load_tasks(pipeline).tasks)
        write_heartbeat(store.leases, "run-1")
        first = _claim(store, "a")
        with store.transaction() as tx:
            assert tx.finish("a", first, "fail", reason="FM-NONZERO-EXIT: exit 1",
                             failure={"mode": "FM-NONZERO-EXIT", "final": False}) is None  # fmt: skip
            tx.apply("a", "retry", reason="FM-NONZERO-EXIT: retry 1")
        second = _claim(store, "a")
        entry = store.state.tasks["a"]
    assert (first, second) == (1, 2)
    assert entry["lease"]["epoch"] == 2 and entry["lease"]["holder"] == "run-1"
    assert entry["lease"]["ttl"] == 20.0 and entry["attempt"] == 2
    claims = [line for line in _journal(pipeline) if line["trigger"] == "claim"]
    assert [line["lease"]["epoch"] for line in claims] == [1, 2]
    assert verify(pipeline, load_lifecycles(pipeline)) == []


def test_heartbeats_renew_the_lease_CONC_REG_006(tmp_path: Path) -> None:
    lease = {"holder": "run-1", "epoch": 1, "granted": time.time() - 100, "ttl": 20.0}
    assert lease_expiry(lease, tmp_path) < time.time()  # never renewed: expired
    write_heartbeat(tmp_path, "run-1")
    assert lease_expiry(lease, tmp_path) > time.time() + 19


def test_a_dead_holder_on_this_host_has_no_lease_left(tmp_path: Path) -> None:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    beat = {"holder": "run-dead", "at": time.time(), "host": socket.gethostname(),
            "pid": int(child.stdout)}  # fmt: skip
    (tmp_path / "run-dead.json").write_text(json.dumps(beat))  # that process is gone
    lease = {"holder": "run-dead", "epoch": 1, "granted": time.time(), "ttl": 20.0}
    assert lease_expiry(lease, tmp_path) < time.time()


def test_a_late_result_with_a_stale_epoch_is_refused_and_recorded_CONC_REG_007(
    pipeline: Path,
) -> None:
    with _open(pipeline) as store:
        store.sync(load_tasks(pipeline).tasks)
        write_heartbeat(store.leases, "run-1")
        stale = _claim(store, "a")
        with store.transaction() as tx:  # the sweep gave the task to someone else
            tx.adopt("a", holder="run-2", worker="local-9", ttl=20.0)
        write_heartbeat(store.leases, "run-2")
        with store.transaction() as tx:
            refused = tx.finish("a", stale, "complete", reason="exit 0")
        assert refused is not None and "not current" in refused
        assert store.state.tasks["a"]["status"] == "running"
    last = _journal(pipeline)[-1]
    assert (last["entity"], last["trigger"], last["severity"]) == ("lease", "refuse", "warning")
    assert last["reason"].startswith("FM-LEASE-EXPIRED: late complete refused")


def test_an_expired_lease_refuses_the_result_and_counts_the_attempt_CONC_REG_007(
    pipeline: Path,
) -> None:
    with _open(pipeline) as store:
        store.sync(load_tasks(pipeline).tasks)
        epoch = _claim(store, "a", ttl=0.01)  # no heartbeat file: expires at grant + ttl
        time.sleep(0.05)
        with store.transaction() as tx:
            assert tx.finish("a", epoch, "complete", reason="exit 0") is not None
        entry = store.state.tasks["a"]
    assert entry["status"] == "failed"  # max_retries 1: a retry remains
    assert entry["failure"] == {"mode": "FM-LEASE-EXPIRED", "final": False}
    assert entry["attempt"] == 1 and "lease" not in entry
    fail = _journal(pipeline)[-1]
    assert (fail["trigger"], fail["severity"]) == ("fail", "warning")


def test_a_claim_that_never_started_is_abandoned_without_spending_a_retry(
    pipeline: Path,
) -> None:
    with _open(pipeline) as store:
        store.sync(load_tasks(pipeline).tasks)
        with store.transaction() as tx:
            tx.claim("d", holder="run-1", worker="local-1", ttl=0.01)
        time.sleep(0.05)
        with store.transaction() as tx:
            tx.expire("d", "holder run-1 died", started=False)
        entry = store.state.tasks["d"]
    assert entry["status"] == "ready" and entry.get("retry_count", 0) == 0
    assert "lease" not in entry and entry["epoch"] == 1
    assert verify(pipeline, load_lifecycles(pipeline)) == []


def _fail_for_good(store: Store, pipeline: Path) -> None:
    """Task a (one retry allowed) fails with a mode the catalog does not retry."""
    store.sync(load_tasks(pipeline).tasks)
    write_heartbeat(store.leases, "run-1")
    epoch = _claim(store, "a")
    with store.transaction() as tx:
        tx.finish("a", epoch, "fail", reason="FM-PRE-VALIDATION: git_clean failed",
                  failure={"mode": "FM-PRE-VALIDATION", "final": True})  # fmt: skip


def test_a_final_failure_blocks_dependents_even_with_retries_left_ERR_FM_006(
    pipeline: Path,
) -> None:
    with _open(pipeline) as store:
        _fail_for_good(store, pipeline)
        statuses = {t: e["status"] for t, e in store.state.tasks.items()}
    assert statuses == {"a": "failed", "b": "blocked", "c": "blocked", "d": "ready"}
    fail = next(line for line in _journal(pipeline) if line["trigger"] == "fail")
    assert fail["severity"] == "error"


def test_attempt_files_outlive_the_runner_CONC_REG_010(tmp_path: Path) -> None:
    folder = tmp_path / "attempts" / "a" / "1"
    record = AttemptRecord("a", 1, 1, "run-1", time.time(), "/sb", "task/a/1", "0" * 40)
    write_attempt(folder, record)
    assert attempt_status(folder) == (AttemptStatus.STARTING, None)
    process = subprocess.Popen(wrap(["sleep", "30"], folder), start_new_session=True)
    try:
        deadline = time.monotonic() + 5
        while not (folder / "pid").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert attempt_status(folder) == (AttemptStatus.RUNNING, None)
    finally:
        os.killpg(process.pid, 9)
        process.wait()
    assert attempt_status(folder) == (AttemptStatus.LOST, None)  # killed with its wrapper
    finished = tmp_path / "attempts" / "a" / "2"
    write_attempt(finished, record)
    subprocess.run(wrap(["sh", "-c", "exit 3"], finished), check=False)
    assert attempt_status(finished) == (AttemptStatus.FINISHED, 3)
    stale = tmp_path / "attempts" / "a" / "3"
    write_attempt(stale, AttemptRecord("a", 3, 1, "run-1", time.time() - 60, "", "", ""))
    assert attempt_status(stale) == (AttemptStatus.LOST, None)  # never spawned


def test_a_person_may_retry_a_final_failure_while_retries_remain_SM_DEF_007(
    pipeline: Path,
) -> None:
    with _open(pipeline) as store:
        _fail_for_good(store, pipeline)
        store.apply("a", "retry", reason="FM-PRE-VALIDATION: repository cleaned by hand")
        statuses = {t: e["status"] for t, e in store.state.tasks.items()}
    assert statuses["a"] == "ready" and statuses["b"] == "blocked"  # b waits for `unblock`


def test_a_heartbeat_written_elsewhere_after_ours_extends_the_lease_CONC_REG_006(
    tmp_path: Path,
) -> None:
    write_heartbeat(tmp_path, "agent:a", process=False)  # this process renews it ...
    lease = {"holder": "agent:a", "epoch": 1, "granted": time.time() - 100, "ttl": 20.0}
    later = time.time() + 60  # ... and another server renews it after: the file says so
    (tmp_path / "agent_a.json").write_text(json.dumps({"holder": "agent:a", "at": later}))
    assert lease_expiry(lease, tmp_path) < later  # ours keeps it alive: the file is not read
    short = {**lease, "ttl": 0.2}
    time.sleep(0.3)  # ours is too old to keep this one alive now: the file decides
    assert lease_expiry(short, tmp_path) == later + 0.2
