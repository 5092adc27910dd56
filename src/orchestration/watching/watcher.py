"""The definitions of a pipeline in memory, and the loop that re-plans them on every edit.

Stability: provisional (:func:`watch` and :class:`Watcher`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, cast

from ..bulk import gc_paused
from ..errors import DefinitionError, OrchestrationError, Problem
from ..project import TASKS_DIR, located_files
from .events import Event, Failed, Invalid, Planned, Replanned, Synced, Watching
from .following import (
    DEBOUNCE_SECONDS,
    DEFINITION_FILES,
    FOLLOWED,
    LONGEST_SECONDS,
    LONGEST_WINDOWS,
    Burst,
    Changes,
    Debouncer,
    Follower,
    Kind,
)

if TYPE_CHECKING:
    from ..lifecycles import Lifecycle
    from ..planning.plan import PlanTask, TaskTable
    from ..tasks.model import Task

__all__ = ["SHOWN_PROBLEMS", "Watcher", "watch"]

SHOWN_PROBLEMS = 50  # problems an `invalid` event lists (its `count` says how many in all)
_OTHERS = (Kind.LIFECYCLES, Kind.CAPABILITIES, Kind.RESOURCES, Kind.CONTRACT)
_EVERYTHING = Changes(frozenset(Kind), frozenset(), True, None)


class _File(NamedTuple):
    """One task file as last read."""

    task: Task | None
    planned: PlanTask | None
    problems: list[Problem]
    signature: tuple[int, int, int, int] | None  # inode, size, mtime and ctime in ns
    repeats: bool  # the task lists a dependency twice


def _signature(stat: os.stat_result) -> tuple[int, int, int, int]:
    # The inode changes on every save through a rename; ctime on every write.
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def _check(path: str, rel: str) -> _File:
    """Read and check one task file, as ``load_tasks`` does."""
    from ..planning.plan import PlanTask
    from ..tasks.loading import check_bytes, read_file, unreadable

    try:
        raw, stat = read_file(path)
    except OSError as error:
        return _File(None, None, [unreadable(rel, error)], None, False)
    task, problems = check_bytes(raw, rel)
    if task is None:
        return _File(None, None, problems, _signature(stat), False)
    needs = task.dependencies
    repeats = len(needs) > 1 and len(set(needs)) < len(needs)
    return _File(task, PlanTask.of(task), problems, _signature(stat), repeats)


@dataclass(frozen=True)
class _Applied:
    """The last definitions planned and synced: what the next changes are reported against."""

    planned: dict[str, PlanTask]
    tasks: dict[str, Task]
    critical_path: list[str]


class _Differences(NamedTuple):
    """How a plan differs from the last one applied (see :class:`Planned`)."""

    added: list[str]
    removed: list[str]
    changed: list[str]
    dependencies: dict[str, list[str]]


def _differences(
    before: _Applied,
    planned: Mapping[str, PlanTask],
    tasks: Mapping[str, Task],
    edited: Iterable[str],
) -> _Differences:
    """Tasks added, removed and changed since ``before``, and changed dependencies.

    Only the ``edited`` tasks (those whose file was read since) can have changed.
    """
    old, was = before.tasks, before.planned
    changed = sorted(
        task_id
        for task_id in edited
        if task_id in old and task_id in tasks and tasks[task_id] != old[task_id]
    )
    return _Differences(
        sorted(planned.keys() - was.keys()),
        sorted(was.keys() - planned.keys()),
        changed,
        {
            task_id: list(planned[task_id].dependencies)
            for task_id in changed
            if planned[task_id].dependencies != was[task_id].dependencies
        },
    )


def _redefined(before: Mapping[str, Task], now: Mapping[str, Task], edited: Iterable[str]) -> bool:
    """Whether ``Store.sync`` of ``now`` could commit anything after one of ``before``.

    A task added or removed, or one of the ``edited`` whose definition, as
    the state mirrors it, changed.
    """
    from ..execution.definitions import mirror_of

    if before.keys() != now.keys():
        return True
    return any(
        mirror_of(now[task_id]) != mirror_of(before[task_id])
        for task_id in edited
        if task_id in now  # and so in `before`: an edited file read since may be gone
    )


def _indexed(
    checked: Sequence[PlanTask], rels: Sequence[str]
) -> tuple[TaskTable, dict[str, str]] | None:
    """The tasks by id, knowing where each dependency is, and each one's file.

    ``None`` unless every id is new and every dependency a task (the caller
    knows that none is listed twice): then ``link`` finds what is wrong.
    Finding each dependency's place checks that it exists, and spares
    ``build_plan`` looking it up again (see
    :class:`~orchestration.planning.plan.TaskTable`).
    """
    from ..planning.plan import TaskTable

    ids = [task.task_id for task in checked]
    number_of = dict(zip(ids, range(len(ids)), strict=True))
    if len(number_of) < len(ids):
        return None
    heads = list(map(number_of.get, chain.from_iterable(task.dependencies for task in checked)))
    if None in heads:
        return None
    table = TaskTable(zip(ids, checked, strict=True), cast(list[int], heads))
    return table, dict(zip(ids, rels, strict=True))


class Watcher:
    """The definitions of one pipeline, kept in memory, checked, planned and synced on demand.

    One caller drives it (the watch loop): it is not thread-safe.
    """

    def __init__(self, root: Path, *, actor: str) -> None:
        self.root = root
        self.actor = actor
        self._files: dict[str, _File] = {}  # task files in file order, by path from the root
        self._lifecycles: dict[str, Lifecycle] | None = None
        self._problems: dict[Kind, list[Problem]] = {}  # of the other definitions
        self._declared: set[Kind] = set()  # registries and contract the pipeline has had
        self._applied: _Applied | None = None
        self._synced = False  # whether the state mirrors the applied definitions
        self._syncing = False  # whether they are still to be synced
        self._edited: set[str] = set()  # ids of the tasks read since the applied definitions
        self._reads = 0  # task files read by this re-plan
        self._seq = -1

    def start(self) -> Planned | Invalid:
        """Load and check everything, and plan: the first event (:meth:`sync` follows)."""
        return self.replan(_EVERYTHING)

    def replan(self, changes: Changes) -> Planned | Invalid:
        """Load again what ``changes`` names, check and plan; report what changed.

        A plan whose ``syncing`` is true is synced by :meth:`sync`, next: the
        plan is printed first, since the store takes longer. Nothing under
        ``.state/`` changes unless every definition is valid.
        """
        from ..planning.plan import build_plan

        began = time.monotonic()
        waited = 0.0 if changes.first is None else began - changes.first
        self._seq += 1
        with gc_paused():  # a model and a plan entry per task: nothing for the collector
            self._reads = 0
            files = self._reload_tasks(changes) if Kind.TASKS in changes.kinds else 0
            reloaded = [kind for kind in _OTHERS if kind in changes.kinds]
            for kind in reloaded:
                self._problems[kind] = self._load(kind)
            planned, located, problems = self._link()
            plan = None
            if not problems:
                try:
                    plan = build_plan(planned, located)
                except DefinitionError as cycle:
                    problems = list(cycle.problems)
            for kind in _OTHERS:
                problems.extend(self._problems.get(kind, ()))
            names = [str(kind) for kind in reloaded]
            if problems or plan is None:
                return Invalid(self._seq, files, names, len(problems),
                               [p.as_dict() for p in problems[:SHOWN_PROBLEMS]],
                               time.monotonic() - began, waited)  # fmt: skip
            tasks = {task_id: self._task(rel) for task_id, rel in located.items()}
            before, edited = self._applied, self._edited
            self._syncing = (
                not self._synced or before is None or _redefined(before.tasks, tasks, edited)
            )
            self._applied, self._edited = _Applied(planned, tasks, plan.critical_path), set()
            if before is None:
                event, changed, moved = Planned, _Differences([], [], [], {}), True
            else:
                event, changed = Replanned, _differences(before, planned, tasks, edited)
                moved = plan.critical_path != before.critical_path
            return event(
                self._seq, files, names, len(planned), plan.edges, len(plan.stages),
                *changed, plan.critical_path, plan.critical_path_seconds, moved,
                self._syncing, time.monotonic() - began, waited,
            )  # fmt: skip

    # --- loading ---------------------------------------------------------------------------

    def _reload_tasks(self, changes: Changes) -> int:
        """Check again the task files that changed; return how many were read.

        The files the events named, or, for a rescan, those whose stat
        signature changed; the others keep their task object.
        """
        if changes.rescan:
            before, self._files = self._files, {}
            for path, rel in located_files(self.root):
                known = before.get(rel)
                try:
                    same = known is not None and _signature(os.stat(path)) == known.signature
                except OSError:
                    same = False
                self._files[rel] = known if known is not None and same else self._read(path, rel)
            return self._reads
        files, added = self._files, False
        for rel in sorted(changes.paths):
            path = os.path.join(self.root, rel)
            if os.path.lexists(path) and not os.path.isdir(path):  # as located_files finds it
                added = added or rel not in files
                files[rel] = self._read(path, rel)
            else:
                files.pop(rel, None)
        if added:
            self._files = dict(sorted(files.items()))  # in file order, as located_files lists them
        return self._reads

    def _read(self, path: str, rel: str) -> _File:
        file = _check(path, rel)
        self._reads += 1
        if file.task is not None:
            self._edited.add(file.task.task_id)
        return file

    def _task(self, rel: str) -> Task:
        task = self._files[rel].task
        assert task is not None  # linked, so valid
        return task

    def _link(self) -> tuple[dict[str, PlanTask], dict[str, str], list[Problem]]:
        """The valid tasks by id, each one's file, and every problem, as ``load_tasks`` has them."""
        from ..tasks.loading import link, references

        problems: list[Problem] = []
        if not (self.root / TASKS_DIR).is_dir():
            problems.append(
                Problem(
                    f"{TASKS_DIR}/",
                    "the tasks/ folder is gone: this is no pipeline any more",
                    "restore tasks/ (e.g. `git checkout -- tasks`), or stop watching",
                    "TASK-DEF-001",
                )
            )
        rels: list[str] = []
        checked: list[PlanTask] = []
        repeats = False
        for rel, file in self._files.items():
            problems.extend(file.problems)
            if file.planned is not None:
                rels.append(rel)
                checked.append(file.planned)
                repeats = repeats or file.repeats
        indexed = None if problems or repeats else _indexed(checked, rels)
        if indexed is None:
            planned, located = link(zip(rels, checked, strict=True), problems)
            return planned, located, problems
        if any(task.blocks for task in checked):
            problems.extend(references(*indexed, dependencies=False))
        return *indexed, problems

    def _load(self, kind: Kind) -> list[Problem]:
        """Load the lifecycles, a registry or the contract again; return their problems."""
        if kind is not Kind.LIFECYCLES:
            if any((self.root / rel).is_file() for rel in DEFINITION_FILES[kind]):
                self._declared.add(kind)
            if kind not in self._declared:
                return []  # never had one: nothing to check (see the module docstring)
        try:
            if kind is Kind.LIFECYCLES:
                from ..lifecycles import load_lifecycles

                self._lifecycles = None
                self._lifecycles = load_lifecycles(self.root)
            elif kind is Kind.CAPABILITIES:
                from ..registry import load_capabilities

                load_capabilities(self.root)
            elif kind is Kind.RESOURCES:
                from ..registry import load_resources

                load_resources(self.root)
            else:
                from ..enforcement.contract import load_contract

                load_contract(self.root)
        except DefinitionError as invalid:
            return list(invalid.problems)
        return []

    # --- syncing and reporting --------------------------------------------------------------

    def sync(self) -> Synced | Failed | None:
        """``Store.sync`` with the definitions last planned, when their plan said ``syncing``.

        Returns:
            What was committed; ``failed`` when the store refused (the next
            edit tries again); ``None`` when nothing was to sync.
        """
        from ..state import Store

        applied = self._applied
        if not self._syncing or applied is None:
            return None
        assert self._lifecycles is not None  # planned, so valid
        began = time.monotonic()
        self._syncing = self._synced = False
        try:
            with gc_paused(), Store.open(self.root, self._lifecycles, actor=self.actor) as store:
                lines = store.sync(applied.tasks)
        except OrchestrationError as refused:  # a full disk, a journal edited by hand, ...
            return Failed(self._seq, time.monotonic() - began, str(refused))
        self._synced = True
        return Synced(self._seq, time.monotonic() - began, len(lines))


# --- the loop -------------------------------------------------------------------------------


def watch(
    root: Path,
    *,
    actor: str,
    emit: Callable[[Event], None],
    stop: threading.Event,
    debounce: float = DEBOUNCE_SECONDS,
) -> None:
    """Follow the definitions of the pipeline at ``root`` until ``stop`` is set.

    Emits the first plan (or the problems), then ``watching``, then one
    event per burst of edits (see :mod:`orchestration.watching`). Setting
    ``stop`` (a signal handler may) ends it within a tenth of a second, or
    once the re-plan under way is printed.

    Args:
        actor: who the journal records for the changes synced.
        emit: called with each event, in this thread.
        debounce: seconds without events that end a burst.

    Raises:
        OrchestrationError: the system refuses to follow a folder (inotify limits).
    """
    burst = Burst(Debouncer(debounce, max(LONGEST_SECONDS, LONGEST_WINDOWS * debounce)))
    follower = Follower(root, burst)
    follower.start()  # before the first load: no edit made meanwhile is missed
    try:
        watcher = Watcher(root, actor=actor)
        emit(watcher.start())
        _sync(watcher, emit)
        emit(Watching(str(root), list(FOLLOWED), debounce))
        while (changes := burst.take(stop)) is not None:
            follower.follow()
            emit(watcher.replan(changes))
            _sync(watcher, emit)
    finally:
        follower.stop()


def _sync(watcher: Watcher, emit: Callable[[Event], None]) -> None:
    synced = watcher.sync()
    if synced is not None:
        emit(synced)
