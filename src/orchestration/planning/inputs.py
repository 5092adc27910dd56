"""What the planner needs from the task files, loaded once and then cached.

Stability: internal.

Validating task files needs pydantic, whose import alone costs a quarter of a
second; agents call ``plan`` again and again on files that did not change.
Like ``make``, this module keys the planner's view of the tasks on the files'
stat signatures (path, size, modification time in nanoseconds), so an
unchanged pipeline is planned without importing pydantic or reading a single
task file.

The cache lives outside the repository, in
``$XDG_CACHE_HOME/orchestration/`` (default ``~/.cache``), one file per
pipeline root: ``plan`` never writes into the repository, and deleting the
cache is always safe. It stores only valid pipelines; invalid ones are loaded
again on every run so that every problem is reported every time.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .. import __version__
from ..atomic import write_atomic
from ..errors import DefinitionError
from ..project import task_files
from .plan import PlanTask

__all__ = ["cache_file", "plan_inputs"]

# Engine code whose change must invalidate cached results, beside the version.
_CODE = ("tasks/model.py", "tasks/loading.py", "planning/inputs.py")


def cache_file(root: Path) -> Path:
    """Where the cached planner inputs of the pipeline at ``root`` live."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    name = hashlib.sha256(os.fsencode(root.resolve())).hexdigest()[:24]
    return Path(base) / "orchestration" / f"plan-{name}.json"


def _signature(root: Path, files: list[str]) -> str:
    digest = hashlib.sha256(__version__.encode())
    package = Path(__file__).resolve().parent.parent
    for rel in _CODE:
        digest.update(f"{os.stat(package / rel).st_mtime_ns}\0".encode())
    for path in files:
        stat = os.stat(path)
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def plan_inputs(root: Path) -> tuple[dict[str, PlanTask], dict[str, str]]:
    """The planner's view of every task of the pipeline, and each task's file.

    Raises:
        DefinitionError: the task files have problems (all of them listed).
    """
    import orjson

    cache = cache_file(root)
    # The signature is taken before loading: a file edited while it loads
    # changes its mtime afterwards, so the next run misses and reloads it.
    signature = _signature(root, task_files(root))
    try:
        cached = orjson.loads(cache.read_bytes())
        if cached["signature"] == signature:
            tasks = {row[0]: PlanTask(*row[:3], tuple(row[3]), row[4]) for row in cached["tasks"]}
            return tasks, cached["files"]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, IndexError):
        pass  # no cache, or one we cannot read: load the files

    from ..tasks.loading import load_tasks

    loaded = load_tasks(root)
    if loaded.problems:
        raise DefinitionError(loaded.problems)
    tasks = {task_id: PlanTask.of(task) for task_id, task in loaded.tasks.items()}
    rows = [list(task) for task in tasks.values()]  # orjson does not take NamedTuples
    document = {"signature": signature, "tasks": rows, "files": loaded.files}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(cache, orjson.dumps(document))
    except OSError:
        pass  # a read-only home or a full disk only costs speed next time
    return tasks, loaded.files
