"""What the planner needs from the task files, loaded once and then cached.

Stability: internal.

Validating task files needs pydantic, whose import alone costs a quarter of a
second; agents call ``plan`` again and again on files that did not change.
Like ``make``, this module keys the planner's view of the tasks on the files'
stat signatures (path, size, modification time in nanoseconds), so an
unchanged pipeline is planned without importing pydantic or reading a single
task file.

The cache (:mod:`orchestration.cache`) lives outside the repository, one
file per pipeline root: ``plan`` never writes into the repository, and
deleting the cache is always safe. It stores only valid pipelines; invalid
ones are loaded again on every run so that every problem is reported every
time.

On a miss, each file is read with ``os.open``/``os.read`` and first offered to
the screen of :mod:`orchestration.tasks.screening`, which accepts plainly
valid files without pydantic; the model validates (and explains) the rest. A
large pipeline is split into contiguous ranges of files checked by one forked
process per core, each sending back only columns of plain values (ids, names,
dependencies, estimates, claimed resources), so that each file's problems come back in file
order, as one process would find them. The checks across files (duplicate
ids, unknown dependencies, ``blocks``) then run once, with ``link`` of
:mod:`orchestration.tasks.loading`; usually they find nothing, and a faster
path proves it while it finds where each dependency is, for the planner.
When there is no cache at all, the workers also take each file's stat
signature (``fstat`` of the open file, before reading it), sparing the
separate ``stat`` pass a lookup needs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any, NamedTuple, cast

from .. import cache
from ..bulk import gc_paused
from ..errors import DefinitionError, Problem
from ..project import TASKS_DIR, located_files
from .plan import PlanTask, TaskTable

__all__ = ["cache_file", "plan_inputs"]

# Below this many files, forking workers costs more than it saves.
PARALLEL_FILES = 4000
# Ranges per worker: small enough to even out a core that other work slows.
_RANGES_PER_WORKER = 4
# Engine code whose change must invalidate cached results, beside the version.
_CODE = ("tasks/model.py", "tasks/loading.py", "tasks/screening.py", "planning/inputs.py")
_READ = os.O_RDONLY | os.O_CLOEXEC
# A PlanTask from a 7-tuple without a Python-level call per task.
_plan_task = partial(tuple.__new__, PlanTask)


class _Columns(NamedTuple):
    """The checked files of one range: the planner's fields of each task, in file order."""

    ids: list[str]
    workstreams: list[str]
    names: list[str]
    dependencies: list[tuple[str, ...]]
    blocks: list[tuple[str, ...]]
    estimates: list[float | None]
    resources: list[tuple[str, ...]]
    # Each task's file (index into the located files); None: one task per file.
    files: list[int] | None
    problems: list[Problem]
    # Each file's size and st_mtime_ns, when asked for (and every file opened).
    sizes: list[int]
    times: list[int]
    # Whether a task lists a dependency twice.
    repeats: bool


def cache_file(root: Path) -> Path:
    """Where the cached planner inputs of the pipeline at ``root`` live."""
    return cache.cache_file("plan", root)


def plan_inputs(root: Path) -> tuple[TaskTable, dict[str, str]]:
    """The planner's view of every task of the pipeline, and each task's file.

    The tasks come in file order, as a :class:`TaskTable` that knows where
    each dependency is, for :func:`~orchestration.planning.plan.build_plan`.

    Raises:
        DefinitionError: the task files have problems (all of them listed).
    """
    located = located_files(root)
    rels = [rel for _, rel in located]
    store = cache_file(root)
    key = None
    if store.is_file():
        stats = [os.stat(path) for path, _ in located]
        key = cache.signature(_CODE, zip(rels, stats, strict=True))
        cached = _from_cache(cache.read(store, key), rels)
        if cached is not None:
            return cached

    columns = _check(located, stat=key is None)
    tasks, files = _link(columns, rels)
    if key is None:
        key = cache.signature_of(_CODE, rels, columns.sizes, columns.times)
    data: dict[str, Any] = {name: getattr(columns, name) for name in _CACHED}
    data["heads"] = tasks.heads
    cache.write(store, key, data)
    return tasks, files


# The columns kept in the cache, with the tasks' heads; each task's file is
# its place in file order.
_CACHED = ("ids", "workstreams", "names", "dependencies", "blocks", "estimates", "resources")


def _from_cache(data: Any, rels: list[str]) -> tuple[TaskTable, dict[str, str]] | None:
    """The cached inputs, or ``None`` if ``data`` is not what this code writes."""
    if data is None:
        return None
    try:
        ids, workstreams, names, dependencies, blocks, estimates, resources = (
            data[n] for n in _CACHED
        )
        heads = data["heads"]  # None when a task lists a dependency twice
        if heads is not None and not (
            type(heads) is list
            and len(heads) == sum(map(len, dependencies))
            and (not heads or (min(heads) >= 0 and max(heads) < len(ids)))
        ):
            return None
        rows = zip(
            ids,
            workstreams,
            names,
            map(tuple, dependencies),
            map(tuple, blocks),
            estimates,
            map(tuple, resources),
            strict=True,
        )
        tasks = TaskTable(zip(ids, map(_plan_task, rows), strict=True), heads)
        # Only valid pipelines are cached: one task per file, in file order.
        files = dict(zip(ids, rels, strict=True))
    except (LookupError, TypeError, ValueError):
        return None  # not what this code writes: load the files
    return tasks, files


def _link(columns: _Columns, rels: list[str]) -> tuple[TaskTable, dict[str, str]]:
    """Index the checked tasks and run the checks across files, as ``load_tasks`` does.

    Raises:
        DefinitionError: any file or the set of them has problems.
    """
    from ..tasks.loading import link, references

    problems = columns.problems
    rows = zip(
        columns.ids,
        columns.workstreams,
        columns.names,
        columns.dependencies,
        columns.blocks,
        columns.estimates,
        columns.resources,
        strict=True,
    )
    checked = list(map(_plan_task, rows))
    if not problems and columns.files is None:
        # Usually every file holds a valid task with a new id, and every
        # dependency exists: then only `blocks` is left to check. Finding
        # each dependency's place checks that it exists, and saves the
        # planner from looking it up again.
        files = dict(zip(columns.ids, rels, strict=True))
        if len(files) == len(checked) and not columns.repeats:
            number_of = dict(zip(columns.ids, range(len(checked)), strict=True)).get
            heads = list(map(number_of, chain.from_iterable(columns.dependencies)))
            if None not in heads:
                tasks = TaskTable(zip(columns.ids, checked, strict=True), cast(list[int], heads))
                if any(columns.blocks):
                    problems.extend(references(tasks, files, dependencies=False))
                if problems:
                    raise DefinitionError(problems)
                return tasks, files
    if columns.files is not None:
        rels = [rels[number] for number in columns.files]
    linked, files = link(zip(rels, checked, strict=True), problems)
    if problems:
        raise DefinitionError(problems)
    return TaskTable(linked.items(), None), files


def _check(located: list[tuple[str, str]], *, stat: bool) -> _Columns:
    """Check every file, on every core when there are many; columns in file order."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = min(cores or 1, len(located) // (PARALLEL_FILES // 2) or 1)
    if workers == 1:
        return _check_range(located, stat, 0, len(located))
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Imported once here rather than compiled again in each worker.
    from ..tasks import loading, screening  # noqa: F401

    count = workers * _RANGES_PER_WORKER
    bounds = [len(located) * n // count for n in range(count + 1)]
    # fork: the workers inherit the located files (and any imported module)
    # instead of receiving them pickled.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_adopt, initargs=(located, stat)
    ) as pool:
        parts = list(pool.map(_check_part, bounds[:-1], bounds[1:]))
    return _concatenate(parts, bounds)


_adopted: tuple[list[tuple[str, str]], bool] = ([], False)


def _adopt(located: list[tuple[str, str]], stat: bool) -> None:
    """In a worker: keep the files to check (inherited through fork, not pickled)."""
    global _adopted
    _adopted = (located, stat)


def _check_part(start: int, stop: int) -> _Columns:
    """In a worker: check files ``start`` to ``stop`` of the adopted ones."""
    located, stat = _adopted
    return _check_range(located, stat, start, stop)


def _concatenate(parts: Sequence[_Columns], bounds: Sequence[int]) -> _Columns:
    """One range's columns from consecutive ones."""
    files: list[int] | None = None
    if any(part.files is not None for part in parts):
        files = []
        for part, start, stop in zip(parts, bounds, bounds[1:], strict=False):
            files.extend(range(start, stop) if part.files is None else part.files)

    def joined(column: str) -> list[Any]:
        return list(chain.from_iterable(getattr(part, column) for part in parts))

    return _Columns(
        joined("ids"), joined("workstreams"), joined("names"), joined("dependencies"),
        joined("blocks"), joined("estimates"), joined("resources"), files, joined("problems"),
        joined("sizes"),
        joined("times"), any(part.repeats for part in parts),
    )  # fmt: skip


def _check_range(located: list[tuple[str, str]], stat: bool, start: int, stop: int) -> _Columns:
    """Check files ``start`` to ``stop``: the screen first, the model for the rest."""
    from ..tasks.loading import check_bytes, placement, read_fd, unreadable
    from ..tasks.screening import screen

    checked: list[PlanTask] = []
    problems: list[Problem] = []
    sizes: list[int] = []
    times: list[int] = []
    files: list[int] = []
    skipped = repeats = False
    # One object per workstream id, shared by its tasks: fewer to send and free.
    workstreams: dict[str, str] = {}
    prefix = f"{TASKS_DIR}/"
    with gc_paused():
        for number in range(start, stop):
            path, rel = located[number]
            try:
                fd = os.open(path, _READ)
                try:
                    if stat:
                        # Before reading: an edit from now on changes the signature.
                        signature = os.fstat(fd)
                        sizes.append(signature.st_size)
                        times.append(signature.st_mtime_ns)
                        raw = read_fd(fd, signature.st_size + 1)  # one exact buffer
                    else:
                        raw = read_fd(fd)
                finally:
                    os.close(fd)
            except OSError as error:
                problems.append(unreadable(rel, error))
                skipped = True
                continue
            task = screen(raw)
            if task is None:
                model, found = check_bytes(raw, rel)
                problems.extend(found)
                if model is None:
                    skipped = True
                    continue
                task = PlanTask.of(model)
            elif rel != f"{prefix}{task.workstream_id}/{task.task_id}.json":
                problems.extend(placement(rel, task.task_id, task.workstream_id))
            deps = task.dependencies
            if len(deps) > 1 and len(set(deps)) < len(deps):
                repeats = True
            checked.append(task)
            files.append(number)
        # Plain columns pickle compactly and unpickle without a call per task.
        columns = [list(column) for column in zip(*checked, strict=True)] or [[] for _ in range(7)]
    ids, spaces, names, dependencies, blocks, estimates, resources = columns
    spaces = [workstreams.setdefault(space, space) for space in spaces]
    return _Columns(
        ids, spaces, names, dependencies, blocks, estimates, resources,
        files if skipped else None, problems, sizes, times, repeats,
    )  # fmt: skip
