"""Benchmark: `plan --format json` end to end against reading the same files.

Generates pipelines of 1k, 10k and 100k task files (about two dependencies
each, 100 tasks per workstream), then times, in fresh processes:

- floor: read every task file and parse it with orjson (no validation);
- plan:  ``python -m orchestration --root DIR plan --format json``.

Both include interpreter start-up. ``plan`` is timed cold (an empty plan
cache, so every file is read and validated) and warm (the files unchanged
since the last run: only their stat signatures are checked). The ratio
cold plan ÷ floor is what to compare across machines; wall seconds and peak
memory are printed too. The last line times the CLI on this repository's own
pipeline, cold and warm. Every plan cache lives in a temporary folder
(``XDG_CACHE_HOME``), never in the user's.

    python bench/plan.py                 # 1k, 10k, 100k
    python bench/plan.py 1000 10000      # chosen sizes
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REPEAT = 3

FLOOR = """
import os, sys, orjson
count = 0
for folder in os.scandir(sys.argv[1] + "/tasks"):
    for entry in os.scandir(folder.path):
        with open(entry.path, "rb") as handle:
            orjson.loads(handle.read())
        count += 1
print(count)
"""


def generate(root: Path, count: int, seed: int = 7) -> None:
    """Write ``count`` realistic task files under ``root/tasks``."""
    rng = random.Random(seed)
    for number in range(count):
        task_id = f"task-{number:06d}"
        workstream = f"ws-{number // 100:04d}"
        deps = sorted({f"task-{rng.randrange(number):06d}" for _ in range(2)}) if number else []
        document = {
            "$schema": "../../schemas/task.schema.json",
            "schema_version": "2.0.0",
            "task_id": task_id,
            "workstream_id": workstream,
            "name": f"Generated task {number}",
            "description": "A generated task for the planning benchmark.",
            "type": "shell",
            "status": "pending",
            "priority": rng.randrange(3),
            "dependencies": deps,
            "blocks": [],
            "worker_requirements": {"capabilities": ["shell"], "min_version": None},
            "execution": {
                "command": f"echo {task_id}",
                "timeout_seconds": 600,
                "max_retries": 1,
                "estimated_seconds": rng.randrange(1, 600),
            },
            "context_requirements": {
                "max_context_tokens": None,
                "required_files": [],
                "exclude_patterns": ["**/__pycache__/**"],
            },
            "validation_rules": {"pre_execution": [], "post_execution": []},
            "state": {"created_at": "2026-01-01T00:00:00Z", "retry_count": 0},
        }
        folder = root / "tasks" / workstream
        if number % 100 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{task_id}.json").write_text(json.dumps(document, indent=2))


def timed(command: list[str], cache: str | None = None) -> tuple[float, float]:
    """Best-of-REPEAT wall seconds and peak RSS (MB).

    ``cache``: the plan cache folder to use (warm); ``None``: a new, empty one
    for each run (cold).
    """
    best, peak = float("inf"), 0.0
    for _ in range(REPEAT):
        with tempfile.TemporaryDirectory(prefix="bench-cache-") as empty:
            env = {**os.environ, "XDG_CACHE_HOME": cache or empty}
            start = time.perf_counter()
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env)
            _, status, usage = os.wait4(process.pid, 0)
            elapsed = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"failed: {' '.join(command)}")
        best = min(best, elapsed)
        peak = max(peak, usage.ru_maxrss / 1024)
    return best, peak


def cold_and_warm(command: list[str]) -> tuple[float, float, float]:
    """Best cold and warm seconds of ``command``, and the cold run's peak MB."""
    cold, memory = timed(command)
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as cache:
        env = {**os.environ, "XDG_CACHE_HOME": cache}
        subprocess.run(command, stdout=subprocess.DEVNULL, env=env, check=True)  # fills it
        warm, _ = timed(command, cache)
    return cold, warm, memory


def main(argv: list[str]) -> None:
    sizes = [int(arg) for arg in argv] or [1_000, 10_000, 100_000]
    python = sys.executable
    header = ("tasks", "floor s", "cold s", "ratio", "warm s", "ratio", "MB")
    print("".join(f"{name:>9}" for name in header))
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-plan-") as folder:
            generate(Path(folder), size)
            plan = [python, "-m", "orchestration", "--root", folder, "plan", "--format", "json"]
            floor, _ = timed([python, "-c", FLOOR, folder])
            cold, warm, memory = cold_and_warm(plan)
        row = (size, f"{floor:.2f}", f"{cold:.2f}", f"{cold / floor:.2f}", f"{warm:.2f}")
        print("".join(f"{cell:>9}" for cell in row) + f"{warm / floor:>9.2f}{memory:>9.0f}")
    startup, _ = timed([python, "-c", "pass"])
    here = [python, "-m", "orchestration", "--root", str(REPO), "plan", "--format", "json"]
    cold, warm, _ = cold_and_warm(here)
    print(
        f"this repository: plan {cold * 1000:.0f} ms cold, {warm * 1000:.0f} ms warm "
        f"(python start-up alone {startup * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
