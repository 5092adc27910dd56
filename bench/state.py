"""Benchmark: the store's durable transitions per second, commit latency, snapshot lag.

For stores of 1k, 10k and 100k tasks (synced from generated task files), in
one process:

- floor:    append one journal-sized line to a file and fsync it;
- single:   ``store.apply`` of one change per transaction (claim/release);
- batched:  100 changes per transaction (one fsync each);
- lag:      the longest a reader polling ``current.json`` saw the snapshot
            trail the journal while changes streamed in;
- command:  ``orchestration task ID claim`` end to end in a fresh process;
- memory:   peak RSS of that ``task`` process (the store opened, one change, closed).

Then ``orchestration history`` on a journal of one million lines.

    python bench/state.py                 # 1k, 10k, 100k
    python bench/state.py 1000            # chosen sizes
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from orchestration.lifecycles import load_lifecycles  # noqa: E402
from orchestration.state import Store  # noqa: E402
from orchestration.tasks.loading import load_tasks  # noqa: E402
from plan import generate  # noqa: E402

LAST_SEQ = re.compile(rb'"last_seq":(\d+)')
LINE = orjson.dumps(
    {"seq": 1, "ts": "2026-11-28T00:00:00.000Z", "entity": "task", "id": "task-000001",
     "from": "ready", "to": "claimed", "trigger": "claim", "actor": "bench", "reason": "",
     "severity": "info", "commit": True}
) + b"\n"  # fmt: skip


def floor(folder: Path, count: int = 2000) -> float:
    """Seconds per append + fsync of one line."""
    fd = os.open(folder / "floor.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    start = time.perf_counter()
    for _ in range(count):
        os.write(fd, LINE)
        os.fsync(fd)
    os.close(fd)
    return (time.perf_counter() - start) / count


def churn(store: Store, ready: list[str], changes: int, batch: int) -> float:
    """Seconds per change, ``batch`` changes per transaction."""
    done = 0
    start = time.perf_counter()
    while done < changes:
        with store.transaction() as tx:
            for n in range(batch):
                task_id = ready[(done + n) % len(ready)]
                tx.apply(task_id, "claim" if tx.status(task_id) == "ready" else "release")
        done += batch
    return (time.perf_counter() - start) / done


def lag_while_writing(store: Store, ready: list[str], seconds: float) -> float:
    """Longest time the snapshot trailed a committed change, as a polling reader saw it."""
    committed: dict[int, float] = {}
    stop = threading.Event()
    worst = 0.0

    def read() -> None:
        nonlocal worst
        path = store.snapshot_path
        while not stop.is_set():
            with open(path, "rb") as handle:  # the head is enough: last_seq comes first
                seen = int(LAST_SEQ.search(handle.read(256))[1])  # type: ignore[index]
            pending = [at for seq, at in list(committed.items()) if seq > seen]
            if pending:
                worst = max(worst, time.monotonic() - min(pending))
            time.sleep(0.005)

    reader = threading.Thread(target=read)
    reader.start()
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        task_id = ready[n % len(ready)]
        trigger = "claim" if store.state.tasks[task_id]["status"] == "ready" else "release"
        [line] = store.apply(task_id, trigger)
        committed[line["seq"]] = time.monotonic()
        n += 1
    time.sleep(0.4)  # the flusher writes the last changes
    stop.set()
    reader.join()
    return worst


PEAK = """
import runpy, sys
sys.argv = ["orchestration", *sys.argv[1:]]
try:
    runpy.run_module("orchestration", run_name="__main__", alter_sys=True)
finally:
    # VmHWM is this process's own peak; rusage would count the forking parent's.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print(int(line.split()[1]) // 1024, file=sys.stderr)
"""


def command(root: Path, task_id: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one `orchestration task` in a fresh process."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PEAK, "--root", str(root), "task", task_id, "claim"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    return time.perf_counter() - start, float(done.stderr.split()[-1])


def history_bench(folder: Path, lines: int = 1_000_000) -> tuple[float, float]:
    """(history seconds, floor seconds to read the journal) on ``lines`` lines."""
    state = folder / ".state"
    state.mkdir(parents=True)
    (folder / "tasks").mkdir()
    with open(state / "transitions.jsonl", "wb") as handle:
        for seq in range(1, lines + 1):
            handle.write(
                orjson.dumps(
                    {"seq": seq, "ts": "2026-11-28T00:00:00.000Z", "entity": "task",
                     "id": f"task-{seq % 10_000:06d}", "from": "ready", "to": "claimed",
                     "trigger": "claim", "actor": "bench", "reason": "", "severity": "info",
                     "commit": True}
                ) + b"\n"
            )  # fmt: skip
    start = time.perf_counter()
    with open(state / "transitions.jsonl", "rb") as handle:
        for _ in handle:
            pass
    read = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "orchestration", "--root", str(folder), "history", "task-000042"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start, read


def main(argv: list[str]) -> None:
    sizes = [int(arg) for arg in argv] or [1_000, 10_000, 100_000]
    head = ("tasks", "floor ms", "single ms", "ratio", "batch tx/s", "lag ms", "task s", "RSS MB")
    print("".join(f"{name:>11}" for name in head))
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-state-") as name:
            root = Path(name)
            generate(root, size)
            for task_id in range(size):  # independent tasks: all ready after sync
                path = root / "tasks" / f"ws-{task_id // 100:04d}" / f"task-{task_id:06d}.json"
                document = orjson.loads(path.read_bytes())
                document["dependencies"] = []
                path.write_bytes(orjson.dumps(document))
            import shutil

            shutil.copytree(REPO / "docs" / "state_machines", root / "docs" / "state_machines")
            lifecycles = load_lifecycles(root)
            with Store.open(root, lifecycles, actor="bench") as store:
                store.sync(load_tasks(root).tasks)
            base = floor(root)
            with Store.open(root, lifecycles, actor="bench") as store:
                ready = sorted(store.state.tasks)[:200]
                single = churn(store, ready, 2000, 1)
                batched = churn(store, ready, 20_000, 100)
                lag = lag_while_writing(store, ready, 2.0)
            task, rss = command(root, sorted(store.state.tasks)[-1])
        row = (size, f"{base * 1e3:.2f}", f"{single * 1e3:.2f}", f"{single / base:.1f}",
               f"{1 / batched:.0f}", f"{lag * 1e3:.0f}", f"{task:.2f}", f"{rss:.0f}")  # fmt: skip
        print("".join(f"{cell:>11}" for cell in row), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-history-") as name:
        seconds, read = history_bench(Path(name))
    print(
        f"history on 1,000,000 journal lines: {seconds:.2f} s "
        f"(reading the file alone: {read:.2f} s; ratio {seconds / read:.1f})"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
