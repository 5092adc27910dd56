"""The tool audit: every decision on disk once, across threads, processes and rotations (AGENT-WF-012)."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from orchestration.state.audit import (
    AUDIT_FIELDS,
    DECISIONS,
    DEFAULT_MAX_BYTES,
    FLUSH_WITHIN,
    ToolAudit,
    audit_record,
)
from orchestration.state.layout import layout

from conftest import REPO

ROTATED = re.compile(r"^tool_audit-\d{8}T\d{6}Z-\d+\.jsonl$")


def _record(
    n: int, task: str = "task-001", decision: str = "allowed", **more: Any
) -> dict[str, Any]:
    return audit_record(
        agent_id="agent-1",
        task_id=task,
        phase="TDD",
        tool="write_file",
        args={"path": f"tests/test_{n}.py"},
        decision=decision,
        reason="" if decision == "allowed" else "the phase allows write_file only under tests/",
        requirement="AGENT-WF-010",
        severity="warning" if decision == "warned" else "info",
        **more,
    )


def _all_lines(folder: Path) -> list[dict[str, Any]]:
    """Every record in the live and rotated files."""
    lines = []
    for path in sorted(folder.glob("tool_audit*.jsonl")):
        lines += [orjson.loads(line) for line in path.read_bytes().splitlines() if line]
    return lines


def test_the_audit_lives_in_the_state_layout_AGENT_WF_012(tmp_path: Path) -> None:
    folder = layout(tmp_path).audit
    assert folder == tmp_path / ".state" / "audit"
    audit = ToolAudit(folder)
    assert audit.path == folder / "tool_audit.jsonl"
    assert audit.max_bytes == DEFAULT_MAX_BYTES == 100 * 1024 * 1024
    assert not folder.exists()  # nothing is written before the first record
    audit.append(_record(1))
    assert audit.path.is_file()


def test_records_have_the_fields_of_the_spec_in_order_AGENT_WF_012(tmp_path: Path) -> None:
    audit = ToolAudit(tmp_path / "audit")
    audit.append(_record(1, jti="abc"))
    line = audit.path.read_bytes()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    record = orjson.loads(line)
    assert list(record) == [*AUDIT_FIELDS, "jti"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["timestamp"])
    assert record["args"] == {"path": "tests/test_1.py"}


def test_audit_record_checks_every_field_AGENT_WF_012() -> None:
    with pytest.raises(ValueError, match="needs the fields phase, requirement"):
        audit_record(
            agent_id="a", task_id="t", tool="read_file", args={}, decision="allowed",
            reason="", severity="info",
        )  # fmt: skip
    complete = {name: "x" for name in AUDIT_FIELDS} | {"decision": "denied", "severity": "error"}
    assert audit_record(**complete)["timestamp"] == "x"  # a given timestamp is kept
    with pytest.raises(ValueError, match="decision 'maybe'"):
        audit_record(**(complete | {"decision": "maybe"}))
    with pytest.raises(ValueError, match="severity 'loud'"):
        audit_record(**(complete | {"severity": "loud"}))
    assert DECISIONS == ("allowed", "denied", "warned")


def test_read_pages_and_filters_by_position_in_the_live_file_AGENT_WF_012(
    tmp_path: Path,
) -> None:
    audit = ToolAudit(tmp_path / "audit")
    assert audit.read() == []
    for n in range(1, 11):
        audit.append(_record(n, task=f"task-{n % 2}", decision=DECISIONS[n % 3]))
    everything = audit.read()
    assert [r["n"] for r in everything] == list(range(1, 11))
    assert [r["args"]["path"] for r in everything][:2] == ["tests/test_1.py", "tests/test_2.py"]
    assert [r["n"] for r in audit.read(after=7)] == [8, 9, 10]
    assert [r["n"] for r in audit.read(after=2, limit=3)] == [3, 4, 5]
    assert [r["n"] for r in audit.read(task_id="task-0")] == [2, 4, 6, 8, 10]
    assert [r["n"] for r in audit.read(decision="denied", limit=2)] == [1, 4]
    assert [r["n"] for r in audit.read(task_id="task-1", decision="warned")] == [5]
    assert audit.read(limit=0) == [] and audit.read(after=10) == []
    assert [r["n"] for r in audit.read(after=-5, limit=1)] == [1]


def test_a_torn_last_line_never_swallows_the_next_record_AGENT_WF_012(tmp_path: Path) -> None:
    """A crash mid-write leaves a partial line; the next record still gets a line of its own."""
    audit = ToolAudit(tmp_path / "audit")
    audit.append(_record(1))
    with audit.path.open("ab") as handle:
        handle.write(b'{"timestamp": "2025-01-1')
    audit.append(_record(2))
    assert [(r["n"], r["args"]["path"]) for r in audit.read()] == [
        (1, "tests/test_1.py"),
        (3, "tests/test_2.py"),
    ]


def test_rotation_keeps_every_record_exactly_once_AGENT_WF_012(tmp_path: Path) -> None:
    folder = tmp_path / "audit"
    size = len(orjson.dumps(_record(10))) + 1
    audit = ToolAudit(folder, max_bytes=3 * size)
    for n in range(10, 40):
        audit.append(_record(n))
    rotated = audit.rotated()
    assert len(rotated) == 9
    assert all(ROTATED.match(path.name) for path in rotated)
    assert all(path.stat().st_size <= 3 * size for path in [*rotated, audit.path])
    ordered = [
        orjson.loads(line)["args"]["path"]
        for path in [*rotated, audit.path]
        for line in path.read_bytes().splitlines()
    ]
    assert ordered == [f"tests/test_{n}.py" for n in range(10, 40)]  # oldest file first
    assert [r["n"] for r in audit.read()] == [1, 2, 3]  # numbers restart in the live file


def test_a_record_larger_than_the_limit_gets_its_own_file_AGENT_WF_012(tmp_path: Path) -> None:
    audit = ToolAudit(tmp_path / "audit", max_bytes=100)
    audit.append(_record(1))
    audit.append(_record(2, note="x" * 500))
    audit.append(_record(3))
    assert len(audit.rotated()) == 2
    assert sorted(r["args"]["path"] for r in _all_lines(audit.folder)) == [
        f"tests/test_{n}.py" for n in (1, 2, 3)
    ]


def test_concurrent_threads_append_whole_lines_AGENT_WF_012(tmp_path: Path) -> None:
    audit = ToolAudit(tmp_path / "audit", max_bytes=4096)

    def work(worker: int) -> None:
        for n in range(40):
            audit.append(_record(n, task=f"thread-{worker}"))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seen = Counter((r["task_id"], r["args"]["path"]) for r in _all_lines(audit.folder))
    assert len(seen) == 160 and set(seen.values()) == {1}
    assert audit.rotated()


_WRITER = """
import sys
from pathlib import Path
from orchestration.state.audit import ToolAudit, audit_record

folder, worker, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
audit = ToolAudit(folder, max_bytes=2048)
for n in range(count):
    audit.append(audit_record(
        agent_id=f"agent-{worker}", task_id=f"task-{worker}", phase="IMPL", tool="run_command",
        args={"command": f"echo {n}"}, decision="allowed", reason="", requirement="AGENT-WF-010",
        severity="info",
    ))
"""


def test_concurrent_processes_and_rotation_keep_every_record_once_AGENT_WF_012(
    tmp_path: Path,
) -> None:
    """Several real processes append with a tiny limit: no record is lost, torn or doubled."""
    folder, workers, count = tmp_path / "audit", 4, 60
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(folder), str(worker), str(count)],
            cwd=REPO,
        )
        for worker in range(workers)
    ]
    assert [process.wait(timeout=60) for process in processes] == [0] * workers
    records = _all_lines(folder)
    seen = Counter((r["agent_id"], r["args"]["command"]) for r in records)
    expected = {(f"agent-{w}", f"echo {n}") for w in range(workers) for n in range(count)}
    assert set(seen) == expected
    assert set(seen.values()) == {1}
    rotated = ToolAudit(folder).rotated()
    assert len(rotated) >= 10
    assert len({path.name for path in rotated}) == len(rotated)
    for worker in range(workers):  # each process's own records stay in order
        mine = [
            r["args"]["command"]
            for r in _records_in_order(folder)
            if r["agent_id"] == f"agent-{worker}"
        ]
        assert mine == [f"echo {n}" for n in range(count)]


def _records_in_order(folder: Path) -> list[dict[str, Any]]:
    audit = ToolAudit(folder)
    return [
        orjson.loads(line)
        for path in [*audit.rotated(), audit.path]
        for line in path.read_bytes().splitlines()
    ]


def test_a_record_with_no_effect_is_fsynced_soon_and_before_a_later_waited_one_AGENT_WF_012(
    tmp_path: Path,
) -> None:
    audit = ToolAudit(tmp_path / "audit")
    audit.append(_record(1))  # the file's first record always waits (its name too)
    for n in range(2, 6):
        audit.append(_record(n, decision="denied"), wait=False)
    assert [r["args"]["path"] for r in _all_lines(audit.folder)][-1] == "tests/test_5.py"
    size = audit.path.stat().st_size
    deadline = time.monotonic() + 20 * FLUSH_WITHIN
    while audit._synced[1] < size and time.monotonic() < deadline:  # the flusher's mark
        time.sleep(FLUSH_WITHIN / 5)
    assert audit._synced[1] == size
    audit.append(_record(6, decision="denied"), wait=False)
    audit.append(_record(7))  # one that waits covers every record before it
    assert audit._synced[1] == audit.path.stat().st_size


def test_records_that_did_not_wait_rotate_in_order_AGENT_WF_012(tmp_path: Path) -> None:
    size = len(orjson.dumps(_record(10))) + 1
    audit = ToolAudit(tmp_path / "audit", max_bytes=3 * size)
    for n in range(10, 17):
        audit.append(_record(n), wait=n % 3 == 0)
    assert [r["args"]["path"] for r in _all_lines(audit.folder)] == [
        f"tests/test_{n}.py" for n in range(10, 17)
    ]
