"""A cache of what the engine derives from files, kept while the files do not change.

Stability: internal.

Validating definitions needs pydantic and PyYAML, whose imports alone cost a
quarter of a second, and agents run short commands again and again on files
that did not change. Like ``make``, a result is keyed on the stat signatures
of the files it was derived from (name, size, modification time in
nanoseconds), on the engine's version, and on the modification times of the
engine code that derived it: any change to any of them is a miss.

The cache lives outside the repository, in ``$XDG_CACHE_HOME/orchestration/``
(default ``~/.cache``), one JSON document per kind of result and pipeline
root. Nothing here is ever needed: a document that cannot be read or parsed
is a miss, one that cannot be written is skipped, and deleting the folder is
always safe. Callers store only results derived from valid files, so that
every problem is reported on every run.
"""

from __future__ import annotations

import gc
import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from . import __version__
from .atomic import write_atomic

__all__ = [
    "cache_file",
    "read",
    "read_signed",
    "signature",
    "signature_later",
    "signature_of",
    "write",
]

_PACKAGE = Path(__file__).resolve().parent


def cache_file(kind: str, root: Path) -> Path:
    """Where the cached ``kind`` of result (``plan``, ``lifecycles``) for ``root`` lives."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    name = hashlib.sha256(os.fsencode(root.resolve())).hexdigest()[:24]
    return Path(base) / "orchestration" / f"{kind}-{name}.json"


def signature(code: Iterable[str], files: Iterable[tuple[str, os.stat_result]]) -> str:
    """The key of a result derived by ``code`` from ``files``.

    Take it before reading the files: one edited while it is read changes
    its modification time afterwards, so the next run misses and reads it again.

    Args:
        code: the engine's modules the result depends on, relative to the
            package (``"tasks/model.py"``).
        files: ``(name, stat)`` of each input file; the name is how the file
            is recorded (relative to the pipeline root, so that the key does
            not depend on how the root was spelled).

    Raises:
        OSError: a module of ``code`` cannot be found.
    """
    names, sizes, times = [], [], []
    for name, stat in files:
        names.append(name)
        sizes.append(stat.st_size)
        times.append(stat.st_mtime_ns)
    return signature_of(code, names, sizes, times)


def signature_of(
    code: Iterable[str], names: Sequence[str], sizes: Sequence[int], times: Sequence[int]
) -> str:
    """:func:`signature` from columns: each file's name, size and ``st_mtime_ns``.

    The same key as :func:`signature` for the same files; at 100k files the
    columns are what a caller has at hand.

    Raises:
        OSError: a module of ``code`` cannot be found.
    """
    digest = hashlib.sha256(__version__.encode())
    for rel in code:
        digest.update(f"{os.stat(_PACKAGE / rel).st_mtime_ns}\0".encode())
    # Column by column: three joins hash 100k files faster than 100k updates.
    # No name holds a NUL, so the columns cannot run into each other.
    digest.update(f"{len(names)}\0".encode())
    digest.update("\0".join(names).encode("utf-8", "surrogateescape"))
    digest.update(("\0" + " ".join(map(str, sizes))).encode())
    digest.update(("\0" + " ".join(map(str, times))).encode())
    return digest.hexdigest()


def signature_later(
    code: Sequence[str], files: Callable[[], Iterable[tuple[str, str]]]
) -> Callable[[], str | None]:
    """Start taking :func:`signature` of ``files()`` in a forked process; a call waits for it.

    At 100k files the ``stat`` calls alone take half a second, which the
    caller spends meanwhile on its own work. Where ``fork`` is missing, or
    threads run, the key is taken in this process, when asked for.

    Args:
        code: as for :func:`signature`.
        files: ``(name, path)`` of each input file, listed in the child.

    Returns:
        A function returning the key, or ``None`` when it could not be
        taken (a file vanished meanwhile: treat it as a miss).
    """

    def take() -> str | None:
        try:
            listed = list(files())
            return signature(code, ((name, os.stat(path)) for name, path in listed))
        except OSError:
            return None

    if not hasattr(os, "fork") or threading.active_count() > 1:
        return take  # forking a process with threads risks a lock held by one of them
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: take the key, send it, and leave without running any cleanup
        try:
            gc.disable()  # nothing to collect, and no copy of the parent's pages to touch
            os.close(read_end)
            key = take()
            os.write(write_end, key.encode() if key else b"")
        finally:
            os._exit(0)
    os.close(write_end)

    def wait() -> str | None:
        with os.fdopen(read_end, "rb") as pipe:
            sent = pipe.read()
        os.waitpid(pid, 0)
        return sent.decode() or None

    return wait


def read_signed(path: Path) -> tuple[str, Any] | None:
    """The signature and data cached at ``path``, whatever the signature; ``None`` if none.

    For a caller that takes the key meanwhile (:func:`signature_later`) and
    compares it after.
    """
    try:
        document = orjson.loads(path.read_bytes())
        signed = document["signature"], document["data"]
    except (OSError, orjson.JSONDecodeError, LookupError, TypeError):
        return None  # no cache, or one we cannot read: a miss
    return signed if type(signed[0]) is str else None


def read(path: Path, key: str) -> Any:
    """The data cached at ``path`` under ``key``; ``None`` on any miss or problem.

    The data is what was given to :func:`write`: plain JSON values, to be
    checked by the caller as carefully as any other input.
    """
    try:
        document = orjson.loads(path.read_bytes())
        if document["signature"] == key:
            return document["data"]
    except (OSError, orjson.JSONDecodeError, LookupError, TypeError):
        pass  # no cache, or one we cannot read: a miss
    return None


def write(path: Path, key: str, data: Any) -> None:
    """Cache ``data`` (plain JSON values, not ``None``) at ``path`` under ``key``.

    The file is replaced atomically; a failure to write (a read-only home, a
    full disk) is ignored, since it only costs speed next time.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, orjson.dumps({"signature": key, "data": data}))
    except OSError:
        pass
