"""Benchmark: the agent API's claims, tool checks and snapshots against its cheapest request.

Generates a pipeline of N independent ready tasks (default 2,000; ``orchestration
init``, its example tasks replaced, a small file to read, committed in a new git
repository), starts ``orchestration serve`` on it in its own process (a free
port on 127.0.0.1, a strong secret), then measures through C keep-alive
connections (threads in this process). The clients are a minimal HTTP/1.1
load generator (:class:`Connection`: a request is one ``send``, a response is
read by its ``Content-Length``), as ``wrk`` would be: httpx spent, on these 2
cores, about as much CPU per request as the server it measured.

Latency is measured at an offered load, open loop, as ``wrk2`` does: R
requests a second in all, request i due i / R seconds after the start on
connection i mod C, its latency counted from when it was due (one held up
behind a slow one counts its wait). R is 100 by default: a hundred agents
each sending a request every second, several times what they send while
an LLM's turn takes seconds (and a task, minutes, between two claims).
Each latency is measured in 3
rounds and the medians of their p50 and p99 are shown (each round's p99 is
in ``--format json``): a burst of another tenant's load on a shared machine
spoils one round, not the figure. Capacity is measured closed loop:
each connection sends its next request as soon as the last is answered, and
the requests per second it reached, with the p99 at that saturation (where
latency is mostly the queue of C requests), are shown beside.

- floor:    ``GET /health`` (a request that reads the journal's tail and nothing
            else);
- claim:    ``POST /api/v1/tasks/claim`` (a durable transaction each: lease,
            attempt, phase, token);
- read:     ``read_file`` through ``POST /api/v1/tools/execute`` in PLAN, each
            agent in its own sandbox created beforehand (token checked,
            permission checked, path confined, audit record fsynced, file read);
- denied:   ``write_file`` in PLAN, refused with 403 (checked and audited);
- snapshot: ``GET /api/v1/state/snapshot`` closed loop: requests/s.

Each latency is also shown as a ratio against the floor's in the same run;
the ratio is what compares across machines. Targets (AGENT-WF-017, 2 cores,
loopback): claim p99 <= 50 ms and tool check p99 <= 10 ms (at the offered
load), >= 500 snapshots/s.

    python bench/api.py                       # 2,000 tasks, 4 connections, 100/s
    python bench/api.py 500 --clients 8 --rate 200
    python bench/api.py --format json
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


class Response:
    """What :class:`Connection` read: the status, and the body."""

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            msg = f"unexpected {self.status_code}: {self.text[:300]}"
            raise SystemExit(msg)


class Connection:
    """One keep-alive HTTP/1.1 connection to the server; one request at a time.

    Connected again before a request after a pause: the server closes a
    connection idle for 5 s (uvicorn's keep-alive timeout).
    """

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        self.address = (host, int(port))
        self.host = f"{host}:{port}"
        self.socket: socket.socket | None = None
        self.used = 0.0
        self.buffer = b""

    def _connected(self) -> socket.socket:
        if self.socket is None or time.monotonic() - self.used > 2.0:
            if self.socket is not None:
                self.socket.close()
            self.socket = socket.create_connection(self.address)
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buffer = b""
        self.used = time.monotonic()
        return self.socket

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(self, path: str, json: Any, headers: dict[str, str] | None = None) -> Response:
        return self.request("POST", path, orjson_dumps(json), headers or {})

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Response:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self._connected().sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        while b"\r\n\r\n" not in self.buffer:
            self._receive()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(self.buffer) < length:
            self._receive()
        content, self.buffer = self.buffer[:length], self.buffer[length:]
        self.used = time.monotonic()
        return Response(status, content)

    def _receive(self) -> None:
        assert self.socket is not None
        chunk = self.socket.recv(1 << 20)
        if not chunk:
            msg = f"the server closed the connection; unread: {self.buffer[:300]!r}"
            raise SystemExit(msg)
        self.buffer += chunk

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()


def orjson_dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def in_parallel(clients: list[Connection], work: Callable[[int, Connection], None]) -> float:
    """Run ``work(index, client)`` in one thread per client; the wall seconds."""
    start = threading.Barrier(len(clients) + 1)

    def run(index: int, client: Connection) -> None:
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


def load(
    clients: list[Connection], count: int, request: Callable[[int, Connection], Response],
    *, rate: float | None = None, expect: int = 200,
) -> tuple[list[float], float]:  # fmt: skip
    """Seconds per request of ``count`` requests spread over the clients, and requests/s.

    Closed loop when ``rate`` is None: each connection sends its next request
    as soon as the last is answered, and a latency counts from the send.
    Open loop at ``rate`` per second in all: request i is due ``i / rate``
    seconds after the start, on connection ``i % len(clients)``, whether or
    not the one before it was answered, and its latency counts from when it
    was due (a request sent late behind a slow one counts the delay).
    """
    found: list[float] = []
    lock = threading.Lock()
    began = time.perf_counter() + 0.05

    def work(index: int, client: Connection) -> None:
        mine = []
        for number in range(index, count, len(clients)):
            if rate is None:
                due = time.perf_counter()
            else:
                due = began + number / rate
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
            answer = request(index, client)
            mine.append(time.perf_counter() - due)
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


def rounds(count: int, measure_once: Callable[[], list[float]]) -> dict[str, Any]:
    """``measure_once`` ``count`` times: the median p50 and p99 of the rounds, and each round's.

    A burst of another tenant's load on a shared machine spoils one round,
    not the figure.
    """
    each = [summary(measure_once()) for _ in range(count)]
    return {
        "p50_ms": statistics.median(r["p50_ms"] for r in each),
        "p99_ms": statistics.median(r["p99_ms"] for r in each),
        "rounds_p99_ms": [r["p99_ms"] for r in each],
    }


def measure(
    url: str, clients_count: int, rate: float, claims: int, tool_calls: int, seconds: float,
    repeat: int,
) -> dict[str, Any]:  # fmt: skip
    """Every figure of the benchmark; ``rate``: the requests offered per second."""
    clients = [Connection(url) for _ in range(clients_count)]
    counter = iter(range(10**9))

    def health(index: int, client: Connection) -> Response:
        return client.get("/health")

    def claim(index: int, client: Connection) -> Response:
        return client.post("/api/v1/tasks/claim", json={"agent_id": f"agent-{next(counter)}"})

    try:
        load(clients, 200, health)  # warm-up: connections, code paths
        results: dict[str, Any] = {
            "floor": rounds(repeat, lambda: load(clients, 600, health, rate=rate)[0]),
        }
        results["floor"].update(capacity(clients, 300, lambda i, c: c.get("/health")))
        results["claim"] = rounds(repeat, lambda: load(clients, claims, claim, rate=rate)[0])
        results["claim"].update(capacity(clients, claims // clients_count, claim))
        tokens = []
        for index, client in enumerate(clients):  # one agent per client, its sandbox made now
            answer = client.post("/api/v1/tasks/claim", json={"agent_id": f"reader-{index}"})
            tokens.append((answer.json()["task_id"], answer.json()["phase_token"]))
            call = {"task_id": tokens[-1][0], "tool": "read_file", "args": {"path": "src/app.py"}}
            client.post("/api/v1/tools/execute", json=call,
                        headers={"Authorization": f"Bearer {tokens[-1][1]}"})  # fmt: skip

        def tool(name: str, args: dict[str, str]) -> Callable[[int, Connection], Response]:
            def request(index: int, client: Connection) -> Response:
                task_id, token = tokens[index]
                return client.post("/api/v1/tools/execute",
                                   json={"task_id": task_id, "tool": name, "args": args},
                                   headers={"Authorization": f"Bearer {token}"})  # fmt: skip

            return request

        read = tool("read_file", {"path": "src/app.py"})
        denied = tool("write_file", {"path": "src/app.py", "content": "x"})
        results["read_file"] = rounds(repeat, lambda: load(clients, tool_calls, read, rate=rate)[0])
        results["read_file"].update(capacity(clients, tool_calls // clients_count, read))
        results["denied"] = rounds(
            repeat, lambda: load(clients, tool_calls, denied, rate=rate, expect=403)[0]
        )
        results["denied"].update(capacity(clients, tool_calls // clients_count, denied, 403))
        snapshots: list[float] = []
        stop = time.perf_counter() + seconds
        size = len(clients[0].get("/api/v1/state/snapshot").content)

        def hammer(index: int, client: Connection) -> None:
            while time.perf_counter() < stop:
                began = time.perf_counter()
                client.get("/api/v1/state/snapshot").raise_for_status()
                snapshots.append(time.perf_counter() - began)

        wall = in_parallel(clients, hammer)
    finally:
        for client in clients:
            client.close()
    results["snapshot"] = {**summary(snapshots), "per_s": len(snapshots) / wall, "bytes": size}
    floor = results["floor"]
    for name in ("claim", "read_file", "denied"):
        results[name]["ratio_p99"] = results[name]["p99_ms"] / floor["p99_ms"]
    results["snapshot"]["ratio_per_s"] = results["snapshot"]["per_s"] / floor["capacity_per_s"]
    return results


def capacity(
    clients: list[Connection], each: int, request: Callable[[int, Connection], Response],
    expect: int = 200,
) -> dict[str, float]:  # fmt: skip
    """Closed loop, ``each`` requests per connection back to back: requests/s and the p99."""
    found, per_s = load(clients, each * len(clients), request, expect=expect)
    return {"capacity_per_s": per_s, "capacity_p99_ms": percentile(found, 0.99) * 1e3}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="?", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4, help="keep-alive connections (threads)")
    parser.add_argument(
        "--rate",
        type=float,
        default=100.0,
        help="requests offered per second, in all, when latency is measured",
    )
    parser.add_argument("--claims", type=int, default=300, help="claims to time, each round")
    parser.add_argument(
        "--tool-calls", type=int, default=600, help="tool calls to time, each round and kind"
    )
    parser.add_argument("--rounds", type=int, default=3,
                        help="of each latency measurement (their medians are shown)")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=5.0, help="of snapshot requests")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    options = parser.parse_args(argv)
    if (options.rounds + 1) * options.claims + options.clients > options.tasks:
        parser.error("need more tasks than (rounds + 1) x claims + clients: a claim takes a task")
    with tempfile.TemporaryDirectory(prefix="bench-api-") as name:
        root = Path(name) / "p"
        os.environ["XDG_CACHE_HOME"] = name  # never the user's plan cache
        make_pipeline(root, options.tasks)
        process, url = start_server(root)
        try:
            results = measure(url, options.clients, options.rate, options.claims,
                              options.tool_calls, options.seconds, options.rounds)  # fmt: skip
        finally:
            process.terminate()
            process.wait(30)
    document = {"tasks": options.tasks, "clients": options.clients, "rate_per_s": options.rate,
                "rounds": options.rounds, "targets": TARGETS, **results}  # fmt: skip
    if options.format == "json":
        print(json.dumps(document, indent=2))
        return
    print(f"{options.tasks} ready tasks, {options.clients} connections; latency open loop at "
          f"{options.rate:g} requests/s offered, medians of {options.rounds} rounds; capacity "
          "closed loop")  # fmt: skip
    print(f"{'request':<22}{'p50 ms':>8}{'p99 ms':>8}{'÷ floor':>9}{'target':>11}"
          f"{'capacity/s':>12}{'its p99 ms':>12}")  # fmt: skip
    rows = (("GET /health (floor)", "floor", None), ("claim", "claim", "claim_p99_ms"),
            ("tools/execute read", "read_file", "tool_p99_ms"),
            ("tools/execute denied", "denied", "tool_p99_ms"))  # fmt: skip
    for label, key, target in rows:
        row = results[key]
        ratio = f"{row['ratio_p99']:.1f}" if "ratio_p99" in row else ""
        goal = "" if target is None else "≤ " + format(TARGETS[target], "g") + " ms"
        print(f"{label:<22}{row['p50_ms']:>8.2f}{row['p99_ms']:>8.2f}{ratio:>9}{goal:>11}"
              f"{row['capacity_per_s']:>12.0f}{row['capacity_p99_ms']:>12.2f}")  # fmt: skip
    snap = results["snapshot"]
    print(f"snapshot: {snap['per_s']:.0f} req/s closed loop ({snap['bytes'] / 1024:.0f} KiB each; "
          f"p50 {snap['p50_ms']:.2f} ms), {snap['ratio_per_s']:.2f} × the floor's capacity; "
          f"target ≥ {TARGETS['snapshot_per_s']:g}/s")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
