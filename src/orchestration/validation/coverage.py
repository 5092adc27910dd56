"""The requirement matrix: every ID of the spec, its level, and the checks and tests covering it.

Stability: provisional (the JSON shape is stable, COMPLIANCE-010).

A test covers a requirement when its name carries the ID with underscores
(``test_TASK_DEF_005_unknown_dependency``), the house rule for naming tests
after the requirement they prove.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..spec import Level
from .report import all_checks
from .repository import engine_requirements

__all__ = ["CoverageRow", "coverage_matrix", "coverage_text"]

TEST_NAME = re.compile(r"^\s*(?:async\s+)?def (test_\w+)", re.M)


@dataclass(frozen=True)
class CoverageRow:
    """One requirement of the matrix."""

    id: str
    level: Level
    checks: tuple[str, ...]
    tests: tuple[str, ...]  # ``tests/path.py::test_name``

    def as_dict(self) -> dict[str, object]:
        """The stable JSON shape of one row of ``validate --coverage --format json``."""
        return {
            "id": self.id,
            "level": self.level.value,
            "checks": list(self.checks),
            "tests": list(self.tests),
        }


def _tests(root: Path, ids: Sequence[str]) -> dict[str, list[str]]:
    """Test names under ``root/tests`` carrying each requirement ID."""
    wanted = {ident.replace("-", "_"): ident for ident in ids}
    pattern = re.compile(
        r"(?<![A-Z])("
        + "|".join(sorted(map(re.escape, wanted), key=len, reverse=True))
        + r")(?!\d)"
    )
    found: dict[str, list[str]] = {}
    folder = root / "tests"
    for path in sorted(folder.rglob("test_*.py")) if folder.is_dir() else []:
        rel = path.relative_to(root).as_posix()
        for name in TEST_NAME.findall(path.read_text(encoding="utf-8")):
            for match in pattern.finditer(name):
                found.setdefault(wanted[match.group(1)], []).append(f"{rel}::{name}")
    return found


def coverage_matrix(root: Path) -> list[CoverageRow]:
    """Every requirement in spec order, with the checks declaring it and the tests naming it."""
    requirements = engine_requirements()
    checks: dict[str, list[str]] = {}
    for one in all_checks():
        for ident in one.requirements:
            checks.setdefault(ident, []).append(one.name)
    tests = _tests(root, [r.id for r in requirements])
    return [
        CoverageRow(r.id, r.level, tuple(checks.get(r.id, ())), tuple(tests.get(r.id, ())))
        for r in requirements
    ]


def coverage_text(rows: Sequence[CoverageRow]) -> str:
    """The matrix as aligned text, with a summary of MUST requirements lacking a check."""
    lines = [f"{'requirement':<16} {'level':<6} {'checks':<40} tests"]
    for row in rows:
        checks = ", ".join(row.checks) or "-"
        lines.append(f"{row.id:<16} {row.level.value:<6} {checks:<40} {len(row.tests)}")
    unchecked = [row.id for row in rows if row.level is Level.MUST and not row.checks]
    untested = [row.id for row in rows if not row.checks and not row.tests]
    lines.append(
        f"{len(rows)} requirements; {len(unchecked)} MUST without a check; "
        f"{len(untested)} with neither check nor test"
    )
    return "\n".join(lines) + "\n"
