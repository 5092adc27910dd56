"""`orchestration validate` end to end: verdicts, exit codes, formats, coverage."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from orchestration.cli import main
from orchestration.validation.repository import engine_requirements

REQUIREMENTS = engine_requirements()
OUTCOMES = {"pass", "fail", "not applicable"}
BROKEN = "tasks/ws-001/task-002.json"


def run(root: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--root", str(root), "validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def report_of(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code, out, _ = run(root, "--format", "json", *args, capsys=capsys)
    return code, json.loads(out)


def outcomes(report: Any) -> dict[str, str]:
    return {r["id"]: r["outcome"] for r in report["requirements"]}


def break_dependency(root: Path) -> None:
    path = root / BROKEN
    document = json.loads(path.read_text())
    document["dependencies"].append("task-404")
    path.write_text(json.dumps(document, indent=2))


def test_COMPLIANCE_007_this_repository_is_compliant(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = report_of(repo, capsys)
    failed = [r for r in report["requirements"] if r["outcome"] == "fail"]
    assert (code, report["compliant"], failed) == (0, True, [])
    assert [r["id"] for r in report["requirements"]] == [r.id for r in REQUIREMENTS]
    assert set(outcomes(report).values()) <= OUTCOMES
    assert report["schema_version"] == "1.0.0"


def test_COMPLIANCE_007_state_checks_pass_once_state_exists(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = outcomes(report_of(repo, capsys)[1])
    assert before["STATE-OBS-002"] == before["SM-DEF-006"] == "not applicable"
    assert main(["--root", str(repo), "sync"]) == 0
    code, report = report_of(repo, capsys)
    after = outcomes(report)
    assert code == 0
    for ident in ("STATE-OBS-002", "STATE-OBS-004", "STATE-OBS-012", "STATE-OBS-014",
                  "SM-DEF-005", "SM-DEF-006", "SM-DEF-007"):  # fmt: skip
        assert after[ident] == "pass", ident


def test_COMPLIANCE_001_violation_exits_1_with_location_and_fix(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    break_dependency(repo)
    code, out, err = run(repo, capsys=capsys)
    assert code == 1
    assert re.search(r"^FAIL TASK-DEF-005 \(MUST\)", out, re.M)
    assert re.search(
        rf"{BROKEN}:\d+:\d+: .*'task-404'.* at /dependencies/\d+ \[TASK-DEF-005\]", out
    )
    assert "fix:" in out
    assert "NOT compliant" in out.splitlines()[-1]
    assert err == "error: 1 MUST requirement violated\n"


def test_COMPLIANCE_001_should_failures_warn_but_comply(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = repo / BROKEN
    document = json.loads(path.read_text())
    document["type"] = "claude"
    document["context_requirements"].pop("max_context_tokens", None)
    path.write_text(json.dumps(document))
    code, out, _ = run(repo, capsys=capsys)
    assert code == 0
    assert out.startswith("WARN TASK-DEF-008 (SHOULD)")


def test_COMPLIANCE_004_sections_select_requirements(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = report_of(repo, capsys, "--section", "TASK-DEF", "--section", "DAG-VIEW")
    ids = {r["id"] for r in report["requirements"]}
    assert code == 0
    assert ids == {r.id for r in REQUIREMENTS if r.family in ("TASK-DEF", "DAG-VIEW")}


def test_COMPLIANCE_001_unknown_section_is_a_usage_error(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(repo, "--section", "TASKDEF", capsys=capsys)
    assert (code, out) == (2, "")
    assert "matches no requirement" in err and "TASK-DEF" in err


def test_COMPLIANCE_001_no_pipeline_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, capsys=capsys)[0] == 2


def test_COMPLIANCE_006_junit_has_one_case_per_requirement(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    break_dependency(repo)
    code, out, _ = run(repo, "--format", "junit", capsys=capsys)
    assert code == 1
    suites = ET.fromstring(out.encode())
    assert suites.tag == "testsuites"
    (suite,) = suites.findall("testsuite")
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == [r.id for r in REQUIREMENTS]
    assert int(suite.get("tests", "")) == len(cases)
    failed = [case for case in cases if case.find("failure") is not None]
    skipped = [case for case in cases if case.find("skipped") is not None]
    assert [case.get("name") for case in failed] == ["TASK-DEF-005"]
    assert int(suite.get("failures", "")) == 1
    assert int(suite.get("skipped", "")) == len(skipped) > 0
    assert "task-404" in (failed[0].find("failure").text or "")  # type: ignore[union-attr]


def test_COMPLIANCE_006_github_annotations_carry_file_and_line(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    break_dependency(repo)
    code, out, _ = run(repo, "--format", "github", capsys=capsys)
    lines = out.splitlines()
    assert code == 1
    errors = [line for line in lines if line.startswith("::error ")]
    assert len(errors) == 1
    assert re.match(rf"::error file={BROKEN},line=\d+,col=\d+,title=TASK-DEF-005::", errors[0])
    assert "%0Afix: " in errors[0]  # the message's newline, escaped
    assert lines[-1].startswith("::notice title=orchestration validate::NOT compliant")


def test_COMPLIANCE_004_verbose_lists_every_requirement(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(repo, "--verbose", capsys=capsys)
    listed = re.findall(r"^(?:ok  |n/a ) ([A-Z-]+-\d{3})", out, re.M)
    assert listed == [r.id for r in REQUIREMENTS]
    assert "ok   TASK-DEF-001 [task_files]" in out


def test_COMPLIANCE_010_coverage_lists_every_requirement(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(repo, "--coverage", "--format", "json", capsys=capsys)
    rows = json.loads(out)["requirements"]
    assert code == 0
    assert [row["id"] for row in rows] == [r.id for r in REQUIREMENTS]
    by_id = {row["id"]: row for row in rows}
    assert by_id["TASK-DEF-005"]["checks"] == ["task_files"]
    assert any("test_COMPLIANCE_010_coverage" in test for test in by_id["COMPLIANCE-010"]["tests"])
    text = run(repo, "--coverage", capsys=capsys)[1]
    assert re.search(r"^TASK-DEF-005\s+MUST\s+task_files\s+\d+$", text, re.M)


def test_scaffolded_pipeline_is_compliant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What `init` creates passes every check that applies to a pipeline."""
    assert main(["init", str(tmp_path)]) == 0
    code, report = report_of(tmp_path, capsys)
    assert code == 0, [r for r in report["requirements"] if r["outcome"] == "fail"]
    assert outcomes(report)["MOD-IDX-001"] == "not applicable"  # no engine sources here
