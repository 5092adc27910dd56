"""Following the definitions: which paths define what, and when a burst of events is over.

Stability: internal.

A :class:`Follower` keeps watchdog's observer on the folders of watch mode
(``tasks/`` recursively; the root, ``docs/``, ``docs/state_machines/`` and
``capabilities/`` alone), and follows one that appears later. Its handler
names, for each event, what the path defines (:func:`definition_kinds`):
nothing for an editor's swap, backup or temporary file, so that they never
cause a re-plan. A :class:`Burst` collects what the events named until the
:class:`Debouncer` says the burst is over.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)

from ..errors import OrchestrationError
from ..project import TASKS_DIR

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver, ObservedWatch

__all__ = [
    "DEBOUNCE_SECONDS",
    "DEFINITION_FILES",
    "FOLLOWED",
    "Burst",
    "Changes",
    "Debouncer",
    "Follower",
    "Kind",
    "definition_kinds",
]

DEBOUNCE_SECONDS = 0.2  # the quiet time that ends a burst, by default
LONGEST_WINDOWS = 10  # a burst never waits longer than this many windows ...
LONGEST_SECONDS = 2.0  # ... nor less long than this
_POLL = 0.1  # seconds between looks at the stop flag while idle
# What is followed, relative to the root, as the docs name it.
FOLLOWED = ("tasks/", "docs/state_machines/", "capabilities/", "agent_workflow.yaml")


class Kind(StrEnum):
    """What a followed file defines, and so what an edit to it loads again."""

    TASKS = "tasks"  # a task file, or a folder below tasks/ (then every file is compared)
    LIFECYCLES = "lifecycles"  # docs/state_machines/{task,workstream,worker}_lifecycle.yaml
    CAPABILITIES = "capabilities"  # capabilities/registry.psd1 (or .yaml)
    RESOURCES = "resources"  # capabilities/resources.psd1 (or .yaml)
    CONTRACT = "contract"  # agent_workflow.yaml


# The files the loaders read, by kind (relative to the root).
DEFINITION_FILES = {
    Kind.LIFECYCLES: tuple(
        f"docs/state_machines/{name}_lifecycle.yaml" for name in ("task", "workstream", "worker")
    ),
    Kind.CAPABILITIES: ("capabilities/registry.psd1", "capabilities/registry.yaml"),
    Kind.RESOURCES: ("capabilities/resources.psd1", "capabilities/resources.yaml"),
    Kind.CONTRACT: ("agent_workflow.yaml",),
}
_KIND_OF_FILE = {rel: frozenset({kind}) for kind, rels in DEFINITION_FILES.items() for rel in rels}
# Folders followed, whether recursively, and what their appearing or going touches.
_FOLDERS: dict[str, tuple[bool, frozenset[Kind]]] = {
    "": (False, frozenset()),  # the root: agent_workflow.yaml, and the folders below appearing
    TASKS_DIR: (True, frozenset({Kind.TASKS})),
    "docs": (False, frozenset({Kind.LIFECYCLES})),
    "docs/state_machines": (False, frozenset({Kind.LIFECYCLES})),
    "capabilities": (False, frozenset({Kind.CAPABILITIES, Kind.RESOURCES})),
}
# What a save, a checkout or a removal makes inotify say; never what a read says
# (opened, closed without writing), nor a folder's own "modified".
_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    DirCreatedEvent,
    DirMovedEvent,
    DirDeletedEvent,
]
_NOTHING: frozenset[Kind] = frozenset()


def definition_kinds(rel: str, *, directory: bool = False) -> frozenset[Kind]:
    """What the file (or folder) at ``rel``, relative to the root with ``/``, defines.

    Empty for anything the loaders never read: an editor's swap file,
    backup or temporary file, or any other file.
    """
    if rel == TASKS_DIR or rel.startswith(f"{TASKS_DIR}/"):
        # Every *.json below tasks/ is read as a task file, as `plan` reads them.
        return _FOLDERS[TASKS_DIR][1] if directory or rel.endswith(".json") else _NOTHING
    if directory:
        found = _FOLDERS.get(rel)
        return _NOTHING if found is None else found[1]
    return _KIND_OF_FILE.get(rel, _NOTHING)


# --- debouncing -----------------------------------------------------------------------------


@dataclass
class Debouncer:
    """When a burst of events is over: pure, driven by the times it is given.

    A burst ends once ``quiet`` seconds pass without an event, or ``longest``
    seconds after its first event, whichever comes first.
    """

    quiet: float
    longest: float
    _first: float | None = None
    _last: float = 0.0

    def add(self, now: float) -> None:
        """An event happened at ``now`` (monotonic seconds)."""
        if self._first is None:
            self._first = now
        self._last = now

    @property
    def deadline(self) -> float | None:
        """When the burst ends; ``None`` when no event waits."""
        if self._first is None:
            return None
        return min(self._last + self.quiet, self._first + self.longest)

    def flush(self) -> float | None:
        """End the burst; return when its first event happened (``None``: there was none)."""
        first, self._first = self._first, None
        return first


class Changes(NamedTuple):
    """What a burst of events named."""

    kinds: frozenset[Kind]
    paths: frozenset[str]  # task files named, relative to the root
    rescan: bool  # compare every task file's signature: a folder moved, or events were lost
    first: float | None  # when the first event happened (monotonic); None: at start


class Burst:
    """The events of the burst under way, collected from the observer's thread."""

    def __init__(self, debouncer: Debouncer) -> None:
        self._changed = threading.Condition()
        self._debouncer = debouncer
        self._kinds: set[Kind] = set()
        self._paths: set[str] = set()
        self._rescan = False

    def add(self, kinds: Iterable[Kind], path: str | None = None, *, rescan: bool = False) -> None:
        """Note an event (from any thread)."""
        with self._changed:
            waiting = self._debouncer.deadline is not None
            self._kinds.update(kinds)
            if path is not None:
                self._paths.add(path)
            self._rescan = self._rescan or rescan
            self._debouncer.add(time.monotonic())
            if not waiting:
                self._changed.notify()  # the first of a burst: the taker learns its deadline

    def take(self, stop: threading.Event) -> Changes | None:
        """Wait for a burst to end and return it; ``None`` once ``stop`` is set."""
        with self._changed:
            while not stop.is_set():
                deadline = self._debouncer.deadline
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    first = self._debouncer.flush()
                    changes = Changes(
                        frozenset(self._kinds), frozenset(self._paths), self._rescan, first
                    )
                    self._kinds, self._paths, self._rescan = set(), set(), False
                    return changes
                # A signal handler only sets `stop`: look at it now and then.
                self._changed.wait(_POLL if deadline is None else min(_POLL, deadline - now))
        return None


# --- following the folders ------------------------------------------------------------------


class _Handler(FileSystemEventHandler):
    """Turns watchdog's events into what a burst must load again."""

    def __init__(self, root: Path, burst: Burst) -> None:
        self._prefix = os.path.join(root, "")
        self._burst = burst

    def on_any_event(self, event: FileSystemEvent) -> None:
        directory = event.is_directory
        if directory and event.event_type == "modified":
            return  # a file in it was created or removed: that file's own event says which
        for path in (event.src_path, event.dest_path):
            name = os.fsdecode(path)
            if not name.startswith(self._prefix):
                continue
            rel = name[len(self._prefix) :].replace(os.sep, "/")
            kinds = definition_kinds(rel, directory=directory)
            if kinds:
                rescan = directory and Kind.TASKS in kinds
                self._burst.add(kinds, None if directory else rel, rescan=rescan)


class _Overflow(logging.Handler):
    """Hears watchdog say the kernel dropped events (it has no event for that): compare all."""

    def __init__(self, burst: Burst) -> None:
        super().__init__(logging.WARNING)
        self._burst = burst

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self._burst.add(Kind, rescan=True)


class Follower:
    """watchdog's observer on the followed folders; one that appears later is followed then.

    Events are noted in ``burst``, from the observer's thread.
    """

    def __init__(self, root: Path, burst: Burst) -> None:
        from watchdog.observers import Observer

        self._root = root
        self._observer: BaseObserver = Observer()
        self._handler = _Handler(root, burst)
        self._overflow = _Overflow(burst)
        self._watches: dict[str, tuple[ObservedWatch, int]] = {}  # folder → watch, inode

    def start(self) -> None:
        """Follow the folders there are, from now on.

        Raises:
            OrchestrationError: the system refuses a watch (inotify limits).
        """
        self.follow()
        self._observer.start()
        logging.getLogger("watchdog").addHandler(self._overflow)

    def stop(self) -> None:
        """Stop following, and wait for the observer's thread to end."""
        logging.getLogger("watchdog").removeHandler(self._overflow)
        self._observer.stop()
        self._observer.join()

    def follow(self) -> None:
        """Follow the folders that exist now; forget those that went.

        Raises:
            OrchestrationError: the system refuses a watch (inotify limits).
        """
        for rel, (recursive, _) in _FOLDERS.items():
            path = os.path.join(self._root, rel)
            try:
                inode = os.stat(path).st_ino if os.path.isdir(path) else None
            except OSError:
                inode = None
            known = self._watches.get(rel)
            if known is not None and known[1] != inode:
                del self._watches[rel]
                with suppress(KeyError, OSError):  # its emitter stopped with the folder
                    self._observer.unschedule(known[0])
            if inode is None or rel in self._watches:
                continue
            try:
                watch = self._observer.schedule(
                    self._handler, path, recursive=recursive, event_filter=_EVENTS
                )
            except OSError as bad:
                if bad.errno in (errno.ENOSPC, errno.EMFILE):
                    msg = (
                        f"cannot follow {path}: {bad.strerror} (the inotify limits); raise "
                        "fs.inotify.max_user_watches or max_user_instances with sysctl"
                    )
                    raise OrchestrationError(msg) from bad
                continue  # it went meanwhile: the next burst looks again
            self._watches[rel] = (watch, inode)
