"""``orchestration metrics`` end to end: after a real run, in every format (OBS-002, OBS-004)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestration.cli import main
from orchestration.state.layout import layout
from runs import pipeline, run, task


def _out(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(list(args)) == 0
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pipeline after a run with a retry, a final failure, a blocked task and successes."""
    folder = tmp_path_factory.mktemp("metrics")
    counter = folder / "count"
    flaky = f'n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}; [ "$n" -ge 1 ]'
    root = pipeline(
        folder / "p",
        task("flaky", flaky, execution={"max_retries": 1}),
        task("broken", "exit 3", workstream_id="other"),
        task("after", "true", dependencies=["broken"], workstream_id="other"),
        task("fine", "true"),
    )
    done = run(root, "-j", "2")
    assert done.returncode == 1, done.stdout + done.stderr  # broken failed for good
    return root


def test_prometheus_values_equal_status_OBS_004(
    ran: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = json.loads(_out(capsys, "--root", str(ran), "status", "--format", "json"))
    text = _out(capsys, "--root", str(ran), "metrics", "--format", "prometheus")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    [seq] = families["orchestration_last_seq"].samples
    assert seq.value == status["last_seq"]
    exposed = {
        (s.labels["workstream"], s.labels["status"]): s.value
        for s in families["orchestration_tasks"].samples
    }
    counted: dict[tuple[str, str], float] = {}
    for row in status["tasks"]:
        key = (row["workstream_id"], row["status"])
        counted[key] = counted.get(key, 0) + 1
    assert exposed == counted == {
        ("ws", "succeeded"): 2, ("other", "failed"): 1, ("other", "blocked"): 1,
    }  # fmt: skip
    retries = {s.labels["workstream"]: s.value for s in families["orchestration_retries"].samples}
    assert retries == {"ws": sum(r["retry_count"] for r in status["tasks"])} == {"ws": 1}
    failures = {
        s.labels["failure_mode"]: s.value for s in families["orchestration_failures"].samples
    }
    assert failures == {"FM-NONZERO-EXIT": 2}
    durations = families["orchestration_attempt_duration_seconds"].samples
    count = next(s for s in durations if s.name.endswith("_count") and s.labels["type"] == "shell")
    assert count.value == 4  # flaky twice, broken, fine
    transitions = families["orchestration_transitions"].samples
    assert sum(s.value for s in transitions) == status["last_seq"]


def test_json_is_the_document_of_metrics_json_OBS_001(
    ran: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shown: dict[str, Any] = json.loads(
        _out(capsys, "--root", str(ran), "metrics", "--format", "json")
    )
    written = json.loads(layout(ran).metrics.read_text())
    assert {**shown, "timestamp": None} == {**written, "timestamp": None}
    assert shown["tasks_by_status"] == {"blocked": 1, "failed": 1, "succeeded": 2}
    text = _out(capsys, "--root", str(ran), "metrics")
    assert "tasks          4: 1 blocked, 1 failed, 2 succeeded" in text
    assert "failures       2: 2 FM-NONZERO-EXIT" in text


def test_metrics_without_state_exits_2_and_help_teaches_OBS_002(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tasks").mkdir()
    assert main(["--root", str(tmp_path), "metrics"]) == 2
    assert "orchestration sync" in capsys.readouterr().err
    help_text = _out(capsys, "metrics", "--help")
    assert "Examples:" in help_text and "--format prometheus" in help_text


def test_metrics_refuses_a_snapshot_without_metrics(
    ran: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A snapshot of an engine before metrics: rebuilt by a writer, never shown as zeros."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(ran, copy)
    snapshot = layout(copy).snapshot
    document = json.loads(snapshot.read_text())
    del document["metrics"]
    snapshot.write_text(json.dumps(document))
    assert main(["--root", str(copy), "metrics"]) == 1
    assert "state rebuild" in capsys.readouterr().err
    assert main(["--root", str(copy), "status"]) == 0  # status does not need them
    assert main(["--root", str(copy), "state", "rebuild"]) == 0
    capsys.readouterr()
    text = _out(capsys, "--root", str(copy), "metrics", "--format", "json")
    assert json.loads(text)["failures"] == {"FM-NONZERO-EXIT": 2}
