"""Benchmark: from a saved edit to the updated plan of ``watch`` (OBS-009).

Generates a pipeline of 10,000 tasks (``orchestration init``, its example
tasks replaced by the random DAG of ``bench/plan.py``: about two dependencies
per task, 100 tasks per workstream), starts ``python -m orchestration --root
DIR watch --format json`` as a real process and waits for its first plan.
Then, REPEAT times for each kind of edit, it saves one task file as an editor
does (a temporary file in the same folder, written, fsynced and renamed over
the file) and times from the rename to the moment the ``replanned`` line is
read from the pipe (OBS-009: the updated plan printed):

- dependencies: the task's dependencies change, so the state records a
  redefinition: ``Store.sync`` runs, over every task, after the plan is
  printed; the time to its ``synced`` line is printed too;
- estimate: its ``estimated_seconds`` changes, so the plan changes and the
  state does not (the sync is skipped).

That latency holds the debounce window (the watch waits that long after the
last event, by design: 0.2 s by default), watchdog, reading and validating
the file, the checks across all the tasks, the plan, and the pipe. The
event's own ``seconds`` (reload, checks and plan) is printed beside it.

Floor, measured in the same run, in this process: what any re-plan must
spend after an edit — the same quiet window, reading and parsing the edited
file with orjson, and planning the tasks with the engine's planner
(``build_plan`` on the planner's inputs, best of REPEAT). The ratio latency ÷
floor is what compares across machines; what it shows above 1 is the watch's
own cost: watchdog, validation with the model, the checks across files, the
store and the pipe. Every cache (``XDG_CACHE_HOME``) lives in a temporary
folder removed at the end.

    python bench/watch.py            # 10,000 tasks
    python bench/watch.py 1000       # another size
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plan import generate  # noqa: E402  (bench/plan.py, next to this file)

REPEAT = 5
DEBOUNCE = 0.2  # the default of `watch --debounce`
TARGET_S = 1.0  # OBS-009
TIMEOUT = 120.0  # seconds to wait for a line before giving up
PYTHON = sys.executable


class Watch:
    """``watch --format json`` in its own process; each line with the time it was read."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        command = [PYTHON, "-m", "orchestration", "--root", str(root), "watch",
                   "--format", "json", "--debounce", str(DEBOUNCE)]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, env=env)
        self.lines: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put((time.perf_counter(), json.loads(line)))

    def next(self) -> tuple[float, dict[str, Any]]:
        try:
            return self.lines.get(timeout=TIMEOUT)
        except queue.Empty:
            sys.exit(f"no event from watch in {TIMEOUT:g} s")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(TIMEOUT)
        self.reader.join(TIMEOUT)
        return code


def save(path: Path, document: dict[str, Any]) -> float:
    """Save ``document`` as an editor does; return when the rename was done."""
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w") as handle:
        handle.write(json.dumps(document, indent=2))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return time.perf_counter()


def floor(root: Path, path: Path) -> tuple[float, float]:
    """The quiet window plus reading, parsing and planning, in this process; and the plan part."""
    import orjson

    from orchestration.planning.inputs import plan_inputs
    from orchestration.planning.plan import build_plan

    tasks, files = plan_inputs(root)
    read = plan = float("inf")
    for _ in range(REPEAT):
        began = time.perf_counter()
        orjson.loads(path.read_bytes())
        read = min(read, time.perf_counter() - began)
        began = time.perf_counter()
        build_plan(tasks, files)
        plan = min(plan, time.perf_counter() - began)
    return DEBOUNCE + read + plan, plan


def edits(watch: Watch, path: Path, kind: str) -> tuple[list[float], list[float], list[float]]:
    """Save the file REPEAT times; the latency of each plan, the watch's own seconds,
    and the latency of each sync (none for edits the state does not mirror)."""
    document = json.loads(path.read_text())
    number = int(document["task_id"].removeprefix("task-"))
    latencies, inside, synced = [], [], []
    for attempt in range(REPEAT):
        if kind == "dependencies":
            chosen = {f"task-{(number * (attempt + 3)) // 7 % number:06d}", "task-000000"}
            document["dependencies"] = sorted(chosen)
        else:
            document["execution"]["estimated_seconds"] = 100 + attempt
        saved = save(path, document)
        read, event = watch.next()
        if event["event"] != "replanned" or event["changed"] != [document["task_id"]]:
            sys.exit(f"unexpected event after the edit: {event}")
        if event["syncing"] != (kind == "dependencies"):
            sys.exit(f"the {kind} edit is synced: {event['syncing']}")
        latencies.append(read - saved)
        inside.append(event["seconds"])
        if event["syncing"]:
            done, event = watch.next()
            if event["event"] != "synced" or event["lines"] < 1:
                sys.exit(f"unexpected event after the plan: {event}")
            synced.append(done - saved)
    return latencies, inside, synced


def main(argv: list[str]) -> None:
    count = int(argv[0]) if argv else 10_000
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as scratch:
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(scratch) / "cache")}
        os.environ["XDG_CACHE_HOME"] = env["XDG_CACHE_HOME"]  # the floor's plan cache too
        root = Path(scratch) / "pipeline"
        subprocess.run([PYTHON, "-m", "orchestration", "init", str(root)], env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        shutil.rmtree(root / "tasks")
        generate(root, count)
        path = root / "tasks" / f"ws-{count // 200:04d}" / f"task-{count // 2:06d}.json"
        began = time.perf_counter()
        watch = Watch(root, env)
        planned, first = watch.next()
        if first["event"] != "planned":
            sys.exit(f"the pipeline is not valid: {first}")
        while first["event"] != "watching":  # after the first sync
            ready, first = watch.next()
        print(f"watch on {count} tasks: first plan (load and check every file, plan) in "
              f"{planned - began:.2f} s, synced and watching in {ready - began:.2f} s; "
              f"debounce {DEBOUNCE:g} s", flush=True)  # fmt: skip
        base, plan = floor(root, path)
        print(f"floor {base:.3f} s = quiet window {DEBOUNCE:g} s + read and parse the file + "
              f"plan {count} tasks ({plan:.3f} s)")  # fmt: skip
        header = ("edit", "best s", "median s", "÷ floor", "in watch s", "synced s")
        print(f"{header[0]:<14}" + "".join(f"{name:>11}" for name in header[1:]))
        worst = 0.0
        for kind in ("dependencies", "estimate"):
            latencies, inside, synced = edits(watch, path, kind)
            median = statistics.median(latencies)
            worst = max(worst, median)
            cells = (f"{min(latencies):.3f}", f"{median:.3f}", f"{median / base:.2f}",
                     f"{statistics.median(inside):.3f}",
                     f"{statistics.median(synced):.3f}" if synced else "-")  # fmt: skip
            print(f"{kind:<14}" + "".join(f"{cell:>11}" for cell in cells), flush=True)
        code = watch.stop()
        if code != 0:
            sys.exit(f"watch exited {code} on SIGTERM")
    verdict = "met" if worst <= TARGET_S else "NOT met"
    print(f"target (OBS-009): the updated plan within {TARGET_S:g} s of a saved edit, "
          f"median: {verdict}")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
