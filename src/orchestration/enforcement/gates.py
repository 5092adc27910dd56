"""The gates that guard leaving a phase, evaluated on its artifacts (AGENT-WF-004).

Stability: stable (gate names are part of the contract format).

A gate is a plain function of the artifacts submitted with a transition
(artifact name → document, each already valid against its schema, see
:mod:`.artifacts`). It returns ``None`` when it holds, else one sentence
saying why not, which the API returns with status 409 naming the gate.

=============================  =============  =========================================
gate                           reads          holds when
=============================  =============  =========================================
plan_has_acceptance_criteria   plan           at least one non-blank acceptance criterion
tests_are_failing              test_result    ``failed + errors > 0`` (TDD: red first)
all_tests_pass                 test_result    ``failed == errors == 0`` and ``passed > 0``
no_blocking_issues             review         verdict ``approve``, no ``blocking`` issue
=============================  =============  =========================================

A gate whose artifact was not submitted does not hold; its reason names the
artifact. Gates read optional fields with their schema defaults, so a raw
document and a model dump give the same answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

__all__ = [
    "GATES",
    "GATE_ARTIFACTS",
    "GATE_DESCRIPTIONS",
    "Artifacts",
    "Gate",
    "all_tests_pass",
    "no_blocking_issues",
    "plan_has_acceptance_criteria",
    "tests_are_failing",
]

Artifacts = Mapping[str, Mapping[str, Any]]
"""Artifact name → its submitted document."""

Gate = Callable[[Artifacts], str | None]
"""A gate: None when it holds, else the reason it does not."""


def _missing(artifact: str, gate: str) -> str:
    return (
        f"the {artifact} artifact was not submitted, and gate {gate} reads it: "
        f"submit {artifact!r} with the transition"
    )


def plan_has_acceptance_criteria(artifacts: Artifacts) -> str | None:
    """The plan lists at least one acceptance criterion that is not blank."""
    plan = artifacts.get("plan")
    if plan is None:
        return _missing("plan", "plan_has_acceptance_criteria")
    criteria = plan.get("acceptance_criteria", [])
    if any(isinstance(item, str) and item.strip() for item in criteria):
        return None
    return (
        "the plan lists no acceptance criterion: add at least one non-blank, checkable "
        "statement to acceptance_criteria"
    )


def _counts(result: Mapping[str, Any]) -> tuple[int, int, int]:
    return result.get("passed", 0), result.get("failed", 0), result.get("errors", 0)


def tests_are_failing(artifacts: Artifacts) -> str | None:
    """The test run fails (``failed + errors > 0``): in TDD the new tests fail first."""
    result = artifacts.get("test_result")
    if result is None:
        return _missing("test_result", "tests_are_failing")
    passed, failed, errors = _counts(result)
    if failed + errors > 0:
        return None
    return (
        f"the test run reports no failing test ({passed} passed, 0 failed, 0 errors): in TDD "
        "the new tests must fail before the implementation exists, so write tests that "
        "exercise the missing behaviour and run them"
    )


def all_tests_pass(artifacts: Artifacts) -> str | None:
    """The test run passes: some tests passed and none failed or errored."""
    result = artifacts.get("test_result")
    if result is None:
        return _missing("test_result", "all_tests_pass")
    passed, failed, errors = _counts(result)
    if failed or errors:
        return (
            f"the test run has {failed} failed and {errors} erroring tests: fix the "
            "implementation until every test passes, then submit the new test_result"
        )
    if passed <= 0:
        return "the test run passed no test: run the tests (run_tests) and submit its result"
    return None


def no_blocking_issues(artifacts: Artifacts) -> str | None:
    """The review approves and lists no issue of severity ``blocking``."""
    review = artifacts.get("review")
    if review is None:
        return _missing("review", "no_blocking_issues")
    blocking = [
        issue
        for issue in review.get("issues", [])
        if isinstance(issue, Mapping) and issue.get("severity") == "blocking"
    ]
    if blocking:
        first = blocking[0]
        where = f" ({first['file']})" if first.get("file") else ""
        return (
            f"the review lists {len(blocking)} blocking issue{'s' if len(blocking) > 1 else ''}, "
            f"the first: {first.get('description', '')!r}{where}; fix them and review again"
        )
    verdict = review.get("verdict")
    if verdict != "approve":
        return f"the review verdict is {verdict!r}, not 'approve': address the review first"
    return None


GATES: Mapping[str, Gate] = MappingProxyType(
    {
        "plan_has_acceptance_criteria": plan_has_acceptance_criteria,
        "tests_are_failing": tests_are_failing,
        "all_tests_pass": all_tests_pass,
        "no_blocking_issues": no_blocking_issues,
    }
)
"""Gate name → gate, the names a contract may list under a transition's ``gates``."""

GATE_ARTIFACTS: Mapping[str, str] = MappingProxyType(
    {
        "plan_has_acceptance_criteria": "plan",
        "tests_are_failing": "test_result",
        "all_tests_pass": "test_result",
        "no_blocking_issues": "review",
    }
)
"""Gate name → the artifact it reads (a transition with the gate should require it)."""

GATE_DESCRIPTIONS: Mapping[str, str] = MappingProxyType(
    {
        "plan_has_acceptance_criteria": (
            "the plan lists at least one non-blank acceptance criterion"
        ),
        "tests_are_failing": (
            "the submitted test_result has failing or erroring tests (TDD: the new tests fail "
            "before the implementation exists)"
        ),
        "all_tests_pass": (
            "the submitted test_result has passing tests and no failing or erroring one"
        ),
        "no_blocking_issues": (
            "the review's verdict is 'approve' and it lists no issue of severity 'blocking'"
        ),
    }
)
"""Gate name → one line for documentation and agent prompts."""
