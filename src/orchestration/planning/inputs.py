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

On a miss, large pipelines are validated by one forked process per core,
each returning only the planner's light view of its share of the files (a
validated model costs as much to pickle as to build); the checks across files
then run once, in order, exactly as ``load_tasks`` runs them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .. import cache
from ..bulk import gc_paused
from ..errors import DefinitionError, Problem
from ..project import located_files
from .plan import PlanTask

__all__ = ["cache_file", "plan_inputs"]

# Below this many files, forking workers costs more than it saves.
PARALLEL_FILES = 4000
# Engine code whose change must invalidate cached results, beside the version.
_CODE = ("tasks/model.py", "tasks/loading.py", "planning/inputs.py")


def cache_file(root: Path) -> Path:
    """Where the cached planner inputs of the pipeline at ``root`` live."""
    return cache.cache_file("plan", root)


def plan_inputs(root: Path) -> tuple[dict[str, PlanTask], dict[str, str]]:
    """The planner's view of every task of the pipeline, and each task's file.

    Raises:
        DefinitionError: the task files have problems (all of them listed).
    """
    located = located_files(root)
    signature = cache.signature(_CODE, [(rel, os.stat(path)) for path, rel in located])
    store = cache_file(root)
    cached = cache.read(store, signature)
    if cached is not None:
        try:
            tasks = {
                row[0]: PlanTask(row[0], row[1], row[2], tuple(row[3]), tuple(row[4]), row[5])
                for row in cached["tasks"]
            }
            return tasks, cached["files"]
        except (LookupError, TypeError):
            pass  # not what this code writes: load the files

    tasks, files = _load(located)
    rows = [list(task) for task in tasks.values()]  # orjson does not take NamedTuples
    cache.write(store, signature, {"tasks": rows, "files": files})
    return tasks, files


def _load(located: list[tuple[str, str]]) -> tuple[dict[str, PlanTask], dict[str, str]]:
    """Validate every task file, on every core when there are many."""
    from ..tasks.loading import link

    workers = min(os.cpu_count() or 1, len(located) // (PARALLEL_FILES // 2) or 1)
    problems: list[Problem] = []
    chunks = [located[n :: workers * 4] for n in range(workers * 4)] if workers > 1 else [located]
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # fork: the workers inherit the imported, compiled model for free.
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            results = list(pool.map(_check_files, chunks))
    else:
        results = [_check_files(located)]
    entries: list[tuple[str, PlanTask]] = []
    for checked, found in results:
        entries.extend(checked)
        problems.extend(found)
    if workers > 1:
        # Interleaved chunks balance the work; the file order comes back here.
        entries.sort()
        problems.sort(key=lambda problem: problem.file)
    tasks, files = link(entries, problems)
    if problems:
        raise DefinitionError(problems)
    return tasks, files


def _check_files(
    located: Iterable[tuple[str, str]],
) -> tuple[list[tuple[str, PlanTask]], list[Problem]]:
    """Validate ``(path, rel)`` files; the planner's view of the valid ones, and the problems."""
    from ..tasks.loading import check_file

    checked: list[tuple[str, PlanTask]] = []
    problems: list[Problem] = []
    with gc_paused():
        for path, rel in located:
            task, found = check_file(path, rel)
            problems.extend(found)
            if task is not None:
                checked.append((rel, PlanTask.of(task)))
    return checked, problems
