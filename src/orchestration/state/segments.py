"""Sealed segments of the audit trail and their hash-chained manifest (AUDIT-002..006).

Stability: provisional (segment names and the manifest document are kept compatible).

``audit rotate`` seals the journal and the tool audit into gzip-compressed
segments in ``.state/audit/``: ``transitions-000001.jsonl.gz`` holds whole
transactions of the journal (``seq`` contiguous across segments and into
the live journal), ``tool_audit-000001.jsonl.gz`` one rotated tool-audit
file. Each segment gets an entry in ``.state/audit/manifest.json``::

    {"schema_version": "1.0.0", "segments": [
      {"segment": "transitions-000001.jsonl.gz", "kind": "journal",
       "first_seq": 1, "last_seq": 52000, "lines": 52000,
       "first_ts": "...", "last_ts": "...", "source": "transitions.jsonl",
       "size": 1234567, "sha256": "9f2c...", "blocks": "<base64>",
       "prev_sha256": "41ab...", "sealed_at": "2025-01-15T10:00:00.000Z"}]}

``sha256`` is the hash of the segment file's bytes; ``prev_sha256`` the hash
of the previous entry (its canonical JSON, every field), ``"0" * 64`` for the
first: altering a sealed segment, or any earlier entry, breaks the chain.
``blocks`` holds a 4-byte BLAKE2b digest of every 1 KiB block of the file,
so that ``audit verify`` names the first altered kilobyte of a segment, not
only the segment.

A segment is never rewritten: ``archive`` moves it to ``.state/archive/`` and
``restore`` moves it back (a rename: byte-identical), and readers look in
both folders, so replay and ``history`` see one journal (AUDIT-006).

Sealing the journal runs under the store's writer lock (see
:meth:`orchestration.state.Store.seal`); this module holds what does not
need the store.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from ..atomic import fsync_directory, write_atomic
from .journal import Journal, JournalError, Tail, find_lines, now
from .layout import Layout

__all__ = [
    "BLOCK",
    "GENESIS",
    "Entry",
    "Finding",
    "Manifest",
    "ManifestError",
    "archive",
    "locate",
    "read_history",
    "restore",
    "scan_sealed",
    "sealed_data",
    "seal_file",
    "seal_journal",
    "sealed_lines",
    "verify",
]

MANIFEST_VERSION = "1.0.0"
GENESIS = "0" * 64  # the prev_sha256 of the first entry
BLOCK = 1024  # bytes per block digest: audit verify locates a change to this
_DIGEST = 4  # bytes of BLAKE2b per block
_LEVEL = 6  # gzip level: ~0.8 s per 64 MiB of journal, under the writer lock
_KINDS = ("journal", "tool_audit")


class ManifestError(JournalError):
    """``manifest.json`` cannot be read: not JSON, or not what the engine writes."""


@dataclass(frozen=True)
class Entry:
    """One sealed segment, as the manifest records it."""

    segment: str  # file name, in .state/audit/ or .state/archive/
    kind: str  # "journal" or "tool_audit"
    first_seq: int | None  # journal segments: the seq range they hold
    last_seq: int | None
    lines: int
    first_ts: str | None  # timestamps of the first and last line
    last_ts: str | None
    source: str  # the file sealed (tool audit: its rotated name, never sealed twice)
    size: int  # bytes of the segment file
    sha256: str  # of the segment file
    blocks: str  # base64 of a 4-byte BLAKE2b digest per BLOCK of the file
    prev_sha256: str  # hash of the previous entry (GENESIS for the first)
    sealed_at: str

    def digest(self) -> str:
        """The hash the next entry's ``prev_sha256`` must carry."""
        canonical = orjson.dumps(asdict(self), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(canonical).hexdigest()


@dataclass
class Manifest:
    """The manifest of the segments sealed so far, oldest first."""

    entries: list[Entry]

    @classmethod
    def read(cls, audit: Path) -> Manifest:
        """The manifest in ``audit`` (``.state/audit/``); empty when there is none.

        Raises:
            ManifestError: the file is not a manifest the engine wrote.
        """
        path = audit / "manifest.json"
        try:
            document = orjson.loads(path.read_bytes())
            entries = [Entry(**entry) for entry in document["segments"]]
        except FileNotFoundError:
            return cls([])
        except (orjson.JSONDecodeError, KeyError, TypeError) as bad:
            msg = (
                f"{path}: not a segment manifest the engine wrote ({bad}); restore it from "
                "a backup: without it the sealed segments cannot be verified"
            )
            raise ManifestError(msg) from bad
        if document.get("schema_version") != MANIFEST_VERSION:
            msg = (
                f"{path}: schema_version {document.get('schema_version')!r} is not supported "
                f"(this engine reads {MANIFEST_VERSION}); upgrade orchestration"
            )
            raise ManifestError(msg)
        return cls(entries)

    def write(self, audit: Path) -> None:
        """Replace the manifest atomically and durably."""
        document = {
            "schema_version": MANIFEST_VERSION,
            "segments": [asdict(entry) for entry in self.entries],
        }
        write_atomic(audit / "manifest.json", orjson.dumps(document, option=orjson.OPT_INDENT_2))

    @property
    def journal(self) -> list[Entry]:
        """The journal's segments, oldest first."""
        return [entry for entry in self.entries if entry.kind == "journal"]

    @property
    def sealed_seq(self) -> int:
        """The last seq sealed (0 when none): the live journal starts after it."""
        sealed = self.journal
        return sealed[-1].last_seq or 0 if sealed else 0

    def next_name(self, kind: str) -> str:
        """The file name of the next segment of ``kind``."""
        number = sum(1 for entry in self.entries if entry.kind == kind) + 1
        stem = "transitions" if kind == "journal" else "tool_audit"
        return f"{stem}-{number:06d}.jsonl.gz"


def seal_file(
    manifest: Manifest,
    audit: Path,
    data: bytes,
    *,
    kind: str,
    source: str,
    seqs: tuple[int, int] | None = None,
) -> Entry:
    """Write ``data`` (whole lines) as the next segment of ``kind`` and record it.

    The segment is durable before the manifest names it; a crash between the
    two leaves a file no entry names, which the next seal overwrites.
    """
    assert kind in _KINDS
    first_ts = _timestamp(data[: data.find(b"\n")])
    last_ts = _timestamp(data[data.rfind(b"\n", 0, len(data) - 1) + 1 :])
    packed = gzip.compress(data, compresslevel=_LEVEL, mtime=0)
    name = manifest.next_name(kind)
    audit.mkdir(parents=True, exist_ok=True)
    write_atomic(audit / name, packed)
    previous = manifest.entries[-1].digest() if manifest.entries else GENESIS
    entry = Entry(
        segment=name,
        kind=kind,
        first_seq=seqs[0] if seqs else None,
        last_seq=seqs[1] if seqs else None,
        lines=data.count(b"\n"),
        first_ts=first_ts,
        last_ts=last_ts,
        source=source,
        size=len(packed),
        sha256=hashlib.sha256(packed).hexdigest(),
        blocks=base64.b64encode(_blocks(packed)).decode(),
        prev_sha256=previous,
        sealed_at=now(),
    )
    manifest.entries.append(entry)
    manifest.write(audit)
    return entry


def seal_journal(
    manifest: Manifest, audit: Path, data: bytes, max_bytes: int, *, source: str
) -> list[Entry]:
    """Seal ``data``, the committed lines of the live journal ``source``, as the next segments.

    Each segment holds whole transactions, at most ``max_bytes`` of them
    unless one transaction alone is larger; seq goes on from the manifest's.
    """
    seq, start, entries = manifest.sealed_seq, 0, []
    while start < len(data):
        stop = _transactions_end(data, start, max_bytes)
        count = data.count(b"\n", start, stop)
        chunk, seqs = data[start:stop], (seq + 1, seq + count)
        entries.append(seal_file(manifest, audit, chunk, kind="journal", source=source, seqs=seqs))
        seq, start = seq + count, stop
    return entries


_COMMIT_END = b'"commit":true}\n'


def _transactions_end(data: bytes, start: int, max_bytes: int) -> int:
    """Where the last whole transaction that fits in ``max_bytes`` from ``start`` ends."""
    limit = start + max_bytes
    if limit >= len(data):
        return len(data)
    found = data.rfind(_COMMIT_END, start, limit)
    if found == -1:
        found = data.find(_COMMIT_END, start)  # one transaction larger than max_bytes
    return found + len(_COMMIT_END)


def _timestamp(raw: bytes) -> str | None:
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    stamp = line.get("ts") or line.get("timestamp") if isinstance(line, dict) else None
    return stamp if isinstance(stamp, str) else None


def _blocks(data: bytes) -> bytes:
    view = memoryview(data)
    return b"".join(
        hashlib.blake2b(view[start : start + BLOCK], digest_size=_DIGEST).digest()
        for start in range(0, len(data), BLOCK)
    )


def locate(files: Layout, name: str) -> Path | None:
    """Where segment ``name`` is now: ``.state/audit/`` or ``.state/archive/``."""
    for folder in (files.audit, files.archive):
        if (folder / name).is_file():
            return folder / name
    return None


def sealed_lines(files: Layout, after_seq: int = 0) -> Iterator[dict[str, Any]]:
    """The sealed journal lines with a seq above ``after_seq``, oldest first.

    Raises:
        ManifestError: a segment the manifest names is missing or unreadable.
    """
    for entry in Manifest.read(files.audit).journal:
        if (entry.last_seq or 0) > after_seq:
            for raw in _unpack(files, entry).splitlines():
                line = orjson.loads(raw)
                if line["seq"] > after_seq:
                    yield line


def sealed_data(files: Layout, kind: str) -> Iterator[bytes]:
    """The lines of every sealed segment of ``kind``, one segment's bytes at a time."""
    for entry in Manifest.read(files.audit).entries:
        if entry.kind == kind:
            yield _unpack(files, entry)


def scan_sealed(files: Layout, entity_id: str) -> Iterator[dict[str, Any]]:
    """The sealed journal lines about ``entity_id``, oldest first (``history``, AUDIT-006)."""
    for entry in Manifest.read(files.audit).journal:
        yield from find_lines(_unpack(files, entry), entity_id)


def _unpack(files: Layout, entry: Entry) -> bytes:
    """The lines of a sealed segment, wherever it is now."""
    for _ in range(2):  # archive and restore may move it between locate and read
        path = locate(files, entry.segment)
        if path is None:
            break
        try:
            return gzip.decompress(path.read_bytes())
        except FileNotFoundError:
            continue
        except (OSError, EOFError, zlib.error) as bad:
            msg = f"{path}: cannot be decompressed ({bad}); run `orchestration audit verify`"
            raise ManifestError(msg) from bad
    msg = (
        f"segment {entry.segment} is in neither {files.audit} nor {files.archive}; "
        "restore it (`orchestration audit restore`) or from a backup"
    )
    raise ManifestError(msg)


def read_history(files: Layout) -> Tail:
    """The whole journal, sealed segments then the live file, as one (AUDIT-006).

    Raises:
        JournalError: the live journal does not continue the sealed lines.
        ManifestError: a sealed segment is missing or unreadable.
    """
    journal = Journal(files.journal)
    sealed = list(sealed_lines(files))
    base = sealed[-1]["seq"] if sealed else 0
    first = journal.first_seq()
    if first is not None and first > base + 1:
        msg = (
            f"{files.journal}: starts at seq {first} but the sealed segments end at seq {base}; "
            "a segment is missing from the manifest: restore .state/audit/ from a backup"
        )
        raise JournalError(msg)
    live = journal.read(0, first - 1 if first is not None else base)
    # After a crash between sealing and starting the new live file, its first
    # lines are in the last segment too: they are read once.
    lines = [*sealed, *(line for line in live.lines if line["seq"] > base)]
    return Tail(lines, live.end, live.torn, live.identity)


@dataclass(frozen=True)
class Finding:
    """What ``audit verify`` found wrong with one segment or the chain."""

    segment: str
    problem: str
    offset: int | None = None  # the first altered byte's block starts here

    def render(self) -> str:
        """``segment: problem`` (with the offset when known)."""
        where = f" at byte {self.offset}" if self.offset is not None else ""
        return f"{self.segment}{where}: {self.problem}"


def verify(files: Layout) -> list[Finding]:
    """Recompute every segment's hash and the chain (AUDIT-003, AUDIT-005).

    Returns every finding, the first altered segment first; empty when intact.
    """
    try:
        manifest = Manifest.read(files.audit)
    except ManifestError as bad:
        return [Finding("manifest.json", str(bad))]
    found: list[Finding] = []
    previous, seq = GENESIS, 0
    for entry in manifest.entries:
        if entry.prev_sha256 != previous:
            found.append(Finding(entry.segment, "the manifest's hash chain is broken here: "
                                 "an earlier entry was altered"))  # fmt: skip
        previous = entry.digest()
        if entry.kind == "journal":
            if entry.first_seq != seq + 1:
                found.append(Finding(entry.segment, f"starts at seq {entry.first_seq}, "
                                     f"not {seq + 1}: seq is not contiguous"))  # fmt: skip
            seq = entry.last_seq or seq
        path = locate(files, entry.segment)
        if path is None:
            found.append(Finding(entry.segment, "missing from audit/ and archive/"))
            continue
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            found.append(_altered(entry, data))
    return found


def _altered(entry: Entry, data: bytes) -> Finding:
    """Where ``data`` first differs from what was sealed, to the block."""
    sealed = base64.b64decode(entry.blocks)
    mine = _blocks(data)
    for number in range(0, min(len(sealed), len(mine)), _DIGEST):
        if sealed[number : number + _DIGEST] != mine[number : number + _DIGEST]:
            offset = number // _DIGEST * BLOCK
            break
    else:
        offset = min(len(data), entry.size)  # one is a prefix of the other
    problem = (
        f"altered: SHA-256 differs from the manifest's (first difference in bytes "
        f"{offset}..{min(offset + BLOCK, max(len(data), entry.size)) - 1}, "
        f"size {len(data)} sealed as {entry.size})"
    )
    return Finding(entry.segment, problem, offset)


def archive(files: Layout, older_than_days: float, *, at: datetime | None = None) -> list[str]:
    """Move the sealed segments whose last line is older than ``older_than_days`` to archive/.

    Returns the names moved. A rename on the same file system: the bytes never change.
    """
    limit = (at or datetime.now(UTC)).timestamp() - older_than_days * 86400
    moved = []
    for entry in Manifest.read(files.audit).entries:
        source = files.audit / entry.segment
        stamp = entry.last_ts or entry.sealed_at
        if source.is_file() and _epoch(stamp) < limit:
            files.archive.mkdir(exist_ok=True)
            os.replace(source, files.archive / entry.segment)
            moved.append(entry.segment)
    if moved:
        fsync_directory(files.archive)
        fsync_directory(files.audit)
    return moved


def restore(files: Layout, names: list[str] | None = None) -> list[str]:
    """Move archived segments (``names``, or all) back to audit/; return the names moved.

    Raises:
        ManifestError: a name is not a segment of the manifest.
    """
    known = {entry.segment for entry in Manifest.read(files.audit).entries}
    unknown = sorted(set(names or ()) - known)
    if unknown:
        msg = f"not sealed segments: {', '.join(unknown)} (`orchestration audit verify` lists them)"
        raise ManifestError(msg)
    wanted = known if names is None else set(names)
    moved = []
    for name in sorted(wanted):
        if (files.archive / name).is_file():
            os.replace(files.archive / name, files.audit / name)
            moved.append(name)
    if moved:
        fsync_directory(files.audit)
        fsync_directory(files.archive)
    return moved


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
