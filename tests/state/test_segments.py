"""Sealed segments of the audit trail: rotate, verify, archive, restore (AUDIT-002..006).

Everything goes through the real store, real files and the CLI; crashes are
real SIGKILLs at the seal's named points.
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestration.cli import main
from orchestration.lifecycles import load_lifecycles
from orchestration.state import Store
from orchestration.state.audit import ToolAudit, all_records, audit_record
from orchestration.state.layout import layout
from orchestration.state.segments import (
    BLOCK,
    Manifest,
    archive,
    read_history,
    restore,
    seal_journal,
    sealed_lines,
    verify,
)
from orchestration.state.views import history
from orchestration.state.views import verify as verify_state
from orchestration.tasks.loading import load_tasks

TOOL = {"agent_id": "agent-1", "task_id": "a", "phase": "TDD", "tool": "read_file",
        "args": {"path": "x"}, "reason": "", "requirement": "AGENT-WF-010"}  # fmt: skip


def _synced(root: Path) -> None:
    with Store.open(root, load_lifecycles(root), actor="setup") as store:
        store.sync(load_tasks(root).tasks)


def _churn(root: Path, times: int) -> None:
    """Claim and release task d ``times`` times, one transaction each."""
    with Store.open(root, load_lifecycles(root), actor="churn") as store:
        for _ in range(times):
            trigger = "claim" if store.state.tasks["d"]["status"] == "ready" else "release"
            store.apply("d", trigger)


def _seqs(root: Path) -> list[int]:
    return [line["seq"] for line in read_history(layout(root)).lines]


def _cli(root: Path, *args: str) -> int:
    return main(["--root", str(root), *args])


def _json(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> Any:
    capsys.readouterr()
    code = _cli(root, *args, "--format", "json")
    return code, orjson.loads(capsys.readouterr().out)


def test_rotate_seals_journal_and_tool_audit_into_a_hash_chain_AUDIT_002(
    pipeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _synced(pipeline)
    _churn(pipeline, 5)
    files = layout(pipeline)
    journal_before = files.journal.read_bytes()
    audit = ToolAudit(files.audit)
    for decision in ("allowed", "denied"):
        audit.append(audit_record(**TOOL, decision=decision,
                                  severity="info" if decision == "allowed" else "error"))  # fmt: skip
    code, sealed = _json(capsys, pipeline, "audit", "rotate")
    assert code == 0
    assert [entry["kind"] for entry in sealed["sealed"]] == ["journal", "tool_audit"]

    manifest = Manifest.read(files.audit)
    previous = "0" * 64
    for entry in manifest.entries:
        data = (files.audit / entry.segment).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry.sha256
        assert entry.prev_sha256 == previous
        previous = entry.digest()
    journal, tool = manifest.entries
    assert gzip.decompress((files.audit / journal.segment).read_bytes()) == journal_before
    assert (journal.first_seq, journal.last_seq) == (1, journal_before.count(b"\n"))
    assert files.journal.read_bytes() == b""
    assert not audit.path.exists() and audit.rotated() == []
    assert [r["decision"] for r in all_records(files)] == ["allowed", "denied"]
    assert tool.lines == 2

    _churn(pipeline, 2)  # the live journal goes on from the sealed seq (AUDIT-005)
    assert _seqs(pipeline) == list(range(1, journal.last_seq + 3))
    assert verify(files) == []


def test_journal_segments_hold_whole_transactions_and_seq_stays_contiguous_AUDIT_005(
    pipeline: Path,
) -> None:
    _synced(pipeline)  # one transaction of 4 creates and 2 enqueues
    _churn(pipeline, 30)
    before = read_history(layout(pipeline)).lines
    with Store.open(pipeline, load_lifecycles(pipeline), actor="rotate") as store:
        entries = store.seal(max_bytes=600)  # a few transactions per segment
    assert len(entries) > 3
    seq = 0
    for entry in entries:
        lines = gzip.decompress((layout(pipeline).audit / entry.segment).read_bytes()).splitlines()
        assert entry.first_seq == seq + 1 and entry.lines == len(lines)
        assert orjson.loads(lines[-1]).get("commit") is True  # never a transaction cut in two
        seq = entry.last_seq or 0
    assert read_history(layout(pipeline)).lines == before


def test_state_history_and_replay_read_across_segments_and_the_archive_AUDIT_006(
    pipeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _synced(pipeline)
    for _ in range(3):
        _churn(pipeline, 3)
        assert _cli(pipeline, "audit", "rotate") == 0
    _churn(pipeline, 1)
    lifecycles = load_lifecycles(pipeline)
    assert verify_state(pipeline, lifecycles) == []
    claims = [line["trigger"] for line in history(pipeline, "d")]
    assert claims[:2] == ["create", "enqueue"] and claims.count("claim") == 5

    assert _cli(pipeline, "audit", "archive", "--older-than", "0") == 0
    assert not list(layout(pipeline).audit.glob("*.gz"))
    assert verify_state(pipeline, lifecycles) == []
    assert [line["trigger"] for line in history(pipeline, "d")] == claims
    assert _cli(pipeline, "state", "verify") == 0
    state = Store.rebuild(pipeline, lifecycles, actor="test")
    assert state.last_seq == _seqs(pipeline)[-1] and state.tasks["d"]["status"] == "ready"
    code, shown = _json(capsys, pipeline, "history", "d")
    assert code == 0 and [line["seq"] for line in shown["history"]] == [
        line["seq"] for line in history(pipeline, "d")
    ]


def test_archive_and_restore_move_segments_byte_identical_AUDIT_004(
    pipeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _synced(pipeline)
    _churn(pipeline, 4)
    assert _cli(pipeline, "audit", "rotate") == 0
    files = layout(pipeline)
    before = {p.name: p.read_bytes() for p in files.audit.glob("*.gz")}
    code, kept = _json(capsys, pipeline, "audit", "archive")  # retention: 90 days
    assert code == 0 and kept["moved"] == []
    code, moved = _json(capsys, pipeline, "audit", "archive", "--older-than", "0")
    assert sorted(moved["moved"]) == sorted(before)
    assert {p.name: p.read_bytes() for p in files.archive.glob("*.gz")} == before
    assert _cli(pipeline, "audit", "verify") == 0  # archived segments are verified too
    assert _cli(pipeline, "audit", "restore") == 2  # names or --all
    assert _cli(pipeline, "audit", "restore", "transitions-999999.jsonl.gz") == 1
    code, restored = _json(capsys, pipeline, "audit", "restore", "--all")
    assert sorted(restored["moved"]) == sorted(before)
    assert {p.name: p.read_bytes() for p in files.audit.glob("*.gz")} == before
    assert not list(files.archive.glob("*.gz"))


@pytest.fixture
def sealed(pipeline: Path) -> Path:
    _synced(pipeline)
    _churn(pipeline, 60)
    with Store.open(pipeline, load_lifecycles(pipeline), actor="rotate") as store:
        store.seal(max_bytes=4000)
    return pipeline


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_verify_names_the_altered_segment_and_the_offset_AUDIT_003(
    sealed: Path, data: st.DataObject
) -> None:
    files = layout(sealed)
    entries = Manifest.read(files.audit).entries
    entry = data.draw(st.sampled_from(entries))
    path = files.audit / entry.segment
    original = path.read_bytes()
    offset = data.draw(st.integers(0, len(original) - 1))
    flip = data.draw(st.integers(1, 255))
    path.write_bytes(original[:offset] + bytes([original[offset] ^ flip]) + original[offset + 1 :])
    try:
        findings = verify(files)
        done = subprocess.run(
            [sys.executable, "-m", "orchestration", "--root", str(sealed), "audit", "verify"],
            capture_output=True, text=True, check=False,
        ) if data.draw(st.booleans()) and offset % 7 == 0 else None  # fmt: skip
    finally:
        path.write_bytes(original)
    [finding] = findings
    assert finding.segment == entry.segment
    assert finding.offset is not None and finding.offset <= offset < finding.offset + BLOCK
    if done is not None:
        assert done.returncode == 1
        assert f"{entry.segment} at byte {finding.offset}" in done.stdout + done.stderr
    assert verify(files) == []


def test_an_altered_manifest_entry_breaks_the_chain_AUDIT_003(sealed: Path) -> None:
    files = layout(sealed)
    path = files.audit / "manifest.json"
    document = orjson.loads(path.read_bytes())
    document["segments"][0]["last_ts"] = "2020-01-01T00:00:00.000Z"  # back-dated for archiving
    path.write_bytes(orjson.dumps(document))
    findings = verify(files)
    assert findings and findings[0].segment == document["segments"][1]["segment"]
    assert "chain" in findings[0].problem
    assert _cli(sealed, "audit", "verify") == 1


@pytest.mark.parametrize("point", ["seal.before_new_journal", "seal.before_snapshot"])
def test_a_crash_during_rotate_loses_and_doubles_nothing_AUDIT_005(
    pipeline: Path, point: str
) -> None:
    _synced(pipeline)
    _churn(pipeline, 6)
    before = read_history(layout(pipeline)).lines
    done = subprocess.run(
        [sys.executable, "-m", "orchestration", "--root", str(pipeline), "audit", "rotate"],
        env={**os.environ, "ORCHESTRATOR_CRASH_POINT": point},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr
    _churn(pipeline, 2)  # opening the store repairs, then writes go on
    after = read_history(layout(pipeline)).lines
    assert after[: len(before)] == before
    assert [line["seq"] for line in after] == list(range(1, len(after) + 1))
    assert verify_state(pipeline, load_lifecycles(pipeline)) == []
    assert verify(layout(pipeline)) == []


def test_a_store_open_across_a_seal_follows_the_new_journal_AUDIT_005(pipeline: Path) -> None:
    _synced(pipeline)
    lifecycles = load_lifecycles(pipeline)
    with Store.open(pipeline, lifecycles, actor="long-lived") as kept:
        kept.apply("d", "claim")
        with Store.open(pipeline, lifecycles, actor="other") as other:
            other.apply("d", "release")
            other.seal(max_bytes=1 << 20)
            other.apply("d", "claim")
        kept.refresh()
        assert kept.state.tasks["d"]["status"] == "claimed"
        kept.apply("d", "release")
    assert _seqs(pipeline) == list(range(1, _seqs(pipeline)[-1] + 1))
    assert verify_state(pipeline, lifecycles) == []


def test_a_snapshot_from_before_a_seal_catches_up_from_the_segments_AUDIT_006(
    pipeline: Path,
) -> None:
    _synced(pipeline)
    files = layout(pipeline)
    old = files.snapshot.read_bytes()  # a backup from before the churn and the seal
    _churn(pipeline, 5)
    with Store.open(pipeline, load_lifecycles(pipeline), actor="rotate") as store:
        store.seal(max_bytes=1 << 20)
    _churn(pipeline, 1)
    files.snapshot.write_bytes(old)
    _churn(pipeline, 1)
    assert verify_state(pipeline, load_lifecycles(pipeline)) == []


def test_the_store_seals_the_live_journal_past_segment_max_bytes_AUDIT_008(
    pipeline: Path,
) -> None:
    (pipeline / "orchestration.yaml").write_text("audit:\n  segment_max_bytes: 2048\n")
    _synced(pipeline)
    _churn(pipeline, 40)
    files = layout(pipeline)
    entries = Manifest.read(files.audit).journal
    assert len(entries) >= 2
    assert files.journal.stat().st_size <= 2048
    assert _seqs(pipeline) == list(range(1, _seqs(pipeline)[-1] + 1))
    assert verify(files) == [] and verify_state(pipeline, load_lifecycles(pipeline)) == []


def test_a_million_line_journal_round_trips_through_seal_archive_and_restore_AUDIT_004(
    tmp_path: Path,
) -> None:
    """The sealing, archiving and restoring of the store and the CLI, on a million lines.

    (``bench/audit.py`` runs the same through the CLI, with the replay.)
    """
    files = layout(tmp_path)
    files.folder.mkdir()
    line = {"ts": "2026-11-28T00:00:00.000Z", "entity": "task", "id": "t", "from": "ready",
            "to": "claimed", "trigger": "claim", "actor": "a", "reason": "", "severity": "info",
            "commit": True}  # fmt: skip
    journal = b"".join(orjson.dumps({"seq": seq, **line}) + b"\n" for seq in range(1, 1_000_001))
    manifest = Manifest.read(files.audit)
    entries = seal_journal(manifest, files.audit, journal, 64 << 20, source=files.journal.name)
    assert [(e.first_seq, e.last_seq) for e in entries][-1][1] == 1_000_000
    sealed = {p.name: p.read_bytes() for p in files.audit.glob("*.gz")}
    assert b"".join(gzip.decompress(sealed[e.segment]) for e in entries) == journal
    assert archive(files, 0) == [e.segment for e in entries]
    assert verify(files) == []
    assert sorted(restore(files)) == sorted(sealed)
    assert {p.name: p.read_bytes() for p in files.audit.glob("*.gz")} == sealed
    assert verify(files) == []
    [last] = collections.deque(sealed_lines(files, after_seq=999_999), maxlen=1)
    assert last["seq"] == 1_000_000  # read back from the restored segments, by seq
