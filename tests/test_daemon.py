"""`orchestration daemon`: the real daemon, its real children, real signals, on real pipelines."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from orchestration.cli import main
from orchestration.config import load_config
from orchestration.daemon import ChildSpec, Supervisor, status_report
from orchestration.state.pidfile import DaemonRunning, PidFile, probe
from runs import FAKES, FAST, pipeline, snapshot, statuses, task
from webhooks import Receiver, receiving

T = TypeVar("T")
Capture = pytest.CaptureFixture[str]

FASTER = {
    **FAST,
    "ORCHESTRATOR_LEASES_TTL_SECONDS": "1",
    "ORCHESTRATOR_LEASES_SWEEP_INTERVAL_SECONDS": "0.2",
    "ORCHESTRATOR_DAEMON_RESTART_BASE_SECONDS": "0.1",
    "ORCHESTRATOR_DAEMON_RESTART_MAX_SECONDS": "1",
    "ORCHESTRATOR_DAEMON_POLL_SECONDS": "0.1",
    "ORCHESTRATOR_DAEMON_DRAIN_SECONDS": "0.5",
}


def environment(cache: Path) -> dict[str, str]:
    """This process's environment without ORCHESTRATOR_*, with short TTLs and backoffs."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    return {**clean, **FASTER, "XDG_CACHE_HOME": str(cache),
            "PATH": f"{FAKES}:{os.environ['PATH']}"}  # fmt: skip


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """Run in-process commands (and the daemons they spawn) with ``values`` as environment."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name not in values:
                patch.delenv(name)
        for name, value in values.items():
            patch.setenv(name, value)
        yield


def cli(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``orchestration --root ROOT ARGS`` in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "orchestration", "--root", str(root), *args],
        capture_output=True, text=True, env=env, timeout=30, check=False,
    )  # fmt: skip


def wait_for(condition: Callable[[], T], what: str, timeout: float = 15.0) -> T:
    """Poll ``condition`` until it returns something true; its value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def report(root: Path) -> dict[str, Any]:
    """What `daemon status --format json` prints (the same function, in this process)."""
    return status_report(root)


def child(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in document["children"] if c["name"] == name)


def add_task(root: Path, env: dict[str, str], document: dict[str, Any]) -> None:
    """Write a task file and sync it (`watch` may sync it first: either way it is new work)."""
    folder = root / "tasks" / document["workstream_id"]
    (folder / f"{document['task_id']}.json").write_text(json.dumps(document))
    with environ(env):
        assert main(["--root", str(root), "sync"]) == 0


def status_of(root: Path, task_id: str) -> str | None:
    """The task's runtime status; ``None`` before the first sync wrote the snapshot."""
    if not (root / ".state" / "current.json").exists():
        return None
    return statuses(root).get(task_id)


def running(root: Path, task_id: str) -> bool:
    return status_of(root, task_id) == "running"


def log_lines(root: Path) -> list[dict[str, Any]]:
    text = (root / ".state" / "logs" / "engine.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def start(root: Path, env: dict[str, str]) -> int:
    """``daemon start`` in a fresh process, as a person types it; the daemon's pid."""
    done = cli(root, env, "daemon", "start", "--format", "json")
    assert done.returncode == 0, done.stderr
    pid: int = json.loads(done.stdout)["pid"]
    return pid


def stop(root: Path, env: dict[str, str]) -> None:
    """Stop the daemon if it runs (test teardown)."""
    if probe(root / ".state" / "daemon.pid").running:
        with environ(env):
            main(["--root", str(root), "daemon", "stop"])


# --- one daemon shared by the tests of its everyday life ---------------------------------------


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with receiving() as server:
        yield server


@pytest.fixture(scope="module")
def shared(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver
) -> Iterator[tuple[Path, dict[str, str], int]]:
    """A daemon on a one-task pipeline whose webhooks are the receiver and a dead URL."""
    env = environment(tmp_path_factory.mktemp("cache"))
    root = pipeline(tmp_path_factory.mktemp("daemon") / "p", task("a", "true"))
    (root / "orchestration.yaml").write_text(
        f"notifications:\n  webhooks: [{receiver.url}, http://127.0.0.1:9/dead]\n"
        "  retry_base_seconds: 0.05\n  timeout_seconds: 1\n"
    )
    pid = start(root, env)
    yield root, env, pid
    stop(root, env)


def test_start_runs_the_pipeline_and_status_reports_it_OBS_010(
    shared: tuple[Path, dict[str, str], int], capsys: Capture
) -> None:
    root, _, pid = shared
    document = report(root)
    assert document["running"] is True and document["pid"] == pid
    assert document["uptime_seconds"] >= 0 and document["stale_pid"] is None
    assert {c["name"] for c in document["children"]} == {"run", "watch"}
    assert (root / ".state" / "daemon.pid").read_text().strip() == str(pid)
    wait_for(lambda: status_of(root, "a") == "succeeded", "task a to succeed")
    capsys.readouterr()
    assert main(["--root", str(root), "daemon", "status"]) == 0
    assert f"running (pid {pid}" in capsys.readouterr().out


def test_a_second_daemon_is_refused_OBS_010(
    shared: tuple[Path, dict[str, str], int], capsys: Capture
) -> None:
    root, env, pid = shared
    with environ(env):
        for command in ("start", "run"):
            assert main(["--root", str(root), "daemon", command]) == 1, command
            assert f"a daemon already runs on {root} (pid {pid})" in capsys.readouterr().err
    assert report(root)["pid"] == pid  # the first one is untouched


def test_new_work_starts_run_again_OBS_010(shared: tuple[Path, dict[str, str], int]) -> None:
    root, env, _ = shared
    wait_for(lambda: child(report(root), "run")["state"] == "idle", "run to finish")
    finished = child(report(root), "run")
    assert finished["pid"] is None and finished["last_exit"] == 0  # it ended, it did not crash
    add_task(root, env, task("later", "true"))
    wait_for(lambda: status_of(root, "later") == "succeeded", "the new task to run")
    again = child(report(root), "run")
    assert again["restarts"] == finished["restarts"] + 1  # the daemon started `run` once more
    assert status_of(root, "later") == "succeeded"


def test_a_killed_child_is_restarted_and_the_pipeline_completes_OBS_011(
    shared: tuple[Path, dict[str, str], int],
) -> None:
    root, env, _ = shared
    add_task(root, env, task("slow", "sleep 1"))
    wait_for(lambda: running(root, "slow"), "task slow to run")
    before = report(root)
    for name in ("run", "watch"):
        os.kill(child(before, name)["pid"], signal.SIGKILL)
    for name in ("run", "watch"):
        wait_for(lambda name=name: child(report(root), name)["restarts"]  # type: ignore[misc]
                 > child(before, name)["restarts"], f"{name} to be restarted")  # fmt: skip
    # The new `run` adopts the attempt of the killed one once its lease expires (1 s).
    wait_for(lambda: status_of(root, "slow") == "succeeded", "task slow to succeed")
    assert report(root)["running"] is True


def test_failures_and_run_completions_are_posted_to_webhooks_OBS_012(
    shared: tuple[Path, dict[str, str], int], receiver: Receiver
) -> None:
    root, env, _ = shared
    add_task(root, env, task("broken", "exit 3"))
    failed = wait_for(
        lambda: [n for n in receiver.delivered if n.get("task_id") == "broken"],
        "the failure to be posted",
    )
    assert failed[0]["kind"] == "task.failed" and failed[0]["failure_mode"] == "FM-NONZERO-EXIT"
    assert failed[0]["root"] == str(root) and failed[0]["schema_version"] == "1.0.0"
    finished = wait_for(
        lambda: [n for n in receiver.delivered if "broken" in n.get("failed", [])],
        "the run's completion to be posted",
    )
    assert finished[0]["kind"] == "run.finished" and finished[0]["exit_code"] == 1


def test_logs_are_json_lines_with_ts_level_event_OBS_005(
    shared: tuple[Path, dict[str, str], int],
) -> None:
    root, env, pid = shared
    wait_for(lambda: status_of(root, "a") == "succeeded", "task a to succeed")
    lines = log_lines(root)
    for line in lines:
        assert {"ts", "level", "event"} <= set(line), line
        assert line["level"] in ("debug", "info", "warning", "error", "critical")
    events = {(line["component"], line["event"]) for line in lines}
    assert {("daemon", "daemon.started"), ("daemon", "child.started")} <= events
    assert {("run", "run.started"), ("run", "attempt.started"), ("run", "run.finished")} <= events
    started = next(line for line in lines if line["event"] == "attempt.started")
    assert started["task_id"] == "a" and started["attempt"] == 1 and started["seq"] >= 1
    assert any(line["pid"] == pid for line in lines)


# --- stopping ---------------------------------------------------------------------------------


def test_sigterm_stops_the_daemon_within_10_s_with_state_consistent_OBS_011(
    tmp_path: Path, capsys: Capture
) -> None:
    env = environment(tmp_path / "cache")
    root = pipeline(tmp_path / "p", task("s", "sleep 30"))
    pid = start(root, env)
    try:
        wait_for(lambda: running(root, "s"), "task s to run")
        began = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not probe(root / ".state" / "daemon.pid").running, "the daemon to exit")
        assert time.monotonic() - began < 10
    finally:
        stop(root, env)
    assert not (root / ".state" / "daemon.pid").exists()
    # The attempt was stopped after daemon.drain_seconds and its lease released.
    assert statuses(root) == {"s": "ready"}
    assert all(entry.get("lease") is None for entry in snapshot(root)["tasks"].values())
    capsys.readouterr()
    assert main(["--root", str(root), "state", "verify"]) == 0
    assert report(root)["running"] is False
    assert main(["--root", str(root), "daemon", "stop"]) == 0
    assert "nothing to stop" in capsys.readouterr().out


def test_after_kill_9_status_says_not_running_and_the_children_exit_OBS_010(
    tmp_path: Path, capsys: Capture
) -> None:
    env = environment(tmp_path / "cache")
    root = pipeline(tmp_path / "p", task("a", "true"))
    pid = start(root, env)
    children = [c["pid"] for c in report(root)["children"]]
    assert all(children)  # `start` returns once the children are started
    os.kill(pid, signal.SIGKILL)
    document = wait_for(lambda: (d := report(root))["running"] is False and d, "not running")
    assert document["stale_pid"] == pid and document["pid"] is None
    capsys.readouterr()
    with pytest.raises(SystemExit, match="1"):  # exit code 1: not running
        main(["--root", str(root), "daemon", "status"])
    assert f"stale PID file of pid {pid}" in capsys.readouterr().out
    if sys.platform == "linux":  # the children were told to stop when the daemon died
        wait_for(lambda: not any(_alive(p) for p in children), "the orphaned children to exit")


def test_a_pid_file_naming_a_live_process_is_no_daemon_and_is_taken_over_OBS_010(
    tmp_path: Path,
) -> None:
    """A reused pid (here a live process's) without the lock is stale; a new daemon takes it."""
    (tmp_path / ".state").mkdir()
    path = tmp_path / ".state" / "daemon.pid"
    path.write_text(f"{os.getppid()}\n")
    document = report(tmp_path)
    assert document["running"] is False and document["stale_pid"] == os.getppid()
    pidfile = PidFile(path)
    pidfile.acquire()
    try:
        assert report(tmp_path)["running"] is True and report(tmp_path)["pid"] == os.getpid()
        with pytest.raises(DaemonRunning, match=f"pid {os.getpid()}"):
            PidFile(path).acquire()  # the lock is per open file: a second one is refused
    finally:
        pidfile.release()
    assert not path.exists() and report(tmp_path)["running"] is False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: its parent (the killed daemon) will never reap it; init does.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


# --- the supervisor in this process -----------------------------------------------------------


def test_a_child_that_exits_at_once_is_restarted_with_growing_backoff_OBS_011(
    tmp_path: Path,
) -> None:
    config = load_config(tmp_path, {"ORCHESTRATOR_DAEMON_RESTART_BASE_SECONDS": "0.1",
                                    "ORCHESTRATOR_DAEMON_POLL_SECONDS": "0.05"})  # fmt: skip
    flaky = ChildSpec("flaky", ("no-such-command",))  # a usage error: exit 2 at once
    supervisor = Supervisor(tmp_path, config, specs=[flaky])

    def stop_after_three_starts() -> None:
        wait_for(lambda: supervisor.children[0].starts >= 3, "three starts")
        supervisor.stopping = "test"

    threading.Thread(target=stop_after_three_starts, daemon=True).start()
    assert supervisor.run() == 0
    lines = log_lines(tmp_path)
    crashes = [line for line in lines if line["event"] == "child.crashed"]
    assert len(crashes) >= 2 and all(c["exit_code"] == 2 for c in crashes)
    # base 0.1 s doubling with jitter: the second wait is in [0.1, 0.2], the first in [0.05, 0.1]
    assert crashes[0]["restart_in"] <= crashes[1]["restart_in"]
    assert lines[-1]["event"] == "daemon.stopped"
    assert not (tmp_path / ".state" / "daemon.pid").exists()
