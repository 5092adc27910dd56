"""Load lifecycle files, check them, and compile each once (SM-DEF-001 to SM-DEF-003).

Stability: stable (:func:`load_lifecycle`, :func:`load_lifecycles`).

Every file is checked by :mod:`orchestration.lifecycles.checking`, which
reports every problem with file, line, column and JSON pointer; only a file
without problems is compiled. :func:`load_lifecycles` adds the checks across
the three files of a pipeline.

Two caches keep short commands fast, both keyed on the files' modification
times and sizes:

- per process, compiled lifecycles by file, so the store, the scheduler and
  the validators share one machine per lifecycle however often they load
  (SM-DEF-003);
- across processes, the lifecycles of a pipeline whose three files are valid,
  as plain data in :mod:`orchestration.cache`. A hit builds them without
  importing pydantic or PyYAML (a quarter of a second together); invalid
  files are never cached, so every problem is reported on every run.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .. import cache
from ..errors import DefinitionError, Problem, relative
from .machine import DeriveRule, Lifecycle, LifecycleState, LifecycleTransition, Match

if TYPE_CHECKING:
    from .source import YamlSource

__all__ = ["KINDS", "LIFECYCLES_DIR", "lifecycle_path", "load_lifecycle", "load_lifecycles"]

LIFECYCLES_DIR = "docs/state_machines"
KINDS = ("task", "workstream", "worker")

# Engine code whose change must invalidate cached lifecycles, beside the version.
_CODE = tuple(
    f"lifecycles/{name}.py"
    for name in ("loading", "checking", "definition", "guards", "machine", "source")
)


class _Loaded:
    """A compiled lifecycle, and its parsed file for locating problems across files."""

    __slots__ = ("_path", "_source", "lifecycle")

    def __init__(self, lifecycle: Lifecycle, path: str, source: YamlSource | None) -> None:
        self.lifecycle = lifecycle
        self._path = path
        self._source = source  # None when built from the cache: parsed if a problem needs it

    def source(self) -> YamlSource:
        if self._source is None:
            from .checking import source_of

            self._source = source_of(self._path, self.lifecycle.file)
        return self._source


# (absolute path, file as reported) → (st_mtime_ns, st_size, the compiled lifecycle).
# One entry per file: a long-running process that sees a file edited keeps the latest only.
_CACHE: dict[tuple[str, str], tuple[int, int, _Loaded]] = {}


def lifecycle_path(root: Path, kind: str) -> Path:
    """Where the pipeline at ``root`` declares the lifecycle ``kind``."""
    return root / LIFECYCLES_DIR / f"{kind}_lifecycle.yaml"


def load_lifecycle(path: Path, root: Path | None = None) -> Lifecycle:
    """Load, check and compile one lifecycle file (cached; see the module docstring).

    Args:
        path: the YAML file.
        root: the pipeline root; problems name the file relative to it.

    Raises:
        DefinitionError: the file is missing (SM-DEF-001) or invalid
            (SM-DEF-002); it carries every problem found.
    """
    loaded, problems = _load(path, root)
    if loaded is None:
        raise DefinitionError(problems)
    return loaded.lifecycle


def load_lifecycles(root: Path) -> dict[str, Lifecycle]:
    """The task, workstream and worker lifecycles of the pipeline at ``root``.

    Returns:
        ``{"task": ..., "workstream": ..., "worker": ...}``.

    Raises:
        DefinitionError: with every problem of every file, and of the files
            together (SM-DEF-004, SM-DEF-008, SM-DEF-009).
    """
    paths = [lifecycle_path(root, kind) for kind in KINDS]
    rels = [relative(path, root) for path in paths]
    stored = cache.cache_file("lifecycles", root)
    try:
        stats = [os.stat(path) for path in paths]
    except OSError:
        signature = None  # a file is missing or unreadable: loaded below, and reported
    else:
        signature = cache.signature(_CODE, zip(rels, stats, strict=True))
        cached = _from_cache(cache.read(stored, signature), paths, rels, stats)
        if cached is not None:
            return cached

    problems: list[Problem] = []
    loaded: dict[str, _Loaded] = {}
    for kind, path in zip(KINDS, paths, strict=True):
        one, found = _load(path, root)
        problems.extend(found)
        if one is not None:
            loaded[kind] = one
    lifecycles = {kind: one.lifecycle for kind, one in loaded.items()}
    from .checking import pipeline_problems

    problems.extend(pipeline_problems(lifecycles, lambda kind: loaded[kind].source()))
    if problems:
        raise DefinitionError(problems)
    if signature is not None:
        cache.write(stored, signature, {kind: _plain(lc) for kind, lc in lifecycles.items()})
    return lifecycles


def _load(path: Path, root: Path | None) -> tuple[_Loaded | None, list[Problem]]:
    rel = relative(path, root) if root is not None else path.as_posix()
    try:
        with open(path, "rb") as handle:
            stat = os.fstat(handle.fileno())
            key, version = (os.path.abspath(path), rel), (stat.st_mtime_ns, stat.st_size)
            cached = _CACHE.get(key)
            if cached is not None and cached[:2] == version:
                return cached[2], []
            raw = handle.read()
    except OSError as error:
        from .checking import unreadable

        return None, [unreadable(rel, error)]
    from .checking import check

    lifecycle, source, problems = check(raw, rel, PurePosixPath(rel).stem)
    if lifecycle is None:
        return None, problems
    loaded = _Loaded(lifecycle, key[0], source)
    _CACHE[key] = (*version, loaded)
    return loaded, []


# --- the cache across processes -----------------------------------------------------


def _from_cache(
    data: Any, paths: list[Path], rels: list[str], stats: list[os.stat_result]
) -> dict[str, Lifecycle] | None:
    """The lifecycles cached as ``data``; ``None`` when there are none, or not in our form.

    A lifecycle this process already compiled from the same file is returned
    again rather than built anew (SM-DEF-003).
    """
    if data is None:
        return None
    lifecycles: dict[str, Lifecycle] = {}
    built: list[tuple[tuple[str, str], tuple[int, int], _Loaded]] = []
    try:
        for kind, path, rel, stat in zip(KINDS, paths, rels, stats, strict=True):
            key, version = (os.path.abspath(path), rel), (stat.st_mtime_ns, stat.st_size)
            held = _CACHE.get(key)
            if held is not None and held[:2] == version:
                lifecycles[kind] = held[2].lifecycle
            else:
                lifecycles[kind] = _unplain(data[kind], rel)
                built.append((key, version, _Loaded(lifecycles[kind], key[0], None)))
    except (LookupError, TypeError, ValueError):
        return None  # not what this code writes: load the files
    for key, version, loaded in built:
        _CACHE[key] = (*version, loaded)
    return lifecycles


def _plain(lifecycle: Lifecycle) -> dict[str, Any]:
    """A lifecycle as plain JSON values; :func:`_unplain` builds it back."""
    return {
        "name": lifecycle.name,
        "initial": lifecycle.initial,
        "description": lifecycle.description,
        "states": [[name, s.description, s.terminal] for name, s in lifecycle.states.items()],
        "transitions": [
            [t.trigger, t.sources, t.dest, t.guards, t.requirement, t.description]
            for t in lifecycle.transitions
        ],
        "derive": [[r.when, r.statuses, r.status] for r in lifecycle.derive_rules],
    }


def _unplain(data: Any, rel: str) -> Lifecycle:
    """The lifecycle :func:`_plain` gave ``data`` for, declared in ``rel``.

    Raises:
        LookupError, TypeError, ValueError: ``data`` is not in that form.
    """
    return Lifecycle(
        name=data["name"],
        initial=data["initial"],
        states=MappingProxyType(
            {name: LifecycleState(text, terminal) for name, text, terminal in data["states"]}
        ),
        file=rel,
        description=data["description"],
        transitions=tuple(
            LifecycleTransition(trigger, tuple(sources), dest, tuple(guards), requirement, text)
            for trigger, sources, dest, guards, requirement, text in data["transitions"]
        ),
        derive_rules=tuple(
            DeriveRule(Match(when), tuple(statuses), status)
            for when, statuses, status in data["derive"]
        ),
    )
