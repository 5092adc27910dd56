"""Failure modes: the IDs the engine can emit, and the catalog that decides what follows.

Stability: provisional.

Every failure the engine observes is classified by a :class:`FailureMode`;
``docs/failure_modes/CATALOG.md`` says for each how it is detected, whether
recovery is automatic and what the engine decides (ERR-FM-001). The catalog
is one Markdown table::

    | ID | Name | Detection | Automatic recovery | Decision | Requirement |
    |---|---|---|---|---|---|
    | `FM-TIMEOUT` | [Timeout](RECOVERY.md#fm-timeout) | ... | yes | retry | ERR-FM-004 |

The enum is the engine's side of the contract (what it can emit); the
catalog is the operator's (what happens). ``orchestration validate
--section ERR-FM`` checks that they name the same modes (ERR-FM-002).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from .errors import Problem

__all__ = [
    "CATALOG",
    "DEFAULT_DECISIONS",
    "CatalogEntry",
    "Decision",
    "FailureMode",
    "backoff_seconds",
    "decisions",
    "read_catalog",
]

CATALOG = "docs/failure_modes/CATALOG.md"
COLUMNS = ("ID", "Name", "Detection", "Automatic recovery", "Decision", "Requirement")
ID_FORM = re.compile(r"^FM-[A-Z]+(?:-[A-Z]+)*$")


class FailureMode(StrEnum):
    """Every failure mode the engine can emit (spec section 8)."""

    TIMEOUT = "FM-TIMEOUT"  # the attempt ran past execution.timeout_seconds
    NONZERO_EXIT = "FM-NONZERO-EXIT"  # the process exited with a non-zero code
    CRASH = "FM-CRASH"  # the process was killed by a signal
    PRE_VALIDATION = "FM-PRE-VALIDATION"  # a pre_execution rule failed
    POST_VALIDATION = "FM-POST-VALIDATION"  # a post_execution rule failed
    LEASE_EXPIRED = "FM-LEASE-EXPIRED"  # no heartbeat before the lease's expiry
    SANDBOX = "FM-SANDBOX"  # the attempt's worktree could not be made or removed
    CONTEXT_TOO_LARGE = "FM-CONTEXT-TOO-LARGE"  # the context exceeds max_context_tokens
    EXCLUDED_PATH = "FM-EXCLUDED-PATH"  # the changes touch an excluded path
    INVALID_RESULT = "FM-INVALID-RESULT"  # the result document fails its schema
    NO_CAPABLE_WORKER = "FM-NO-CAPABLE-WORKER"  # no worker offers what the task requires
    DEADLOCK = "FM-DEADLOCK"  # resource orderings can deadlock
    INTERNAL = "FM-INTERNAL"  # an unexpected exception in the engine


class Decision(StrEnum):
    """What the engine does after a failure, as the catalog decides."""

    RETRY = "retry"  # run the task again after a backoff, while retries remain
    BLOCK_DOWNSTREAM = "block downstream"  # fail the task for good; block its dependents
    STOP_RUN = "stop run"  # stop dispatching; running attempts finish


# The spec's minimum table: what the engine decides when the catalog says nothing.
DEFAULT_DECISIONS: dict[FailureMode, Decision] = {
    FailureMode.TIMEOUT: Decision.RETRY,
    FailureMode.NONZERO_EXIT: Decision.RETRY,
    FailureMode.CRASH: Decision.RETRY,
    FailureMode.PRE_VALIDATION: Decision.BLOCK_DOWNSTREAM,
    FailureMode.POST_VALIDATION: Decision.RETRY,
    FailureMode.LEASE_EXPIRED: Decision.RETRY,
    FailureMode.SANDBOX: Decision.RETRY,
    FailureMode.CONTEXT_TOO_LARGE: Decision.BLOCK_DOWNSTREAM,
    FailureMode.EXCLUDED_PATH: Decision.BLOCK_DOWNSTREAM,
    FailureMode.INVALID_RESULT: Decision.RETRY,
    FailureMode.NO_CAPABLE_WORKER: Decision.BLOCK_DOWNSTREAM,
    FailureMode.DEADLOCK: Decision.STOP_RUN,
    FailureMode.INTERNAL: Decision.STOP_RUN,
}


def decisions(root: Path) -> tuple[dict[FailureMode, Decision], list[Problem]]:
    """What the pipeline's catalog decides for each failure mode (ERR-FM-001).

    A mode the catalog does not list, or a catalog that cannot be read, falls
    back to :data:`DEFAULT_DECISIONS`; the problems say why.
    """
    entries, problems = read_catalog(root / CATALOG)
    decided = dict(DEFAULT_DECISIONS)
    known = {mode.value: mode for mode in FailureMode}
    for entry in entries:
        if entry.id in known:
            decided[known[entry.id]] = entry.decision
    return decided, problems


def backoff_seconds(retry: int, base: float, most: float, rng: random.Random) -> float:
    """The wait before retry number ``retry`` (ERR-FM-005).

    A random delay between half and all of ``min(most, base * 2 ** (retry - 1))``:
    exponential, capped, with jitter so that tasks failing together do not
    retry together.
    """
    ceiling = min(most, base * 2 ** max(0, retry - 1))
    return rng.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class CatalogEntry:
    """One row of the catalog, with the line it is on."""

    id: str
    name: str
    detection: str
    automatic: bool
    decision: Decision
    requirement: str
    line: int


def read_catalog(path: Path, rel: str = CATALOG) -> tuple[list[CatalogEntry], list[Problem]]:
    """The entries of the catalog at ``path``, and every problem of its table.

    Problems cite ERR-FM-001 (the file or its table form); a missing file is
    one problem, not an exception.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "it is not UTF-8 text"
        return [], [
            Problem(
                rel,
                f"cannot read the failure-mode catalog: {reason}",
                f"write the catalog as one Markdown table with the columns {' | '.join(COLUMNS)}",
                "ERR-FM-001",
            )
        ]
    rows = list(_table(text))
    if not rows:
        return [], [
            Problem(
                rel,
                "no failure-mode table found",
                f"add a Markdown table whose header is `| {' | '.join(COLUMNS)} |`",
                "ERR-FM-001",
            )
        ]
    entries: list[CatalogEntry] = []
    problems: list[Problem] = []
    for number, cells in rows:
        entry, found = _entry(rel, number, cells)
        problems.extend(found)
        if entry is not None:
            entries.append(entry)
    return entries, problems


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _table(text: str) -> list[tuple[int, list[str]]]:
    """The body rows (line number, cells) of the first table with the catalog's header."""
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if line.lstrip().startswith("|") and tuple(_cells(line)) == COLUMNS:
            body = []
            for offset, row in enumerate(lines[number + 2 :], start=number + 3):
                if not row.lstrip().startswith("|"):
                    break
                body.append((offset, _cells(row)))
            return body
    return []


def _entry(rel: str, line: int, cells: list[str]) -> tuple[CatalogEntry | None, list[Problem]]:
    def problem(message: str, hint: str, column: int) -> Problem:
        return Problem(rel, message, hint, "ERR-FM-001", line=line, column=column)

    if len(cells) != len(COLUMNS):
        found = f"{len(cells)} cells where the header has {len(COLUMNS)}"
        return None, [problem(found, "give the row one cell per column", 1)]
    ident, name, detection, automatic, decision, requirement = (c.strip("`") for c in cells)
    problems = []
    if not ID_FORM.match(ident):
        problems.append(
            problem(
                f"failure-mode ID {ident!r} is not `FM-` followed by upper-case words",
                "write it like `FM-TIMEOUT`",
                1,
            )
        )
    if not detection:
        problems.append(problem(f"{ident}: the detection is empty", "say how it is detected", 3))
    if automatic not in ("yes", "no"):
        problems.append(
            problem(
                f"{ident}: automatic recovery is {automatic!r}",
                "write `yes` or `no`",
                4,
            )
        )
    if decision not in set(Decision):
        choices = ", ".join(f"`{d.value}`" for d in Decision)
        problems.append(problem(f"{ident}: decision {decision!r} is unknown", f"use {choices}", 5))
    if problems:
        return None, problems
    entry = CatalogEntry(
        ident, name, detection, automatic == "yes", Decision(decision), requirement, line
    )
    return entry, []
