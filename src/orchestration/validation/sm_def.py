"""Checks of the lifecycles and of the transitions the journal records (SM-DEF).

Stability: provisional.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import Problem
from .check import NotApplicable, check
from .repository import Repository

__all__ = ["journal_transitions", "lifecycle_files", "ready_tasks_enqueued", "state_machine_doc"]

# Journal lines about a task that are not lifecycle triggers.
BOOKKEEPING = ("create", "redefine", "archive")
DONE = ("succeeded", "skipped")


@check("SM-DEF-001", "SM-DEF-002", "SM-DEF-004", "SM-DEF-008", "SM-DEF-009")
def lifecycle_files(repo: Repository) -> Iterator[Problem]:
    """The lifecycle YAML files exist, validate, and declare the required states and triggers."""
    for problem in repo.lifecycles.problems:
        if problem.requirement.startswith("SM-DEF-"):
            yield problem


def _lifecycles(repo: Repository) -> dict[str, Any]:
    lifecycles = repo.lifecycles
    if lifecycles.problems:
        msg = "the lifecycles have problems (see SM-DEF-002)"
        raise NotApplicable(msg)
    return lifecycles.value


@check("SM-DEF-010")
def state_machine_doc(repo: Repository) -> Iterator[Problem]:
    """docs/execution_model/STATE_MACHINE.md holds the diagrams generated from the YAML."""
    from ..lifecycles.diagram import DOC_PATH, write_state_machine_doc

    _lifecycles(repo)
    if write_state_machine_doc(repo.root, check=True):
        yield Problem(
            DOC_PATH,
            "the state diagrams are stale: they differ from the lifecycle YAML",
            "run `orchestration lifecycles` to regenerate them, and commit the result",
            "SM-DEF-010",
        )


@check("SM-DEF-006", "SM-DEF-007")
def journal_transitions(repo: Repository) -> Iterator[Problem]:
    """Every task transition in the journal is one its lifecycle allows, retries within bounds."""
    from ..state import JournalError

    files = repo.state
    lifecycle = _lifecycles(repo)["task"]
    edges = {
        (source, transition.trigger): transition.dest
        for transition in lifecycle.transitions
        for source in transition.sources
    }
    rel = repo.rel(files.journal)
    try:
        lines = repo.journal.lines
    except JournalError:
        msg = "the journal cannot be read (see STATE-OBS-004)"
        raise NotApplicable(msg) from None
    limits: dict[str, int] = {}
    retries: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if line["entity"] != "task":
            continue
        task_id, trigger = line["id"], line["trigger"]
        if trigger in BOOKKEEPING:
            if "data" in line:
                limits[task_id] = line["data"].get("max_retries", 0)
            continue
        dest = edges.get((line["from"], trigger))
        if dest != line["to"]:
            allowed = ", ".join(lifecycle.allowed(line["from"])) or "none"
            yield Problem(
                rel,
                f"seq {line['seq']}: {task_id!r} {line['from']} --{trigger}--> {line['to']} is "
                f"not a transition of the task lifecycle (allowed from {line['from']}: {allowed})",
                "the journal was written by something other than the store: restore it, or "
                "run `orchestration state rebuild` after fixing it",
                "SM-DEF-006",
                line=number,
                column=1,
            )
        if trigger == "retry":
            retries[task_id] = retries.get(task_id, 0) + 1
            if retries[task_id] > limits.get(task_id, 0):
                yield Problem(
                    rel,
                    f"seq {line['seq']}: retry {retries[task_id]} of {task_id!r} exceeds its "
                    f"max_retries {limits.get(task_id, 0)}",
                    "retries happen only while attempts remain; raise execution.max_retries "
                    "before retrying again",
                    "SM-DEF-007",
                    line=number,
                    column=1,
                )


@check("SM-DEF-005")
def ready_tasks_enqueued(repo: Repository) -> Iterator[Problem]:
    """No task waits in pending while all of its dependencies are done."""
    snapshot = repo.snapshot
    tasks = snapshot.tasks
    for task_id, entry in sorted(tasks.items()):
        if entry["status"] != "pending":
            continue
        deps = entry.get("dependencies", ())
        if all(tasks.get(dep, {}).get("status") in DONE for dep in deps):
            yield Problem(
                repo.rel(repo.state.snapshot),
                f"{task_id!r} is pending although every dependency is done: it should be ready",
                "run `orchestration sync`, which enqueues it; if it stays pending, report a bug",
                "SM-DEF-005",
                pointer=f"/tasks/{task_id}/status",
            )
