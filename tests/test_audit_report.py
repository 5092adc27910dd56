"""``audit report``: a compliance report per requirement ID and per period (AUDIT-007)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from orchestration.audit_report import audit_report, period_start
from orchestration.cli import main
from orchestration.lifecycles import load_lifecycles
from orchestration.state import Store
from orchestration.state.audit import ToolAudit, audit_record
from orchestration.state.journal import now
from orchestration.state.layout import layout
from orchestration.tasks.loading import load_tasks

RECORD = {"agent_id": "agent-1", "task_id": "a", "phase": "TDD", "tool": "write_file",
          "args": {"path": "src/x.py"}, "reason": ""}  # fmt: skip
DAYS = ["2026-11-02", "2026-11-03", "2026-11-09"]  # Monday, Tuesday, the next Monday


@pytest.fixture
def audited(pipeline: Path) -> Path:
    """A synced pipeline with a final failure and tool decisions on three days, half sealed."""
    lifecycles = load_lifecycles(pipeline)
    with Store.open(pipeline, lifecycles, actor="test") as store:
        store.sync(load_tasks(pipeline).tasks)
        with store.transaction() as tx:
            epoch = tx.claim("d", holder="run-1", worker="local-1", ttl=20.0)
            tx.start("d")
        with store.transaction() as tx:
            tx.finish(
                "d",
                epoch,
                "fail",
                reason="timed out",
                failure={"mode": "FM-TIMEOUT", "final": True},
            )
    audit = ToolAudit(layout(pipeline).audit)
    for day, decision, requirement in [
        (DAYS[0], "denied", "AGENT-WF-010"),
        (DAYS[0], "allowed", "AGENT-WF-010"),
        (DAYS[1], "denied", "AGENT-WF-011"),
        (DAYS[2], "warned", "AGENT-WF-010"),
    ]:
        severity = {"allowed": "info", "denied": "error", "warned": "warning"}[decision]
        audit.append(audit_record(**RECORD, timestamp=f"{day}T10:00:00.000Z", decision=decision,
                                  severity=severity, requirement=requirement))  # fmt: skip
        if day == DAYS[1]:
            assert main(["--root", str(pipeline), "audit", "rotate"]) == 0  # sealed ones count too
    return pipeline


def test_the_report_counts_per_requirement_and_period_in_markdown_and_json_AUDIT_007(
    audited: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = audited / "reports"
    capsys.readouterr()
    code = main(["--root", str(audited), "audit", "report", "--until", "2026-11-08",
                 "--period", "week", "--output", str(out), "--no-validate"])  # fmt: skip
    assert code == 0
    [written] = out.glob("*.json")
    report = json.loads(written.read_text())
    assert report["until"] == "2026-11-08" and report["integrity"]["intact"]
    [week] = report["periods"]  # the next Monday is after --until
    assert week["start"] == "2026-11-02" and week["end"] == "2026-11-09"
    assert week["tools"] == {
        "AGENT-WF-010": {"allowed": 1, "denied": 1, "warned": 0},
        "AGENT-WF-011": {"allowed": 0, "denied": 1, "warned": 0},
    }
    markdown = written.with_suffix(".md").read_text()
    assert "| AGENT-WF-011 | 2026-11-02 | 0 | 1 | 0 |" in markdown
    assert "Intact:" in markdown


def test_journal_activity_and_failures_are_reported_for_today_AUDIT_007(audited: Path) -> None:
    today = date.fromisoformat(now()[:10])
    report = audit_report(audited, since=today, until=today)
    [period] = report["periods"]
    assert period["failures"] == {"FM-TIMEOUT": 1}
    assert period["journal_lines"] > 0 and period["by_severity"]["info"] > 0
    assert period["tools"] == {}  # the tool decisions are on other days


def test_the_report_lists_each_requirement_outcome_from_validate_AUDIT_007(
    audited: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = main(["--root", str(audited), "audit", "report", "--format", "json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    outcomes = {row["id"]: row["outcome"] for row in report["requirements"]}
    assert outcomes["AUDIT-003"] == "pass"  # the sealed segment is intact
    assert {"pass", "fail", "not applicable"} >= set(outcomes.values())
    assert [p["start"] for p in report["periods"]][:3] == DAYS


def test_a_tampered_segment_shows_in_the_report_AUDIT_007(audited: Path) -> None:
    segment = layout(audited).audit / "tool_audit-000001.jsonl.gz"
    data = bytearray(segment.read_bytes())
    data[-3] ^= 1
    segment.write_bytes(bytes(data))
    report = audit_report(audited, since=date(2026, 11, 9))
    assert not report["integrity"]["intact"]
    assert "tool_audit-000001.jsonl.gz" in report["integrity"]["findings"][0]


@pytest.mark.parametrize(
    ("day", "period", "start"),
    [("2026-11-04", "day", "2026-11-04"), ("2026-11-04", "week", "2026-11-02"),
     ("2026-11-04", "month", "2026-11-01"), ("2026-12-31", "month", "2026-12-01")],
)  # fmt: skip
def test_periods_start_on_the_day_the_monday_or_the_first(
    day: str, period: str, start: str
) -> None:
    assert period_start(date.fromisoformat(day), period) == date.fromisoformat(start)


def test_since_after_until_is_a_usage_error(audited: Path) -> None:
    args = ["--since", "2026-11-10", "--until", "2026-11-01", "--no-validate"]
    assert main(["--root", str(audited), "audit", "report", *args]) == 2
