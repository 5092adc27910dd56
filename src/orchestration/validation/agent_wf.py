"""Checks of the agent workflow contract and the tool audit trail (AGENT-WF).

Stability: provisional.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import orjson

from ..errors import Problem
from .check import NotApplicable, check
from .repository import Repository

if TYPE_CHECKING:
    from ..enforcement.contract import Contract
    from ..lifecycles.source import YamlSource

__all__ = ["agent_contract", "artifact_schemas", "contract_phases", "tool_audit"]

CONTRACT = "agent_workflow.yaml"
# AGENT-WF-002, AGENT-WF-004: the phases in order, and the gate that guards leaving each.
PHASES = ("PLAN", "TDD", "IMPL", "REVIEW", "COMPLETE")
GATE_OF = {
    "PLAN": "plan_has_acceptance_criteria",
    "TDD": "tests_are_failing",
    "IMPL": "all_tests_pass",
    "REVIEW": "no_blocking_issues",
}
DECISIONS = frozenset({"allowed", "denied", "warned"})


@check("AGENT-WF-001")
def agent_contract(repo: Repository) -> Iterator[Problem]:
    """agent_workflow.yaml exists, validates against its schema and compiles."""
    yield from repo.contract.problems


def _source(repo: Repository) -> tuple[Contract, YamlSource]:
    """The valid contract and its parsed text (for positions); not applicable when invalid."""
    from ..lifecycles.checking import source_of

    contract = repo.contract
    if contract.value is None:
        msg = "the contract has problems (see AGENT-WF-001)"
        raise NotApplicable(msg)
    return contract.value, source_of(str(repo.path(CONTRACT)), CONTRACT)


@check("AGENT-WF-002", "AGENT-WF-004")
def contract_phases(repo: Repository) -> Iterator[Problem]:
    """The contract leads PLAN → TDD → IMPL → REVIEW → COMPLETE, skipping none, gates in place."""
    contract, source = _source(repo)
    for missing in (p for p in PHASES if p not in contract.phases):
        yield source.problem(
            f"the contract lacks phase {missing}",
            f"declare the phases {', '.join(PHASES)} (see `orchestration init`'s {CONTRACT})",
            "AGENT-WF-002",
            "/phases",
        )
    order = {phase: index for index, phase in enumerate(PHASES)}
    for index, step in enumerate(contract.steps):
        here = f"/transitions/{index}"
        known = step.source in order and step.dest in order
        if known and order[step.dest] > order[step.source] + 1:
            yield source.problem(
                f"transition {step.trigger!r} skips from {step.source} to {step.dest}",
                f"lead {step.source} only to the phase after it, {PHASES[order[step.source] + 1]}",
                "AGENT-WF-002",
                f"{here}/dest",
            )
        gate = GATE_OF.get(step.source)
        forward = step.dest in order and order.get(step.source, -1) < order[step.dest]
        if gate and forward and gate not in step.gates:
            yield source.problem(
                f"leaving {step.source} for {step.dest} is not guarded by {gate!r}",
                f"add `gates: [{gate}]` to transition {step.trigger!r}",
                "AGENT-WF-004",
                here,
            )
    for phase in PHASES[:-1]:
        if phase in contract.phases and PHASES[order[phase] + 1] not in contract.next_phases(phase):
            yield source.problem(
                f"no transition leads from {phase} to {PHASES[order[phase] + 1]}",
                "declare it, with its artifacts and gate",
                "AGENT-WF-002",
                "/transitions",
            )


@check("AGENT-WF-003")
def artifact_schemas(repo: Repository) -> Iterator[Problem]:
    """Every artifact a transition requires has its schema in schemas/artifacts/."""
    contract, source = _source(repo)
    for index, step in enumerate(contract.steps):
        for position, name in enumerate(step.artifacts):
            rel = f"schemas/artifacts/{name}.schema.json"
            if not repo.path(rel).is_file():
                yield source.problem(
                    f"artifact {name!r} has no schema: {rel} is missing",
                    "run `orchestration schemas` to write the published schemas",
                    "AGENT-WF-003",
                    f"/transitions/{index}/artifacts/{position}",
                )


@check("AGENT-WF-012")
def tool_audit(repo: Repository) -> Iterator[Problem]:
    """Every tool audit record parses and has every field, with a known decision."""
    from ..state.audit import AUDIT_FIELDS

    folder = repo.state.folder / "audit"
    files = sorted(folder.glob("tool_audit*.jsonl"))
    if not files:
        msg = "no tool audit yet (no agent has used a tool)"
        raise NotApplicable(msg)
    for path in files:
        rel = repo.rel(path)
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    record = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    record = None
                if not isinstance(record, dict):
                    yield Problem(rel, "the line is not a JSON object",
                                  "the audit is written by the engine only; restore the file",
                                  "AGENT-WF-012", line=number)  # fmt: skip
                    continue
                missing = [name for name in AUDIT_FIELDS if name not in record]
                if missing:
                    yield Problem(rel, f"the record lacks {', '.join(missing)}",
                                  "the audit is written by the engine only; restore the file",
                                  "AGENT-WF-012", line=number)  # fmt: skip
                elif record["decision"] not in DECISIONS:
                    yield Problem(rel, f"unknown decision {record['decision']!r}",
                                  f"decisions are {', '.join(sorted(DECISIONS))}",
                                  "AGENT-WF-012", line=number)  # fmt: skip
