"""Accept plainly valid task files without pydantic: the planner's fast path (TASK-DEF-002).

Stability: internal.

``plan`` reads every task file when its cache misses. Importing pydantic costs
a quarter of a second, and building a validated model per file is most of the
work per file, yet the planner needs seven fields. :func:`screen` parses a file
with orjson and checks it against the rules of
:class:`~orchestration.tasks.model.Task`, written out by hand, and returns the
planner's view of the task.

The screen only ever *accepts*: it answers ``None`` for anything it is not
sure of (an unknown key, a wrong type, a date in an unusual form, a number
orjson reads differently from pydantic), and the caller then validates that
file with the model, which decides and explains every problem. Validation is
therefore never weaker: each document the screen accepts, the model accepts
with the same values. ``tests/tasks/test_screening.py`` checks this on random
valid and invalid documents and pins the model's published schema, so that a
change to the model fails there until this module follows it.

:func:`accept` is the same screen for a caller that reads more of the
document than the planner (the runner's columns, in
:mod:`orchestration.execution.definitions`); it returns the parsed document.
"""

from __future__ import annotations

import re
from datetime import date
from functools import partial
from typing import Any

from orjson import JSONDecodeError, dumps, loads

from ..planning.plan import PlanTask

__all__ = ["accept", "plan_view", "screen"]

# A PlanTask from a 7-tuple without a Python-level call.
_plan_task = partial(tuple.__new__, PlanTask)

# Identifier (model.ID_PATTERN, at most 128 characters), and a list of them
# joined by newlines, which no identifier contains: one regex call per list.
_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_identifier = re.compile(_ID).fullmatch
_identifiers = re.compile(f"{_ID}(?:\n{_ID})*").fullmatch
# The ISO 8601 date-times pydantic reads exactly so (its parser also takes
# other forms, which are left to it); ASCII digits only, as ``\d`` is Unicode.
# The day of the month is checked below.
_datetime = re.compile(
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?"
).fullmatch
# Date-times already accepted: pipelines repeat a few creation times.
_dates: set[str] = set()
_KEEP_DATES = 4096
# Integers a JSON number converts to a float without rounding, in both parsers.
_EXACT = 2**53

_TOP = frozenset(
    {
        "$schema",
        "schema_version",
        "task_id",
        "workstream_id",
        "name",
        "description",
        "type",
        "status",
        "priority",
        "dependencies",
        "blocks",
        "resources",
        "worker_requirements",
        "execution",
        "context_requirements",
        "validation_rules",
        "state",
    }
)
_WORKER = frozenset({"capabilities", "min_version"})
_EXECUTION = frozenset({"command", "timeout_seconds", "max_retries", "estimated_seconds"})
_CONTEXT = frozenset({"max_context_tokens", "required_files", "exclude_patterns"})
_RULES = frozenset({"pre_execution", "post_execution"})
_STATE = frozenset({"created_at", "retry_count"})
_TYPES = frozenset({"shell", "aider", "claude", "manual"})
_STATUSES = frozenset(
    {
        "pending",
        "ready",
        "claimed",
        "running",
        "succeeded",
        "failed",
        "blocked",
        "cancelled",
        "skipped",
    }
)

# Defaults for absent members; never mutated.
_LIST: list[Any] = []
_DICT: dict[str, Any] = {}


def screen(raw: bytes) -> PlanTask | None:
    """The planner's view of ``raw`` if it is certainly a valid task document, else ``None``.

    ``None`` says nothing about validity: validate the file with the model.
    Where the file sits (TASK-DEF-001) and what other files hold are the
    caller's checks, as after the model.
    """
    document = accept(raw)
    return None if document is None else plan_view(document)


def plan_view(document: dict[str, Any]) -> PlanTask:
    """The planner's view of a document :func:`accept` returned."""
    get = document.get
    estimate = get("execution", _DICT).get("estimated_seconds")
    return _plan_task((
        document["task_id"], document["workstream_id"], document["name"],
        tuple(get("dependencies", _LIST)), tuple(get("blocks", _LIST)),
        None if estimate is None else float(estimate), tuple(get("resources", _DICT)),
    ))  # fmt: skip


def accept(raw: bytes) -> dict[str, Any] | None:
    """The parsed document ``raw`` if it is certainly a valid task document, else ``None``.

    What the model would build from it, with its defaults left out: an
    absent member has the model's default (``priority`` 0, ``type`` as
    written, ``execution.max_retries`` 0, ...), and an integer
    ``estimated_seconds`` stands for the same float. The document is the
    caller's to read, not to change.
    """
    try:
        document = loads(raw)
    except JSONDecodeError:
        return None
    if type(document) is not dict or not _TOP.issuperset(document):
        return None
    get = document.get
    task_id = get("task_id")
    workstream_id = get("workstream_id")
    name = get("name")
    kind = get("type")
    if not (
        get("schema_version") == "2.0.0"
        and type(task_id) is str
        and _identifier(task_id)
        and type(workstream_id) is str
        and _identifier(workstream_id)
        and type(name) is str
        and name
        and type(kind) is str
        and kind in _TYPES
    ):
        return None
    status = get("status", "pending")
    dependencies = get("dependencies", _LIST)
    blocks = get("blocks", _LIST)
    if not (
        _optional_str(get("$schema"))
        and type(get("description", "")) is str
        and type(status) is str
        and status in _STATUSES
        and type(get("priority", 0)) is int
        and _identifier_list(dependencies)
        and _identifier_list(blocks)
        and _resources(get("resources", _DICT), raw)
        and _worker(get("worker_requirements", _DICT))
        and _context(get("context_requirements", _DICT))
        and _rules(get("validation_rules", _DICT))
        and _state(get("state", _DICT))
    ):
        return None
    execution = get("execution", _DICT)
    if type(execution) is not dict or not _EXECUTION.issuperset(execution):
        return None
    run = execution.get
    timeout = run("timeout_seconds", 600)
    retries = run("max_retries", 0)
    estimate = run("estimated_seconds")
    if not (
        _optional_str(run("command"))
        and type(timeout) is int
        and timeout > 0
        and type(retries) is int
        and retries >= 0
    ):
        return None
    if type(estimate) is float:
        # orjson refuses NaN and infinities; a float at or above zero is exact.
        if not estimate >= 0:
            return None
    elif type(estimate) is int:
        if not 0 <= estimate <= _EXACT:
            return None
    elif estimate is not None:
        return None
    return document


def _optional_str(value: object) -> bool:
    return value is None or type(value) is str


def _identifier_list(value: object) -> bool:
    if type(value) is not list:
        return False
    if not value:
        return True
    try:
        joined = "\n".join(value)
    except TypeError:
        return False  # a member is not a string
    # A member holding a newline would pass as two identifiers: count them.
    return joined.count("\n") == len(value) - 1 and _identifiers(joined) is not None


def _strings(value: object) -> bool:
    if type(value) is not list:
        return False
    try:
        "".join(value)
    except TypeError:
        return False
    return True


def _count(value: object, least: int) -> bool:
    return type(value) is int and value >= least


def _resources(value: object, raw: bytes) -> bool:
    if type(value) is not dict:
        return False
    if not value:
        return True
    if not all(type(units) is int and units > 0 for units in value.values()):
        return False
    # pydantic checks every member of a dict, even one that a later duplicate
    # key replaces; orjson keeps only the last. Without escapes, each key's
    # text occurs once in the file exactly when it is not duplicated.
    return b"\\" not in raw and all(raw.count(dumps(key)) == 1 for key in value)


def _worker(value: object) -> bool:
    return (
        type(value) is dict
        and _WORKER.issuperset(value)
        and _identifier_list(value.get("capabilities", _LIST))
        and _optional_str(value.get("min_version"))
    )


def _context(value: object) -> bool:
    if type(value) is not dict or not _CONTEXT.issuperset(value):
        return False
    tokens = value.get("max_context_tokens")
    return (
        (tokens is None or _count(tokens, 1))
        and _strings(value.get("required_files", _LIST))
        and _strings(value.get("exclude_patterns", _LIST))
    )


def _rules(value: object) -> bool:
    return (
        type(value) is dict
        and _RULES.issuperset(value)
        and _strings(value.get("pre_execution", _LIST))
        and _strings(value.get("post_execution", _LIST))
    )


def _state(value: object) -> bool:
    if type(value) is not dict or not _STATE.issuperset(value):
        return False
    created = value.get("created_at")
    return (created is None or _date_time(created)) and _count(value.get("retry_count", 0), 0)


def _date_time(value: object) -> bool:
    if type(value) is not str:
        return False
    if value in _dates:
        return True
    if _datetime(value) is None:
        return False
    try:
        date.fromisoformat(value[:10])  # the day exists in that month and year
    except ValueError:
        return False
    if len(_dates) < _KEEP_DATES:
        _dates.add(value)
    return True
