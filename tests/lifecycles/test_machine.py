"""Compiled lifecycles: allowed triggers, apply, guards, derive (SM-DEF-003 to SM-DEF-009)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from transitions import Machine

import orchestration.lifecycles
from orchestration.errors import OrchestrationError
from orchestration.lifecycles import GUARDS, Lifecycle, TransitionRejected, load_lifecycles

from conftest import REPO
from strategies import SPEC_TASK_TABLE

# Loaded at collection, outside the per-test private cache: keep the user's cache out of it.
with tempfile.TemporaryDirectory() as _cache, pytest.MonkeyPatch.context() as _patch:
    _patch.setenv("XDG_CACHE_HOME", _cache)
    LIFECYCLES = load_lifecycles(REPO)
TASK = LIFECYCLES["task"]
WORKSTREAM = LIFECYCLES["workstream"]
WORKER = LIFECYCLES["worker"]
ALL_TRUE = dict.fromkeys(GUARDS, True)

SPEC_TABLE = SPEC_TASK_TABLE
TASK_STATES = [
    "pending",
    "ready",
    "claimed",
    "running",
    "succeeded",
    "failed",
    "blocked",
    "cancelled",
    "skipped",
]


def declared_table(kind: str) -> dict[tuple[str, str], tuple[str, list[str]]]:
    """(state, trigger) → (dest, guards), read straight from the YAML, not through the package."""
    document = yaml.safe_load(
        (REPO / "docs" / "state_machines" / f"{kind}_lifecycle.yaml").read_text()
    )
    table = {}
    for transition in document["transitions"]:
        sources = transition["source"]
        for source in [sources] if isinstance(sources, str) else sources:
            table[source, transition["trigger"]] = (
                transition["dest"],
                transition.get("guards", []),
            )
    return table


TASK_TABLE = declared_table("task")


def test_exported_members() -> None:
    names = orchestration.lifecycles.__all__
    assert names == sorted(names)
    assert names == [
        "DeriveRule",
        "GUARDS",
        "Lifecycle",
        "LifecycleState",
        "LifecycleTransition",
        "TransitionRejected",
        "load_lifecycle",
        "load_lifecycles",
        "state_machine_doc",
        "write_state_machine_doc",
    ]
    assert all(hasattr(orchestration.lifecycles, name) for name in names)
    assert sorted(GUARDS) == [
        "attempts_remaining",
        "dependencies_succeeded",
        "lease_expired",
        "lease_valid",
    ]


def test_one_transitions_machine_per_lifecycle_SM_DEF_003() -> None:
    for lifecycle in LIFECYCLES.values():
        assert isinstance(lifecycle.machine, Machine)
        assert lifecycle.machine.auto_transitions is False
        assert len(lifecycle.machine.models) == 1  # one plain model shared by every entity
        assert set(lifecycle.machine.states) == set(lifecycle.states)
    before = TASK.machine
    for n in range(50):
        TASK.apply(f"task-{n:03d}", "ready", "claim")
    assert TASK.machine is before and len(TASK.machine.models) == 1


def test_importing_the_package_does_not_import_transitions_MOD_IDX_005() -> None:
    code = "import sys, orchestration.lifecycles; sys.exit('transitions' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_task_lifecycle_has_the_required_states_and_triggers_SM_DEF_004() -> None:
    assert TASK.initial == "pending"
    assert list(TASK.states) == TASK_STATES
    assert {t.trigger for t in TASK.transitions} == set(SPEC_TABLE)
    assert [s for s in TASK.states if TASK.is_terminal(s)] == ["succeeded", "cancelled", "skipped"]
    assert not TASK.is_terminal("nonsense")


@pytest.mark.parametrize("trigger", sorted(SPEC_TABLE))
def test_task_triggers_follow_the_spec_table_SM_DEF_004(trigger: str) -> None:
    sources, dest = SPEC_TABLE[trigger]
    for state in TASK_STATES:
        if state in sources:
            assert TASK.apply("task-001", state, trigger, ALL_TRUE) == dest
            assert trigger in TASK.allowed(state)
        else:
            with pytest.raises(TransitionRejected) as raised:
                TASK.apply("task-001", state, trigger, ALL_TRUE)
            assert raised.value.allowed == TASK.allowed(state)
            assert trigger not in raised.value.allowed


def test_allowed_lists_the_triggers_of_a_state_sorted_SM_DEF_006() -> None:
    assert TASK.allowed("ready") == ("block", "cancel", "claim", "requeue", "skip", "start")
    assert TASK.allowed("succeeded") == ()
    assert TASK.allowed("nonsense") == ()
    assert WORKER.allowed("lost") == ("recover",)


def test_rejection_message_lists_the_allowed_triggers_SM_DEF_006() -> None:
    with pytest.raises(TransitionRejected) as raised:
        TASK.apply("task-003", "ready", "complete")
    error = raised.value
    assert str(error) == (
        "cannot apply 'complete' to task 'task-003' in state 'ready'; "
        "allowed there: block, cancel, claim, requeue, skip, start [SM-DEF-006]"
    )
    assert (error.entity, error.entity_id, error.state, error.trigger) == (
        "task",
        "task-003",
        "ready",
        "complete",
    )
    assert error.allowed == ("block", "cancel", "claim", "requeue", "skip", "start")
    assert (error.guard, error.requirement) == (None, "SM-DEF-006")
    assert isinstance(error, OrchestrationError) and error.exit_code == 1


def test_terminal_unknown_trigger_and_unknown_state_are_rejected_SM_DEF_006() -> None:
    with pytest.raises(
        TransitionRejected, match=r"in state 'succeeded'; allowed there: none \(a terminal state\)"
    ):
        TASK.apply("task-003", "succeeded", "retry")
    with pytest.raises(
        TransitionRejected, match=r"has no trigger 'finish'.*allowed there: block, cancel"
    ):
        TASK.apply("task-003", "ready", "finish")
    with pytest.raises(
        TransitionRejected, match=r"'done' is not a state of the task lifecycle"
    ) as raised:
        TASK.apply("task-003", "done", "claim")
    assert raised.value.allowed == ()


def test_retry_needs_attempts_remaining_SM_DEF_007() -> None:
    assert TASK.apply("task-003", "failed", "retry", {"attempts_remaining": True}) == "ready"
    with pytest.raises(TransitionRejected) as raised:
        TASK.apply("task-003", "failed", "retry", {"attempts_remaining": False})
    assert str(raised.value) == (
        "cannot apply 'retry' to task 'task-003': guard 'attempts_remaining' is false [SM-DEF-007]"
    )
    assert (raised.value.guard, raised.value.requirement) == ("attempts_remaining", "SM-DEF-007")
    assert raised.value.allowed == ("cancel", "retry", "skip")


def test_a_missing_guard_counts_as_false_SM_DEF_005() -> None:
    with pytest.raises(TransitionRejected, match="guard 'dependencies_succeeded' was not given"):
        TASK.apply("task-003", "pending", "enqueue")
    with pytest.raises(TransitionRejected, match="guard 'dependencies_succeeded'"):
        TASK.apply("task-003", "pending", "enqueue", {"lease_valid": True})
    assert TASK.apply("task-003", "pending", "enqueue", {"dependencies_succeeded": True}) == "ready"


def test_guards_only_matter_where_declared() -> None:
    assert TASK.apply("task-003", "ready", "claim", {"lease_valid": False}) == "claimed"
    with pytest.raises(TransitionRejected, match="guard 'lease_valid' is false"):
        TASK.apply("task-003", "claimed", "start", {"lease_valid": False})
    with pytest.raises(TransitionRejected, match="guard 'lease_expired'"):
        WORKER.apply("worker-1", "busy", "lose", {"lease_expired": False})
    assert WORKER.apply("worker-1", "busy", "lose", {"lease_expired": True}) == "lost"


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], "planned"),  # `all` over no tasks does not match
        (["cancelled", "cancelled"], "cancelled"),
        (["succeeded", "skipped", "cancelled"], "completed"),
        (["succeeded"], "completed"),
        (["succeeded", "running", "failed"], "executing"),
        (["pending", "claimed"], "executing"),
        (["succeeded", "failed"], "failed"),
        (["blocked", "ready"], "failed"),
        (["pending", "ready"], "ready"),
        (["pending", "succeeded"], "planned"),
    ],
)
def test_workstream_status_is_derived_by_the_first_matching_rule_SM_DEF_008(
    statuses: list[str], expected: str
) -> None:
    assert WORKSTREAM.derive(statuses) == expected
    assert WORKSTREAM.derive(iter(statuses)) == expected  # any iterable, read once


def test_derive_without_rules_gives_the_initial_state() -> None:
    assert TASK.derive(["running"]) == "pending"


def test_worker_lifecycle_has_the_required_states_SM_DEF_009() -> None:
    assert WORKER.initial == "idle"
    assert set(WORKER.states) >= {"idle", "busy", "draining", "lost", "stopped"}
    for state in ("idle", "busy", "draining"):
        assert WORKER.apply("worker-1", state, "lose", {"lease_expired": True}) == "lost"


# --- no transition the YAML does not declare is ever accepted -----------------------------

triggers = st.sampled_from(
    sorted({trigger for _, trigger in TASK_TABLE} | {"finish", "to_ready", "trigger"})
)
facts = st.dictionaries(st.sampled_from(sorted(GUARDS)), st.booleans())


@settings(max_examples=300, deadline=None)
@given(state=st.sampled_from(TASK_STATES), trigger=triggers, guards=facts)
def test_apply_agrees_with_the_declared_table_SM_DEF_006(
    state: str, trigger: str, guards: dict[str, bool]
) -> None:
    declared = TASK_TABLE.get((state, trigger))
    allowed = tuple(sorted(t for s, t in TASK_TABLE if s == state))
    if declared is not None and all(guards.get(g, False) for g in declared[1]):
        assert TASK.apply("task-001", state, trigger, guards) == declared[0]
        return
    with pytest.raises(TransitionRejected) as raised:
        TASK.apply("task-001", state, trigger, guards)
    assert raised.value.allowed == allowed
    if declared is None:
        assert f"allowed there: {', '.join(allowed) or 'none'}" in str(raised.value)
    else:
        assert raised.value.guard in declared[1]


class TaskWalk(RuleBasedStateMachine):
    """Random trigger sequences on one task: state changes only along the declared table."""

    def __init__(self) -> None:
        super().__init__()
        self.lifecycle: Lifecycle = TASK
        self.state = TASK.initial
        self.history: list[Any] = []

    @rule(trigger=triggers, guards=facts)
    def apply(self, trigger: str, guards: dict[str, bool]) -> None:
        declared = TASK_TABLE.get((self.state, trigger))
        try:
            new = self.lifecycle.apply("task-001", self.state, trigger, guards)
        except TransitionRejected as rejected:
            assert rejected.state == self.state
            assert rejected.allowed == self.lifecycle.allowed(self.state)
            assert declared is None or not all(guards.get(g, False) for g in declared[1])
            return
        assert declared is not None, f"accepted {trigger!r} from {self.state!r}"
        assert new == declared[0]
        self.state = new

    @precondition(lambda self: self.state in {"succeeded", "cancelled", "skipped"})
    @rule()
    def restart(self) -> None:
        self.state = TASK.initial

    @invariant()
    def state_is_declared(self) -> None:
        assert self.state in TASK.states


TestTaskWalk = TaskWalk.TestCase
TestTaskWalk.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
