"""Gates: each holds exactly when its artifact says the phase's work is done (AGENT-WF-004)."""

from __future__ import annotations

from typing import Any

import pytest

from orchestration.enforcement import gates
from orchestration.enforcement.artifacts import ARTIFACT_MODELS, ARTIFACTS, artifact_problems
from orchestration.enforcement.gates import GATE_ARTIFACTS, GATE_DESCRIPTIONS, GATES

# Through the module: pytest would collect a function named tests_are_failing.
all_tests_pass = gates.all_tests_pass
no_blocking_issues = gates.no_blocking_issues
plan_has_acceptance_criteria = gates.plan_has_acceptance_criteria


def _plan(*criteria: str) -> dict[str, Any]:
    return {"plan": {"summary": "s", "acceptance_criteria": list(criteria), "steps": []}}


def _run(passed: int, failed: int, errors: int | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"command": "pytest", "passed": passed, "failed": failed}
    if errors is not None:
        result["errors"] = errors
    return {"test_result": result}


def _review(verdict: str, *severities: str) -> dict[str, Any]:
    issues = [{"severity": s, "description": f"issue {n}"} for n, s in enumerate(severities)]
    return {"review": {"verdict": verdict, "issues": issues}}


def test_the_four_gates_of_the_spec_AGENT_WF_004() -> None:
    """Named as in the spec, each described and tied to the artifact it reads."""
    names = {"plan_has_acceptance_criteria", "tests_are_failing", "all_tests_pass"}
    names.add("no_blocking_issues")
    assert set(GATES) == set(GATE_DESCRIPTIONS) == set(GATE_ARTIFACTS) == names
    assert set(GATE_ARTIFACTS.values()) <= set(ARTIFACTS)
    assert all(description.strip() for description in GATE_DESCRIPTIONS.values())


@pytest.mark.parametrize(
    ("artifacts", "holds"),
    [
        (_plan("the flag exists"), True),
        (_plan("", "  ", "the flag exists"), True),
        (_plan(), False),
        (_plan("", " \t"), False),
    ],
)
def test_plan_has_acceptance_criteria_AGENT_WF_004(artifacts: dict[str, Any], holds: bool) -> None:
    assert (plan_has_acceptance_criteria(artifacts) is None) == holds


@pytest.mark.parametrize(
    ("artifacts", "holds"),
    [
        (_run(0, 1), True),
        (_run(3, 1), True),
        (_run(0, 0, 1), True),
        (_run(5, 0), False),
        (_run(0, 0), False),
        (_run(2, 0, 0), False),
    ],
)
def test_tests_are_failing_means_red_first_AGENT_WF_004(
    artifacts: dict[str, Any], holds: bool
) -> None:
    assert (gates.tests_are_failing(artifacts) is None) == holds


@pytest.mark.parametrize(
    ("artifacts", "holds"),
    [
        (_run(5, 0), True),
        (_run(5, 0, 0), True),
        (_run(5, 1), False),
        (_run(5, 0, 1), False),
        (_run(0, 0), False),
    ],
)
def test_all_tests_pass_AGENT_WF_004(artifacts: dict[str, Any], holds: bool) -> None:
    assert (all_tests_pass(artifacts) is None) == holds


@pytest.mark.parametrize(
    ("artifacts", "holds"),
    [
        (_review("approve"), True),
        (_review("approve", "major", "minor", "nit"), True),
        (_review("approve", "nit", "blocking"), False),
        (_review("request_changes"), False),
        (_review("request_changes", "blocking"), False),
    ],
)
def test_no_blocking_issues_AGENT_WF_004(artifacts: dict[str, Any], holds: bool) -> None:
    assert (no_blocking_issues(artifacts) is None) == holds


def test_reasons_are_one_sentence_that_says_what_to_do_AGENT_WF_004() -> None:
    reason = no_blocking_issues(
        {
            "review": {
                "verdict": "approve",
                "issues": [
                    {"severity": "blocking", "description": "leaks the secret", "file": "a.py"}
                ],
            }
        }
    )
    assert reason is not None and "1 blocking issue" in reason and "'leaks the secret'" in reason
    assert "(a.py)" in reason
    reason = gates.tests_are_failing(_run(4, 0))
    assert reason is not None and "4 passed" in reason
    reason = all_tests_pass(_run(4, 2, 1))
    assert reason is not None and "2 failed and 1 erroring" in reason
    assert "verdict is 'request_changes'" in (no_blocking_issues(_review("request_changes")) or "")


@pytest.mark.parametrize("gate", sorted(GATES))
def test_a_gate_whose_artifact_is_missing_names_it_AGENT_WF_004(gate: str) -> None:
    reason = GATES[gate]({"completion": {"summary": "s"}})
    assert reason is not None
    assert f"the {GATE_ARTIFACTS[gate]} artifact was not submitted" in reason


@pytest.mark.parametrize("gate", sorted(GATES))
def test_gates_agree_on_raw_documents_and_their_defaults_AGENT_WF_004(gate: str) -> None:
    """A document without its optional fields is judged like one with their defaults."""
    samples = [_plan("c"), _run(1, 0), _run(0, 1), _review("approve")]
    for artifacts in samples:
        for name, document in artifacts.items():
            assert artifact_problems(name, document) == []
        dumped = {
            name: ARTIFACT_MODELS[name].model_validate(document).model_dump()
            for name, document in artifacts.items()
        }
        assert (GATES[gate](artifacts) is None) == (GATES[gate](dumped) is None)
