"""Crashes and concurrent writers: SIGKILL at random moments and at named points.

After every crash, ``current.json`` parses, every acknowledged change is in
the journal, nothing was invented, and after reopening ``state verify``
finds snapshot == replay(journal) (STATE-OBS-003, -004, -008, -011).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from orchestration.lifecycles import load_lifecycles
from orchestration.state import Journal, Store
from orchestration.state.views import verify
from orchestration.tasks.loading import load_tasks

from conftest import WriteTask

KILLS = int(os.environ.get("STRESS_CRASH_KILLS", "100"))
TASKS = [f"t{n}" for n in range(8)]


@pytest.fixture
def flat(tmp_path: Path, write_task: WriteTask) -> Path:
    """A synced pipeline of independent tasks, all ready."""
    import shutil

    from conftest import REPO

    shutil.copytree(REPO / "docs" / "state_machines", tmp_path / "docs" / "state_machines")
    for task_id in TASKS:
        write_task(task_id)
    with Store.open(tmp_path, load_lifecycles(tmp_path), actor="setup") as store:
        store.sync(load_tasks(tmp_path).tasks)
    return tmp_path


def _churn(root: Path, ack: int, offset: int, count: int | None = None) -> None:
    """Claim and release tasks forever (or ``count`` times), acknowledging each seq."""
    lifecycles = load_lifecycles(root)
    with Store.open(root, lifecycles, actor=f"writer-{os.getpid()}") as store:
        n = 0
        while count is None or n < count:
            task_id = TASKS[(offset + n) % len(TASKS)] if count is None else TASKS[offset]
            trigger = "claim" if store.state.tasks[task_id]["status"] == "ready" else "release"
            [line] = store.apply(task_id, trigger)
            os.write(ack, f"{line['seq']} {task_id} {trigger}\n".encode())
            n += 1


def _journal(root: Path) -> list[dict[str, Any]]:
    """The committed lines, as a reader that takes no lock sees them."""
    return Journal(root / ".state" / "transitions.jsonl").read().lines


def _check_after_crash(root: Path, acked: list[str]) -> None:
    json.loads((root / ".state" / "current.json").read_bytes())  # always parses
    lines = _journal(root)
    committed = {line["seq"]: line for line in lines}
    for ack in acked:
        seq, task_id, trigger = ack.split()
        line = committed[int(seq)]
        assert (line["id"], line["trigger"]) == (task_id, trigger)
    with Store.open(root, load_lifecycles(root), actor="check"):
        pass
    for line in _journal(root):
        if line["entity"] == "task" and line["trigger"] not in ("create", "enqueue"):
            assert (line["trigger"], line["from"], line["to"]) in {
                ("claim", "ready", "claimed"),
                ("release", "claimed", "ready"),
            }
    assert verify(root, load_lifecycles(root)) == []


def test_sigkill_at_random_moments_loses_nothing_acknowledged(flat: Path) -> None:
    rng = random.Random(20261128)
    for kill in range(KILLS):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the writer: never returns into pytest
            try:
                os.close(read)
                _churn(flat, write, kill)
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as acks:
            first = acks.readline()  # the writer is churning: now kill it, mid-flight
            time.sleep(rng.uniform(0.0, 0.02))
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            acked = (first + acks.read()).decode().splitlines()
        assert acked
        _check_after_crash(flat, acked)
    assert len(_journal(flat)) > KILLS  # every writer committed before it was killed


WRITER = """
import os, sys
from pathlib import Path
from typing import Any
from orchestration.lifecycles import load_lifecycles
from orchestration.state import Journal, Store
root = Path(sys.argv[1])
with Store.open(root, load_lifecycles(root), actor="point") as store:
    [line] = store.apply("t0", "claim")
    print(line["seq"], "t0", "claim", flush=True)  # acknowledged
"""


@pytest.mark.parametrize(
    ("point", "durable"),
    [
        ("journal.partial_write", False),
        ("journal.after_fsync", True),
        ("atomic.before_rename", True),
        ("atomic.before_dir_fsync", True),
    ],
)
def test_crash_at_each_named_point_STATE_OBS_011(flat: Path, point: str, durable: bool) -> None:
    env = {**os.environ, "ORCHESTRATOR_CRASH_POINT": point}
    done = subprocess.run(
        [sys.executable, "-c", WRITER, str(flat)], env=env, capture_output=True, text=True
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    acked = done.stdout.splitlines()
    if not durable:
        assert acked == []  # killed before the change was acknowledged
    _check_after_crash(flat, acked)
    claimed = [line for line in _journal(flat) if line["trigger"] == "claim"]
    assert len(claimed) == (1 if durable else 0)
    assert not list((flat / ".state").glob(".*.tmp"))  # no temporary file left behind


def test_four_writers_lose_and_double_nothing_STATE_OBS_007(flat: Path) -> None:
    per_writer = int(os.environ.get("STRESS_CONCURRENT_CHANGES", "1200"))
    before = len(_journal(flat))
    children = []
    for number in range(4):
        pid = os.fork()
        if pid == 0:
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                _churn(flat, devnull, number, per_writer)
            finally:
                os._exit(0)
        children.append(pid)
    for pid in children:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    lines = _journal(flat)
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    mine = lines[before:]
    assert len(mine) == 4 * per_writer
    for number in range(4):
        assert sum(1 for line in mine if line["id"] == TASKS[number]) == per_writer
    assert verify(flat, load_lifecycles(flat)) == []
