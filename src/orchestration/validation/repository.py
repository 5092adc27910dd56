"""The repository under validation: its root and what the checks read, loaded once.

Stability: provisional.

Checks share one :class:`Repository`; each definition (tasks, lifecycles,
registries, the spec) is loaded on first use and kept, with the problems its
loader found, so that ten checks reading the tasks load them once.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Generic, NamedTuple, TypeVar

from ..errors import DefinitionError, Problem, relative
from .check import NotApplicable

if TYPE_CHECKING:
    from ..enforcement.contract import Contract
    from ..lifecycles import Lifecycle
    from ..registry import Capability, Resource
    from ..spec import Requirement
    from ..state import State
    from ..state.journal import Tail
    from ..state.layout import Layout
    from ..tasks.loading import TaskSet

__all__ = ["ENGINE_SPEC", "Loaded", "Repository", "engine_requirements"]

# The spec the engine ships (and `init` scaffolds): the contract its checks verify.
ENGINE_SPEC = (
    Path(__file__).parent.parent / "scaffold/files/specifications/content/orchestration/spec.md"
)

T = TypeVar("T")


class Loaded(NamedTuple, Generic[T]):
    """What a loader returned, or the problems that stopped it."""

    value: T
    problems: tuple[Problem, ...]


def _load(load: Callable[[], T], empty: T) -> Loaded[T]:
    try:
        return Loaded(load(), ())
    except DefinitionError as error:
        return Loaded(empty, error.problems)


def engine_requirements() -> list[Requirement]:
    """The requirements of the spec shipped with the engine, in spec order."""
    from ..spec import parse_spec

    found, _ = parse_spec(ENGINE_SPEC.read_text(encoding="utf-8"))
    return found


class Repository:
    """A pipeline repository at ``root``, as the checks see it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, rel: str) -> Path:
        """The absolute path of ``rel`` (a posix path relative to the root)."""
        return self.root / rel

    def rel(self, path: Path) -> str:
        """``path`` relative to the root, for problems."""
        return relative(path, self.root)

    @property
    def state(self) -> Layout:
        """The state files; :class:`NotApplicable` when the pipeline has no state yet."""
        from ..state.layout import layout

        files = layout(self.root)
        if not files.snapshot.exists() and not files.journal.exists():
            msg = "no .state/ yet (run `orchestration sync` to create it)"
            raise NotApplicable(msg)
        return files

    @cached_property
    def snapshot(self) -> State:
        """The snapshot; :class:`NotApplicable` when there is none or it cannot be read."""
        from ..state import SnapshotError, read_snapshot

        try:
            state = read_snapshot(self.state.snapshot)
        except SnapshotError:
            msg = "the snapshot cannot be read (see STATE-OBS-002)"
            raise NotApplicable(msg) from None
        if state is None:
            msg = "no snapshot yet"
            raise NotApplicable(msg)
        return state

    @cached_property
    def journal(self) -> Tail:
        """The journal read once from its start.

        Raises:
            JournalError: a line is not what the store writes (a hand edit).
            NotApplicable: there is no state yet.
        """
        from ..state.segments import read_history

        return read_history(self.state)

    def position(self, rel: str, pointer: str) -> tuple[int, int]:
        """Line and column of ``pointer`` in the JSON file ``rel``; ``(0, 0)`` when unknown."""
        from ..tasks.positions import locate

        try:
            return locate(self.path(rel).read_text(encoding="utf-8"), pointer)
        except (OSError, UnicodeDecodeError):
            return (0, 0)

    def located(self, rel: str, pointer: str, message: str, hint: str, requirement: str) -> Problem:
        """A problem at ``pointer`` of the JSON file ``rel``, with its line and column."""
        return Problem(rel, message, hint, requirement, pointer, *self.position(rel, pointer))

    @property
    def engine_dir(self) -> Path:
        """The engine's own sources (``src/orchestration``), present in its repository only."""
        folder = self.root / "src" / "orchestration"
        if not (folder / "__init__.py").exists():
            msg = "the engine's sources (src/orchestration) are not in this repository"
            raise NotApplicable(msg)
        return folder

    @cached_property
    def requirements(self) -> dict[str, Requirement]:
        """The requirements the engine implements (its own copy of the spec), by ID."""
        return {item.id: item for item in engine_requirements()}

    @cached_property
    def tasks(self) -> TaskSet:
        """Every task file, checked (the loader never raises)."""
        from ..tasks.loading import load_tasks

        return load_tasks(self.root)

    @cached_property
    def plan(self) -> Loaded[None]:
        """The problems of planning the valid tasks (dependencies on invalid ones left out).

        The plan itself is not kept: no check reads it, and at 100k tasks it
        would hold some 70 MB until the end of the validation.
        """
        from ..planning.plan import PlanTask, build_plan

        tasks = {task_id: PlanTask.of(task) for task_id, task in self.tasks.tasks.items()}

        def planned() -> None:
            build_plan(tasks, self.tasks.files)  # DefinitionError: the cycles (DAG-VIEW-001)

        return _load(planned, None)

    @cached_property
    def lifecycles(self) -> Loaded[dict[str, Lifecycle]]:
        """The task, workstream and worker lifecycles."""
        from ..lifecycles import load_lifecycles

        return _load(lambda: load_lifecycles(self.root), {})

    @cached_property
    def contract(self) -> Loaded[Contract | None]:
        """The agent workflow contract, ``agent_workflow.yaml``."""
        from ..enforcement.contract import load_contract

        return _load(lambda: load_contract(self.root), None)

    @cached_property
    def capabilities(self) -> Loaded[dict[str, Capability]]:
        """The capability registry."""
        from ..registry import load_capabilities

        return _load(lambda: load_capabilities(self.root), {})

    @cached_property
    def resources(self) -> Loaded[dict[str, Resource]]:
        """The resource registry."""
        from ..registry import load_resources

        return _load(lambda: load_resources(self.root), {})
