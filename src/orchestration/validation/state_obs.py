"""Checks of the observable state under ``.state/`` (STATE-OBS).

Stability: provisional.

Each check is read-only: it reports what the store would repair or what a
hand edit broke, and never takes the writer lock. With no ``.state/`` yet
(a fresh clone, CI), the state checks are not applicable.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any

import orjson

from ..errors import Problem
from .check import NotApplicable, check
from .repository import Repository

__all__ = [
    "index_document",
    "journal_lines",
    "snapshot_document",
    "snapshot_matches_journal",
    "state_ignored_by_git",
    "state_matches_definitions",
]

SNAPSHOT_KEYS = ("schema_version", "timestamp", "last_seq", "workstreams", "tasks", "workers")
REBUILD = (
    "run `orchestration state verify` to see the differences, then `orchestration state rebuild`"
)
# .gitignore lines that ignore the state files (read when git cannot be asked).
IGNORING = {".state", ".state/", ".state/*", ".state/**"}
# Declared statuses that `sync` applies as a trigger (STATE-OBS-015).
DECLARED_TRIGGERS = {"cancelled": "cancel", "skipped": "skip"}
# A writer may keep the snapshot this far behind the journal (STATE-OBS-009).
WRITER_ACTIVE_SECONDS = 1.0


@check("STATE-OBS-001")
def state_ignored_by_git(repo: Repository) -> Iterator[Problem]:
    """``.state/`` is ignored by git, so runtime state is never committed."""
    probe = ".state/current.json"
    if (repo.root / ".git").exists():
        try:
            done = subprocess.run(
                ["git", "check-ignore", "-q", probe],
                cwd=repo.root,
                capture_output=True,
                check=False,
            )
        except OSError:
            pass  # no git on this machine: read .gitignore below
        else:
            if done.returncode in (0, 1):
                if done.returncode == 1:
                    yield _not_ignored()
                return
    try:
        lines = (repo.root / ".gitignore").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    if not {line.strip().lstrip("/") for line in lines} & IGNORING:
        yield _not_ignored()


def _not_ignored() -> Problem:
    return Problem(
        ".gitignore",
        "git does not ignore .state/, so runtime state could be committed",
        "add the line `.state/` to .gitignore",
        "STATE-OBS-001",
    )


@check("STATE-OBS-002", "STATE-OBS-003", "STATE-OBS-013")
def snapshot_document(repo: Repository) -> Iterator[Problem]:
    """``.state/current.json`` parses, holds the documented keys and a supported version."""
    from ..state import SnapshotError, read_snapshot

    files = repo.state
    rel = repo.rel(files.snapshot)
    if not files.snapshot.exists():
        yield Problem(
            rel,
            "the journal exists but the snapshot does not",
            "run any state command (e.g. `orchestration status`) or `orchestration state "
            "rebuild`: opening the store rebuilds it",
            "STATE-OBS-002",
        )
        return
    try:
        read_snapshot(files.snapshot)
    except SnapshotError as bad:
        supported = "not supported" in str(bad)
        yield Problem(
            rel,
            str(bad).removeprefix(f"{files.snapshot}: "),
            "upgrade orchestration to read this snapshot"
            if supported
            else "the snapshot was not written by the store; `orchestration state rebuild`",
            "STATE-OBS-013" if supported else "STATE-OBS-003",
        )
        return
    document = orjson.loads(files.snapshot.read_bytes())
    for key in SNAPSHOT_KEYS:
        if key not in document:
            yield Problem(
                rel, f"the snapshot lacks {key!r}", REBUILD, "STATE-OBS-002", pointer=f"/{key}"
            )


@check("STATE-OBS-004", "STATE-OBS-005")
def journal_lines(repo: Repository) -> Iterator[Problem]:
    """Every journal line has the documented fields, a contiguous seq and a known severity."""
    from ..state import JournalError
    from ..state.journal import SEVERITIES

    files = repo.state
    rel = repo.rel(files.journal)
    try:
        lines = repo.journal.lines
    except JournalError as bad:
        message = str(bad).removeprefix(f"{files.journal}: ")
        hint = "restore the journal from a backup, or move it away and run `state rebuild`"
        yield Problem(rel, message, hint, "STATE-OBS-004")
        return
    for number, line in enumerate(lines, start=1):
        if line["severity"] not in SEVERITIES:
            yield Problem(
                rel,
                f"seq {line['seq']}: severity {line['severity']!r} is not one of "
                f"{', '.join(sorted(SEVERITIES))}",
                "the line was not written by the store: restore the journal",
                "STATE-OBS-005",
                line=number,
                column=1,
            )


@check("STATE-OBS-009", "STATE-OBS-012")
def snapshot_matches_journal(repo: Repository) -> Iterator[Problem]:
    """The snapshot equals the replay of the whole journal."""
    from ..state.views import verify

    files = repo.state
    repo.snapshot  # noqa: B018 - not applicable when the snapshot cannot be read
    lifecycles = repo.lifecycles
    if lifecycles.problems:
        msg = "the lifecycles have problems (see SM-DEF-002)"
        raise NotApplicable(msg)
    try:
        differences = verify(repo.root, lifecycles.value, repo.journal)
    except Exception as bad:  # noqa: BLE001 - reported by journal_lines and snapshot_document
        msg = f"the state cannot be replayed ({type(bad).__name__})"
        raise NotApplicable(msg) from None
    lagging = repo.snapshot.last_seq < (repo.journal.lines[-1]["seq"] if repo.journal.lines else 0)
    recent = time.time() - files.journal.stat().st_mtime < WRITER_ACTIVE_SECONDS
    if differences and lagging and recent:
        msg = "a writer is committing right now; the snapshot may trail it by up to 250 ms"
        raise NotApplicable(msg)
    for difference in differences:
        yield Problem(
            repo.rel(files.snapshot),
            difference.render(),
            REBUILD,
            "STATE-OBS-012",
            pointer="/" + difference.where,
        )


@check("STATE-OBS-006")
def index_document(repo: Repository) -> Iterator[Problem]:
    """``.state/index.json`` exists beside the snapshot and parses."""
    files = repo.state
    rel = repo.rel(files.index)
    try:
        document: Any = orjson.loads(files.index.read_bytes())
    except FileNotFoundError:
        yield Problem(rel, "there is no index", "any state command writes it", "STATE-OBS-006")
        return
    except orjson.JSONDecodeError as bad:
        yield Problem(
            rel, f"the index is not JSON ({bad})", "any write rewrites it", "STATE-OBS-006"
        )
        return
    if not isinstance(document, dict) or "tasks" not in document:
        yield Problem(rel, "the index has no 'tasks'", "any write rewrites it", "STATE-OBS-006")


@check("STATE-OBS-014", "STATE-OBS-015")
def state_matches_definitions(repo: Repository) -> Iterator[Problem]:
    """Every task file is in the state, no removed task is live, declared statuses are applied."""
    snapshot = repo.snapshot
    rel = repo.rel(repo.state.snapshot)
    defined = repo.tasks.tasks
    invalid = {problem.file for problem in repo.tasks.problems}
    sync = "run `orchestration sync` to reconcile the state with the task files"
    for task_id in sorted(set(defined) - set(snapshot.tasks)):
        yield repo.located(
            repo.tasks.files[task_id],
            "/task_id",
            f"task {task_id!r} is defined but not in the state",
            sync,
            "STATE-OBS-014",
        )
    for task_id in sorted(set(snapshot.tasks) - set(defined)):
        if any(task_id in file for file in invalid):
            continue  # its file has problems: reported by task_files
        yield Problem(
            rel,
            f"task {task_id!r} is in the state but its file was removed",
            sync + " (it archives the task, keeping its history)",
            "STATE-OBS-014",
            pointer=f"/tasks/{task_id}",
        )
    for task_id, task in defined.items():
        declared = str(task.status)
        entry = snapshot.tasks.get(task_id)
        if entry is None or declared not in DECLARED_TRIGGERS:
            continue
        if entry["status"] != declared and not _terminal(repo, entry["status"]):
            yield repo.located(
                repo.tasks.files[task_id],
                "/status",
                f"task {task_id!r} is declared {declared} but is {entry['status']} in the state",
                sync + f" (it applies `{DECLARED_TRIGGERS[declared]}`)",
                "STATE-OBS-015",
            )


def _terminal(repo: Repository, status: str) -> bool:
    lifecycles = repo.lifecycles.value
    return "task" in lifecycles and lifecycles["task"].is_terminal(status)
