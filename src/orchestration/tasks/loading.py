"""Load every task file of a pipeline and collect every problem (TASK-DEF-010).

Stability: stable.

``load_tasks(root)`` reads ``tasks/**/*.json``, validates each file against
the v2.0.0 model, then checks what only the whole set can tell: duplicate
ids, unknown dependencies and ``blocks`` that disagree with ``dependencies``.
It never raises on bad input: every problem becomes a :class:`Problem` with
file, position, JSON pointer, a fix and the requirement it violates.

The happy path is one ``model_validate_json`` per file (parsing and validation
in pydantic-core); diagnosis, which is slower, runs only for files that fail.
The planner, which needs no models, first tries the faster screen of
:mod:`orchestration.tasks.screening` and calls :func:`check_bytes` only for
the files it does not accept. pydantic is imported on first use, so that a
pipeline the screen accepts whole is planned without it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ..bulk import gc_paused
from ..errors import Problem
from ..project import TASKS_DIR, located_files
from .positions import line_column, locate

if TYPE_CHECKING:
    from pydantic import ValidationError

    from .model import Task

__all__ = [
    "Linked",
    "TaskSet",
    "check_bytes",
    "check_file",
    "link",
    "load_tasks",
    "placement",
    "read_fd",
    "read_file",
    "references",
    "unreadable",
]

BOM = b"\xef\xbb\xbf"
# Read a whole task file in one call (a larger one takes a few): a bigger
# buffer costs more to allocate and shrink than the few files that need it.
_READ_SIZE = 1 << 14


@dataclass(frozen=True)
class TaskSet:
    """The tasks of a pipeline, where each came from, and what is wrong.

    Attributes:
        tasks: valid tasks by ``task_id``, in file order.
        files: ``task_id`` → file path relative to the pipeline root.
        problems: every problem found, per file then across files.
    """

    tasks: dict[str, Task] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def load_tasks(root: Path) -> TaskSet:
    """Load and check every task file under ``root/tasks``.

    Args:
        root: the pipeline root (the folder holding ``tasks/``).

    Returns:
        The valid tasks and every problem found: first each file's own, then
        those across files. A file with problems contributes no task, so
        later checks do not pile up on it.
    """
    problems: list[Problem] = []

    def valid() -> Iterator[tuple[str, Task]]:
        for path, rel in located_files(root):
            task, found = check_file(path, rel)
            problems.extend(found)
            if task is not None:
                yield rel, task

    with gc_paused():
        tasks, files = link(valid(), problems)
    return TaskSet(tasks, files, problems)


def check_file(path: str, rel: str) -> tuple[Task | None, list[Problem]]:
    """Read and validate one task file: the task, or the problems that stop it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            raw = read_fd(fd)
        finally:
            os.close(fd)
    except OSError as error:
        return None, [unreadable(rel, error)]
    return check_bytes(raw, rel)


def read_file(path: str) -> tuple[bytes, os.stat_result]:
    """The content of the file at ``path``, and its stat signature taken before reading it.

    An edit from then on changes the signature, so that a cache keyed on it
    misses next time (see :func:`orchestration.cache.signature`).

    Raises:
        OSError: the file cannot be opened or read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        stat = os.fstat(fd)
        return read_fd(fd, stat.st_size + 1), stat  # one exact buffer
    finally:
        os.close(fd)


def read_fd(fd: int, size: int = _READ_SIZE) -> bytes:
    """Everything left to read from ``fd``; ``size`` is a guess of how much.

    ``os.read`` on a descriptor, not a buffered file object: at 100k files
    the file objects alone cost a noticeable share of ``plan``.
    """
    raw = os.read(fd, size)
    if len(raw) < size:
        return raw
    parts = [raw]
    while part := os.read(fd, _READ_SIZE):
        parts.append(part)
    return b"".join(parts)


def unreadable(rel: str, error: OSError) -> Problem:
    """The problem of a task file that cannot be read (TASK-DEF-004)."""
    return Problem(
        rel,
        f"cannot read the file: {error.strerror}",
        "check its permissions, or remove it",
        "TASK-DEF-004",
    )


def check_bytes(raw: bytes, rel: str) -> tuple[Task | None, list[Problem]]:
    """Validate the content ``raw`` of the task file ``rel`` with the model.

    Returns:
        The task (``None`` if it is invalid) and the problems found, among
        them where the file sits (a task whose file is misplaced is returned
        with its problems).
    """
    from pydantic import ValidationError

    from .model import Task

    try:
        task = Task.model_validate_json(raw)
    except ValidationError as error:
        return None, _diagnose(rel, raw, error)
    return task, placement(rel, task.task_id, task.workstream_id)


class Linked(Protocol):
    """What the checks across files read of a task."""

    @property
    def task_id(self) -> str: ...
    @property
    def dependencies(self) -> Sequence[str]: ...
    @property
    def blocks(self) -> Sequence[str]: ...


T = TypeVar("T", bound=Linked)


def link(
    entries: Iterable[tuple[str, T]], problems: list[Problem]
) -> tuple[dict[str, T], dict[str, str]]:
    """Index valid tasks by id, adding to ``problems`` what only the whole set shows.

    Duplicate ids (TASK-DEF-003), unknown dependencies (TASK-DEF-005) and
    ``blocks`` that disagree with ``dependencies`` (TASK-DEF-006).

    Returns:
        Tasks by id (first file wins a duplicate) and each task's file.
    """
    tasks: dict[str, T] = {}
    files: dict[str, str] = {}
    for rel, task in entries:
        if task.task_id in tasks:
            problems.append(_duplicate(rel, task.task_id, files[task.task_id]))
            continue
        tasks[task.task_id] = task
        files[task.task_id] = rel
    problems.extend(references(tasks, files))
    return tasks, files


def placement(rel: str, task_id: str, workstream_id: str) -> list[Problem]:
    """File name must be the task id, folder the workstream id (TASK-DEF-001)."""
    if rel == f"{TASKS_DIR}/{workstream_id}/{task_id}.json":
        return []
    problems = []
    folder, _, name = rel.rpartition("/")
    stem = name[: -len(".json")]
    if stem != task_id:
        problems.append(
            Problem(
                rel,
                f"file name {stem!r} differs from task_id {task_id!r}",
                f"rename the file to {task_id}.json, or set task_id to {stem!r}",
                "TASK-DEF-001",
                "/task_id",
            )
        )
    parent, _, workstream = folder.rpartition("/")
    if parent != TASKS_DIR:
        problems.append(
            Problem(
                rel,
                "task file is not directly inside a workstream folder",
                f"move it to tasks/{workstream_id}/{task_id}.json",
                "TASK-DEF-001",
            )
        )
    elif workstream != workstream_id:
        problems.append(
            Problem(
                rel,
                f"workstream_id {workstream_id!r} disagrees with its folder {workstream!r}",
                f"move the file to tasks/{workstream_id}/, or set workstream_id to {workstream!r}",
                "TASK-DEF-001",
                "/workstream_id",
            )
        )
    return problems


def _duplicate(rel: str, task_id: str, first: str) -> Problem:
    return Problem(
        rel,
        f"task_id {task_id!r} is already defined in {first}",
        "give one of the two tasks another task_id (and rename its file)",
        "TASK-DEF-003",
        "/task_id",
    )


def references(
    tasks: Mapping[str, Linked], files: Mapping[str, str], *, dependencies: bool = True
) -> Iterator[Problem]:
    """Dependencies must exist (TASK-DEF-005); ``blocks`` mirrors them (TASK-DEF-006).

    Args:
        tasks: the valid tasks by id, in file order.
        files: each task's file.
        dependencies: ``False`` when the caller knows every dependency exists:
            only ``blocks`` is checked then.
    """
    for task_id, task in tasks.items():
        if not (dependencies or task.blocks):
            continue
        rel = files[task_id]
        for index, dependency in enumerate(task.dependencies if dependencies else ()):
            if dependency not in tasks:
                yield Problem(
                    rel,
                    f"task {task_id!r} depends on unknown task {dependency!r}",
                    "create that task, fix the id's spelling, or remove the dependency",
                    "TASK-DEF-005",
                    f"/dependencies/{index}",
                )
        for index, blocked in enumerate(task.blocks):
            other = tasks.get(blocked)
            if other is None:
                yield Problem(
                    rel,
                    f"task {task_id!r} blocks unknown task {blocked!r}",
                    "fix the id's spelling or remove it from blocks",
                    "TASK-DEF-006",
                    f"/blocks/{index}",
                )
            elif task_id not in other.dependencies:
                yield Problem(
                    rel,
                    f"task {task_id!r} blocks {blocked!r}, but {blocked!r} does not depend "
                    f"on it ({files[blocked]})",
                    f"add {task_id!r} to the dependencies of {blocked!r}, or remove "
                    f"{blocked!r} from blocks",
                    "TASK-DEF-006",
                    f"/blocks/{index}",
                )


# --- diagnosis of a file that failed validation (the slow path) -------------


def _diagnose(rel: str, raw: bytes, error: ValidationError) -> list[Problem]:
    """Turn a failed validation into problems a person can act on."""
    from pydantic import ValidationError

    from .model import SCHEMA_VERSION, Task

    if not raw.strip():
        return [
            Problem(
                rel,
                "the file is empty",
                "write a task definition (see schemas/task.schema.json) or delete the file",
                "TASK-DEF-004",
            )
        ]
    problems: list[Problem] = []
    if raw.startswith(BOM):
        problems.append(
            Problem(
                rel,
                "the file starts with a UTF-8 byte-order mark",
                "save the file as UTF-8 without BOM",
                "TASK-DEF-004",
                line=1,
                column=1,
            )
        )
        raw = raw[len(BOM) :]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        line, column = line_column(raw[: bad.start].decode("utf-8", "replace"), bad.start)
        problems.append(
            Problem(
                rel,
                f"byte {bad.object[bad.start]:#04x} at offset {bad.start} is not valid UTF-8",
                "save the file as UTF-8",
                "TASK-DEF-004",
                line=line,
                column=column,
            )
        )
        return problems
    try:
        document = json.loads(text)
    except json.JSONDecodeError as bad:
        problems.append(
            Problem(
                rel,
                f"invalid JSON: {bad.msg}",
                "fix the JSON syntax at that position (a missing comma, quote or bracket)",
                "TASK-DEF-004",
                line=bad.lineno,
                column=bad.colno,
            )
        )
        return problems
    except RecursionError:
        problems.append(
            Problem(rel, "JSON nested too deeply", "flatten the document", "TASK-DEF-004")
        )
        return problems
    if not isinstance(document, dict):
        problems.append(
            Problem(
                rel,
                f"the document is a JSON {type(document).__name__}, not an object",
                "a task file holds exactly one JSON object {...}",
                "TASK-DEF-004",
                line=1,
                column=1,
            )
        )
        return problems
    version = document.get("schema_version")
    if version is None or (isinstance(version, str) and version != SCHEMA_VERSION):
        problems.append(_version_problem(rel, text, version))
        return problems
    if problems:
        # A BOM hid the rest: validate the remainder to report everything at once.
        try:
            Task.model_validate_json(raw)
        except ValidationError as rest:
            error = rest
        else:
            return problems
    problems.extend(_field_problem(rel, text, detail) for detail in error.errors())
    return problems


def _version_problem(rel: str, text: str, version: str | None) -> Problem:
    from .model import SCHEMA_VERSION

    if version is None or version.startswith("1."):
        found = "no schema_version" if version is None else f"schema_version {version!r}"
        return Problem(
            rel,
            f"{found}: this looks like a v1.0.0 task file",
            "run `python -m orchestration migrate` to upgrade it to v2.0.0 "
            "(`--dry-run` shows the change first)",
            "SCHEMA-VER-001",
            "/schema_version",
            *locate(text, "/schema_version"),
        )
    return Problem(
        rel,
        f"schema_version {version!r} is not supported (this engine reads {SCHEMA_VERSION})",
        "upgrade orchestration, or write the file for schema 2.0.0",
        "SCHEMA-VER-001",
        "/schema_version",
        *locate(text, "/schema_version"),
    )


def _known_fields(loc: tuple[str | int, ...]) -> list[str]:
    """Field names allowed in the object at ``loc`` (for 'did you mean' hints)."""
    from .model import Task

    model: Any = Task
    for part in loc:
        found = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(found, "annotation", None)
        if not (isinstance(annotation, type) and hasattr(annotation, "model_fields")):
            return []
        model = annotation
    return sorted(info.alias or name for name, info in model.model_fields.items())


def _field_problem(rel: str, text: str, detail: Any) -> Problem:
    loc: tuple[str | int, ...] = tuple(detail["loc"])
    pointer = "".join(f"/{str(part).replace('~', '~0').replace('/', '~1')}" for part in loc)
    kind = detail["type"]
    line, column = locate(text, pointer)
    requirement = "TASK-DEF-002"
    if kind == "missing":
        message = f"required field {str(loc[-1])!r} is missing"
        hint = f"add {str(loc[-1])!r} (see schemas/task.schema.json)"
    elif kind == "extra_forbidden":
        allowed = _known_fields(loc[:-1])
        message = f"unknown field {str(loc[-1])!r}"
        hint = "remove it or fix its spelling"
        if allowed:
            hint += f"; allowed here: {', '.join(allowed)}"
    else:
        message = f"{detail['msg']} (got {_shown(detail.get('input'))})"
        hint = "give a value of the type and range described in schemas/task.schema.json"
    return Problem(rel, message, hint, requirement, pointer, line, column)


def _shown(value: object) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
