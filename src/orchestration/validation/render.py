"""Validation reports as text, JSON, JUnit XML and GitHub Actions annotations.

Stability: stable (the JSON shape and the JUnit and annotation forms, COMPLIANCE-004/006).

JSON shape::

    {"schema_version": "1.0.0", "compliant": true, "root": "...", "sections": [],
     "summary": {"pass": 80, "fail": 0, "not applicable": 91, "checks": 40, "seconds": 0.8},
     "requirements": [{"id": "TASK-DEF-001", "level": "MUST", "outcome": "pass",
                       "checks": ["task_files"], "note": "", "problems": []}, ...]}
"""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

from ..errors import Problem
from .report import Outcome, Report, RequirementResult

__all__ = ["REPORT_SCHEMA_VERSION", "to_github", "to_json", "to_junit", "to_text"]

REPORT_SCHEMA_VERSION = "1.0.0"
SHOWN_PER_REQUIREMENT = 20


def to_json(report: Report) -> dict[str, Any]:
    """The report as the documented JSON document."""
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "compliant": report.compliant,
        "root": str(report.root),
        "sections": list(report.sections),
        "summary": {**report.counts, "checks": report.checks_run, "seconds": report.seconds},
        "requirements": [result.as_dict() for result in report.results],
    }


def _summary(report: Report) -> str:
    counts = report.counts
    verdict = "compliant" if report.compliant else "NOT compliant"
    warned = f", {len(report.warnings)} SHOULD/MAY not met" if report.warnings else ""
    return (
        f"{verdict}: {counts['pass']} pass, {len(report.violations)} MUST failed{warned}, "
        f"{counts['not applicable']} not applicable ({len(report.results)} requirements, "
        f"{report.checks_run} checks, {report.seconds:.2f} s)"
    )


def to_text(report: Report, *, verbose: bool = False) -> str:
    """Failures with their locations and fixes; with ``verbose``, every requirement."""
    lines: list[str] = []
    for result in report.results:
        if result.outcome is Outcome.FAIL:
            kind = "FAIL" if result in report.violations else "WARN"
            lines.append(f"{kind} {result.id} ({result.level.value}) {result.text}")
            for problem in result.problems[:SHOWN_PER_REQUIREMENT]:
                lines.extend("  " + part for part in problem.render().splitlines())
            hidden = len(result.problems) - SHOWN_PER_REQUIREMENT
            if hidden > 0:
                lines.append(f"  ... and {hidden} more")
        elif verbose:
            label = "ok  " if result.outcome is Outcome.PASS else "n/a "
            by = f" [{', '.join(result.checks)}]" if result.checks else ""
            note = f" ({result.note})" if result.note else ""
            lines.append(f"{label} {result.id}{by}{note}")
    lines.append(_summary(report))
    return "\n".join(lines) + "\n"


def _case(suite: ET.Element, result: RequirementResult) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        classname=f"orchestration.{result.id.rsplit('-', 1)[0]}",
        name=result.id,
        time="0",
    )
    if result.outcome is Outcome.FAIL:
        failure = ET.SubElement(
            case,
            "failure",
            message=f"{len(result.problems)} problem(s): {result.problems[0].message}",
            type=result.level.value,
        )
        failure.text = "\n".join(problem.render() for problem in result.problems)
    elif result.outcome is Outcome.NOT_APPLICABLE:
        ET.SubElement(case, "skipped", message=result.note or "not applicable")
    properties = ET.SubElement(case, "properties")
    ET.SubElement(properties, "property", name="level", value=result.level.value)
    ET.SubElement(properties, "property", name="checks", value=",".join(result.checks))


def to_junit(report: Report) -> str:
    """JUnit XML with one test case per requirement ID (COMPLIANCE-006)."""
    root = ET.Element("testsuites", name="orchestration validate")
    suite = ET.SubElement(
        root,
        "testsuite",
        name="compliance",
        tests=str(len(report.results)),
        failures=str(report.counts["fail"]),
        errors="0",
        skipped=str(report.counts["not applicable"]),
        time=f"{report.seconds:.3f}",
    )
    for result in report.results:
        _case(suite, result)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _escape(text: str, *, prop: bool = False) -> str:
    """GitHub's workflow-command escaping (data, or with ``prop`` a property value)."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def _annotation(kind: str, result: RequirementResult, problem: Problem) -> str:
    where = [f"file={_escape(problem.file, prop=True)}"]
    if problem.line:
        where.append(f"line={problem.line}")
        if problem.column:
            where.append(f"col={problem.column}")
    where.append(f"title={_escape(result.id, prop=True)}")
    pointer = f" at {problem.pointer}" if problem.pointer else ""
    body = f"{problem.message}{pointer}\nfix: {problem.hint}"
    return f"::{kind} {','.join(where)}::{_escape(body)}"


def to_github(report: Report) -> str:
    """GitHub Actions annotations: an error per violation, a warning per SHOULD not met."""
    lines: list[str] = []
    for result in report.results:
        if result.outcome is not Outcome.FAIL:
            continue
        kind = "error" if result in report.violations else "warning"
        lines.extend(_annotation(kind, result, problem) for problem in result.problems)
    lines.append(f"::notice title=orchestration validate::{_escape(_summary(report))}")
    return "\n".join(lines) + "\n"
