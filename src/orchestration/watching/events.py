"""The events of watch mode: what each re-plan printed, as text and as JSON.

Stability: provisional; the JSON shape of each event is stable (the daemon
reads it) and documented in :mod:`orchestration.watching`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, ClassVar

from ..errors import Problem

__all__ = [
    "Event",
    "Failed",
    "Invalid",
    "Planned",
    "Replanned",
    "Stopped",
    "Synced",
    "Watching",
]

_SHOWN_TEXT = 10  # problems the text of an `invalid` event shows
_SHOWN_IDS = 20  # task ids a line of text lists


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _clock() -> str:
    return datetime.now().strftime("%H:%M:%S")


def _ids(ids: list[str]) -> str:
    shown = ", ".join(ids[:_SHOWN_IDS])
    return shown + (f" and {len(ids) - _SHOWN_IDS} more" if len(ids) > _SHOWN_IDS else "")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class _Document:
    """An event as the JSON object ``--format json`` prints (see the module docstring)."""

    event: ClassVar[str]  # its name
    at: str = field(default_factory=_now, kw_only=True)  # when it happened (UTC)

    def document(self) -> dict[str, Any]:
        """``event`` first, then every field, ``at`` last."""
        return {"event": self.event, **{f.name: getattr(self, f.name) for f in fields(self)}}


@dataclass(frozen=True)
class Planned(_Document):
    """The definitions are valid and planned (``planned``, ``replanned``).

    When ``syncing``, a ``synced`` (or ``failed``) event of the same ``seq`` follows.
    """

    event: ClassVar[str] = "planned"
    seq: int
    files: int
    reloaded: list[str]
    tasks: int
    edges: int
    stages: int
    added: list[str]
    removed: list[str]
    changed: list[str]
    dependencies: dict[str, list[str]]
    critical_path: list[str]
    critical_path_seconds: float
    critical_path_changed: bool
    syncing: bool
    seconds: float
    waited: float

    def text(self) -> str:
        """A few lines for a terminal."""
        path = f"{' -> '.join(self.critical_path[:_SHOWN_IDS])}" + (
            " -> ..." if len(self.critical_path) > _SHOWN_IDS else ""
        )
        critical = (
            f"critical path ({_plural(len(self.critical_path), 'task')}, "
            f"{self.critical_path_seconds:g} s): {path or '(empty)'}"
        )
        synced = "syncing .state/" if self.syncing else "nothing to sync"
        if self.event == Planned.event:
            return (
                f"{_clock()} planned {_plural(self.tasks, 'task')} in "
                f"{_plural(self.stages, 'stage')} ({self.seconds:.2f} s); {synced}\n  {critical}"
            )
        read = _plural(self.files, "task file") + "".join(f", {name}" for name in self.reloaded)
        lines = [f"{_clock()} re-planned in {self.seconds:.2f} s ({read} read): {synced}"]
        if self.added:
            lines.append(f"  added: {_ids(self.added)}")
        if self.removed:
            lines.append(f"  removed (archived): {_ids(self.removed)}")
        if self.changed:
            lines.append(f"  changed: {_ids(self.changed)}")
        for task_id, needs in list(self.dependencies.items())[:_SHOWN_IDS]:
            lines.append(f"  {task_id} depends on: {', '.join(needs) or 'nothing'}")
        if self.critical_path_changed:
            lines.append(f"  new {critical}")
        if len(lines) == 1:
            lines.append("  the plan is unchanged")
        return "\n".join(lines)


@dataclass(frozen=True)
class Replanned(Planned):
    """The definitions were edited, and are valid and planned again (``replanned``)."""

    event: ClassVar[str] = "replanned"


@dataclass(frozen=True)
class Invalid(_Document):
    """The definitions have problems: nothing was changed (``invalid``)."""

    seq: int
    files: int
    reloaded: list[str]
    count: int
    problems: list[dict[str, object]]
    seconds: float
    waited: float
    event: ClassVar[str] = "invalid"

    def text(self) -> str:
        """The first problems, located, each with its fix."""
        lines = [f"{_clock()} {_plural(self.count, 'problem')} found; nothing was changed:"]
        for problem in self.problems[:_SHOWN_TEXT]:
            lines.append(Problem(**problem).render())  # type: ignore[arg-type]
        if self.count > _SHOWN_TEXT:
            lines.append(f"... and {self.count - _SHOWN_TEXT} more")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Sync(_Document):
    """How the store took the plan of ``seq``, after ``seconds``."""

    seq: int
    seconds: float


@dataclass(frozen=True)
class Synced(_Sync):
    """The store committed what the plan of ``seq`` changed in the state (``synced``)."""

    lines: int
    event: ClassVar[str] = "synced"

    def text(self) -> str:
        """One line."""
        return f"{_clock()} synced {_plural(self.lines, 'journal line')} in {self.seconds:.2f} s"


@dataclass(frozen=True)
class Failed(_Sync):
    """The store refused to sync the plan of ``seq``: nothing was committed (``failed``)."""

    message: str
    event: ClassVar[str] = "failed"

    def text(self) -> str:
        """One line."""
        return f"{_clock()} not synced: {self.message}; the next edit tries again"


@dataclass(frozen=True)
class Watching(_Document):
    """What is followed, once the first plan is printed (``watching``)."""

    root: str
    paths: list[str]
    debounce: float
    event: ClassVar[str] = "watching"

    def text(self) -> str:
        """One line."""
        return (
            f"watching {', '.join(self.paths)} in {self.root} (debounce {self.debounce:g} s); "
            "Ctrl-C to stop"
        )


@dataclass(frozen=True)
class Stopped(_Document):
    """The watch stopped on a signal (``stopped``)."""

    signal: str
    event: ClassVar[str] = "stopped"

    def text(self) -> str:
        """One line."""
        return f"stopped ({self.signal})"


Event = Planned | Invalid | Synced | Failed | Watching | Stopped  # Replanned is a Planned
