"""The compliance report of ``audit report``: per requirement ID and per period (AUDIT-007).

Stability: provisional (the JSON document's fields are only ever added to).

Built from the audit trail alone (the journal and the tool audit, sealed,
archived and live) and, for the requirements, from ``validate`` run at
report time. The JSON document::

    {"schema_version": "1.0.0", "generated_at": "...", "since": "2026-11-01",
     "until": "2026-11-30", "period": "day",
     "integrity": {"intact": true, "segments": 3, "findings": []},
     "requirements": [{"id": "STATE-OBS-004", "level": "MUST", "outcome": "pass"}],
     "periods": [{"start": "2026-11-28", "end": "2026-11-29", "journal_lines": 812,
                  "by_severity": {"info": 800, "warning": 12}, "failures": {"FM-TIMEOUT": 2},
                  "tools": {"AGENT-WF-010": {"allowed": 0, "denied": 3, "warned": 0}}}]}

``since`` and ``until`` are inclusive UTC dates; a record belongs to the
period (day, ISO week from Monday, or calendar month) its timestamp falls in.
The Markdown report renders the same document.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from .state.audit import DECISIONS, all_records
from .state.journal import JournalError, now
from .state.layout import layout
from .state.segments import Manifest, read_history, verify

__all__ = ["PERIODS", "audit_report", "period_start", "render_markdown"]

REPORT_VERSION = "1.0.0"
PERIODS = ("day", "week", "month")


def period_start(day: date, period: str) -> date:
    """The first day of the ``period`` holding ``day``."""
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def _period_end(start: date, period: str) -> date:
    if period == "week":
        return start + timedelta(days=7)
    if period == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start + timedelta(days=1)


@dataclass
class _Period:
    journal_lines: int = 0
    by_severity: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    tools: dict[str, Counter[str]] = field(default_factory=dict)


def _day(stamp: object) -> date | None:
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC).date()
    except ValueError:
        return None


def audit_report(
    root: Path,
    *,
    since: date | None = None,
    until: date | None = None,
    period: str = "day",
    requirements: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The report's JSON document for the pipeline at ``root``.

    Args:
        since: the first day reported (default: the first record's).
        until: the last day reported (default: the last record's).
        period: ``day``, ``week`` or ``month``.
        requirements: each requirement's ``id``, ``level`` and ``outcome``
            (from ``validate``), listed as they are given.

    A segment that cannot be read is reported under ``integrity``, and the
    counts it would have added are missing.
    """
    files = layout(root)
    buckets: dict[date, _Period] = {}

    def bucket(stamp: object) -> _Period | None:
        day = _day(stamp)
        if day is None or (since and day < since) or (until and day > until):
            return None
        return buckets.setdefault(period_start(day, period), _Period())

    findings = [finding.render() for finding in verify(files)]
    try:
        for line in read_history(files).lines:
            found = bucket(line["ts"])
            if found is not None:
                found.journal_lines += 1
                found.by_severity[line["severity"]] += 1
                failure = line.get("failure")
                if isinstance(failure, dict) and line["trigger"] == "fail":
                    found.failures[str(failure.get("mode"))] += 1
    except JournalError as bad:
        findings.append(f"the journal's counts are incomplete: {bad}")
    try:
        for record in all_records(files):
            found = bucket(record.get("timestamp"))
            if found is not None:
                counts = found.tools.setdefault(str(record.get("requirement")), Counter())
                counts[str(record.get("decision"))] += 1
    except JournalError as bad:
        findings.append(f"the tool decisions are incomplete: {bad}")
    days = sorted(buckets)
    first = since or (days[0] if days else None)
    last = until or (_period_end(days[-1], period) - timedelta(days=1) if days else None)
    return {
        "schema_version": REPORT_VERSION,
        "generated_at": now(),
        "since": first.isoformat() if first else None,
        "until": last.isoformat() if last else None,
        "period": period,
        "integrity": {
            "intact": not findings,
            "segments": len(Manifest.read(files.audit).entries) if not findings else None,
            "findings": findings,
        },
        "requirements": list(requirements),
        "periods": [_period_document(start, buckets[start], period) for start in days],
    }


def _period_document(start: date, found: _Period, period: str) -> dict[str, Any]:
    return {
        "start": start.isoformat(),
        "end": _period_end(start, period).isoformat(),
        "journal_lines": found.journal_lines,
        "by_severity": dict(sorted(found.by_severity.items())),
        "failures": dict(sorted(found.failures.items())),
        "tools": {
            requirement: {decision: counts[decision] for decision in DECISIONS}
            for requirement, counts in sorted(found.tools.items())
        },
    }


def render_markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown document."""
    integrity = report["integrity"]
    out = [
        "# Compliance report",
        "",
        f"Generated {report['generated_at']} for {report['since'] or '…'} to "
        f"{report['until'] or '…'}, by {report['period']}.",
        "",
        "## Integrity of the audit trail (AUDIT-003)",
        "",
    ]
    if integrity["intact"]:
        out.append(f"Intact: {integrity['segments']} sealed segments, hash chain verified.")
    else:
        out += [f"- **ALTERED** {finding}" for finding in integrity["findings"]]
    if report["requirements"]:
        out += ["", "## Requirements at report time", ""]
        out += ["| ID | Level | Outcome |", "|---|---|---|"]
        out += [f"| {r['id']} | {r['level']} | {r['outcome']} |" for r in report["requirements"]]
    out += [
        "",
        "## Activity per period",
        "",
        "| Period | Journal lines | Warnings | Errors | Failures by mode |",
        "|---|---|---|---|---|",
    ]
    for row in report["periods"]:
        severity = row["by_severity"]
        failures = ", ".join(f"{mode} {n}" for mode, n in row["failures"].items()) or "—"
        errors = severity.get("error", 0) + severity.get("critical", 0)
        out.append(f"| {row['start']} | {row['journal_lines']} | {severity.get('warning', 0)} "
                   f"| {errors} | {failures} |")  # fmt: skip
    out += [
        "",
        "## Tool decisions per requirement and period",
        "",
        "| Requirement | Period | Allowed | Denied | Warned |",
        "|---|---|---|---|---|",
    ]
    rows = sorted(
        (requirement, row["start"], counts)
        for row in report["periods"]
        for requirement, counts in row["tools"].items()
    )
    for requirement, start, counts in rows:
        out.append(f"| {requirement} | {start} | {counts['allowed']} | {counts['denied']} "
                   f"| {counts['warned']} |")  # fmt: skip
    if not rows:
        out.append("| — | — | 0 | 0 | 0 |")
    return "\n".join(out) + "\n"
