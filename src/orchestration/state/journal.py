"""The journal ``.state/transitions.jsonl``: the write-ahead log of every change.

Stability: stable (the line format is a public contract, STATE-OBS-004).

One committed change per line, ``seq`` contiguous from 1::

    {"seq": 42, "ts": "2025-01-15T10:00:00.120Z", "entity": "task", "id": "task-001",
     "from": "claimed", "to": "running", "trigger": "start", "actor": "worker:local-1",
     "reason": "attempt 1", "severity": "info"}

A line may add ``data`` (what a ``create`` or ``redefine`` line mirrors from
the task's definition). A transaction's lines are appended with one write and
made durable with one ``fsync`` before anyone is told they committed; its
last line carries ``"commit": true`` (STATE-OBS-008), so that lines of a
transaction cut short by a crash are recognised and dropped as a whole.
Readers never lock: they read up to the last committed line.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from .. import faults
from ..atomic import write_atomic
from ..errors import OrchestrationError

__all__ = ["SEVERITIES", "Journal", "JournalError", "Tail", "find_lines", "now"]

SEVERITIES = frozenset({"debug", "info", "warning", "error", "critical"})  # STATE-OBS-005
FIELDS = ("seq", "ts", "entity", "id", "from", "to", "trigger", "actor", "reason", "severity")


class JournalError(OrchestrationError):
    """The journal cannot be trusted: a line in its middle is not what the engine wrote."""


def now() -> str:
    """The current UTC time as ISO 8601 with milliseconds and ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Tail:
    """What reading the journal from an offset found.

    Attributes:
        lines: the complete, parsed lines, in order.
        end: the offset just past the last complete line.
        torn: bytes after ``end`` that are not a committed transaction (a
            crash during an append), ``b""`` when none.
        identity: the file read, as ``(st_dev, st_ino)``; sealing the journal
            (``audit rotate``) starts a new file, which readers notice by it.
            ``None`` when there was no file.
    """

    lines: list[dict[str, Any]]
    end: int
    torn: bytes
    identity: tuple[int, int] | None = None


@dataclass(frozen=True)
class Journal:
    """The journal file at ``path``."""

    path: Path

    def read(
        self, offset: int = 0, after_seq: int = 0, expect: tuple[int, int] | None = None
    ) -> Tail:
        """Every complete line from byte ``offset`` on.

        Args:
            offset: where to start (a line boundary, e.g. a snapshot's
                ``journal_offset``).
            after_seq: the seq of the line just before ``offset``; the first
                line read must be ``after_seq + 1``.
            expect: the identity of the file ``offset`` is a position in; when
                the file is another one (the journal was sealed since), nothing
                is read and the returned tail carries the new identity.

        Raises:
            JournalError: a line is not valid JSON, lacks a field, or breaks
                the seq order (a hand edit); the message names the line.
        """
        try:
            with open(self.path, "rb") as handle:
                stat = os.fstat(handle.fileno())
                identity = (stat.st_dev, stat.st_ino)
                if expect is not None and identity != expect:
                    return Tail([], offset, b"", identity)
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            return Tail([], 0, b"")
        cut = data.rfind(b"\n") + 1
        lines: list[dict[str, Any]] = []
        expected = after_seq + 1
        position = offset
        committed, committed_end = 0, offset
        for raw in data[:cut].splitlines(keepends=True):
            line = self._parse(raw, position, expected)
            lines.append(line)
            expected += 1
            position += len(raw)
            if line.get("commit"):
                committed, committed_end = len(lines), position
        # Anything after the last committed line is a transaction a crash cut
        # short (or an append still in flight): it was never acknowledged.
        return Tail(lines[:committed], committed_end, data[committed_end - offset :], identity)

    def identity(self) -> tuple[int, int] | None:
        """The file's ``(st_dev, st_ino)``, ``None`` when there is none."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        return stat.st_dev, stat.st_ino

    def first_seq(self) -> int | None:
        """The seq of the first line, ``None`` for an empty or missing journal."""
        try:
            with open(self.path, "rb") as handle:
                first = handle.readline()
        except FileNotFoundError:
            return None
        if not first.endswith(b"\n"):
            return None
        return self._parse(first, 0, 0, check_seq=False)["seq"]  # type: ignore[no-any-return]

    def ends_at(self, offset: int, seq: int) -> bool:
        """Whether the line ending at byte ``offset`` is the line ``seq``."""
        if offset <= 0:
            return False
        try:
            with open(self.path, "rb") as handle:
                start = max(0, offset - 65536)
                handle.seek(start)
                data = handle.read(offset - start)
        except FileNotFoundError:
            return False
        if len(data) != offset - start or not data.endswith(b"\n"):
            return False
        cut = data.rfind(b"\n", 0, len(data) - 1) + 1
        if cut == 0 and start > 0:
            return False  # a line longer than the window: look no further
        try:
            line = orjson.loads(data[cut:])
        except orjson.JSONDecodeError:
            return False
        return isinstance(line, dict) and line.get("seq") == seq

    def _parse(
        self, raw: bytes, position: int, expected: int, *, check_seq: bool = True
    ) -> dict[str, Any]:
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            line = None
        if not isinstance(line, dict) or any(name not in line for name in FIELDS):
            msg = (
                f"{self.path}: the line at byte {position} (seq {expected} expected) is not a "
                "journal line the engine wrote; the journal was edited by hand. Restore it from "
                "git history or a backup, or move it away and run `orchestration state rebuild`"
            )
            raise JournalError(msg)
        if check_seq and line["seq"] != expected:
            msg = (
                f"{self.path}: seq {line['seq']!r} at byte {position} where {expected} was "
                "expected; the journal was edited by hand or merged. Restore it, or move it "
                "away and run `orchestration state rebuild`"
            )
            raise JournalError(msg)
        return line

    def drop_through(self, seq: int) -> int:
        """Replace the journal, atomically, by its lines after ``seq``; return the bytes dropped.

        For a crash between sealing lines into a segment and starting the new
        live journal: the lines through ``seq`` are in the segment already.
        """
        data = self.path.read_bytes()
        position = 0
        for raw in data.splitlines(keepends=True):
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                break
            if not isinstance(line, dict) or line.get("seq", seq + 1) > seq:
                break
            position += len(raw)
        write_atomic(self.path, data[position:])
        return position

    def cut(self, end: int) -> None:
        """Truncate the journal at ``end`` (dropping a torn last line) durably."""
        with open(self.path, "r+b") as handle:
            handle.truncate(end)
            handle.flush()
            os.fsync(handle.fileno())

    def append(self, lines: Sequence[dict[str, Any]]) -> int:
        """Append ``lines`` with one write and one fsync; return the new end offset.

        Raises:
            OSError: the disk is full or read-only; the journal is truncated
                back to where it was, so nothing half-written stays.
        """
        last = len(lines) - 1
        data = b"".join(
            orjson.dumps({**line, "commit": True} if n == last else line) + b"\n"
            for n, line in enumerate(lines)
        )
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            start = os.lseek(fd, 0, os.SEEK_END)
            try:
                if faults.CRASH_POINT == "journal.partial_write":
                    os.write(fd, data[: len(data) // 2])
                    faults.crash_point("journal.partial_write")
                written = os.write(fd, data)
                while written < len(data):
                    written += os.write(fd, data[written:])
                os.fsync(fd)
                faults.crash_point("journal.after_fsync")
            except OSError:
                os.ftruncate(fd, start)
                raise
            return start + len(data)
        finally:
            os.close(fd)

    def scan(self, entity_id: str) -> Iterator[dict[str, Any]]:
        """Every committed line about ``entity_id``, oldest first (for ``history``).

        Searches the mapped file for the id's bytes instead of parsing every
        line: a million-line journal is scanned at the speed of memory.
        """
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - closed below, lines streamed
        except FileNotFoundError:
            return
        with handle:
            if os.fstat(handle.fileno()).st_size == 0:
                return
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                yield from find_lines(data, entity_id)


def find_lines(data: bytes | mmap.mmap, entity_id: str) -> Iterator[dict[str, Any]]:
    """The complete journal lines of ``data`` about ``entity_id``, found by the id's bytes."""
    needle = b'"id":' + orjson.dumps(entity_id) + b","
    found = data.find(needle)
    while found != -1:
        start = data.rfind(b"\n", 0, found) + 1
        end = data.find(b"\n", found)
        if end == -1:
            return  # a last line still being written
        line = orjson.loads(data[start:end])
        if line.get("id") == entity_id:
            yield line
        found = data.find(needle, end)
