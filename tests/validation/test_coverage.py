"""The requirement matrix: every MUST requirement has a check (COMPLIANCE-010).

A requirement a repository cannot break (how a command behaves, what the
engine guarantees) is proven by the engine's tests instead: it is listed in
ENGINE_BEHAVIOUR and must have a test named with its ID. A requirement of a
capability not built yet is listed in NOT_BUILT with the issue that builds it;
when the capability lands, its checks come with it and the entry goes.
"""

from __future__ import annotations

import pytest

from orchestration.spec import Level
from orchestration.validation.coverage import CoverageRow, coverage_matrix

from conftest import REPO

ENGINE_BEHAVIOUR = {
    "STATE-OBS-008", "STATE-OBS-011", "STATE-OBS-016",
    "TASK-DEF-010", "TASK-DEF-011",
    "DAG-VIEW-002", "DAG-VIEW-003", "DAG-VIEW-004", "DAG-VIEW-007", "DAG-VIEW-008",
    "SM-DEF-003", "SM-DEF-011",
    "SCHEMA-VER-005", "CONC-REG-003", "ERR-FM-006",
    "MOD-IDX-002", "MOD-IDX-008",
    "COMPLIANCE-001", "COMPLIANCE-002", "COMPLIANCE-003", "COMPLIANCE-004",
    "COMPLIANCE-005", "COMPLIANCE-006", "COMPLIANCE-007", "COMPLIANCE-008", "COMPLIANCE-010",
    # `run`: proven end to end in tests/execution (real processes, git, signals)
    "EXEC-DOC-003", "EXEC-DOC-004", "EXEC-DOC-005", "EXEC-DOC-006", "EXEC-DOC-007",
    "EXEC-DOC-008", "EXEC-DOC-009", "EXEC-DOC-010", "EXEC-DOC-011",
    "AIDER-INT-001", "AIDER-INT-006", "ERR-FM-004", "ERR-FM-005", "CONC-REG-008", "CONC-REG-009",
    # configuration: tests/test_config.py (real files, real environments, the CLI)
    "EXEC-DOC-013", "EXEC-DOC-014",
    # agents: tests/enforcement and tests/api (a real server on loopback, the SDK, real git)
    "MOD-IDX-007",
    *(f"AGENT-WF-{n:03d}" for n in (5, 7, 8, 9, 10, 11, 13, 14, 15, 16, 18)),
    # audit retention: tests/state/test_segments.py, tests/test_audit_report.py (real files,
    # the CLI, SIGKILLs during rotation)
    "AUDIT-004", "AUDIT-006", "AUDIT-007",
    # metrics: tests/state/test_metrics.py, tests/test_cmd_metrics.py, tests/api/test_metrics.py
    "OBS-002", "OBS-003", "OBS-004",
    # logs and the daemon: tests/test_daemon.py (real daemons, kill -9, SIGTERM)
    "OBS-005", "OBS-010", "OBS-011",
    # watch: tests/watching, tests/test_cmd_watch.py (real file edits, a real watch process)
    "OBS-007", "OBS-008",
}  # fmt: skip

NOT_BUILT: dict[str, str] = {}  # requirement ID → the issue that builds it


@pytest.fixture(scope="module")
def matrix() -> list[CoverageRow]:
    return coverage_matrix(REPO)


def test_COMPLIANCE_010_every_must_requirement_has_a_check(matrix: list[CoverageRow]) -> None:
    unchecked = {row.id for row in matrix if row.level is Level.MUST and not row.checks}
    assert unchecked - ENGINE_BEHAVIOUR - set(NOT_BUILT) == set(), "write a check for these"


def test_COMPLIANCE_010_exemptions_are_still_needed(matrix: list[CoverageRow]) -> None:
    """An exemption whose requirement got a check (or is no MUST any more) must go."""
    by_id = {row.id: row for row in matrix}
    for ident in ENGINE_BEHAVIOUR | set(NOT_BUILT):
        assert by_id[ident].level is Level.MUST and not by_id[ident].checks, ident
    assert ENGINE_BEHAVIOUR.isdisjoint(NOT_BUILT)


def test_COMPLIANCE_010_engine_behaviour_is_proven_by_named_tests(
    matrix: list[CoverageRow],
) -> None:
    untested = sorted(row.id for row in matrix if row.id in ENGINE_BEHAVIOUR and not row.tests)
    assert untested == []
