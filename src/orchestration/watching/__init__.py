"""Watch mode: follow the definitions; on every edit re-validate, re-plan and sync (OBS-007..009).

Stability: provisional; the events' JSON shape below is stable (the daemon reads it).

:func:`watch` follows ``tasks/`` (with its workstream folders),
``docs/state_machines/``, ``capabilities/`` and ``agent_workflow.yaml`` with
watchdog (inotify on Linux). An event only says *what* to look at again: the
path it names decides what is reloaded, and a path that defines nothing (an
editor's swap file, backup or write test, such as vim's ``4913``) is ignored
(:mod:`orchestration.watching.following`).

Debouncing. Events are collected until none came for the debounce window
(0.2 s by default), but for at most ten windows (and at least 2 s) after the
first, so that a stream that never pauses is still re-planned. An editor's
save through a temporary file and a rename, or the 1,000 files of a ``git
checkout``, is one burst: one re-plan (OBS-008).

Reloading is incremental (OBS-009; :class:`Watcher`). The checked task files
stay in memory, and a burst reads again only the task files its events name;
every file's stat signature is compared instead when a folder below
``tasks/`` was created, moved or removed, or when the kernel dropped events.
The lifecycles, the registries and the contract are loaded again, with the
loaders the CLI uses, only when one of their files changed. Then come the
checks across task files and the plan, as ``plan`` does them, and
``Store.sync``, as ``sync`` does it. The sync is skipped when it would commit
nothing: no task was added or removed, and no edit changed what the state
mirrors of a task (its workstream, dependencies, priority, retries,
capabilities, resources or declared status).

The registries and the contract are checked once the pipeline has them: a
pipeline without them (which ``plan`` and ``sync`` accept) can be watched,
and deleting one while watching is reported.

Invalid definitions change nothing (OBS-008): when any file has a problem,
the problems are reported and the store is not even opened. The edit that
fixes them is applied as usual; plan changes are always reported against the
last plan applied.

The plan is printed as soon as it is made, before the store is synced (at
10,000 tasks ``Store.sync`` takes longer than the rest of a re-plan), and a
``synced`` event follows once the journal and the snapshot hold the change.

Events (:mod:`orchestration.watching.events`), in the order they happen.
With ``--format json`` each is one line of JSON holding ``schema_version``
("1.0.0"), ``event``, ``at`` (UTC, ISO 8601) and the fields listed:

``planned``, ``replanned``
    The definitions are valid and planned. ``planned`` is the first plan: at
    start, or at the first valid edit when the definitions were invalid since
    the start; ``replanned`` follows an edit, with the changes against the
    last plan applied. Fields: ``seq`` (0 at start, then one more per
    re-plan, invalid ones included), ``files`` (task files read),
    ``reloaded`` (other definitions loaded again: ``lifecycles``,
    ``capabilities``, ``resources``, ``contract``), ``tasks``, ``edges`` and
    ``stages`` (counts), ``added`` and ``removed`` (task ids, sorted; a
    removed task is archived), ``changed`` (ids of tasks whose definition
    changed, sorted), ``dependencies`` (task id → its dependencies now, for
    the changed tasks whose dependencies changed), ``critical_path`` (task
    ids, first to last), ``critical_path_seconds``, ``critical_path_changed``
    (bool), ``syncing`` (bool: a ``synced`` or ``failed`` event of this
    ``seq`` follows; false when the sync would commit nothing), ``seconds``
    (spent reloading, checking and planning) and ``waited`` (from the
    burst's first event to the reload: the debounce, mostly).
``synced``
    The store committed the plan's changes: ``seq`` (the plan's),
    ``seconds``, ``lines`` (journal lines committed). From then on
    ``.state/`` holds them.
``failed``
    The store refused the sync (a full disk, a read-only ``.state/``):
    nothing was committed, and the next edit tries again. ``seq``,
    ``seconds``, ``message``.
``invalid``
    Nothing was changed. ``seq``, ``files``, ``reloaded``, ``count`` (problems
    found), ``problems`` (the first 50, each ``{file, line, column, pointer,
    message, hint, requirement}`` as ``plan --format json`` prints them),
    ``seconds``, ``waited``.
``watching``
    Once, after the first plan (and its sync): ``root``, ``paths`` (what is
    followed, relative to the root) and ``debounce`` (seconds).
``stopped``
    The last line, on SIGINT or SIGTERM: ``signal``.
"""

from __future__ import annotations

from .events import Event, Failed, Invalid, Planned, Replanned, Stopped, Synced, Watching
from .following import DEBOUNCE_SECONDS, Changes, Debouncer, Kind, definition_kinds
from .watcher import Watcher, watch

__all__ = [
    "DEBOUNCE_SECONDS",
    "Changes",
    "Debouncer",
    "Event",
    "Failed",
    "Invalid",
    "Kind",
    "Planned",
    "Replanned",
    "Stopped",
    "Synced",
    "Watcher",
    "Watching",
    "definition_kinds",
    "watch",
]
