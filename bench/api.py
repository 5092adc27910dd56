"""Benchmark: the agent API's claims, tool checks and snapshots against its cheapest request.

Generates a pipeline of N independent ready tasks (default 2,000; ``orchestration
init``, its example tasks replaced, a small file to read, committed in a new git
repository), starts ``orchestration serve`` on it in its own process (a free
port on 127.0.0.1, a strong secret), then measures with C concurrent clients
(threads in this process, each with its own keep-alive httpx connection):

- floor:    ``GET /health`` (a request that reads the journal's tail and nothing
            else): latency p50/p99, and requests per second;
- claim:    ``POST /api/v1/tasks/claim`` until K tasks are claimed (a durable
            transaction each: lease, attempt, phase, token): p50/p99;
- read:     ``read_file`` through ``POST /api/v1/tools/execute`` in PLAN, each
            agent in its own sandbox created beforehand (token checked,
            permission checked, path confined, audit record fsynced, file read);
- denied:   ``write_file`` in PLAN, refused with 403 (checked and audited);
- snapshot: ``GET /api/v1/state/snapshot`` as fast as the clients can: requests/s.

Each result is also shown as a ratio against the floor measured in the same
run (latency ÷ floor latency, throughput ÷ floor throughput): the ratio is what
compares across machines. Targets (AGENT-WF-017, 2 cores, loopback): claim p99
≤ 50 ms, tool check p99 ≤ 10 ms, ≥ 500 snapshots/s.

    python bench/api.py                       # 2,000 tasks, 4 clients
    python bench/api.py 500 --clients 8
    python bench/api.py --format json
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

PYTHON = sys.executable
GIT = ["git", "-c", "user.name=b", "-c", "user.email=b@b"]
TARGETS = {"claim_p99_ms": 50.0, "tool_p99_ms": 10.0, "snapshot_per_s": 500.0}  # AGENT-WF-017


def make_pipeline(root: Path, count: int) -> None:
    """``count`` independent tasks for agents offering ``python``, committed in a new repository."""
    subprocess.run([PYTHON, "-m", "orchestration", "init", str(root)], check=True,
                   capture_output=True)  # fmt: skip
    shutil.rmtree(root / "tasks")
    for number in range(count):
        task_id = f"task-{number:06d}"
        folder = root / "tasks" / f"ws-{number // 100:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        document = {"schema_version": "2.0.0", "task_id": task_id, "type": "claude",
                    "workstream_id": folder.name, "name": f"Agent task {number}",
                    "worker_requirements": {"capabilities": ["python"]}}  # fmt: skip
        (folder / f"{task_id}.json").write_text(json.dumps(document))
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("def answer():\n    return 42\n" * 20)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run([*GIT, "-C", str(root), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(root), "commit", "-qm", "bench"], check=True)


def start_server(root: Path) -> tuple[subprocess.Popen[str], str]:
    """``orchestration serve`` on a free port; the process and its URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    env["ORCHESTRATOR_JWT_SECRET"] = secrets.token_urlsafe(48)
    process = subprocess.Popen(
        [PYTHON, "-m", "orchestration", "--root", str(root), "serve", "--port", "0",
         "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    announced = json.loads("".join(iter(process.stdout.readline, "}\n")) + "}")
    return process, str(announced["url"])


def in_parallel(clients: list[httpx.Client], work: Callable[[int, httpx.Client], None]) -> float:
    """Run ``work(index, client)`` in one thread per client; the wall seconds."""
    start = threading.Barrier(len(clients) + 1)

    def run(index: int, client: httpx.Client) -> None:
        start.wait()
        work(index, client)

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began


def latencies(
    clients: list[httpx.Client], each: int, request: Callable[[int, httpx.Client], httpx.Response],
    expect: int = 200,
) -> tuple[list[float], float]:  # fmt: skip
    """Seconds per request (``each`` per client, all clients at once), and requests/s."""
    found: list[float] = []
    lock = threading.Lock()

    def work(index: int, client: httpx.Client) -> None:
        mine = []
        for _ in range(each):
            began = time.perf_counter()
            answer = request(index, client)
            mine.append(time.perf_counter() - began)
            if answer.status_code != expect:
                msg = f"unexpected {answer.status_code}: {answer.text[:300]}"
                raise SystemExit(msg)
        with lock:
            found.extend(mine)

    wall = in_parallel(clients, work)
    return found, len(found) / wall


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {"p50_ms": statistics.median(values) * 1e3, "p99_ms": percentile(values, 0.99) * 1e3}


def measure(
    url: str, clients_count: int, claims: int, tool_calls: int, seconds: float
) -> dict[str, Any]:
    clients = [httpx.Client(base_url=url, timeout=30) for _ in range(clients_count)]
    try:
        latencies(clients, 50, lambda i, c: c.get("/health"))  # warm-up: connections, code paths
        health, health_rps = latencies(clients, 300, lambda i, c: c.get("/health"))
        per_client = max(1, claims // clients_count)
        counter = iter(range(10**9))
        claimed, _ = latencies(
            clients, per_client,
            lambda i, c: c.post("/api/v1/tasks/claim", json={"agent_id": f"agent-{next(counter)}"}),
        )  # fmt: skip
        tokens = []
        for index, client in enumerate(clients):  # one agent per client, its sandbox made now
            answer = client.post("/api/v1/tasks/claim", json={"agent_id": f"reader-{index}"})
            tokens.append((answer.json()["task_id"], answer.json()["phase_token"]))
            call = {"task_id": tokens[-1][0], "tool": "read_file", "args": {"path": "src/app.py"}}
            client.post("/api/v1/tools/execute", json=call,
                        headers={"Authorization": f"Bearer {tokens[-1][1]}"})  # fmt: skip

        def tool(name: str, args: dict[str, str]) -> Callable[[int, httpx.Client], httpx.Response]:
            def request(index: int, client: httpx.Client) -> httpx.Response:
                task_id, token = tokens[index]
                return client.post("/api/v1/tools/execute",
                                   json={"task_id": task_id, "tool": name, "args": args},
                                   headers={"Authorization": f"Bearer {token}"})  # fmt: skip

            return request

        each = max(1, tool_calls // clients_count)
        read, _ = latencies(clients, each, tool("read_file", {"path": "src/app.py"}))
        denied, _ = latencies(clients, each, tool("write_file", {"path": "src/app.py",
                                                                 "content": "x"}), 403)  # fmt: skip
        snapshots: list[float] = []
        stop = time.perf_counter() + seconds
        size = len(clients[0].get("/api/v1/state/snapshot").content)

        def hammer(index: int, client: httpx.Client) -> None:
            while time.perf_counter() < stop:
                began = time.perf_counter()
                client.get("/api/v1/state/snapshot").raise_for_status()
                snapshots.append(time.perf_counter() - began)

        wall = in_parallel(clients, hammer)
        snapshot_rps = len(snapshots) / wall
    finally:
        for client in clients:
            client.close()
    floor = summary(health)
    results = {
        "floor": {**floor, "per_s": health_rps},
        "claim": summary(claimed),
        "read_file": summary(read),
        "denied": summary(denied),
        "snapshot": {**summary(snapshots), "per_s": snapshot_rps, "bytes": size},
    }
    for name in ("claim", "read_file", "denied"):
        results[name]["ratio_p99"] = results[name]["p99_ms"] / floor["p99_ms"]
    results["snapshot"]["ratio_per_s"] = snapshot_rps / health_rps
    return results


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="?", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (threads)")
    parser.add_argument("--claims", type=int, default=400, help="claims to time")
    parser.add_argument("--tool-calls", type=int, default=800, help="tool calls to time, each kind")
    parser.add_argument("--seconds", type=float, default=5.0, help="of snapshot requests")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    options = parser.parse_args(argv)
    if options.claims + options.clients > options.tasks:
        parser.error("need more tasks than claims + clients: every claim takes a ready task")
    with tempfile.TemporaryDirectory(prefix="bench-api-") as name:
        root = Path(name) / "p"
        os.environ["XDG_CACHE_HOME"] = name  # never the user's plan cache
        make_pipeline(root, options.tasks)
        process, url = start_server(root)
        try:
            results = measure(url, options.clients, options.claims, options.tool_calls,
                              options.seconds)  # fmt: skip
        finally:
            process.terminate()
            process.wait(30)
    document = {"tasks": options.tasks, "clients": options.clients, "targets": TARGETS, **results}
    if options.format == "json":
        print(json.dumps(document, indent=2))
        return
    floor = results["floor"]
    print(f"{options.tasks} ready tasks, {options.clients} concurrent clients; floor GET /health: "
          f"p50 {floor['p50_ms']:.2f} ms, p99 {floor['p99_ms']:.2f} ms, "
          f"{floor['per_s']:.0f} req/s")  # fmt: skip
    print(f"{'request':<22}{'p50 ms':>9}{'p99 ms':>9}{'p99 ÷ floor':>13}{'target':>16}")
    rows = (("claim", "claim", "claim_p99_ms"), ("tools/execute read", "read_file", "tool_p99_ms"),
            ("tools/execute denied", "denied", "tool_p99_ms"))  # fmt: skip
    for label, key, target in rows:
        row = results[key]
        print(f"{label:<22}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['ratio_p99']:>13.1f}"
              f"{'≤ ' + format(TARGETS[target], 'g') + ' ms':>16}")  # fmt: skip
    snap = results["snapshot"]
    print(f"snapshot: {snap['per_s']:.0f} req/s ({snap['bytes'] / 1024:.0f} KiB each; "
          f"p50 {snap['p50_ms']:.2f} ms), {snap['ratio_per_s']:.2f} × the floor's req/s; "
          f"target ≥ {TARGETS['snapshot_per_s']:g}/s")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
