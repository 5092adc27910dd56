"""Every check of the lifecycle files, each problem located (SM-DEF-002, SM-DEF-004).

Stability: internal.

A lifecycle file is checked in three rounds, each reporting every problem it
finds with file, line, column and JSON pointer: YAML syntax (and keys given
twice), the schema (:class:`~orchestration.lifecycles.definition.LifecycleDocument`,
the source of ``schemas/lifecycle.schema.json``), then the declaration as a
whole: declared states, known guards, reachability, terminal states without
exits, one transition per trigger and source. :func:`pipeline_problems` adds
the checks across the three files of a pipeline (the states and triggers the
spec requires, ``derive`` rules that name task statuses).

This is the module that needs pydantic and PyYAML; the loader imports it only
when a file is not already known to be valid.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from pydantic import ValidationError

from ..errors import Problem
from .definition import SCHEMA_VERSION, LifecycleDocument
from .guards import GUARDS
from .machine import DeriveRule, Lifecycle, LifecycleState, LifecycleTransition, Match
from .source import YamlSource, pointer_of, read_yaml

__all__ = [
    "check", "did_you_mean", "pipeline_problems", "schema_problems", "source_of", "unreadable",
]  # fmt: skip

SCHEMA_FILE = "schemas/lifecycle.schema.json"

DEFINITION = "SM-DEF-002"
MISSING = "SM-DEF-001"

# The states and triggers the spec requires of the pipeline's lifecycles.
TASK_STATES = (
    "pending", "ready", "claimed", "running", "succeeded", "failed", "blocked", "cancelled",
    "skipped",
)  # fmt: skip
TASK_TRIGGERS = (
    "enqueue", "claim", "release", "start", "complete", "fail", "retry", "block", "unblock",
    "cancel", "skip",
)  # fmt: skip
WORKER_STATES = ("idle", "busy", "draining", "lost", "stopped")


def unreadable(rel: str, error: OSError) -> Problem:
    """The problem of a lifecycle file that cannot be opened."""
    if isinstance(error, FileNotFoundError):
        return Problem(
            rel,
            "the lifecycle file is missing",
            "run `orchestration init` to add the default lifecycles (it keeps existing "
            "files), or restore the file from git",
            MISSING,
        )
    return Problem(
        rel,
        f"cannot read the file: {error.strerror}",
        "check that it is a readable file",
        DEFINITION,
    )


def check(
    raw: bytes, rel: str, stem: str
) -> tuple[Lifecycle | None, YamlSource | None, list[Problem]]:
    """Every problem of one file's text; the compiled lifecycle when there is none.

    Returns:
        The lifecycle (``None`` when there are problems), the parsed source
        (``None`` when the text is not YAML), and the problems, in file order.
    """
    source, problems = read_yaml(raw, rel, DEFINITION)
    if source is None:
        return None, None, problems
    if not isinstance(source.data, dict):
        kind = "empty" if source.data is None else f"a YAML {type(source.data).__name__}"
        problems.append(
            source.problem(
                f"the document is {kind}, not a mapping",
                "declare schema_version, name, initial, states and transitions "
                f"(see {SCHEMA_FILE})",
                DEFINITION,
            )
        )
        return None, source, problems
    try:
        document = LifecycleDocument.model_validate(source.data)
    except ValidationError as error:
        problems.extend(schema_problems(source, error))
    else:
        problems.extend(_declaration_problems(document, source, stem))
    if problems:
        problems.sort(key=lambda p: (p.line, p.column))
        return None, source, problems
    return _compile(document, rel), source, []


def source_of(path: str, rel: str) -> YamlSource:
    """The parsed source of a file already known to be valid, for the positions of problems.

    A file that became unreadable or invalid since gives a source without
    positions: the problem is still reported, at line 0.
    """
    try:
        source, _ = read_yaml(Path(path).read_bytes(), rel, DEFINITION)
    except OSError:
        source = None
    return source if source is not None else YamlSource(rel, None, None)


def _compile(document: LifecycleDocument, rel: str) -> Lifecycle:
    return Lifecycle(
        name=document.name,
        initial=document.initial,
        states=MappingProxyType(
            {name: LifecycleState(s.description, s.terminal) for name, s in document.states.items()}
        ),
        file=rel,
        description=document.description,
        transitions=tuple(
            LifecycleTransition(
                t.trigger, tuple(t.sources), t.dest, tuple(t.guards), t.requirement, t.description
            )
            for t in document.transitions
        ),
        derive_rules=tuple(
            DeriveRule(r.when, tuple(r.statuses), r.status) for r in document.derive
        ),
    )


# --- the declaration as a whole -----------------------------------------------


def _declaration_problems(
    document: LifecycleDocument, source: YamlSource, stem: str
) -> Iterator[Problem]:
    """What the schema cannot see: references, reachability, exits, duplicates."""
    states = document.states
    declared = ", ".join(states)

    def unknown_state(name: str, pointer: str, role: str) -> Problem:
        return source.problem(
            f"{role} {name!r} is not a declared state",
            f"declare it under states, or use one of: {declared}{did_you_mean(name, states)}",
            DEFINITION,
            pointer,
        )

    expected = stem.removesuffix("_lifecycle") if stem.endswith("_lifecycle") else None
    if expected is not None and document.name != expected:
        yield source.problem(
            f"name {document.name!r} does not match the file name {stem + '.yaml'!r}",
            f"set name: {expected}, or rename the file to {document.name}_lifecycle.yaml",
            DEFINITION,
            "/name",
        )
    if document.initial not in states:
        yield unknown_state(document.initial, "/initial", "initial state")

    first: dict[tuple[str, str], int] = {}
    for index, transition in enumerate(document.transitions):
        at = pointer_of("transitions", index)
        listed = not isinstance(transition.source, str)
        for position, state in enumerate(transition.sources):
            pointer = f"{at}/source/{position}" if listed else f"{at}/source"
            declared_state = states.get(state)
            if declared_state is None:
                yield unknown_state(state, pointer, "source")
            elif declared_state.terminal:
                yield source.problem(
                    f"terminal state {state!r} has an outgoing transition {transition.trigger!r}",
                    f"remove {state!r} from the sources of {transition.trigger!r}, or declare "
                    f"it terminal: false",
                    DEFINITION,
                    pointer,
                )
            seen = first.setdefault((state, transition.trigger), index)
            if seen != index or transition.sources.index(state) != position:
                line = source.position(pointer_of("transitions", seen))[0]
                yield source.problem(
                    f"trigger {transition.trigger!r} is declared twice from state {state!r} "
                    f"(first in transition {seen}, line {line})",
                    "keep one transition per trigger and source state; merge the two, or "
                    "rename one trigger",
                    DEFINITION,
                    pointer,
                )
        if transition.dest not in states:
            yield unknown_state(transition.dest, f"{at}/dest", "destination")
        for position, guard in enumerate(transition.guards):
            if guard not in GUARDS:
                yield source.problem(
                    f"unknown guard {guard!r} on transition {transition.trigger!r}",
                    f"use one of the registered guards: {', '.join(sorted(GUARDS))}"
                    f"{did_you_mean(guard, GUARDS)}",
                    DEFINITION,
                    f"{at}/guards/{position}",
                )

    for index, rule in enumerate(document.derive):
        at = pointer_of("derive", index)
        if rule.status not in states:
            yield unknown_state(rule.status, f"{at}/status", "derived status")
        if rule.when is Match.ALWAYS and rule.statuses:
            yield source.problem(
                "a rule with `when: always` matches whatever the statuses; it takes none",
                "remove statuses, or use `when: all` or `when: any`",
                DEFINITION,
                f"{at}/statuses",
            )
        elif rule.when is not Match.ALWAYS and not rule.statuses:
            yield source.problem(
                f"a rule with `when: {rule.when}` needs the statuses it looks for",
                "add statuses: [...], or use `when: always` for the fallback rule",
                DEFINITION,
                at,
            )

    if document.initial in states:
        reached = _reachable(document)
        for name in states:
            if name not in reached:
                yield source.problem(
                    f"state {name!r} is unreachable: no transition leads to it from the "
                    f"initial state {document.initial!r}",
                    "add a transition into it, or remove the state",
                    DEFINITION,
                    pointer_of("states", name),
                )


def _reachable(document: LifecycleDocument) -> set[str]:
    """States reachable from the initial one; a status a rule derives counts as reached."""
    successors: dict[str, set[str]] = {}
    for transition in document.transitions:
        for state in transition.sources:
            successors.setdefault(state, set()).add(transition.dest)
    frontier = [document.initial, *(rule.status for rule in document.derive)]
    reached: set[str] = set()
    while frontier:
        state = frontier.pop()
        if state not in reached:
            reached.add(state)
            frontier.extend(successors.get(state, ()))
    return reached


def did_you_mean(name: str, choices: Mapping[str, Any] | frozenset[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to ``name``; ``""`` when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- the three files together ----------------------------------------------------


def pipeline_problems(
    lifecycles: Mapping[str, Lifecycle], source: Callable[[str], YamlSource]
) -> Iterator[Problem]:
    """What the spec requires of the pipeline's lifecycles, across files.

    Args:
        lifecycles: the valid lifecycles among ``task``, ``workstream``, ``worker``.
        source: the parsed source of the lifecycle of a kind; called only to
            locate a problem.
    """
    task = lifecycles.get("task")
    if task is not None:
        yield from _required(
            task, lambda: source("task"), TASK_STATES, "pending", TASK_TRIGGERS, "SM-DEF-004"
        )
    worker = lifecycles.get("worker")
    if worker is not None:
        yield from _required(
            worker, lambda: source("worker"), WORKER_STATES, "idle", (), "SM-DEF-009"
        )
    workstream = lifecycles.get("workstream")
    if workstream is None:
        return
    if not workstream.derive_rules:
        yield source("workstream").problem(
            "the workstream lifecycle declares no derive rules; a workstream's status is "
            "derived from its tasks",
            "add derive: [{when: ..., statuses: [...], status: ...}, ...] ending with a "
            "`when: always` rule",
            "SM-DEF-008",
        )
    if task is None:
        return
    task_states = task.states
    for index, rule in enumerate(workstream.derive_rules):
        for position, status in enumerate(rule.statuses):
            if status not in task_states:
                yield source("workstream").problem(
                    f"derive rule {index} names {status!r}, which is not a task status "
                    f"(declared in {task.file})",
                    f"use task statuses: {', '.join(task_states)}"
                    f"{did_you_mean(status, task_states)}",
                    DEFINITION,
                    pointer_of("derive", index, "statuses", position),
                )


def _required(
    lifecycle: Lifecycle,
    source: Callable[[], YamlSource],
    states: tuple[str, ...],
    initial: str,
    triggers: tuple[str, ...],
    requirement: str,
) -> Iterator[Problem]:
    missing = [state for state in states if state not in lifecycle.states]
    if missing:
        yield source().problem(
            f"the {lifecycle.name} lifecycle lacks the required states: {', '.join(missing)}",
            f"declare them under states (the spec requires {', '.join(states)})",
            requirement,
            "/states",
        )
    if lifecycle.initial != initial:
        yield source().problem(
            f"the {lifecycle.name} lifecycle must start in {initial!r}, not {lifecycle.initial!r}",
            f"set initial: {initial}",
            requirement,
            "/initial",
        )
    declared = {transition.trigger for transition in lifecycle.transitions}
    absent = [trigger for trigger in triggers if trigger not in declared]
    if absent:
        yield source().problem(
            f"the {lifecycle.name} lifecycle lacks the required triggers: {', '.join(absent)}",
            f"declare a transition for each (the spec requires {', '.join(triggers)})",
            requirement,
            "/transitions",
        )


# --- schema errors ----------------------------------------------------------------

_FIELDS: Mapping[str, tuple[str, ...]] = {
    "": tuple(LifecycleDocument.model_fields),
    "states": ("description", "terminal"),
    "transitions": ("trigger", "source", "dest", "guards", "requirement", "description"),
    "derive": ("when", "statuses", "status"),
}


def schema_problems(
    source: YamlSource,
    error: ValidationError,
    *,
    schema_file: str = SCHEMA_FILE,
    fields: Mapping[str, tuple[str, ...]] = _FIELDS,
    requirement: str = DEFINITION,
) -> list[Problem]:
    """Pydantic's errors as located problems; one problem per value at fault.

    Args:
        schema_file: the published schema the hints point to.
        fields: the allowed fields of the document (key ``""``) and of each
            list or mapping of objects under it, for the hint of an unknown field.
        requirement: the requirement a value at fault violates.
    """
    where = _Where(schema_file, fields, requirement)
    problems: list[Problem] = []
    # A value no branch of a union accepts (``source: 5``) fails once per branch.
    mismatched: dict[str, list[str]] = {}
    for detail in error.errors():
        loc: tuple[str | int, ...] = tuple(detail["loc"])
        pointer, tag, is_key = _pointer(source.data, loc)
        if tag and detail["type"].endswith("_type"):
            mismatched.setdefault(pointer, []).append(detail["msg"])
            continue
        problems.append(_schema_problem(source, detail, loc, pointer, is_key, where))
    for pointer, messages in mismatched.items():
        if any(p.pointer.startswith(pointer) for p in problems):
            continue  # a branch matched the kind of value; its own errors say what is wrong
        value = _shown(_value_at(source.data, pointer))
        problems.append(
            source.problem(
                f"wrong type (got {value}): {'; or '.join(messages)}",
                f"give a value of a type described in {schema_file}",
                requirement,
                pointer,
            )
        )
    return problems


class _Where(NamedTuple):
    schema_file: str
    fields: Mapping[str, tuple[str, ...]]
    requirement: str


def _schema_problem(
    source: YamlSource,
    detail: Any,
    loc: tuple[str | int, ...],
    pointer: str,
    is_key: bool,
    where: _Where,
) -> Problem:
    kind = detail["type"]
    name = str(loc[-1]) if loc else ""
    if pointer == "/schema_version" and kind == "string_pattern_mismatch":
        return _version_problem(source, detail["input"])
    if kind == "missing":
        return source.problem(
            f"required field {name!r} is missing",
            f"add {name!r} (see {where.schema_file})",
            where.requirement,
            pointer,
        )
    if kind == "extra_forbidden":
        allowed = where.fields.get(str(loc[0]) if len(loc) > 2 else "", ())
        hint = "remove it or fix its spelling"
        if allowed:
            hint += f"; allowed here: {', '.join(allowed)}{did_you_mean(name, frozenset(allowed))}"
        return source.problem(f"unknown field {name!r}", hint, where.requirement, pointer)
    what = "key " if is_key else ""
    names = "; names are lower-case identifiers such as `ready`"
    return source.problem(
        f"{what}{_shown(detail.get('input'))}: {detail['msg']}",
        f"give a value of the type and form described in {where.schema_file}"
        + (names if "pattern" in kind and where.schema_file == SCHEMA_FILE else ""),
        where.requirement,
        pointer,
    )


def _version_problem(source: YamlSource, version: str) -> Problem:
    """SCHEMA-VER-003: a newer version needs a newer engine; anything else, this format."""
    numbers = version.split(".")
    newer = all(n.isdigit() for n in numbers) and tuple(map(int, numbers[:2])) > (1, 0)
    if newer:
        hint = f"upgrade orchestration to read it, or write it for schema {SCHEMA_VERSION}"
    else:
        hint = f'write schema_version: "{SCHEMA_VERSION}" and the file in that format'
    return source.problem(
        f"schema_version {version!r} is not supported (this engine reads {SCHEMA_VERSION})",
        hint,
        "SCHEMA-VER-003",
        "/schema_version",
    )


def _pointer(data: Any, loc: tuple[str | int, ...]) -> tuple[str, bool, bool]:
    """``(pointer, passed a union tag, names a mapping key)`` for pydantic's ``loc``.

    The path follows the data: a part that does not lead into it is a union
    branch's tag (``'list[constrained-str]'``) and is left out.
    """
    parts: list[str | int] = []
    tag = is_key = False
    current = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if part == "[key]":
            is_key = True
        elif isinstance(current, dict) and isinstance(part, str) and (part in current or last):
            parts.append(part)
            current = current.get(part)
        elif isinstance(current, list) and isinstance(part, int) and part < len(current):
            parts.append(part)
            current = current[part]
        else:
            tag = True
    return pointer_of(*parts), tag, is_key


def _value_at(data: Any, pointer: str) -> Any:
    for segment in pointer.split("/")[1:]:
        segment = segment.replace("~1", "/").replace("~0", "~")
        data = data[int(segment)] if isinstance(data, list) else data[segment]
    return data


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
