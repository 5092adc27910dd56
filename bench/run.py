"""Benchmark: what ``run`` costs per task above ``xargs -P``, and how fast it resumes.

Overhead (EXEC-DOC-012, the default mode). Generates a pipeline of 1,000
independent shell tasks whose command is ``true`` (``orchestration init``,
its example tasks replaced, committed in a new git repository), then times
in the same run:

- floor: the same 1,000 commands through ``xargs -P 4 -I{} sh -c {}`` (each
  ``true`` under ``sh -c``, as the engine runs a shell task);
- run:   ``python -m orchestration --root DIR run -j 4`` in a fresh process
  (interpreter start-up, loading, sync, worktrees, journal: all of it).

The headline is the wall overhead per task, (run − floor) ÷ tasks, against
the spec's target of at most 10 ms. The same difference times the workers,
(run − floor) × workers ÷ tasks, is printed too: what each task costs one of
the parallel slots. After the run every task must have succeeded in
``.state/current.json``, or the benchmark fails. The floor is best of 3; the
run is timed once on a fresh pipeline (a second run would have nothing to do);
its peak memory is printed.

Resume (CONC-REG-014, ``--resume N``). Generates N task files (the random
DAG of ``bench/plan.py``, 100 tasks per workstream), commits them, creates the
state with ``orchestration sync``, then times from the start of
``run -j 1 --format json`` to its first journal line whose trigger is
``start`` (the first dispatch), and kills the run there (its whole process
group, SIGKILL). The first run has an empty cache (it reads and checks
every task file, then caches what ``run`` needs of them); the run is then
restarted 3 times on the state the killed ones left (warm cache, a lease
held by a dead runner) and the best restart is the headline, against the
spec's target of at most 2 s. Floors measured in the same run: reading and
parsing every task file (``bench/plan.py``'s floor) and
``status --format json`` (reading the state).

Every temporary file, and every cache (``XDG_CACHE_HOME``), lives in a
temporary folder removed at the end, never in the user's.

    python bench/run.py                  # 1,000 tasks, 4 workers
    python bench/run.py 200              # a quick check
    python bench/run.py 1000 --workers 8
    python bench/run.py --resume 100000  # resume time on 100k tasks
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from plan import FLOOR, generate  # noqa: E402  (bench/plan.py, next to this file)

REPEAT = 3
TARGET_OVERHEAD_MS = 10.0  # EXEC-DOC-012
TARGET_RESUME_S = 2.0  # CONC-REG-014
PYTHON = sys.executable
GIT_USER = ["-c", "user.name=b", "-c", "user.email=b@b"]


def say(message: str) -> None:
    print(message, flush=True)


def orchestration(root: Path, *args: str) -> list[str]:
    return [PYTHON, "-m", "orchestration", "--root", str(root), *args]


def write_true_tasks(root: Path, count: int) -> None:
    """Write ``count`` independent shell tasks running ``true`` under ``root/tasks``."""
    for number in range(count):
        task_id = f"task-{number:06d}"
        workstream = f"ws-{number // 100:04d}"
        document = {
            "$schema": "../../schemas/task.schema.json",
            "schema_version": "2.0.0",
            "task_id": task_id,
            "workstream_id": workstream,
            "name": f"True {number}",
            "description": "Does nothing: measures the engine's own cost.",
            "type": "shell",
            "dependencies": [],
            "worker_requirements": {"capabilities": ["shell"]},
            "execution": {"command": "true", "timeout_seconds": 60, "estimated_seconds": 1},
        }
        folder = root / "tasks" / workstream
        if number % 100 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{task_id}.json").write_text(json.dumps(document, indent=2))


def pipeline(
    root: Path, write_tasks: Callable[[Path, int], None], count: int, env: dict[str, str]
) -> None:
    """``orchestration init`` at ``root``, its tasks replaced by ``write_tasks``, committed."""
    began = time.perf_counter()
    subprocess.run([PYTHON, "-m", "orchestration", "init", str(root)], env=env, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    shutil.rmtree(root / "tasks")
    write_tasks(root, count)
    say(f"  {count} task files written in {time.perf_counter() - began:.1f} s; committing ...")
    for command in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", *GIT_USER, "commit", "-qm", "init"],
    ):
        subprocess.run(command, cwd=root, env=env, check=True)


def timed(
    command: list[str], env: dict[str, str], stdin: bytes | None = None
) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one run of ``command``; exits when it fails."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    if stdin is not None:
        assert process.stdin is not None
        process.stdin.write(stdin)
        process.stdin.close()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed (exit {os.waitstatus_to_exitcode(status)}): {' '.join(command)}")
    return elapsed, usage.ru_maxrss / 1024


def best(command: list[str], env: dict[str, str], stdin: bytes | None = None) -> float:
    return min(timed(command, env, stdin)[0] for _ in range(REPEAT))


def check_succeeded(root: Path, count: int) -> None:
    """Exit loudly unless all ``count`` tasks are ``succeeded`` in ``.state/current.json``."""
    tasks = json.loads((root / ".state" / "current.json").read_text())["tasks"]
    statuses: dict[str, int] = {}
    for entry in tasks.values():
        statuses[entry["status"]] = statuses.get(entry["status"], 0) + 1
    if len(tasks) != count or statuses.get("succeeded", 0) != count:
        sys.exit(f"FAILED: expected {count} succeeded tasks, the state has {statuses}")


def overhead(count: int, workers: int, scratch: Path, env: dict[str, str]) -> None:
    """EXEC-DOC-012: ``run -j workers`` on ``count`` ``true`` tasks against ``xargs -P``."""
    root = scratch / "pipeline"
    say(f"generating {count} tasks running `true` ...")
    pipeline(root, write_true_tasks, count, env)
    xargs = ["xargs", "-P", str(workers), "-I{}", "sh", "-c", "{}"]
    floor = best(xargs, env, b"true\n" * count)
    startup = best([PYTHON, "-c", "pass"], env)
    say(f"running `orchestration run -j {workers}` on {count} tasks ...")
    run, memory = timed(orchestration(root, "run", "-j", str(workers)), env)
    check_succeeded(root, count)
    wall = (run - floor) / count * 1000
    slot = (run - floor) * workers / count * 1000
    verdict = "meets" if wall <= TARGET_OVERHEAD_MS else "MISSES"
    say(f"tasks {count}, workers {workers}: all {count} succeeded")
    say(f"floor  xargs -P {workers} sh -c true:  {floor:9.3f} s  (best of {REPEAT})")
    say(f"run    orchestration run -j {workers}:   {run:9.3f} s  (peak {memory:.0f} MB, "
        f"python start-up alone {startup * 1000:.0f} ms)")  # fmt: skip
    say(f"ratio  run / floor:               {run / floor:9.1f}")
    say(f"overhead per task, wall:          {wall:9.2f} ms  = (run - floor) / {count}; "
        f"target <= {TARGET_OVERHEAD_MS:g} ms (EXEC-DOC-012): {verdict}")  # fmt: skip
    say(f"overhead per task, per slot:      {slot:9.2f} ms  = (run - floor) x {workers} / {count}")


def first_start(root: Path, env: dict[str, str]) -> float:
    """Seconds from launching ``run -j 1 --format json`` to its first ``start`` line.

    The run is then killed with its process group (git children included).
    """
    command = orchestration(root, "run", "-j", "1", "--format", "json")
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, env=env, start_new_session=True)
    assert process.stdout is not None
    try:
        for raw in process.stdout:
            line = json.loads(raw)
            if line.get("entity") == "task" and line.get("trigger") == "start":
                return time.perf_counter() - start
        sys.exit(f"FAILED: the run ended (exit {process.wait()}) without dispatching a task")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        process.stdout.close()


def resume(count: int, scratch: Path, env: dict[str, str]) -> None:
    """CONC-REG-014: time to the first dispatch of ``run`` on a ``count``-task pipeline."""
    root = scratch / "pipeline"
    began = time.perf_counter()
    say(f"generating {count} task files (bench/plan.py's random DAG) ...")
    pipeline(root, generate, count, env)
    say(f"  committed at {time.perf_counter() - began:.1f} s; `orchestration sync` ...")
    sync, _ = timed(orchestration(root, "sync"), env)
    say(f"  synced in {sync:.1f} s; measuring ...")
    floor = best([PYTHON, "-c", FLOOR, str(root)], env)
    status = best(orchestration(root, "status", "--format", "json"), env)
    first = first_start(root, env)
    restarts = [first_start(root, env) for _ in range(REPEAT)]
    restart = min(restarts)
    verdict = "meets" if restart <= TARGET_RESUME_S else "MISSES"
    say(f"tasks {count} (set-up {time.perf_counter() - began:.0f} s, sync {sync:.2f} s)")
    say(f"floor  read + parse every task file:  {floor:7.2f} s  (best of {REPEAT})")
    say(f"floor  status --format json:          {status:7.2f} s  (best of {REPEAT})")
    say(f"run    first dispatch, first run:     {first:7.2f} s  (empty cache)")
    say(f"run    first dispatch, restarted:     {restart:7.2f} s  (best of "
        f"{', '.join(f'{s:.2f}' for s in restarts)}; target <= {TARGET_RESUME_S:g} s, "
        f"CONC-REG-014: {verdict})")  # fmt: skip
    say(f"ratio  restart / read floor: {restart / floor:.1f}   "
        f"restart / status: {restart / status:.1f}")  # fmt: skip


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="?", type=int, default=1000, help="tasks (default 1000)")
    parser.add_argument("--workers", "-j", type=int, default=4, help="workers (default 4)")
    parser.add_argument("--resume", type=int, metavar="N", help="time resuming on N tasks instead")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-run-") as folder:
        scratch = Path(folder)
        (scratch / "cache").mkdir()
        env = {**os.environ, "XDG_CACHE_HOME": str(scratch / "cache")}
        if args.resume:
            resume(args.resume, scratch, env)
        else:
            overhead(args.tasks, args.workers, scratch, env)


if __name__ == "__main__":
    main(sys.argv[1:])
