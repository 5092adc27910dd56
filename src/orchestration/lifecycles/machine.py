"""A lifecycle compiled into one ``transitions`` machine (SM-DEF-003, SM-DEF-006).

Stability: stable (:class:`Lifecycle`'s methods and :class:`TransitionRejected`).

Each :class:`Lifecycle` builds one :class:`transitions.Machine` when it is
created and keeps it for every entity of its kind: entities are records that
carry their state as a string, and :meth:`Lifecycle.apply` sets that string on
one small plain model object, fires the event, and reads the destination
back. Nothing is attached to the records, and no pydantic object is ever a
model (``transitions`` binds methods with ``setattr``; pytransitions #635).
Guards are the transitions' ``conditions``; they read the facts the caller
passes to :meth:`Lifecycle.apply` and look nothing up themselves.

Not thread-safe: a lifecycle drives one shared model object, so calls to
:meth:`Lifecycle.apply` must not overlap. The store applies transitions under
its writer lock, one at a time, which is all the engine needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

from ..errors import OrchestrationError

if TYPE_CHECKING:
    from transitions import EventData, Machine

__all__ = [
    "DeriveRule",
    "Lifecycle",
    "LifecycleState",
    "LifecycleTransition",
    "Match",
    "TransitionRejected",
]

_NO_FACTS: Mapping[str, bool] = {}


class TransitionRejected(OrchestrationError):
    """A trigger was applied where the lifecycle does not allow it (SM-DEF-006, SM-DEF-007).

    Attributes:
        entity: the lifecycle's name (``task``, ``workstream``, ``worker``).
        entity_id: the id of the entity the trigger was applied to.
        state: the entity's state when the trigger was applied.
        trigger: the trigger that was rejected.
        allowed: the triggers the lifecycle allows in ``state``, sorted.
        guard: the guard that was false or missing, ``None`` when the trigger
            itself is not allowed in ``state``.
        requirement: the spec requirement the rejection enforces.
    """

    exit_code: ClassVar[int] = 1

    def __init__(
        self,
        message: str,
        *,
        entity: str,
        entity_id: str,
        state: str,
        trigger: str,
        allowed: tuple[str, ...],
        guard: str | None = None,
        requirement: str = "SM-DEF-006",
    ) -> None:
        super().__init__(message)
        self.entity = entity
        self.entity_id = entity_id
        self.state = state
        self.trigger = trigger
        self.allowed = allowed
        self.guard = guard
        self.requirement = requirement


@dataclass(frozen=True, slots=True)
class LifecycleState:
    """One state: what it means, and whether it is final."""

    description: str
    terminal: bool


@dataclass(frozen=True, slots=True)
class LifecycleTransition:
    """One trigger from its source states to a destination, as declared."""

    trigger: str
    sources: tuple[str, ...]
    dest: str
    guards: tuple[str, ...] = ()
    requirement: str = "SM-DEF-004"
    description: str = ""


class Match(StrEnum):
    """How a ``derive`` rule reads the statuses of a workstream's tasks."""

    ALL = "all"  # there is at least one task, and every task's status is listed
    ANY = "any"  # at least one task's status is listed
    ALWAYS = "always"  # matches unconditionally: the fallback, last in the list


@dataclass(frozen=True, slots=True)
class DeriveRule:
    """One rule deriving a status from member statuses (SM-DEF-008)."""

    when: Match
    statuses: tuple[str, ...]
    status: str

    def matches(self, present: frozenset[str]) -> bool:
        """Whether the rule applies to members whose statuses are ``present``.

        ``all`` needs at least one member: over no tasks it does not match.
        """
        if self.when is Match.ALWAYS:
            return True
        if self.when is Match.ALL:
            return bool(present) and present.issubset(self.statuses)
        return not present.isdisjoint(self.statuses)


class _Token:
    """The plain model object the machine drives; ``state`` is set before each event."""

    state: str
    trigger: Callable[..., bool]  # bound by Machine.add_model: fire an event by name


@dataclass(frozen=True, slots=True)
class _Compiled:
    machine: Machine
    token: _Token
    # state → trigger → transition: the declared table, for lookups and messages.
    edges: Mapping[str, Mapping[str, LifecycleTransition]]
    allowed: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True, eq=False)
class Lifecycle:
    """A lifecycle compiled once into a ``transitions`` machine (SM-DEF-003).

    Built by :func:`~orchestration.lifecycles.load_lifecycle`, which has
    checked the declaration (every state declared, no duplicate trigger per
    source); constructing one directly assumes the same. Two lifecycles are
    equal only when they are the same object.

    Attributes:
        name: ``task``, ``workstream``, ``worker``.
        initial: the state every new entity starts in.
        states: every state by name, in declaration order.
        file: the YAML file it was declared in, relative to the pipeline root.
        description: what the lifecycle is about.
        transitions: the declared transitions, in file order.
        derive_rules: ordered rules for :meth:`derive` (workstreams).
    """

    name: str
    initial: str
    states: Mapping[str, LifecycleState]
    file: str
    description: str = ""
    transitions: tuple[LifecycleTransition, ...] = ()
    derive_rules: tuple[DeriveRule, ...] = ()
    _compiled: _Compiled = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", _compile(self))

    @property
    def machine(self) -> Machine:
        """The compiled machine (one per lifecycle, shared by every entity)."""
        return self._compiled.machine

    def allowed(self, state: str) -> tuple[str, ...]:
        """Triggers allowed from ``state``, sorted; ``()`` for a terminal or unknown state."""
        return self._compiled.allowed.get(state, ())

    def is_terminal(self, state: str) -> bool:
        """Whether ``state`` is final (``False`` for a state the lifecycle does not declare)."""
        declared = self.states.get(state)
        return declared is not None and declared.terminal

    def apply(
        self,
        entity_id: str,
        state: str,
        trigger: str,
        guards: Mapping[str, bool] | None = None,
    ) -> str:
        """The state an entity reaches when ``trigger`` is applied in ``state``.

        Pure: nothing is recorded; the caller (the store) journals the change.

        Args:
            entity_id: the entity's id, for the message of a rejection.
            state: the entity's current state.
            trigger: the trigger to apply.
            guards: guard name → whether it holds for this entity now. A guard
                the transition requires that is missing here counts as false.

        Returns:
            The destination state.

        Raises:
            TransitionRejected: ``trigger`` is unknown or not allowed in
                ``state`` (SM-DEF-006), or one of its guards is false or
                missing (the transition's own requirement, e.g. SM-DEF-007).
        """
        compiled = self._compiled
        edge = compiled.edges.get(state, _NO_EDGES).get(trigger)
        if edge is None:
            raise self._not_allowed(entity_id, state, trigger)
        facts = _NO_FACTS if guards is None else guards
        token = compiled.token
        token.state = state
        if token.trigger(trigger, facts=facts):
            return token.state
        raise self._guard_failed(entity_id, state, edge, facts)

    def derive(self, statuses: Iterable[str]) -> str:
        """The status derived from member statuses by the ordered ``derive`` rules.

        The first rule that matches wins; with no matching rule (or none
        declared), the initial state.
        """
        present = frozenset(statuses)
        for rule in self.derive_rules:
            if rule.matches(present):
                return rule.status
        return self.initial

    def _not_allowed(self, entity_id: str, state: str, trigger: str) -> TransitionRejected:
        allowed = self.allowed(state)
        where = f"{self.name} {entity_id!r}"
        if state not in self.states:
            reason = (
                f"{state!r} is not a state of the {self.name} lifecycle ({self.file}); "
                f"its states are: {', '.join(self.states)}"
            )
        elif trigger not in self._compiled.machine.events:
            known = sorted(self._compiled.machine.events)
            reason = (
                f"the {self.name} lifecycle has no trigger {trigger!r} (its triggers: "
                f"{', '.join(known)}); allowed there: {_listed(allowed, state, self)}"
            )
        else:
            reason = f"allowed there: {_listed(allowed, state, self)}"
        message = f"cannot apply {trigger!r} to {where} in state {state!r}; {reason} [SM-DEF-006]"
        return TransitionRejected(
            message,
            entity=self.name,
            entity_id=entity_id,
            state=state,
            trigger=trigger,
            allowed=allowed,
        )

    def _guard_failed(
        self, entity_id: str, state: str, edge: LifecycleTransition, facts: Mapping[str, bool]
    ) -> TransitionRejected:
        guard = next((g for g in edge.guards if not facts.get(g, False)), edge.guards[0])
        verdict = "is false" if guard in facts else "was not given (it counts as false)"
        message = (
            f"cannot apply {edge.trigger!r} to {self.name} {entity_id!r}: guard {guard!r} "
            f"{verdict} [{edge.requirement}]"
        )
        return TransitionRejected(
            message,
            entity=self.name,
            entity_id=entity_id,
            state=state,
            trigger=edge.trigger,
            allowed=self.allowed(state),
            guard=guard,
            requirement=edge.requirement,
        )


_NO_EDGES: Mapping[str, LifecycleTransition] = {}


def _listed(allowed: tuple[str, ...], state: str, lifecycle: Lifecycle) -> str:
    if allowed:
        return ", ".join(allowed)
    return "none (a terminal state)" if lifecycle.is_terminal(state) else "none"


def _guard(name: str) -> Callable[[EventData], bool]:
    """The condition for guard ``name``: the fact passed to :meth:`Lifecycle.apply`."""

    def holds(event: EventData) -> bool:
        return bool(event.kwargs["facts"].get(name, False))

    holds.__name__ = holds.__qualname__ = f"guard_{name}"
    return holds


def _compile(lifecycle: Lifecycle) -> _Compiled:
    """Build the one machine of ``lifecycle`` and the lookup tables ``apply`` reads."""
    # Imported here: only commands that apply transitions pay for it (MOD-IDX-005).
    from transitions import Machine

    token = _Token()
    machine = Machine(
        model=token,
        states=list(lifecycle.states),
        initial=lifecycle.initial,
        transitions=[
            {
                "trigger": t.trigger,
                "source": list(t.sources),
                "dest": t.dest,
                "conditions": [_guard(g) for g in t.guards],
            }
            for t in lifecycle.transitions
        ],
        auto_transitions=False,
        send_event=True,  # conditions receive the EventData, and read its kwargs
        ignore_invalid_triggers=False,
        name=lifecycle.name,
    )
    edges: dict[str, dict[str, LifecycleTransition]] = {state: {} for state in lifecycle.states}
    for transition in lifecycle.transitions:
        for source in transition.sources:
            edges[source].setdefault(transition.trigger, transition)
    allowed: dict[str, tuple[str, ...]] = {
        state: tuple(sorted(machine.get_triggers(state))) for state in lifecycle.states
    }
    return _Compiled(machine, token, edges, allowed)
