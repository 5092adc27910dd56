"""agent_workflow.yaml: validated on load, every problem located, compiled as a lifecycle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestration.enforcement.contract import Mode, load_contract
from orchestration.errors import DefinitionError, Problem
from orchestration.lifecycles import TransitionRejected
from orchestration.tasks.schema import published_schemas

from conftest import REPO

DEFAULT = (REPO / "agent_workflow.yaml").read_text()
PHASES = ["PLAN", "TDD", "IMPL", "REVIEW", "COMPLETE"]


def _problems(root: Path, text: str) -> list[Problem]:
    (root / "agent_workflow.yaml").write_text(text)
    with pytest.raises(DefinitionError) as raised:
        load_contract(root)
    return list(raised.value.problems)


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_default_contract_declares_the_five_phases_in_order_AGENT_WF_002() -> None:
    contract = load_contract(REPO)
    assert list(contract.phases) == PHASES
    assert contract.initial == "PLAN"
    assert contract.mode is Mode.STRICT
    path, phase = [], "PLAN"
    while not contract.phases[phase].terminal:
        path.append(phase)
        phase = contract.next_phases(phase)[-1]  # forward: the last declared step out
    assert [*path, phase] == PHASES
    assert contract.step("PLAN", "IMPL") is None  # no phase can be skipped


def test_gates_are_guards_of_the_compiled_lifecycle_AGENT_WF_001_AGENT_WF_004() -> None:
    contract = load_contract(REPO)
    lifecycle = contract.lifecycle
    gates = {s.source: s.gates for s in contract.steps if s.dest != "IMPL" or s.source == "TDD"}
    assert gates == {
        "PLAN": ("plan_has_acceptance_criteria",),
        "TDD": ("tests_are_failing",),
        "IMPL": ("all_tests_pass",),
        "REVIEW": ("no_blocking_issues",),
    }
    assert (
        lifecycle.apply("t", "PLAN", "write_tests", {"plan_has_acceptance_criteria": True}) == "TDD"
    )
    with pytest.raises(TransitionRejected) as refused:
        lifecycle.apply("t", "PLAN", "write_tests", {"plan_has_acceptance_criteria": False})
    assert refused.value.guard == "plan_has_acceptance_criteria"
    with pytest.raises(TransitionRejected):
        lifecycle.apply("t", "PLAN", "implement", {})  # not declared from PLAN
    assert lifecycle.allowed("COMPLETE") == ()


def test_tdd_may_write_only_tests_AGENT_WF_010() -> None:
    tdd = load_contract(REPO).phases["TDD"]
    rules = {rule.tool: rule.paths for rule in tdd.allowed}
    assert rules["write_file"] and all("test" in glob for glob in rules["write_file"])
    assert "run_command" in tdd.forbidden


def test_published_schema_is_current_and_accepts_the_default_AGENT_WF_001() -> None:
    text = published_schemas()["agent_workflow.schema.json"]
    assert (REPO / "schemas" / "agent_workflow.schema.json").read_text() == text
    jsonschema.validate(yaml.safe_load(DEFAULT), json.loads(text))


BROKEN = [
    # (what is changed, replaced by, the text of the line the problem is on, in the message)
    ("gates: [tests_are_failing]", "gates: [tests_fail]", "gates: [tests_fail]", "tests_fail"),
    ("allowed: [read_file, list_files]\n      forbidden: [write_file, run_tests, run_command]",
     "allowed: [read_file, list_files, delete_file]\n      forbidden: [write_file, run_tests, run_command]",
     "allowed: [read_file, list_files, delete_file]", "delete_file"),
    ("source: REVIEW\n    dest: COMPLETE", "source: REVIEW\n    dest: COMPLET", "dest: COMPLET",
     "did you mean 'COMPLETE'"),
    ("  mode: strict ", "  mode: lenient ", "mode: lenient", "lenient"),
    ("token_ttl_seconds: 3600", "token_ttl_seconds: 0", "token_ttl_seconds: 0", "greater than 0"),
    ("initial: PLAN", "initial: PLAN\ncolour: blue", "colour: blue", "unknown field 'colour'"),
    ("  COMPLETE:\n    description: Done; the task succeeds.\n    terminal: true",
     "  COMPLETE:\n    description: Done; the task succeeds.\n    terminal: true\n"
     "  LIMBO:\n    description: Nobody comes here.",
     "LIMBO:", "cannot be reached"),
    ("    source: REVIEW\n    dest: IMPL\n", "    source: COMPLETE\n    dest: IMPL\n",
     "source: COMPLETE", "terminal"),
    ("      allowed: [read_file, list_files, run_tests]\n      forbidden: [write_file, run_command]",
     "      allowed: [read_file, list_files, run_tests]\n      forbidden: [write_file, run_command, run_tests]",
     "forbidden: [write_file, run_command, run_tests]", "both allowed and forbidden"),
]  # fmt: skip


@pytest.mark.parametrize("old,new,line,message", BROKEN, ids=[b[3] for b in BROKEN])
def test_invalid_contract_is_located_AGENT_WF_001(
    tmp_path: Path, old: str, new: str, line: str, message: str
) -> None:
    assert old in DEFAULT
    text = DEFAULT.replace(old, new, 1)
    problems = _problems(tmp_path, text)
    assert any(message in p.message for p in problems), problems
    found = next(p for p in problems if message in p.message)
    assert found.file == "agent_workflow.yaml"
    assert found.requirement == "AGENT-WF-001"
    assert found.line == _line_of(text, line), found


def test_two_transitions_between_the_same_phases_are_ambiguous_AGENT_WF_002(
    tmp_path: Path,
) -> None:
    text = DEFAULT + "  - {trigger: again, source: REVIEW, dest: COMPLETE}\n"
    [problem] = _problems(tmp_path, text)
    assert "second transition from 'REVIEW' to 'COMPLETE'" in problem.message
    assert problem.line == len(text.splitlines())


def test_missing_and_unparsable_contracts(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError) as raised:
        load_contract(tmp_path)
    assert "missing" in raised.value.problems[0].message
    assert "orchestration init" in raised.value.problems[0].hint
    [problem] = _problems(tmp_path, "initial: [PLAN\n")
    assert "invalid YAML" in problem.message and problem.line >= 1
    [problem] = _problems(tmp_path, "- PLAN\n")
    assert "not a mapping" in problem.message


def _mutations() -> st.SearchStrategy[tuple[list[str | int], Any]]:
    document = yaml.safe_load(DEFAULT)
    paths: list[list[str | int]] = []

    def walk(node: Any, path: list[str | int]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, [*path, key])
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, [*path, index])

    walk(document, [])
    values = st.one_of(
        st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=8),
        st.lists(st.text(max_size=5), max_size=2), st.just({}), st.just("DELETE"),
    )  # fmt: skip
    return st.tuples(st.sampled_from(paths[1:]), values)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(changes=st.lists(_mutations(), min_size=1, max_size=3))
def test_any_edit_loads_or_gives_located_problems_AGENT_WF_001(
    tmp_path: Path, changes: list[tuple[list[str | int], Any]]
) -> None:
    """Whatever a person does to the file, the loader compiles it or says where it is wrong."""
    document = yaml.safe_load(DEFAULT)
    for path, value in changes:
        parent: Any = document
        try:
            for part in path[:-1]:
                parent = parent[part]
            if value == "DELETE":
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    (tmp_path / "agent_workflow.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    try:
        contract = load_contract(tmp_path)
    except DefinitionError as error:
        assert error.problems
        for problem in error.problems:
            assert problem.file == "agent_workflow.yaml"
            assert problem.requirement.startswith(("AGENT-WF-", "SCHEMA-VER-"))
            assert problem.line >= 1
    else:
        assert contract.initial in contract.phases
        assert any(phase.terminal for phase in contract.phases.values())
