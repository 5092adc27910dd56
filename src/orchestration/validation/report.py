"""Running the checks and reading their results per requirement ID.

Stability: provisional (the JSON shape of a report is stable, COMPLIANCE-004).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from ..bulk import gc_paused
from ..errors import Problem, UsageError
from ..spec import Level
from .check import REGISTERED, Check, NotApplicable
from .repository import Repository

__all__ = ["Outcome", "Report", "RequirementResult", "all_checks", "validate"]


class Outcome(StrEnum):
    """What validation concluded about one requirement."""

    PASS = "pass"  # every check verifying it ran and found nothing
    FAIL = "fail"  # a check found a violation
    NOT_APPLICABLE = "not applicable"  # nothing in this repository to check it on


@dataclass(frozen=True)
class RequirementResult:
    """One requirement: its outcome, the checks that verified it, and what they found."""

    id: str
    level: Level
    text: str
    outcome: Outcome
    checks: tuple[str, ...]
    problems: tuple[Problem, ...] = ()
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        """The stable JSON shape of one requirement in ``validate --format json``."""
        return {
            "id": self.id,
            "level": self.level.value,
            "outcome": self.outcome.value,
            "checks": list(self.checks),
            "note": self.note,
            "problems": [problem.as_dict() for problem in self.problems],
        }


@dataclass(frozen=True)
class Report:
    """The results of one validation, in spec order."""

    root: Path
    sections: tuple[str, ...]
    results: list[RequirementResult]
    checks_run: int
    seconds: float
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        counts = {outcome.value: 0 for outcome in Outcome}
        for result in self.results:
            counts[result.outcome.value] += 1
        object.__setattr__(self, "counts", counts)

    @property
    def violations(self) -> list[RequirementResult]:
        """Failed MUST requirements: what makes the repository non-compliant (exit 1)."""
        return [r for r in self.results if r.outcome is Outcome.FAIL and r.level is Level.MUST]

    @property
    def warnings(self) -> list[RequirementResult]:
        """Failed SHOULD and MAY requirements: reported, but the repository still complies."""
        return [r for r in self.results if r.outcome is Outcome.FAIL and r.level is not Level.MUST]

    @property
    def compliant(self) -> bool:
        """Whether no MUST requirement failed."""
        return not self.violations


def all_checks() -> list[Check]:
    """Every check the engine has, in section order."""
    from . import (  # noqa: F401 - importing a section module registers its checks
        agent_wf,
        attempts,
        audit_trail,
        compliance,
        dag_view,
        documents,
        err_fm,
        observability,
        registries,
        schema_ver,
        sm_def,
        state_obs,
        task_def,
    )

    return list(REGISTERED)


def _positioned(repo: Repository, problem: Problem) -> Problem:
    """``problem`` with the line and column of its JSON pointer, when it lacked them."""
    if problem.line or not problem.pointer or not problem.file.endswith(".json"):
        return problem
    line, column = repo.position(problem.file, problem.pointer)
    return replace(problem, line=line, column=column)


def validate(root: Path, sections: Sequence[str] = ()) -> Report:
    """Run every check of ``sections`` (requirement-ID prefixes; all when empty) on ``root``.

    Raises:
        UsageError: a section matches no requirement ID.
    """
    started = time.perf_counter()
    repo = Repository(root)
    requirements = repo.requirements
    for section in sections:
        if not any(ident.startswith(section) for ident in requirements):
            families = sorted({r.family for r in requirements.values()})
            msg = f"--section {section!r} matches no requirement; sections: {', '.join(families)}"
            raise UsageError(msg)

    def selected(ident: str) -> bool:
        return not sections or any(ident.startswith(section) for section in sections)

    checks = [c for c in all_checks() if any(selected(ident) for ident in c.requirements)]
    found: dict[str, list[Problem]] = {}
    declared: dict[str, list[str]] = {}
    inapplicable: dict[str, list[str]] = {}
    # The checks hold every task model, the snapshot and the journal at once:
    # millions of small containers, which with the cyclic collector on cost a
    # third of the time at 100k tasks, walked again and again (see bulk.py).
    with gc_paused():
        for one in checks:
            for ident in one.requirements:
                declared.setdefault(ident, []).append(one.name)
            try:
                problems = list(one.run(repo))
            except NotApplicable as reason:
                for ident in one.requirements:
                    inapplicable.setdefault(ident, []).append(f"{one.name}: {reason}")
                continue
            for problem in problems:
                if problem.requirement not in one.requirements:
                    msg = (
                        f"check {one.name} reported {problem.requirement}, "
                        "which it does not declare"
                    )
                    raise AssertionError(msg)
                found.setdefault(problem.requirement, []).append(_positioned(repo, problem))

    results = []
    for ident, requirement in requirements.items():
        if not selected(ident):
            continue
        names = tuple(declared.get(ident, ()))
        problems = found.get(ident, [])
        skipped = inapplicable.get(ident, [])
        if problems:
            outcome, note = Outcome.FAIL, ""
        elif not names:
            outcome, note = Outcome.NOT_APPLICABLE, "no check inspects a repository for this"
        elif len(skipped) == len(names):
            outcome, note = Outcome.NOT_APPLICABLE, "; ".join(skipped)
        else:
            outcome, note = Outcome.PASS, ""
        results.append(
            RequirementResult(
                ident, requirement.level, requirement.text, outcome, names, tuple(problems), note
            )
        )
    return Report(root, tuple(sections), results, len(checks), time.perf_counter() - started)
