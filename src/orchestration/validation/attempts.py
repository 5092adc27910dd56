"""Checks of what ``orchestration run`` leaves under ``.state/``: leases, attempts, evidence.

Stability: provisional.

A run records each claim as a lease in the journal (CONC-REG-006), each
attempt in ``.state/attempts/<task_id>/<n>/`` before its process starts
(CONC-REG-010) and, when it ends, the engine's own evidence of it in
``.state/logs/<task_id>/<n>/evidence.json`` (AIDER-INT-008). These checks
replay the journal and read those files without writing anything: what they
report was left by a hand edit, a state copied in part, or an engine bug.
With no ``.state/`` yet, or no run on it, they are not applicable.

What the journal cannot show is not checked: whether a lease had expired by
the clock when its holder wrote (heartbeats are not journaled), and which
epoch a late writer held (a refused write is journaled without it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import Problem
from ..failures import FailureMode
from ..state.snapshot import LEASED
from .check import NotApplicable, check
from .repository import Repository

if TYPE_CHECKING:
    from ..registry import Resource
    from ..state import State

__all__ = [
    "attempt_evidence",
    "attempt_records",
    "claude_sessions",
    "exclusive_attempts",
    "failures_journaled",
    "lease_fencing",
    "leases_recorded",
]

LEASE_KEYS = ("holder", "worker", "epoch", "granted", "ttl")
FM_PREFIX = re.compile(r"FM-[A-Z]+(?:-[A-Z]+)*\b")
MODES = frozenset(mode.value for mode in FailureMode)
# Failures that can end an attempt before its record is written (no worktree, an engine bug).
BEFORE_RECORD = frozenset({FailureMode.SANDBOX.value, FailureMode.INTERNAL.value})
EVIDENCE_KEYS = ("exit_code", "duration_seconds", "stdout", "stderr")
PAST_TENSE = {"complete": "completed", "fail": "failed"}
HAND_EDIT = (
    "the journal was written by something other than the store: restore it from a backup "
    "(`orchestration state rebuild` after fixing it)"
)
NO_LEASE = "no run has leased a task yet"
NO_ATTEMPT = "no run has finished an attempt yet"
EVIDENCE_HINT = (
    "`orchestration run` writes evidence.json when an attempt ends; restore it, or retry the "
    "task to record a new attempt"
)


def _journal(repo: Repository) -> tuple[str, list[dict[str, Any]]]:
    """The journal's path for problems and its lines; not applicable when it cannot be read."""
    from ..state import JournalError

    files = repo.state
    try:
        lines = repo.journal.lines
    except JournalError:
        msg = "the journal cannot be read (see STATE-OBS-004)"
        raise NotApplicable(msg) from None
    return repo.rel(files.journal), lines


def _replay(lines: list[dict[str, Any]]) -> Iterator[tuple[int, dict[str, Any], State]]:
    """Each line with its 1-based number and the state just before it (the store's fold)."""
    from ..state import State

    state = State()
    for number, line in enumerate(lines, start=1):
        yield number, line, state
        try:
            state.apply(line)
        except (KeyError, TypeError, AttributeError):
            msg = f"the journal cannot be replayed past line {number} (see STATE-OBS-012)"
            raise NotApplicable(msg) from None


def _inspects(
    lines: list[dict[str, Any]], picks: Callable[[dict[str, Any]], bool], why: str
) -> None:
    """Raise :class:`NotApplicable` (``why``) when no line is one that ``picks``.

    The checks below count the lines they inspect and are not applicable
    without any (dropping whatever they found on the way): on a journal no
    run has worked on (a sync of 100k tasks) this one scan decides it,
    instead of a walk that tracks every task.
    """
    if not any(map(picks, lines)):
        raise NotApplicable(why)


def _at(rel: str, number: int, message: str, hint: str, requirement: str) -> Problem:
    """A problem on line ``number`` of the journal."""
    return Problem(rel, message, hint, requirement, line=number, column=1)


# --- leases (CONC-REG-006, CONC-REG-007) -----------------------------------------------


@check("CONC-REG-006")
def leases_recorded(repo: Repository) -> Iterator[Problem]:
    """Every claim by a run is a lease with holder, worker, a growing epoch and a ttl."""
    rel, lines = _journal(repo)
    _inspects(lines, _leased, NO_LEASE)
    epochs: dict[str, int] = {}
    leases = 0
    for number, line in enumerate(lines, start=1):
        task_id, trigger = line["id"], line["trigger"]
        kind = (line["entity"], trigger)
        if kind == ("task", "archive"):
            epochs.pop(task_id, None)  # defined again later, it starts over as in the store
            continue
        if kind not in (("task", "claim"), ("lease", "adopt")):
            continue
        if "lease" not in line:
            if trigger == "adopt":
                message = f"seq {line['seq']}: the adoption of {task_id!r} records no lease"
                yield _at(rel, number, message, HAND_EDIT, "CONC-REG-006")
            continue  # a person's claim through `orchestration task ID claim`: no lease
        leases += 1
        fault = _lease_fault(line["lease"])
        if fault is not None:
            message = f"seq {line['seq']}: the lease of {task_id!r} ({trigger}) {fault}"
            yield _at(rel, number, message, HAND_EDIT, "CONC-REG-006")
            continue
        epoch, last = line["lease"]["epoch"], epochs.get(task_id)
        if last is not None and epoch <= last:
            message = (
                f"seq {line['seq']}: {trigger} of {task_id!r} grants lease epoch {epoch}, not "
                f"above the previous {last}: a fenced-off holder would be current again"
            )
            yield _at(rel, number, message, HAND_EDIT, "CONC-REG-006")
        epochs[task_id] = max(epoch, last or 0)
    if not leases:
        raise NotApplicable(NO_LEASE)


def _leased(line: dict[str, Any]) -> bool:
    """Whether ``line`` is a claim or an adoption under a lease."""
    kind = (line["entity"], line["trigger"])
    return "lease" in line and kind in (("task", "claim"), ("lease", "adopt"))


def _lease_fault(lease: Any) -> str | None:
    """What is wrong with a journaled lease; ``None`` when it is what the store writes."""
    if not isinstance(lease, dict):
        return f"is {lease!r}, not an object"
    missing = [key for key in LEASE_KEYS if key not in lease]
    if missing:
        return f"lacks {', '.join(missing)}"
    for key in ("holder", "worker"):
        if not isinstance(lease[key], str) or not lease[key]:
            return f"has {key} {lease[key]!r}, not a name"
    epoch, granted, ttl = lease["epoch"], lease["granted"], lease["ttl"]
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
        return f"has epoch {epoch!r}, not a positive integer"
    if not _is_number(granted):
        return f"has granted {granted!r}, not a Unix time"
    if not _is_number(ttl) or ttl <= 0:
        return f"has ttl {ttl!r}: a lease must expire a positive number of seconds after renewal"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@check("CONC-REG-007")
def lease_fencing(repo: Repository) -> Iterator[Problem]:
    """No worker completes or fails a task it holds no lease on; refusals name FM-LEASE-EXPIRED."""
    rel, lines = _journal(repo)
    _inspects(lines, _fenced, NO_LEASE)
    expired = FailureMode.LEASE_EXPIRED.value
    inspected = 0
    for number, line, state in _replay(lines):
        entity, trigger, seq = line["entity"], line["trigger"], line["seq"]
        if "lease" in line:
            inspected += 1
        if entity == "lease" and trigger == "refuse":
            inspected += 1
            if not str(line["reason"]).startswith(expired):
                message = (
                    f"seq {seq}: a late result for {line['id']!r} was refused with reason "
                    f"{line['reason']!r}, which does not start with {expired}"
                )
                yield _at(rel, number, message, HAND_EDIT, "CONC-REG-007")
        elif _by_worker(line):
            inspected += 1
            entry = state.tasks.get(line["id"], {})
            if "lease" not in entry:
                message = (
                    f"seq {seq}: {line['actor']} {PAST_TENSE[trigger]} {line['id']!r}, which "
                    f"held no lease (it was {entry.get('status') or 'not in the state'}): a "
                    "worker writes only under a current lease"
                )
                hint = (
                    "a worker's result goes through the store's fenced finish(), which refuses "
                    f"it without a current lease ({expired}); " + HAND_EDIT
                )
                yield _at(rel, number, message, hint, "CONC-REG-007")
    if not inspected:
        raise NotApplicable(NO_LEASE)


def _fenced(line: dict[str, Any]) -> bool:
    """Whether ``line`` is one that :func:`lease_fencing` inspects."""
    refused = line["entity"] == "lease" and line["trigger"] == "refuse"
    return "lease" in line or refused or _by_worker(line)


def _by_worker(line: dict[str, Any]) -> bool:
    """Whether ``line`` is a worker's result: a task completed or failed by a worker."""
    return (
        line["entity"] == "task"
        and line["trigger"] in PAST_TENSE
        and str(line["actor"]).startswith("worker:")
    )


# --- attempts (CONC-REG-010, CONC-REG-011, CONC-REG-012) ------------------------------


@dataclass(frozen=True)
class _Start:
    """A journaled start of an attempt under a lease."""

    line: int  # its line in the journal
    seq: int
    epoch: int  # the lease epoch it started under


def _unrecorded(line: dict[str, Any]) -> bool:
    """Whether ``line``, following an attempt's start, ends it before its record is written."""
    failure = line.get("failure")
    mode = failure.get("mode") if isinstance(failure, dict) else None
    return line["trigger"] == "abandon" or (line["trigger"] == "fail" and mode in BEFORE_RECORD)


def _attempt_start(line: dict[str, Any]) -> bool:
    """Whether ``line`` starts an attempt of a task (which the state says is leased or not)."""
    return (
        line["entity"] == "task"
        and line["trigger"] == "start"
        and isinstance(line.get("attempt"), int)
    )


@check("CONC-REG-010", "CONC-REG-012")
def attempt_records(repo: Repository) -> Iterator[Problem]:
    """Each attempt a run started has its record under .state/attempts/, on its own branch."""
    files = repo.state
    rel, lines = _journal(repo)
    _inspects(lines, _attempt_start, NO_ATTEMPT)
    started: dict[tuple[str, int], _Start] = {}  # the latest start of each attempt
    open_: dict[str, tuple[str, int]] = {}  # task → its attempt with no outcome yet
    for number, line, state in _replay(lines):
        if line["entity"] != "task":
            continue
        task_id = line["id"]
        key = open_.pop(task_id, None)
        if key is not None and _unrecorded(line):
            started.pop(key, None)
        if not _attempt_start(line):
            continue
        lease = state.tasks.get(task_id, {}).get("lease")
        if isinstance(lease, dict):
            key = (task_id, line["attempt"])
            started[key] = _Start(number, line["seq"], lease.get("epoch", 0))
            open_[task_id] = key
    for key in open_.values():
        started.pop(key, None)  # still running: its record may be being written right now
    if not started:
        raise NotApplicable(NO_ATTEMPT)
    for (task_id, attempt), start in sorted(started.items()):
        yield from _record_problems(repo, files.attempts, rel, task_id, attempt, start)


def _record_problems(
    repo: Repository, attempts: Path, rel: str, task_id: str, attempt: int, start: _Start
) -> Iterator[Problem]:
    from ..state.attempts import read_attempt

    folder = attempts / task_id / str(attempt)
    path = folder / "attempt.json"
    record_rel = repo.rel(path)
    ran = (
        f"attempt {attempt} of {task_id!r} (started at seq {start.seq}, lease epoch {start.epoch})"
    )
    hint = (
        "the runner writes the record before it spawns the attempt, so that a restarted run "
        "can adopt or record it; restore .state/attempts/ if it was copied without it"
    )
    if not path.is_file():
        message = f"{ran} has no record: {record_rel} does not exist"
        yield _at(rel, start.line, message, hint, "CONC-REG-010")
        return
    record = read_attempt(folder)
    if record is None:
        message = f"the record of {ran} cannot be read: it is not what the runner writes"
        yield Problem(record_rel, message, hint, "CONC-REG-010")
        return
    for field, expected in (("task_id", task_id), ("attempt", attempt), ("epoch", start.epoch)):
        found = getattr(record, field)
        if found != expected:
            message = f"{field} is {found!r}, but the journal started {ran}"
            yield repo.located(record_rel, f"/{field}", message, hint, "CONC-REG-010")
    branch = f"task/{task_id}/{attempt}"
    if record.branch != branch:
        message = f"{ran} ran on branch {record.branch!r}, not on its own branch {branch!r}"
        hint = "each attempt runs in its own git worktree on task/<task_id>/<attempt>"
        yield repo.located(record_rel, "/branch", message, hint, "CONC-REG-012")


@check("CONC-REG-011")
def exclusive_attempts(repo: Repository) -> Iterator[Problem]:
    """No attempt ran twice, and no claim took units or path locks that others held."""
    rel, lines = _journal(repo)
    _inspects(lines, _claimed, NO_LEASE)
    resources: dict[str, dict[str, int]] = {}  # task → what it claims, as last defined
    active: set[str] = set()  # tasks claimed or running
    starts: dict[str, dict[int, int]] = {}  # task → attempt → seq of its first start
    registry: _Registry | None = None
    claims = 0
    for number, line in enumerate(lines, start=1):
        if line["entity"] != "task":
            continue
        task_id, trigger, seq = line["id"], line["trigger"], line["seq"]
        if trigger == "archive":
            starts.pop(task_id, None)  # defined again later, it counts attempts from 1
        elif isinstance(line.get("data"), dict):
            resources[task_id] = dict(line["data"].get("resources") or {})
        if trigger == "start" and isinstance(line.get("attempt"), int):
            first = starts.setdefault(task_id, {}).setdefault(line["attempt"], seq)
            if first != seq:
                message = (
                    f"seq {seq}: attempt {line['attempt']} of {task_id!r} started again (first "
                    f"at seq {first}): the same attempt ran twice"
                )
                yield _at(rel, number, message, HAND_EDIT, "CONC-REG-011")
        elif trigger == "claim" and "lease" in line:
            claims += 1
            wanted = resources.get(task_id, {})
            if wanted:
                registry = registry or _Registry(repo)
                held = {other: resources.get(other, {}) for other in active - {task_id}}
                for conflict in registry.conflicts(wanted, held):
                    message = f"seq {seq}: {task_id!r} was claimed while {conflict}"
                    hint = (
                        "a run takes a task's resources and path locks all at once, only when "
                        "free; a second run on the same .state/ shares the store, not a copy"
                    )
                    yield _at(rel, number, message, hint, "CONC-REG-011")
        (active.add if line["to"] in LEASED else active.discard)(task_id)
    if not claims:
        raise NotApplicable(NO_LEASE)


def _claimed(line: dict[str, Any]) -> bool:
    """Whether ``line`` is a run's claim of a task, under a lease."""
    return line["entity"] == "task" and line["trigger"] == "claim" and "lease" in line


class _Registry:
    """The resource registry, as a judge of claims made side by side."""

    def __init__(self, repo: Repository) -> None:
        loaded = repo.resources
        # An invalid registry is reported by resource_registry (CONC-REG-001); judge nothing.
        self.resources: Mapping[str, Resource] = {} if loaded.problems else loaded.value
        self._overlaps: dict[tuple[str, str], bool] = {}

    def _overlap(self, first: Resource, second: Resource) -> bool:
        from ..registry import globs_overlap

        key = (first.name, second.name)
        if key not in self._overlaps:
            self._overlaps[key] = any(
                globs_overlap(a, b) for a in first.paths for b in second.paths
            )
        return self._overlaps[key]

    def conflicts(
        self, wanted: Mapping[str, int], held: Mapping[str, Mapping[str, int]]
    ) -> Iterator[str]:
        """What ``wanted`` collides with among the ``held`` claims (task → units by name)."""
        from ..registry import ResourceKind

        used: dict[str, int] = {}
        holders: dict[str, list[str]] = {}
        for holder, claim in sorted(held.items()):
            for name, units in claim.items():
                used[name] = used.get(name, 0) + units
                holders.setdefault(name, []).append(holder)
        for name, units in sorted(wanted.items()):
            resource = self.resources.get(name)
            if resource is None:
                continue  # an unknown resource is reported by claimed_resources (CONC-REG-004)
            if used.get(name, 0) + units > resource.capacity:
                yield (
                    f"{', '.join(map(repr, holders[name]))} held {used[name]} of the "
                    f"{resource.capacity} units of {name!r} and it took {units} more"
                )
            if resource.kind is not ResourceKind.PATH_LOCK:
                continue
            for other_name in sorted(holders):
                other = self.resources.get(other_name)
                if (
                    other_name != name
                    and other is not None
                    and other.kind is ResourceKind.PATH_LOCK
                    and self._overlap(resource, other)
                ):
                    yield (
                        f"{', '.join(map(repr, holders[other_name]))} held path lock "
                        f"{other_name!r}, whose paths overlap those of its path lock {name!r}"
                    )


# --- failures (ERR-FM-007) ----------------------------------------------------------------


@check("ERR-FM-007")
def failures_journaled(repo: Repository) -> Iterator[Problem]:
    """Every failure and engine retry names its failure mode, with warning or error severity."""
    rel, lines = _journal(repo)
    inspected = 0
    for number, line in enumerate(lines, start=1):
        if line["entity"] != "task":
            continue
        trigger, actor = line["trigger"], str(line["actor"])
        failure = line.get("failure")
        if trigger == "fail" and (failure is not None or actor == "engine" or _worker(actor)):
            inspected += 1
            yield from _failure_problems(rel, number, line)
        elif trigger == "retry" and actor == "engine":
            inspected += 1
            yield from _mode_problems(rel, number, line, "retry")
            if line["severity"] != "warning":
                message = (
                    f"seq {line['seq']}: the retry of {line['id']!r} has severity "
                    f"{line['severity']!r}, not 'warning'"
                )
                yield _at(rel, number, message, HAND_EDIT, "ERR-FM-007")
    if not inspected:
        msg = "no failure or retry is journaled yet"
        raise NotApplicable(msg)


def _worker(actor: str) -> bool:
    return actor.startswith("worker:")


def _mode_problems(rel: str, number: int, line: dict[str, Any], what: str) -> Iterator[Problem]:
    """The reason of ``line`` must start with a failure-mode ID the engine defines."""
    reason = str(line["reason"])
    found = FM_PREFIX.match(reason)
    if found is None or found.group() not in MODES:
        message = (
            f"seq {line['seq']}: the {what} of {line['id']!r} has reason {reason!r}, which does "
            "not start with a failure-mode ID (FM-...)"
        )
        hint = "the engine writes 'FM-<MODE>: ...'; see docs/failure_modes/CATALOG.md"
        yield _at(rel, number, message, hint, "ERR-FM-007")


def _failure_problems(rel: str, number: int, line: dict[str, Any]) -> Iterator[Problem]:
    yield from _mode_problems(rel, number, line, "failure")
    failure = line.get("failure")
    if not isinstance(failure, dict):
        return  # a person's failure, or an old line: no decision to compare the severity with
    seq, task_id = line["seq"], line["id"]
    mode = failure.get("mode")
    named = FM_PREFIX.match(str(line["reason"]))
    if mode not in MODES:
        message = f"seq {seq}: the failure of {task_id!r} has mode {mode!r}, no FailureMode"
        yield _at(rel, number, message, HAND_EDIT, "ERR-FM-007")
    elif named is not None and named.group() != mode:
        message = (
            f"seq {seq}: the failure of {task_id!r} is {mode} but its reason names {named.group()}"
        )
        yield _at(rel, number, message, HAND_EDIT, "ERR-FM-007")
    final = failure.get("final") is True
    expected = "error" if final else "warning"
    if line["severity"] != expected:
        message = (
            f"seq {seq}: the {'final' if final else 'retried'} failure of {task_id!r} has "
            f"severity {line['severity']!r}, not {expected!r}"
        )
        yield _at(rel, number, message, HAND_EDIT, "ERR-FM-007")


# --- evidence (AIDER-INT-005, AIDER-INT-007, AIDER-INT-008) ---------------------------


def _attempt_folders(base: Path) -> Iterator[tuple[str, int, Path]]:
    """``(task_id, attempt, folder)`` for each ``<base>/<task_id>/<n>/`` folder."""
    if not base.is_dir():
        return
    for task_folder in sorted(base.iterdir()):
        if not task_folder.is_dir():
            continue
        numbered = [f for f in task_folder.iterdir() if f.is_dir() and f.name.isdigit()]
        for folder in sorted(numbered, key=lambda f: int(f.name)):
            yield task_folder.name, int(folder.name), folder


def _current_attempts(repo: Repository) -> set[tuple[str, int]] | None:
    """The attempts of tasks still claimed or running; ``None`` when the journal cannot tell."""
    from ..state import State

    state = State()
    try:
        _, lines = _journal(repo)
        for line in lines:
            state.apply(line)
    except (NotApplicable, KeyError, TypeError, AttributeError):
        return None
    return {
        (task_id, entry.get("attempt", 0))
        for task_id, entry in state.tasks.items()
        if entry.get("status") in LEASED
    }


@check("AIDER-INT-007", "AIDER-INT-008")
def attempt_evidence(repo: Repository) -> Iterator[Problem]:
    """Each finished attempt has the engine's evidence, with short logs and a valid result."""
    files = repo.state
    inspected = 0
    for task_id, attempt, folder in _attempt_folders(files.logs):
        path = folder / "evidence.json"
        if path.is_file():
            inspected += 1
            yield from _evidence_problems(repo, path, task_id, attempt)
    current: set[tuple[str, int]] | None = None
    for task_id, attempt, folder in _attempt_folders(files.attempts):
        exit_file = folder / "exit"
        if not (folder / "attempt.json").is_file() or not exit_file.is_file():
            continue  # still running, or it never started a process
        inspected += 1
        evidence = files.logs / task_id / str(attempt) / "evidence.json"
        if evidence.is_file():
            continue
        if current is None:
            current = _current_attempts(repo)
        if current is None or (task_id, attempt) in current:
            continue  # its runner has yet to record it (or a restarted run will)
        message = (
            f"attempt {attempt} of {task_id!r} finished ({repo.rel(exit_file)} holds its exit "
            "status) but the engine recorded no evidence of it"
        )
        yield Problem(repo.rel(evidence), message, EVIDENCE_HINT, "AIDER-INT-008")
    if not inspected:
        msg = "no attempt has finished yet"
        raise NotApplicable(msg)


def _read_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None


def _evidence_problems(
    repo: Repository, path: Path, task_id: str, attempt: int
) -> Iterator[Problem]:
    from ..state.attempts import LOG_TAIL_BYTES

    rel = repo.rel(path)
    of = f"attempt {attempt} of {task_id!r}"
    try:
        document = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as bad:
        yield Problem(
            rel, f"the evidence of {of} is not JSON ({bad})", EVIDENCE_HINT, "AIDER-INT-008"
        )
        return
    if not isinstance(document, dict):
        message = f"the evidence of {of} is not a JSON object"
        yield Problem(rel, message, EVIDENCE_HINT, "AIDER-INT-008")
        return
    for key in EVIDENCE_KEYS:
        if key not in document:
            message = f"the evidence of {of} lacks {key!r}"
            yield Problem(rel, message, EVIDENCE_HINT, "AIDER-INT-008")
    for key, expected in (("task_id", task_id), ("attempt", attempt)):
        if key in document and document[key] != expected:
            message = f"{key} is {document[key]!r}, but the evidence is in the folder of {of}"
            yield repo.located(rel, f"/{key}", message, EVIDENCE_HINT, "AIDER-INT-008")
    code = document.get("exit_code")
    if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
        message = f"the exit code of {of} is {code!r}, neither an integer nor null"
        yield repo.located(rel, "/exit_code", message, EVIDENCE_HINT, "AIDER-INT-008")
    duration = document.get("duration_seconds")
    if "duration_seconds" in document and not (
        isinstance(duration, int | float) and not isinstance(duration, bool) and duration >= 0
    ):
        message = f"the duration of {of} is {duration!r}, not a number of seconds"
        yield repo.located(rel, "/duration_seconds", message, EVIDENCE_HINT, "AIDER-INT-008")
    for key in ("stdout", "stderr"):
        name = document.get(key)
        if not isinstance(name, str):
            continue
        log = path.parent / name
        if not log.is_file():
            message = f"the evidence of {of} names its {key} {name!r}, which is not there"
            yield repo.located(rel, f"/{key}", message, EVIDENCE_HINT, "AIDER-INT-008")
        elif (size := log.stat().st_size) > LOG_TAIL_BYTES:
            message = (
                f"the {key} of {of} holds {size} bytes: the evidence keeps its last "
                f"{LOG_TAIL_BYTES} bytes only"
            )
            hint = "the runner cuts each log to its tail when the attempt ends; cut it or remove it"
            yield Problem(repo.rel(log), message, hint, "AIDER-INT-008")
    if "result" in document:
        yield from _result_problems(repo, rel, of, document["result"])


def _result_problems(repo: Repository, rel: str, of: str, result: Any) -> Iterator[Problem]:
    from pydantic import ValidationError

    from ..execution.adapters import WorkerResult

    try:
        WorkerResult.model_validate(result)
    except ValidationError as invalid:
        for error in invalid.errors():
            pointer = "/result" + "".join(f"/{part}" for part in error["loc"])
            message = (
                f"the result of {of} is not a valid worker result: {error['msg']} (at {pointer})"
            )
            hint = (
                "results follow schemas/worker_result.schema.json; an invalid one fails the "
                "attempt (FM-INVALID-RESULT) and is never recorded as evidence"
            )
            yield repo.located(rel, pointer, message, hint, "AIDER-INT-007")


@check("AIDER-INT-005")
def claude_sessions(repo: Repository) -> Iterator[Problem]:
    """The result of each claude attempt records the session id the claude CLI reported."""
    from ..tasks.model import TaskType

    files = repo.state
    tasks = repo.tasks.tasks
    inspected = 0
    for task_id, attempt, folder in _attempt_folders(files.logs):
        task = tasks.get(task_id)
        if task is None or task.type is not TaskType.CLAUDE:
            continue
        document = _read_json(folder / "evidence.json")
        result = document.get("result") if isinstance(document, dict) else None
        if not isinstance(result, dict):
            continue  # no result: the attempt failed before one (reported by AIDER-INT-007/008)
        inspected += 1
        session = result.get("session_id")
        if not isinstance(session, str) or not session.strip():
            message = (
                f"the result of claude attempt {attempt} of {task_id!r} records no session id "
                f"({session!r})"
            )
            hint = (
                "the claude adapter takes it from the stream-json output of `claude -p "
                "--output-format stream-json --verbose`; without one the attempt must fail "
                "(FM-INVALID-RESULT)"
            )
            rel = repo.rel(folder / "evidence.json")
            yield repo.located(rel, "/result/session_id", message, hint, "AIDER-INT-005")
    if not inspected:
        msg = "no claude attempt has a result yet"
        raise NotApplicable(msg)
