"""`run` killed with SIGKILL mid-run, and several `run`s at once on one repository."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from orchestration.lifecycles import load_lifecycles
from orchestration.state.views import verify
from runs import FAST, journal, pipeline, run, snapshot, task

CAPACITY_ONE_LOCKS = """@{
    schema_version = '1.0.0'
    resources = @{
        docs = @{ kind = 'path_lock'; capacity = 1; paths = @('docs/**') }
        readme = @{ kind = 'path_lock'; capacity = 1; paths = @('docs/README.md') }
    }
}
"""


def effects(folder: Path) -> dict[str, int]:
    """How many times each task's side effect happened."""
    return {path.name: len(path.read_text().splitlines()) for path in folder.iterdir()}


def test_sigkilled_runs_resume_and_every_task_completes_exactly_once_EXEC_DOC_008(
    tmp_path: Path,
) -> None:
    """CONC-REG-009, CONC-REG-010: attempts outlive the runner; none is repeated."""
    out = tmp_path / "effects"
    out.mkdir()
    tasks = [
        task(f"t{n:02d}", f"sleep 0.{n % 4 + 1}; echo done >> {out}/t{n:02d}",
             dependencies=[f"t{n - 3:02d}"] if n >= 3 else [])
        for n in range(12)
    ]  # fmt: skip
    root = pipeline(tmp_path / "p", *tasks)
    rng = random.Random(5)
    environ = {**os.environ, **FAST}
    for _ in range(6):
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestration", "--root", str(root), "run", "-j", "3"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environ,
        )  # fmt: skip
        time.sleep(rng.uniform(0.4, 1.2))
        process.send_signal(signal.SIGKILL)
        process.wait()
    final = run(root, "-j", "3")
    assert final.returncode == 0, final.stdout + final.stderr
    assert effects(out) == {f"t{n:02d}": 1 for n in range(12)}
    tasks_state = snapshot(root)["tasks"]
    assert {entry["status"] for entry in tasks_state.values()} == {"succeeded"}
    assert all("lease" not in entry for entry in tasks_state.values())  # no lease survives
    assert verify(root, load_lifecycles(root)) == []
    starts = [(line["id"], line["attempt"]) for line in journal(root) if line["trigger"] == "start"]
    assert len(starts) == len(set(starts))


def test_an_attempt_still_running_is_adopted_not_repeated_CONC_REG_010(tmp_path: Path) -> None:
    out = tmp_path / "effects"
    out.mkdir()
    root = pipeline(tmp_path / "p", task("long", f"sleep 1.5; echo done >> {out}/long"))
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestration", "--root", str(root), "run", "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, **FAST},
    )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        if json.loads(line).get("trigger") == "start":
            break
    time.sleep(0.3)  # its wrapper has recorded the pid
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdout.close()
    again = run(root, "--format", "json")
    assert again.returncode == 0, again.stderr
    events = [json.loads(line) for line in again.stdout.splitlines()]
    adopt = [e for e in events if e["trigger"] == "adopt"]
    assert len(adopt) == 1 and adopt[0]["lease"]["epoch"] == 2
    assert effects(out) == {"long": 1}
    assert events[-1]["adopted"] == 1


def test_several_runs_never_repeat_an_attempt_nor_overlap_path_locks_CONC_REG_011(
    tmp_path: Path,
) -> None:
    log = tmp_path / "log"
    step = f'echo "$ORCHESTRATION_TASK_ID start $(date +%s.%N)" >> {log}; sleep 0.15; ' + (
        f'echo "$ORCHESTRATION_TASK_ID end $(date +%s.%N)" >> {log}'
    )
    retried = {"max_retries": 2}  # a git lock lost under load (FM-SANDBOX) is retried
    tasks = [task(f"d{n}", step, resources={"docs": 1}, execution=retried) for n in range(4)]
    tasks += [task(f"r{n}", step, resources={"readme": 1}, execution=retried) for n in range(3)]
    tasks += [task(f"f{n}", step, execution=retried) for n in range(6)]
    root = pipeline(tmp_path / "p", *tasks, resources=CAPACITY_ONE_LOCKS)
    environ = {**os.environ, **FAST}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "orchestration", "--root", str(root), "run", "-j", "3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environ,
        )  # fmt: skip
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=120) for process in runs]
    failures = [line["reason"] for line in journal(root) if line["trigger"] in ("fail", "refuse")]
    statuses = {entry["status"] for entry in snapshot(root)["tasks"].values()}
    # A string, so that pytest shows all of it: the runs' errors are what a failure needs.
    assert statuses == {"succeeded"}, "\n".join([*failures, *(err[-3000:] for _, err in outputs)])
    spans: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():
        task_id, _, stamp = line.split()
        spans.setdefault(task_id, []).append(float(stamp))
    assert sorted(spans) == sorted(t["task_id"] for t in tasks)
    twice = {t: stamps for t, stamps in spans.items() if len(stamps) != 2}
    assert twice == {}, [line for line in journal(root) if line["id"] in twice]  # once each
    locked = sorted((spans[t][0], spans[t][1], t) for t in spans if t[0] in "dr")
    for (_, end, first), (start, _, second) in zip(locked, locked[1:], strict=False):
        assert start >= end, f"{first} and {second} held overlapping path locks together"
