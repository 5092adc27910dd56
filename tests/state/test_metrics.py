"""Metrics as a fold of the journal: counters, histograms, metrics.json (OBS-001, OBS-003)."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from orchestration.lifecycles import TransitionRejected, load_lifecycles
from orchestration.state import State, Store, replay
from orchestration.state.layout import layout
from orchestration.state.metrics import ATTEMPT_BUCKETS, NAMES, QUEUE_BUCKETS, exposition
from orchestration.state.views import verify
from orchestration.tasks.loading import load_tasks

from conftest import REPO, task_document


def _open(root: Path) -> Any:
    return Store.open(root, load_lifecycles(root), actor="test")


def _sync(root: Path) -> None:
    with _open(root) as store:
        store.sync(load_tasks(root).tasks)


def _line(seq: int, ts: str, task_id: str, source: str | None, dest: str | None, trigger: str,
          **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {"seq": seq, "ts": f"2025-01-15T10:{ts}Z", "entity": "task", "id": task_id,
            "from": source, "to": dest, "trigger": trigger, "actor": "test", "reason": "",
            "severity": "info", **extra}  # fmt: skip


def _fold(*lines: dict[str, Any]) -> dict[str, Any]:
    state = State()
    for line in lines:
        state.apply(line)
    return state.metrics.document(state.last_seq, "now")


def test_durations_and_queue_wait_come_from_the_lines_timestamps_OBS_001() -> None:
    """An attempt lasts from start to complete; queue wait from ready to claimed."""
    data = {"workstream_id": "ws-1", "type": "aider"}
    document = _fold(
        _line(1, "00:00.000", "t", None, "pending", "create", data=data),
        _line(2, "00:00.000", "t", "pending", "ready", "enqueue"),
        _line(3, "00:02.500", "t", "ready", "claimed", "claim"),
        _line(4, "00:03.000", "t", "claimed", "running", "start", attempt=1),
        _line(5, "01:03.000", "t", "running", "succeeded", "complete"),
    )
    wait = document["queue_wait_seconds"]
    assert (wait["count"], wait["sum"]) == (1, 2.5)
    assert wait["counts"][QUEUE_BUCKETS.index(5.0)] == 1  # 1 < 2.5 <= 5
    attempts = document["attempt_duration_seconds"]["by_type"]
    assert list(attempts) == ["aider"]
    assert (attempts["aider"]["count"], attempts["aider"]["sum"]) == (1, 60.0)
    assert attempts["aider"]["counts"][ATTEMPT_BUCKETS.index(60.0)] == 1  # le="60.0" holds 60
    assert document["tasks"] == {"ws-1": {"succeeded": 1}}
    assert document["transitions"] == {
        "task": {"create": 1, "enqueue": 1, "claim": 1, "start": 1, "complete": 1}
    }


def test_failures_retries_and_lease_expiries_are_counted_OBS_001() -> None:
    data = {"workstream_id": "ws-1", "max_retries": 3}
    lease = {"holder": "h", "worker": "w", "epoch": 1, "granted": 0.0, "ttl": 20.0}
    expired = {"mode": "FM-LEASE-EXPIRED", "final": False}
    document = _fold(
        _line(1, "00:00.000", "t", None, "pending", "create", data=data),
        _line(2, "00:00.000", "t", "pending", "ready", "enqueue"),
        _line(3, "00:01.000", "t", "ready", "claimed", "claim", lease=lease),
        _line(4, "00:02.000", "t", "claimed", "ready", "abandon",
              reason="FM-LEASE-EXPIRED: h stopped heartbeating; no attempt ran"),
        _line(5, "00:03.000", "t", "ready", "running", "start", attempt=1),
        _line(6, "00:04.000", "t", "running", "failed", "fail", failure=expired),
        _line(7, "00:05.000", "t", "failed", "ready", "retry"),
        _line(8, "00:06.000", "t", "ready", "running", "start", attempt=2),
        _line(9, "00:07.000", "t", "running", "failed", "fail", reason="FM-TIMEOUT: 30 s"),
        _line(10, "00:08.000", "t", "failed", "ready", "retry"),
        _line(11, "00:09.000", "t", "ready", "running", "start", attempt=3),
        _line(12, "00:10.000", "t", "running", "failed", "fail", reason="gave up"),
    )  # fmt: skip
    assert document["failures"] == {"FM-LEASE-EXPIRED": 1, "FM-TIMEOUT": 1, "unclassified": 1}
    assert document["lease_expiries"] == 2  # the abandoned claim and the expired attempt
    assert document["retries"] == {"ws-1": 2}
    shell = document["attempt_duration_seconds"]["by_type"]["shell"]  # the type left out
    assert (shell["count"], shell["sum"]) == (3, 3.0)
    # Ready → claimed once; ready → started directly three times: 4 waits.
    assert document["queue_wait_seconds"]["count"] == 4


def test_gauge_follows_redefinitions_and_archives_OBS_001() -> None:
    document = _fold(
        _line(1, "00:00.000", "t", None, "pending", "create", data={"workstream_id": "a"}),
        _line(2, "00:00.000", "u", None, "pending", "create", data={"workstream_id": "a"}),
        _line(3, "00:01.000", "t", "pending", "pending", "redefine", data={"workstream_id": "b"}),
        _line(4, "00:02.000", "u", "pending", None, "archive"),
    )
    assert document["tasks"] == {"b": {"pending": 1}}
    assert document["tasks_by_status"] == {"pending": 1}
    assert sum(sum(t.values()) for t in document["transitions"].values()) == 4


# --- the fold through the real store ------------------------------------------------

TASKS = ("a", "b", "c", "d")
OUTCOMES = ["complete", "FM-NONZERO-EXIT", "FM-TIMEOUT", "expire", "abandon", "release"]
operations = st.lists(
    st.one_of(
        st.tuples(st.just("attempt"), st.sampled_from(TASKS), st.sampled_from(OUTCOMES),
                  st.booleans()),
        st.tuples(st.just("trigger"), st.sampled_from(TASKS),
                  st.sampled_from(["retry", "cancel", "block", "unblock", "skip", "start"])),
        st.tuples(st.just("edit"), st.sampled_from(["move", "remove", "restore"])),
        st.tuples(st.just("reopen")),
    ),
    max_size=25,
)  # fmt: skip


def _write_tasks(root: Path, edit: str = "restore") -> None:
    shutil.rmtree(root / "tasks", ignore_errors=True)
    shapes = {"a": ("ws-1", []), "b": ("ws-1", []), "c": ("ws-2", ["a", "b"]), "d": ("ws-2", [])}
    if edit == "move":
        shapes["d"] = ("ws-1", [])
    elif edit == "remove":
        del shapes["c"]
    for task_id, (workstream, deps) in shapes.items():
        folder = root / "tasks" / workstream
        folder.mkdir(parents=True, exist_ok=True)
        document = task_document(task_id, workstream, dependencies=deps,
                                 type="aider" if task_id == "b" else "shell",
                                 execution={"max_retries": 1})  # fmt: skip
        (folder / f"{task_id}.json").write_text(json.dumps(document))


def _attempt(store: Store, task_id: str, outcome: str, retry: bool) -> None:
    """Claim, start and end an attempt of a ready task, one transaction each, as a run does."""
    if store.state.tasks.get(task_id, {}).get("status") != "ready":
        return
    with store.transaction() as tx:
        ttl = 0.0 if outcome == "abandon" else 60.0  # abandoning needs an expired lease
        epoch = tx.claim(task_id, holder="run-1", worker="local-1", ttl=ttl)
    if outcome == "abandon":
        with store.transaction() as tx:
            tx.expire(task_id, "stopped heartbeating", started=False)
        return
    with store.transaction() as tx:
        tx.start(task_id)
    with store.transaction() as tx:
        if outcome == "complete":
            tx.finish(task_id, epoch, "complete", reason="exit 0")
        elif outcome == "expire":
            tx.expire(task_id, "stopped heartbeating", started=True)
        elif outcome == "release":
            tx.apply(task_id, "release", reason="Ctrl-C")
        else:
            failure = {"mode": outcome, "final": False}
            tx.finish(task_id, epoch, "fail", reason=outcome, failure=failure)
    if retry and store.state.tasks[task_id]["status"] == "failed":
        with contextlib.suppress(TransitionRejected):
            store.apply(task_id, "retry")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=operations)
def test_metrics_folded_incrementally_equal_those_of_a_full_replay_OBS_001(
    script: list[tuple[Any, ...]],
) -> None:
    """Whatever the changes, reopenings and edits, the live metrics are replay(journal)'s."""
    root = Path(tempfile.mkdtemp(prefix="metrics-"))
    try:
        shutil.copytree(REPO / "docs" / "state_machines", root / "docs" / "state_machines")
        _write_tasks(root)
        lifecycles = load_lifecycles(root)
        context = Store.open(root, lifecycles, actor="test")
        store = context.__enter__()
        try:
            store.sync(load_tasks(root).tasks)
            for operation in script:
                if operation[0] == "reopen":
                    context.__exit__(None, None, None)
                    context = Store.open(root, lifecycles, actor="test")
                    store = context.__enter__()
                elif operation[0] == "edit":
                    _write_tasks(root, operation[1])
                    store.sync(load_tasks(root).tasks)
                elif operation[0] == "attempt":
                    _attempt(store, *operation[1:])
                elif operation[1] in store.state.tasks:
                    with contextlib.suppress(TransitionRejected):
                        store.apply(*operation[1:])
        finally:
            context.__exit__(None, None, None)
        truth = replay(root, lifecycles)
        assert store.state.metrics == truth.metrics
        assert verify(root, lifecycles) == []  # the snapshot's metrics included
        counts: dict[str, dict[str, int]] = {}
        for entry in truth.tasks.values():
            by_status = counts.setdefault(entry["workstream_id"], {})
            by_status[entry["status"]] = by_status.get(entry["status"], 0) + 1
        assert truth.metrics.by_workstream() == counts
        written = json.loads(layout(root).metrics.read_text())
        assert written == truth.metrics.document(truth.last_seq, written["timestamp"])
        lines = sum(sum(t.values()) for t in written["transitions"].values())
        assert lines == written["last_seq"]
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- metrics.json and the snapshot ---------------------------------------------------


def test_metrics_json_is_written_and_refreshed_with_the_snapshot_OBS_001(pipeline: Path) -> None:
    _sync(pipeline)
    path = layout(pipeline).metrics
    first = json.loads(path.read_text())
    assert first["schema_version"] == "1.0.0"
    assert first["last_seq"] == json.loads(layout(pipeline).snapshot.read_text())["last_seq"]
    assert first["tasks"] == {"ws-001": {"pending": 2, "ready": 1}, "ws-002": {"ready": 1}}
    for key in ("transitions", "retries", "failures", "lease_expiries",
                "attempt_duration_seconds", "queue_wait_seconds"):  # fmt: skip
        assert key in first
    with _open(pipeline) as store, store.transaction() as tx:
        tx.claim("a", holder="run-1", worker="local-1", ttl=60.0)
        tx.start("a")
    with _open(pipeline) as store:
        epoch = store.state.tasks["a"]["epoch"]
        with store.transaction() as tx:
            tx.finish("a", epoch, "fail", reason="FM-CRASH: signal 9",
                      failure={"mode": "FM-CRASH", "final": False})  # fmt: skip
    second = json.loads(path.read_text())
    assert second["last_seq"] > first["last_seq"]
    assert second["failures"] == {"FM-CRASH": 1}
    assert second["queue_wait_seconds"]["count"] == 1
    assert second["attempt_duration_seconds"]["by_type"]["shell"]["count"] == 1
    assert second["tasks"]["ws-001"] == {"failed": 1, "pending": 2}


def test_metrics_json_missing_is_written_again_at_close_OBS_001(pipeline: Path) -> None:
    _sync(pipeline)
    layout(pipeline).metrics.unlink()
    with _open(pipeline):
        pass
    assert json.loads(layout(pipeline).metrics.read_text())["last_seq"] > 0


def test_a_snapshot_without_metrics_is_rebuilt_not_trusted_OBS_001(pipeline: Path) -> None:
    """A snapshot of an engine before metrics would start every counter at 0: it is replayed."""
    _sync(pipeline)
    with _open(pipeline) as store:
        store.apply("a", "start")
        store.apply("a", "fail")
    files = layout(pipeline)
    shutil.rmtree(files.backups, ignore_errors=True)
    old = json.loads(files.snapshot.read_text())
    del old["metrics"]
    files.snapshot.write_text(json.dumps(old))
    assert verify(pipeline, load_lifecycles(pipeline))  # readers see it is not the journal's
    with _open(pipeline) as store:
        assert any("no metrics" in repair for repair in store.repairs)
        assert store.state.metrics.failures == {"unclassified": 1}
        assert store.state.metrics == replay(pipeline, load_lifecycles(pipeline)).metrics
    assert "metrics" in json.loads(files.snapshot.read_text())
    assert verify(pipeline, load_lifecycles(pipeline)) == []


def test_type_is_mirrored_only_when_not_shell(pipeline: Path, write_task: Any) -> None:
    write_task("e", "ws-002", type="manual")
    _sync(pipeline)
    tasks = json.loads(layout(pipeline).snapshot.read_text())["tasks"]
    assert tasks["e"]["type"] == "manual"
    assert "type" not in tasks["a"]


# --- the exposition (OBS-003) -------------------------------------------------------


def _spec_table() -> dict[str, str]:
    text = (REPO / "specifications/content/orchestration/spec.md").read_text()
    section = text[text.index("## 13. ") : text.index("## 14. ")]
    rows = [row.split("|") for row in section.splitlines() if row.startswith("| `orch")]
    return {cells[1].strip(" `"): cells[2].strip() for cells in rows}


def test_exposed_names_follow_the_naming_rules_and_the_table_OBS_003() -> None:
    document = _fold(
        _line(1, "00:00.000", "t", None, "pending", "create", data={"workstream_id": "w"}),
        _line(2, "00:00.000", "t", "pending", "ready", "enqueue"),
        _line(3, "00:01.000", "t", "ready", "running", "start", attempt=1),
        _line(4, "00:02.000", "t", "running", "failed", "fail", reason="FM-CRASH: 9"),
        _line(5, "00:03.000", "t", "failed", "ready", "retry"),
    )
    families = {f.name: f for f in text_string_to_metric_families(exposition(document).decode())}
    table = _spec_table()
    assert len(table) == 7
    for name, kind in table.items():  # the parser names a counter without its _total
        family = families[name.removesuffix("_total") if kind == "counter" else name]
        assert family.type == kind
        assert NAMES[name] == kind
    for family in families.values():
        assert family.name.startswith("orchestration_")
        for sample in family.samples:
            if family.type == "counter":
                assert sample.name.endswith("_total")
            if family.type == "histogram":
                assert family.name.endswith("_seconds")
    assert {s.labels["failure_mode"] for s in families["orchestration_failures"].samples} == {
        "FM-CRASH"
    }
    buckets = [s for s in families["orchestration_attempt_duration_seconds"].samples
               if s.name.endswith("_bucket")]  # fmt: skip
    assert [s.value for s in buckets][-1] == 1.0 and buckets[-1].labels["le"] == "+Inf"
