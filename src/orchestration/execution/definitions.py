"""The task definitions as ``run`` reads them: columns for all, a model for each dispatched one.

Stability: internal.

``run`` on 100k tasks must resume within two seconds (CONC-REG-014), and
validating every task file with the model takes several. The runner needs a
full :class:`~orchestration.tasks.model.Task` only for the tasks it
dispatches; of the whole pipeline it reads a few columns: each task's
workstream, dependencies and slack on the plan, which tasks are manual and
which claim resources.

:func:`start_loading` gets them the way ``plan`` gets its inputs
(:mod:`orchestration.planning.inputs`): keyed on the stat signatures of the
task files (:mod:`orchestration.cache`), an unchanged pipeline costs one
``stat`` per file, taken in a child process while the runner reads its
state, and one cached document. On a miss every file is read and checked as
``plan`` checks it: the screen of :mod:`orchestration.tasks.screening`
accepts plainly valid files, the model decides (and explains) the rest, then
come the checks across files and the plan's cycle check. A pipeline with any
problem never starts, with every problem reported; only a valid pipeline is
cached.

:meth:`Definitions.task` validates a task's file with the model when the task
is dispatched, reading the file again, and :meth:`Definitions.checked`
compares it with what the state mirrors: a file that no longer holds a valid
task, or holds one scheduled differently from what the run synced (it was
edited after the run started), is refused with its problems, located, and
never runs.

:meth:`Definitions.sync` brings the state in line with the definitions, and
skips ``Store.sync`` (which needs every task's model) when it would change
nothing. Whether the state mirrors these very definitions is remembered in
the cache with the journal position it was checked at: when no line since
then created, redefined or archived a task, only the tasks' queueing is
checked again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, KeysView, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .. import cache
from ..bulk import gc_paused
from ..errors import DefinitionError, Problem, UsageError
from ..project import TASKS_DIR, located_files

if TYPE_CHECKING:
    from ..planning.plan import PlanTask
    from ..state import Store
    from ..tasks.model import Task

__all__ = ["Definitions", "check_scope", "load_definitions", "mirror_of", "start_loading"]

# Engine code whose change must invalidate the cached columns and slack.
_CODE = (
    "tasks/model.py",
    "tasks/loading.py",
    "tasks/screening.py",
    "planning/plan.py",
    "planning/cycles.py",
    "execution/definitions.py",
)
# The part of a state entry that mirrors the definition (Store.sync compares it):
# "workstream_id" and state.snapshot.DEFINITION, written out (a test pins it) so
# that importing this module, which ``run`` does first, does not import the store.
_MIRRORED = (
    "workstream_id",
    "dependencies",
    "max_retries",
    "priority",
    "capabilities",
    "resources",
    "type",
    "declared",
)
_DONE = frozenset({"succeeded", "skipped"})  # a dependency in these lets dependents start
_APPLIED = frozenset({"cancelled", "skipped"})  # declared statuses that sync applies
_DEFINING = frozenset({"create", "redefine", "archive"})  # journal triggers that change them
# Past this much journal since the last check, comparing every task is cheaper.
_TAIL_LIMIT = 4 << 20
_EMPTY: dict[str, Any] = {}  # an absent member's default; never mutated
_T = TypeVar("_T")


def mirror_of(task: Task) -> list[Any]:
    """What the state keeps of ``task``'s definition: the values of :data:`_MIRRORED`.

    ``None`` for a value ``Store.sync`` leaves out, a default; so that
    ``list(map(entry.get, _MIRRORED))`` of a state entry mirroring the task
    is equal to it.
    """
    return [
        task.workstream_id,
        list(task.dependencies) or None,
        task.execution.max_retries or None,
        task.priority or None,
        list(task.worker_requirements.capabilities) or None,
        dict(task.resources) or None,
        None if task.type == "shell" else str(task.type),
        None if task.status == "pending" else str(task.status),
    ]


def _document_mirror(document: dict[str, Any]) -> list[Any]:
    """:func:`mirror_of` for a document the screen accepted (absent: the model's default)."""
    get = document.get
    status = get("status", "pending")
    return [
        document["workstream_id"],
        get("dependencies") or None,
        get("execution", _EMPTY).get("max_retries") or None,
        get("priority") or None,
        get("worker_requirements", _EMPTY).get("capabilities") or None,
        get("resources") or None,
        None if document["type"] == "shell" else document["type"],
        None if status == "pending" else status,
    ]


def _entry_mirror(entry: Mapping[str, Any]) -> list[Any]:
    """What a state entry mirrors of its task's definition, as :func:`mirror_of` puts it."""
    return list(map(entry.get, _MIRRORED))


class _Unpacked(Mapping[str, _T]):
    """A column of the cached document: task id → value, unpacked from its text when read.

    Parsing 100k small lists and floats costs the JSON parser as much again
    as 100k strings; a run reads the values of a few tasks (those it
    dispatches) and the keys of all.
    """

    def __init__(self, packed: dict[str, str], unpack: Callable[[str], _T]) -> None:
        self._packed = packed
        self._unpack = unpack

    def __getitem__(self, task_id: str) -> _T:
        return self._unpack(self._packed[task_id])

    def __iter__(self) -> Iterator[str]:
        return iter(self._packed)

    def __len__(self) -> int:
        return len(self._packed)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._packed

    def keys(self) -> KeysView[str]:
        """The task ids, as the packed dict's own view (fast to compare)."""
        return self._packed.keys()


def _pack(workstream: str, slack: float, dependencies: Iterable[str]) -> str:
    """A task's workstream, slack and dependencies as one string: ``"ws-1 12.5 a b"``.

    No identifier holds a space (``model.ID_PATTERN``).
    """
    return " ".join((workstream, repr(slack), *dependencies))


def _workstream(packed: str) -> str:
    return packed.partition(" ")[0]


def _slack(packed: str) -> float:
    return float(packed.split(" ", 2)[1])


def _needs(packed: str) -> list[str]:
    return packed.split(" ")[2:]


@dataclass
class Definitions:
    """The task definitions of the pipeline at ``root``, as ``run`` reads them.

    Attributes:
        key: the task files' signature (see :func:`orchestration.cache.signature`).
        dependencies: task id → the ids it depends on, in file order.
        workstreams: task id → its workstream.
        slack: task id → its slack on the whole plan, in seconds.
        manual: the tasks a person carries out (never dispatched).
        claims: task id → the resources it claims, in its file's order, for
            the tasks that claim any.
        applied: task id → the status its file declares, when ``cancelled``
            or ``skipped`` (the statuses ``sync`` applies).
        roots: the tasks without dependencies.
    """

    root: Path
    key: str
    dependencies: Mapping[str, Sequence[str]]
    workstreams: Mapping[str, str]
    slack: Mapping[str, float]
    manual: frozenset[str]
    claims: dict[str, dict[str, int]]
    applied: dict[str, str]
    roots: list[str]
    _mirrors: list[list[Any]] | None = field(default=None, repr=False)
    _tasks: dict[str, Task] = field(default_factory=dict, repr=False)
    # Every model, when the files were checked with it: for the one sync that needs them.
    _loaded: dict[str, Task] | None = field(default=None, repr=False)

    def file(self, task_id: str) -> str:
        """The task's file, relative to the root: a valid pipeline's files are where ids say."""
        return f"{TASKS_DIR}/{self.workstreams[task_id]}/{task_id}.json"

    def task(self, task_id: str) -> Task:
        """The task, validated with the model from its file as it is now (once per run).

        Raises:
            DefinitionError: the file no longer holds a valid task.
        """
        from ..tasks.loading import check_file

        found = self._tasks.get(task_id)
        if found is not None:
            return found
        rel = self.file(task_id)
        task, problems = check_file(os.path.join(self.root, rel), rel)
        if task is None or problems:
            raise DefinitionError(problems)
        self._tasks[task_id] = task
        return task

    def checked(self, task_id: str, entry: Mapping[str, Any]) -> Task:
        """:meth:`task`, scheduled as the state ``entry`` says (as this run synced it).

        Raises:
            DefinitionError: the file no longer holds a valid task, or holds
                one edited after the run synced it (its dependencies,
                priority, capabilities, resources, retries or status, or
                whether it is manual).
        """
        task = self.task(task_id)
        manual = task.type == "manual"
        if mirror_of(task) == _entry_mirror(entry) and manual == (task_id in self.manual):
            return task
        problem = Problem(
            self.file(task_id),
            f"task {task_id!r} was edited after this run synced it: its dependencies, "
            "priority, type, capabilities, resources, retries or status changed",
            "let this run end, then run `orchestration run` again, which syncs the change "
            f"(`orchestration task {task_id} unblock` first if it was blocked)",
            "STATE-OBS-014",
        )
        raise DefinitionError([problem])

    def tasks(self, task_ids: Iterable[str] | None = None) -> dict[str, Task]:
        """The tasks ``task_ids`` (default: all) validated, by id.

        All of them, once, are the models the files were checked with when
        they were (see ``_load_files``): what a sync after an edit needs,
        without reading every file again.

        Raises:
            DefinitionError: the problems of every file that does not hold its task.
        """
        loaded = self._loaded
        if task_ids is None and loaded is not None and len(loaded) == len(self.dependencies):
            self._loaded = None  # what they were checked as; a dispatch reads its file again
            return loaded
        tasks: dict[str, Task] = {}
        problems: list[Problem] = []
        with gc_paused():
            for task_id in self.dependencies if task_ids is None else task_ids:
                try:
                    tasks[task_id] = self.task(task_id)
                except DefinitionError as error:
                    problems.extend(error.problems)
        if problems:
            raise DefinitionError(problems)
        return tasks

    def claiming(self) -> dict[str, Task]:
        """The tasks that claim resources, validated (for the resource registry's checks)."""
        return self.tasks(self.claims)

    # --- sync ---------------------------------------------------------------------------

    def sync(self, store: Store, actor: str) -> list[dict[str, Any]]:
        """``Store.sync`` with these definitions, skipped when it would change nothing.

        Returns:
            The journal lines committed.

        Raises:
            DefinitionError: a file no longer holds a valid task when the
                sync needs every model.
        """
        offset, seq = store.state.journal_offset, store.state.last_seq
        entries = store.state.tasks
        with gc_paused():  # a list or two per task: nothing for the collector
            # The same tasks, each mirroring its definition: known since the last
            # check (no task created or archived since), or compared now.
            same = (self._mirrored_since(store) and len(entries) == len(self.dependencies)) or (
                entries.keys() == self.dependencies.keys() and self._mirrored(entries)
            )
            if same and self._queued(store):
                lines: list[dict[str, Any]] = []
            else:  # something to create, redefine, archive or (re)queue: every model
                lines = store.sync(self.tasks(), actor=actor)
                offset, seq = store.state.journal_offset, store.state.last_seq
        self._remember(store, offset, seq)
        return lines

    def _mirrored(self, entries: Mapping[str, Mapping[str, Any]]) -> bool:
        """Whether each of ``entries`` (these tasks) mirrors its definition."""
        return [_entry_mirror(entries[t]) for t in self.dependencies] == self.mirrors()

    def mirrors(self) -> list[list[Any]]:
        """Each task's :func:`mirror_of`, in file order (cached apart: rarely needed)."""
        if self._mirrors is None:
            found = cache.read(_stored("run-mirrors", self.root), self.key)
            if not (type(found) is list and len(found) == len(self.dependencies)):
                found = [mirror_of(task) for task in self.tasks().values()]  # the models tell
            self._mirrors = found
        return self._mirrors

    def priorities(self) -> dict[str, int]:
        """Task id → its priority."""
        return {t: m[3] or 0 for t, m in zip(self.dependencies, self.mirrors(), strict=True)}

    def _queued(self, store: Store) -> bool:
        """Whether every task is queued as ``Store.sync`` would leave it.

        The state's tasks are these, mirroring their definitions (see
        :meth:`_mirrored`): the store's index of dependents is theirs.
        """
        entries = store.state.tasks
        if any(entries[t]["status"] != status for t, status in self.applied.items()):
            return False  # a declared cancel or skip to apply
        needs = self.dependencies

        def all_done(task_id: str) -> bool:
            return all(entries[d]["status"] in _DONE for d in needs.get(task_id, ()))

        if not all(map(all_done, store.ready)):
            return False  # a ready task with a dependency not done: sync requeues it
        # A pending task whose dependencies are all done would be enqueued. Only
        # a task without dependencies, or a dependent of a done task, can be one.
        done = [t for t, entry in entries.items() if entry["status"] in _DONE]
        dependents = store.dependents
        candidates = set(self.roots).union(*(dependents.get(t, ()) for t in done))
        return not any(entries[t]["status"] == "pending" and all_done(t) for t in candidates)

    def _mirrored_since(self, store: Store) -> bool:
        """Whether the state mirrored these definitions at a journal position
        remembered by :meth:`_remember`, and no line since changed a definition."""
        from ..state.journal import JournalError

        known = cache.read(_stored("run-synced", self.root), self.key)
        try:
            stat = os.stat(store.journal.path)
            offset, seq, identity = known["offset"], known["seq"], known["journal"]
            if identity != [stat.st_dev, stat.st_ino] or not 0 <= offset <= stat.st_size:
                return False
            if stat.st_size - offset > _TAIL_LIMIT:
                return False
            tail = store.journal.read(offset, seq)
        except (OSError, JournalError, LookupError, TypeError):
            return False  # nothing remembered, or not what this code writes
        return not any(
            line["entity"] == "task" and line["trigger"] in _DEFINING for line in tail.lines
        )

    def _remember(self, store: Store, offset: int, seq: int) -> None:
        """Remember that the state mirrored these definitions at journal ``offset``."""
        try:
            stat = os.stat(store.journal.path)
        except OSError:
            return  # no journal yet: nothing to find a position in
        identity = [stat.st_dev, stat.st_ino]
        data = {"journal": identity, "offset": offset, "seq": seq}
        cache.write(_stored("run-synced", self.root), self.key, data)


def check_scope(definitions: Definitions, *, target: str | None, workstream: str | None) -> None:
    """Check that ``--target`` and ``--workstream`` name a task and a workstream of the pipeline.

    Raises:
        UsageError: one of them does not.
    """
    for name, value, known in (
        ("--target", target, lambda: definitions.dependencies),
        ("--workstream", workstream, lambda: set(definitions.workstreams.values())),
    ):
        if value is not None and value not in known():
            msg = f"{name} {value!r} is not in this pipeline; `orchestration status` lists them"
            raise UsageError(msg)


# --- loading -----------------------------------------------------------------------------


def load_definitions(root: Path) -> Definitions:
    """The definitions of the pipeline at ``root``: cached while no task file changes.

    Raises:
        DefinitionError: a task file, or the set of them, has problems (all
            of them listed), or the dependencies form a cycle.
    """
    return start_loading(root)()


def start_loading(root: Path) -> Callable[[], Definitions]:
    """Start :func:`load_definitions`; calling the result finishes it.

    When a cached document exists, the task files' stat signatures are
    taken in a forked process (:func:`orchestration.cache.signature_later`)
    while this one reads the document now and the caller goes on with its
    work; the call compares the two.

    Raises:
        DefinitionError: from the call, as :func:`load_definitions`.
    """
    stored = _stored("run", root)
    if not stored.is_file():
        return partial(_load_files, root)
    key = cache.signature_later(_CODE, partial(_named_files, root))
    with gc_paused():
        signed = cache.read_signed(stored)
        found = None if signed is None else _from_cache(root, signed[0], signed[1])

    def finish() -> Definitions:
        taken = key()  # always: it reaps the child
        if found is not None and found.key == taken:
            return found
        return _load_files(root)

    return finish


def _stored(kind: str, root: Path) -> Path:
    return cache.cache_file(kind, root)


def _named_files(root: Path) -> list[tuple[str, str]]:
    """``(name, path)`` of every task file, the name relative to ``root``, in file order."""
    return [(rel, path) for path, rel in located_files(root)]


def _load_files(root: Path) -> Definitions:
    """Read and check every task file; cache the definitions (they are valid).

    When the state is likely to need every model for ``Store.sync`` — no
    state yet, or the files changed since a run last synced them — each file
    is validated with the model and the models are kept; otherwise the
    screen takes the plainly valid files, faster.
    """
    from ..state.layout import layout

    synced = _stored("run-synced", root).is_file()
    models = synced or not layout(root).snapshot.exists()
    with gc_paused():
        definitions = _check(root, located_files(root), models=models)
        # One JSON object, which the parser turns into a dict in file order, of
        # one string per task (see _Unpacked).
        slack, needs, spaces = definitions.slack, definitions.dependencies, definitions.workstreams
        columns = {
            "tasks": {t: _pack(spaces[t], slack[t], needs[t]) for t in needs},
            "manual": sorted(definitions.manual),
            "claims": definitions.claims,
            "applied": definitions.applied,
            "roots": definitions.roots,
        }
        cache.write(_stored("run-mirrors", root), definitions.key, definitions._mirrors)
        cache.write(_stored("run", root), definitions.key, columns)
    return definitions


def _from_cache(root: Path, key: str, data: Any) -> Definitions | None:
    """The cached definitions, or ``None`` if ``data`` is not what this code writes."""
    try:
        packed = data["tasks"]
        if not (type(packed) is dict and set(map(type, packed.values())) <= {str}):
            return None
        return Definitions(
            root,
            key,
            _Unpacked(packed, _needs),
            _Unpacked(packed, _workstream),
            _Unpacked(packed, _slack),
            frozenset(data["manual"]),
            dict(data["claims"]),
            dict(data["applied"]),
            list(data["roots"]),
        )
    except (LookupError, TypeError, ValueError):
        return None  # not what this code writes: read the files


def _check(root: Path, located: list[tuple[str, str]], *, models: bool = False) -> Definitions:
    """Read and check every task file, as ``plan`` does (``models``: each with the model).

    Raises:
        DefinitionError: every problem of the files, then across them, as
            ``load_tasks`` reports them; or the cycles of the plan.
    """
    from ..planning.plan import PlanTask, build_plan
    from ..tasks.loading import check_bytes, link, placement, read_file, unreadable
    from ..tasks.screening import accept, plan_view

    problems: list[Problem] = []
    checked: list[tuple[str, PlanTask]] = []
    mirrors: list[list[Any]] = []
    manual: set[str] = set()
    claims: dict[str, dict[str, int]] = {}
    sizes: list[int] = []
    times: list[int] = []
    kept: dict[str, Task] = {}
    for path, rel in located:
        try:
            raw, stat = read_file(path)
        except OSError as error:
            problems.append(unreadable(rel, error))
            continue
        sizes.append(stat.st_size)
        times.append(stat.st_mtime_ns)
        document = None if models else accept(raw)
        if document is None:  # the model decides, and explains
            task, found = check_bytes(raw, rel)
            problems.extend(found)
            if task is None:
                continue
            planned, mirror, kind = PlanTask.of(task), mirror_of(task), str(task.type)
            resources: dict[str, int] = dict(task.resources)
            if models:
                kept.setdefault(task.task_id, task)
        else:
            planned, mirror, kind = (
                plan_view(document),
                _document_mirror(document),
                document["type"],
            )
            resources = document.get("resources", _EMPTY)
            if rel != f"{TASKS_DIR}/{planned.workstream_id}/{planned.task_id}.json":
                problems.extend(placement(rel, planned.task_id, planned.workstream_id))
        checked.append((rel, planned))
        mirrors.append(mirror)
        if kind == "manual":
            manual.add(planned.task_id)
        if resources:
            claims[planned.task_id] = resources
    tasks, files = link(checked, problems)
    if problems:  # every file is valid after this, each where its ids say
        raise DefinitionError(problems)
    plan = build_plan(tasks, files)  # DefinitionError: a cycle
    applied = {t: m[-1] for t, m in zip(tasks, mirrors, strict=True) if m[-1] in _APPLIED}
    return Definitions(
        root,
        cache.signature_of(_CODE, [rel for _, rel in located], sizes, times),
        {task_id: task.dependencies for task_id, task in tasks.items()},
        {task_id: task.workstream_id for task_id, task in tasks.items()},
        {task_id: plan.schedule[task_id].slack for task_id in tasks},
        frozenset(manual),
        claims,
        applied,
        [task_id for task_id, task in tasks.items() if not task.dependencies],
        mirrors,
        _loaded=kept if models else None,
    )
