"""The tool audit ``.state/audit/tool_audit.jsonl``: every tool decision (AGENT-WF-012).

Stability: stable (the record format is a public contract).

Each line is one JSON object with the fields of :data:`AUDIT_FIELDS`, in
that order, possibly followed by others::

    {"timestamp": "2025-01-15T10:00:00.120Z", "agent_id": "agent-1", "task_id": "task-001",
     "phase": "TDD", "tool": "write_file", "args": {"path": "src/app.py"},
     "decision": "denied", "reason": "the phase allows write_file only on paths matching
     tests/**, not on 'src/app.py'", "requirement": "AGENT-WF-010", "severity": "error"}

``decision`` is ``allowed`` (severity ``info``), ``denied`` (``error``) or
``warned`` (a violation allowed in permissive mode, AGENT-WF-005, severity
``warning``).

A record is written with ``O_APPEND`` before :meth:`ToolAudit.append`
returns, and fsynced: before it returns, for a decision whose tool acts on
the sandbox (the log is durable before the effect, as a write-ahead log);
within :data:`FLUSH_WITHIN` for one that has no effect to protect (a
denial, a read), and in any case before any later record that waited. A
crash of the process loses neither: only a power cut could lose the last
:data:`FLUSH_WITHIN` of those. Appends are safe across threads and
processes: the lock ``.state/audit/.lock`` (not the store's writer lock)
serialises rotation and the write itself, the fsync happens after it, and
one fsync serves every append of the process waiting for it (group commit). When a
record would take the live file past ``max_bytes`` the file is first renamed
to ``tool_audit-<UTC yyyymmddThhmmssZ>-<n>.jsonl`` (``n`` from 1, unique) and
a new one started; no record is ever rewritten or dropped. A record larger
than ``max_bytes`` gets a file of its own.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
from filelock import FileLock

from ..atomic import fsync_directory
from .journal import SEVERITIES, now
from .layout import Layout
from .segments import Entry, Manifest, seal_file, sealed_data

__all__ = [
    "AUDIT_FIELDS",
    "AUDIT_FILE",
    "DECISIONS",
    "DEFAULT_MAX_BYTES",
    "FLUSH_WITHIN",
    "ToolAudit",
    "all_records",
    "audit_record",
]

AUDIT_FILE = "tool_audit.jsonl"
"""The live audit file's name, in ``.state/audit/``."""

AUDIT_FIELDS = (
    "timestamp",
    "agent_id",
    "task_id",
    "phase",
    "tool",
    "args",
    "decision",
    "reason",
    "requirement",
    "severity",
)
"""The fields every audit record has, in the order they are written."""

DECISIONS = ("allowed", "denied", "warned")
"""What happened to a tool call: run, refused, or run despite a violation (permissive mode)."""

DEFAULT_MAX_BYTES = 104_857_600
"""Rotate the live file before it grows past 100 MiB (``audit.tool_audit_max_bytes``)."""

FLUSH_WITHIN = 0.05
"""Seconds a record with no effect to protect (a denial, a read) may wait for its fsync."""


def audit_record(**fields: Any) -> dict[str, Any]:
    """An audit record: every field of :data:`AUDIT_FIELDS`, then any others given.

    ``timestamp`` defaults to now (ISO 8601 UTC with milliseconds and ``Z``).

    Raises:
        ValueError: a field is missing, or ``decision`` or ``severity`` is
            not one of the known values.
    """
    fields.setdefault("timestamp", now())
    missing = [name for name in AUDIT_FIELDS if name not in fields]
    if missing:
        msg = f"an audit record needs the fields {', '.join(missing)}; give them all"
        raise ValueError(msg)
    if fields["decision"] not in DECISIONS:
        msg = f"audit decision {fields['decision']!r} is none of {', '.join(DECISIONS)}"
        raise ValueError(msg)
    if fields["severity"] not in SEVERITIES:
        msg = f"audit severity {fields['severity']!r} is none of {', '.join(sorted(SEVERITIES))}"
        raise ValueError(msg)
    record = {name: fields.pop(name) for name in AUDIT_FIELDS}
    record.update(fields)
    return record


class ToolAudit:
    """The tool audit in ``folder`` (``.state/audit/``, see ``layout(root).audit``).

    Args:
        folder: where ``tool_audit.jsonl``, its rotated files and ``.lock`` live;
            created on the first append.
        max_bytes: the size the live file is kept under by rotation.
    """

    def __init__(self, folder: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes <= 0:
            msg = f"audit.tool_audit_max_bytes must be positive, not {max_bytes!r}"
            raise ValueError(msg)
        self.folder = folder
        self.path = folder / AUDIT_FILE
        self.max_bytes = max_bytes
        # FileLock is reentrant within a process, so threads need their own mutex.
        self._mutex = threading.Lock()
        self._lock = FileLock(folder / ".lock", thread_local=False)
        self._sync_mutex = threading.Lock()
        self._synced: tuple[tuple[int, int] | None, int] = (None, 0)  # file and bytes fsynced
        self._flush_mutex = threading.Lock()
        self._flushing = False  # a thread will fsync what was written without waiting
        self._unflushed = False  # written without waiting since that thread last looked
        self._ready = False

    def append(self, record: Mapping[str, Any], *, wait: bool = True) -> None:
        """Append ``record`` as one line; it is on disk when this returns.

        Args:
            wait: return once the record is fsynced; False for a decision with
                no effect to protect, fsynced within :data:`FLUSH_WITHIN`.

        Raises:
            TypeError: the record holds a value JSON cannot represent.
            OSError: the write failed (full disk, read-only folder).
        """
        line = orjson.dumps(record) + b"\n"
        if not self._ready:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._ready = True
        with self._mutex, self._lock:
            fd, started = self._open_for(len(line))
            try:
                if started and os.pread(fd, 1, started - 1) != b"\n":
                    line = b"\n" + line  # a crash tore the last line: keep ours whole
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view) :]
                stat = os.fstat(fd)
            except BaseException:
                os.close(fd)
                raise
        try:
            if wait or started == 0:
                self._sync(fd, (stat.st_dev, stat.st_ino), started + len(line))
            else:
                self._flush_soon()
        finally:
            os.close(fd)
        if started == 0:  # a new file: make its name durable too
            fsync_directory(self.folder)

    def _flush_soon(self) -> None:
        """Make sure the records written so far are fsynced within FLUSH_WITHIN."""
        with self._flush_mutex:
            self._unflushed = True
            if self._flushing:
                return
            self._flushing = True
        threading.Thread(target=self._flush_later, daemon=True, name="audit-flush").start()

    def _flush_later(self) -> None:
        while True:
            time.sleep(FLUSH_WITHIN)
            with self._flush_mutex:
                self._unflushed = False
            with contextlib.suppress(OSError):  # a full disk: the next waited record says so
                fd = os.open(self.path, os.O_RDONLY)
                try:
                    stat = os.fstat(fd)
                    self._sync(fd, (stat.st_dev, stat.st_ino), stat.st_size)
                finally:
                    os.close(fd)
            with self._flush_mutex:
                if not self._unflushed:
                    self._flushing = False
                    return

    def _sync(self, fd: int, identity: tuple[int, int], end: int) -> None:
        """Make the file durable through ``end``: one fsync serves every append waiting.

        Group commit: an fsync covers every write that finished before it
        began, so an append whose bytes a concurrent fsync already covered
        returns without its own.
        """
        with self._sync_mutex:
            synced, through = self._synced
            if synced == identity and through >= end:
                return
            size = os.fstat(fd).st_size
            os.fsync(fd)
            self._synced = (identity, size)

    def _open_for(self, size: int) -> tuple[int, int]:
        """The live file open for appending (rotated first if ``size`` more bytes overflow it)."""
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND
        fd = os.open(self.path, flags, 0o644)
        end = os.fstat(fd).st_size
        if end == 0 or end + size <= self.max_bytes:
            return fd, end
        try:
            os.fsync(fd)  # its last records may not be yet (see FLUSH_WITHIN)
        finally:
            os.close(fd)
        os.rename(self.path, self._rotated_name())
        return os.open(self.path, flags, 0o644), 0

    def _rotated_name(self) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        number = 1
        while (candidate := self.folder / f"tool_audit-{stamp}-{number}.jsonl").exists():
            number += 1
        return candidate

    def seal(self, manifest: Manifest) -> list[Entry]:
        """Seal the live file and every rotated one into segments (AUDIT-002), oldest first.

        The live file is first rotated under the audit lock (appenders go on
        in a new one); each rotated file is then compressed into a segment
        recorded in ``manifest`` and removed. A file whose name the manifest
        already records was sealed before a crash: it is only removed. The
        caller holds the store's writer lock, which serialises the manifest.
        """
        with self._mutex, self._lock:
            if self.path.exists() and self.path.stat().st_size > 0:
                os.rename(self.path, self._rotated_name())
        sealed = {entry.source for entry in manifest.entries if entry.kind == "tool_audit"}
        entries = []
        for path in self.rotated():
            if path.name not in sealed:
                data = path.read_bytes()
                if data and not data.endswith(b"\n"):
                    data += b"\n"  # a record torn by a crash stays a (skipped) line
                if data:
                    entries.append(seal_file(manifest, self.folder, data, kind="tool_audit",
                                             source=path.name))  # fmt: skip
            path.unlink()
        if entries:
            fsync_directory(self.folder)
        return entries

    def rotated(self) -> list[Path]:
        """The rotated files, oldest first."""
        return sorted(self.folder.glob("tool_audit-*.jsonl"), key=_rotation_order)

    def read(
        self,
        *,
        after: int = 0,
        limit: int = 100,
        task_id: str | None = None,
        decision: str | None = None,
    ) -> list[dict[str, Any]]:
        """Records of the live file, oldest first, each with its number as ``"n"``.

        Records are numbered from 1 by their line in the live file, so numbers
        start again after a rotation (rotated files are read with
        :meth:`rotated`). A line that does not parse (cut by a crash) keeps
        its number and is skipped.

        Args:
            after: return records numbered above this (the last ``n`` seen).
            limit: at most this many records.
            task_id: only the records of this task.
            decision: only the records with this decision.
        """
        if limit <= 0:
            return []
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        after = max(after, 0)
        found: list[dict[str, Any]] = []
        lines = data.split(b"\n")
        for number, raw in enumerate(lines[after:], start=after + 1):
            if not raw.strip():
                continue
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(record, dict):
                continue
            if task_id is not None and record.get("task_id") != task_id:
                continue
            if decision is not None and record.get("decision") != decision:
                continue
            found.append({**record, "n": number})
            if len(found) >= limit:
                break
        return found


def all_records(files: Layout) -> Iterator[dict[str, Any]]:
    """Every tool audit record, oldest first: sealed segments, rotated files, the live file.

    Lines that do not parse (a record torn by a crash) are skipped.
    """
    audit = ToolAudit(files.audit)
    for data in itertools.chain(sealed_data(files, "tool_audit"), _plain(audit)):
        for raw in data.splitlines():
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict):
                yield record


def _plain(audit: ToolAudit) -> Iterator[bytes]:
    for path in [*audit.rotated(), audit.path]:
        try:
            yield path.read_bytes()
        except FileNotFoundError:
            continue  # sealed since it was listed: this read misses it, the next one reads it


def _rotation_order(path: Path) -> tuple[str, int]:
    stamp, _, number = path.stem.removeprefix("tool_audit-").rpartition("-")
    return stamp, int(number) if number.isdigit() else 0
