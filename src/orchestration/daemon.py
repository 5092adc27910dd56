"""The daemon: ``run``, ``watch`` and ``serve`` supervised in the background (OBS-010, OBS-011).

Stability: provisional (``daemon status --format json`` is stable: ``schema_version`` 1.0.0).

:class:`Supervisor` is what ``orchestration daemon run`` runs, in the
foreground, and what ``daemon start`` spawns detached (its own session,
stdout and stderr appended to ``.state/logs/daemon.out``). It holds the lock
of ``.state/daemon.pid`` for its whole life (:mod:`.state.pidfile`), so a
second daemon on the repository is refused and ``daemon status`` tells a
live daemon from a stale PID file even after ``kill -9``.

Its children are ``python -m orchestration --root ROOT run --format json``,
``watch --format json`` and, when ``daemon.serve`` is set, ``serve``, each in
its own session (a Ctrl-C of the terminal reaches only the daemon, which
decides what the children get). On Linux each child asks the kernel for
SIGTERM when the daemon dies, so a ``kill -9`` of the daemon leaves no
orphan working on (``run`` drains on SIGTERM).

- A child that crashes (killed by a signal, or exiting with any code but
  the 0 or 1 of a finished ``run``) is restarted after an exponential
  backoff with jitter (``daemon.restart_base_seconds`` doubling up to
  ``daemon.restart_max_seconds``); a child that ran 30 s first starts
  afresh. A child that exits at once (a usage error) is thus retried ever
  more slowly, and logged each time.
- ``run`` finishes when nothing in scope can move. The daemon then reads the
  snapshot every ``daemon.poll_seconds`` (without locking, and only when
  the file changed) and starts ``run`` again when a task is ready that was
  not when it finished: ``watch`` synced an edit, a person unblocked one...
- The events of ``run`` reach the :class:`~.notify.Notifier`: failures for
  good and run completions are notified (OBS-012).
- On SIGTERM, SIGINT or SIGHUP it stops: SIGTERM to every child (``run``
  stops dispatching and lets attempts finish), after
  ``daemon.drain_seconds`` a second signal (SIGINT: ``run`` stops its
  attempts and releases their leases), and SIGKILL to what is left at 9 s,
  so it exits within 10 s (OBS-011) with the state as the store left it.

Every step is logged to ``.state/logs/engine.jsonl`` (component ``daemon``).
"""

from __future__ import annotations

import contextlib
import enum
import os
import random
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .errors import OrchestrationError, UsageError
from .failures import backoff_seconds
from .logs import EventLog, open_output
from .notify import Notifier
from .state.layout import layout
from .state.pidfile import DaemonRunning, PidFile, probe

if TYPE_CHECKING:
    from .config import Config

__all__ = [
    "OUTPUT",
    "REPORT_VERSION",
    "STOP_SECONDS",
    "ChildSpec",
    "ChildState",
    "DaemonRunning",
    "Supervisor",
    "check_serve",
    "children_of",
    "start_daemon",
    "status_report",
    "stop_daemon",
]

REPORT_VERSION = "1.0.0"
OUTPUT = "daemon.out"  # the detached daemon's stdout and stderr, under .state/logs/
STOP_SECONDS = 9.0  # from SIGTERM to SIGKILL of what is left: the daemon exits within 10 s
STABLE_SECONDS = 30.0  # a child that ran this long before it crashed restarts without backoff
START_TIMEOUT = 15.0  # `daemon start` waits this long for the daemon to report
_TICK = 0.05

# Run in each child on Linux before the command: SIGTERM when the daemon dies
# (PR_SET_PDEATHSIG, kept across exec), unless it already died meanwhile.
_LAUNCHER = """\
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
if os.getppid() != int(sys.argv[1]):
    sys.exit(0)
from orchestration.cli import main
sys.argv = ["orchestration", *sys.argv[2:]]
sys.exit(main(sys.argv[1:]))
"""


class ChildState(enum.StrEnum):
    """Where a child of the daemon is."""

    RUNNING = "running"  # its process is alive
    IDLE = "idle"  # `run` finished; started again when new work appears
    BACKOFF = "backoff"  # crashed (or not started yet); started when its backoff ends
    STOPPED = "stopped"  # the daemon is stopping and the child has exited


@dataclass(frozen=True)
class ChildSpec:
    """A command the daemon keeps running."""

    name: str
    args: tuple[str, ...]  # after `orchestration --root ROOT`
    finishes: bool = False  # `run`: ends when nothing can move; exit 0 or 1 is no crash
    events: bool = False  # stdout is `run --format json` events, read by the daemon
    output: str | None = None  # else stdout is appended to this file under .state/logs/


@dataclass
class _Child:
    spec: ChildSpec
    state: ChildState = ChildState.BACKOFF
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    crashes: int = 0  # in a row
    started_at: float | None = None  # wall clock, of the current process
    started: float = 0.0  # monotonic, of the current process
    due: float = 0.0  # monotonic: when a child in backoff starts
    last_exit: int | None = None
    reader: threading.Thread | None = None
    summary: dict[str, Any] | None = None  # the last event of `run --format json`

    def report(self, now: float) -> dict[str, Any]:
        alive = self.process is not None
        return {
            "name": self.spec.name,
            "state": str(self.state),
            "pid": self.process.pid if self.process is not None else None,
            "started_at": self.started_at if alive else None,
            "restarts": max(0, self.starts - 1),
            "last_exit": self.last_exit,
            "next_start_in": round(max(0.0, self.due - now), 3)
            if self.state is ChildState.BACKOFF
            else None,
        }


def children_of(config: Config) -> list[ChildSpec]:
    """What the daemon runs: ``run`` and ``watch``, and ``serve`` when ``daemon.serve``."""
    specs = [
        ChildSpec("run", ("run", "--format", "json"), finishes=True, events=True),
        ChildSpec("watch", ("watch", "--format", "json"), output="watch.jsonl"),
    ]
    if config.daemon.serve:
        specs.append(ChildSpec("serve", ("serve", "--format", "json"), output="serve.jsonl"))
    return specs


def check_serve(config: Config) -> None:
    """Refuse a daemon whose ``serve`` child could never start (AGENT-WF-008).

    Raises:
        UsageError: ``daemon.serve`` is set without a usable ``ORCHESTRATOR_JWT_SECRET``.
    """
    if not config.daemon.serve:
        return
    from .enforcement.tokens import secret_problem

    problem = secret_problem(config.jwt_secret)
    if problem is not None:
        msg = (f"daemon.serve is set but `serve` would refuse to start: {problem}; export "
               "ORCHESTRATOR_JWT_SECRET, or set daemon.serve to false")  # fmt: skip
        raise UsageError(msg)


class Supervisor:
    """The daemon's loop over its children; :meth:`run` returns when it has stopped.

    Args:
        root: the pipeline root.
        config: the resolved configuration (``daemon`` and ``notifications``).
        specs: the children (default: :func:`children_of`).
        console: where notifications are printed (the daemon's stderr).
    """

    def __init__(
        self,
        root: Path,
        config: Config,
        specs: Sequence[ChildSpec] | None = None,
        console: IO[str] | None = None,
    ) -> None:
        self.root = root
        self.config = config.daemon
        self.files = layout(root)
        self.children = [_Child(spec) for spec in (specs or children_of(config))]
        self.log = EventLog(self.files.logs, component="daemon")
        self.notifier = Notifier(root, config.notifications, self.log, console)
        self.pidfile = PidFile(self.files.daemon)
        self.random = random.Random()
        self.stopping = ""  # the signal that stops the daemon, once one came
        self.started_at = time.time()
        self.left: frozenset[str] = frozenset()  # ready tasks when `run` last finished
        self.seen: int | None = None  # the snapshot's mtime when last read
        self.next_poll = 0.0

    # --- life ---------------------------------------------------------------------------

    def run(self) -> int:
        """Supervise until SIGTERM, SIGINT or SIGHUP; returns the exit code (0).

        Raises:
            DaemonRunning: another daemon holds the repository (exit 1).
        """
        try:
            self.pidfile.acquire()
        except DaemonRunning:
            self.notifier.close(0.0)
            self.log.close()
            raise
        wake, wakeup = socket.socketpair()
        wake.setblocking(False)
        wakeup.setblocking(False)
        previous = self._install(wakeup.fileno())
        try:
            self.log.info("daemon.started", root=str(self.root),
                          children=[c.spec.name for c in self.children])  # fmt: skip
            while not self.stopping:  # the first tick starts the children, then reports
                self._tick()
                timeout = self._timeout()
                with contextlib.suppress(InterruptedError):
                    readable, _, _ = select.select([wake], [], [], timeout)
                    if readable:
                        with contextlib.suppress(BlockingIOError):
                            wake.recv(4096)
            self._shutdown()
        finally:
            for number, handler in previous:
                signal.signal(number, handler)
            signal.set_wakeup_fd(-1)
            wake.close()
            wakeup.close()
            self.log.info("daemon.stopped", signal=self.stopping)
            self.log.close()
            self.pidfile.release()
        return 0

    def _install(self, fd: int) -> list[tuple[int, Any]]:
        """Stop on SIGTERM, SIGINT, SIGHUP; wake on SIGCHLD (through the wakeup fd)."""
        signal.set_wakeup_fd(fd, warn_on_full_buffer=False)

        def stop(signum: int, frame: object) -> None:
            self.stopping = self.stopping or signal.Signals(signum).name

        def child(signum: int, frame: object) -> None:
            return None  # the wakeup fd wakes the loop, which polls the children

        handlers: list[tuple[int, Callable[[int, Any], None]]] = [
            (signal.SIGTERM, stop), (signal.SIGINT, stop), (signal.SIGHUP, stop),
            (signal.SIGCHLD, child),
        ]  # fmt: skip
        return [(number, signal.signal(number, handler)) for number, handler in handlers]

    def _timeout(self) -> float:
        """How long the loop may sleep: until a backoff ends or the next poll."""
        now = time.monotonic()
        waits = [self.config.poll_seconds]
        waits += [c.due - now for c in self.children if c.state is ChildState.BACKOFF]
        waits += [self.next_poll - now for c in self.children if c.state is ChildState.IDLE]
        return max(_TICK, min(waits))

    def _tick(self) -> None:
        changed = False
        now = time.monotonic()
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                self._ended(child, now)
                changed = True
        for child in self.children:
            if child.state is ChildState.BACKOFF and now >= child.due:
                self._start(child)
                changed = True
            elif child.state is ChildState.IDLE and now >= self.next_poll:
                self.next_poll = now + self.config.poll_seconds
                if self._new_work():
                    self._start(child)
                    changed = True
        if changed:
            self._publish("running")

    # --- children -----------------------------------------------------------------------

    def _argv(self, spec: ChildSpec) -> list[str]:
        command = ["--root", str(self.root), *spec.args]
        if sys.platform == "linux":
            return [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *command]
        return [sys.executable, "-m", "orchestration", *command]

    def _start(self, child: _Child) -> None:
        spec = child.spec
        output: IO[bytes] | None = None
        try:
            if spec.output is not None:
                output = open_output(self.files.logs, spec.output)
            stdout: Any = subprocess.PIPE if spec.events else output
            process = subprocess.Popen(
                self._argv(spec), cwd=self.root, stdin=subprocess.DEVNULL, stdout=stdout,
                start_new_session=True,  # the terminal's Ctrl-C is the daemon's to pass on
            )  # fmt: skip
        except OSError as error:
            self._backoff(child, time.monotonic(), f"cannot start: {error}")
            return
        finally:
            if output is not None:
                output.close()  # the child has its own copy
        child.process = process
        child.state = ChildState.RUNNING
        child.starts += 1
        child.started = time.monotonic()
        child.started_at = time.time()
        child.summary = None
        self.log.info("child.started", child=spec.name, child_pid=process.pid,
                      restarts=child.starts - 1)  # fmt: skip
        if spec.events:
            assert process.stdout is not None
            child.reader = threading.Thread(target=self._read_events,
                                            args=(child, process.stdout),
                                            daemon=True, name=f"{spec.name}-events")  # fmt: skip
            child.reader.start()

    def _read_events(self, child: _Child, stream: IO[bytes]) -> None:
        import orjson

        with stream:
            for raw in stream:
                try:
                    event = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue  # not an event: `run` prints only JSON on stdout, but be lenient
                if isinstance(event, dict):
                    if event.get("entity") == "run":
                        child.summary = event
                    self.notifier.observe(event)

    def _ended(self, child: _Child, now: float) -> None:
        assert child.process is not None
        code = child.process.returncode
        pid = child.process.pid
        child.process = None
        child.last_exit = code
        if child.reader is not None:
            child.reader.join(1.0)  # its last events are notified before a restart
            child.reader = None
        finished = child.spec.finishes and code in (0, 1) and self.files.snapshot.exists()
        if finished:
            child.state = ChildState.IDLE
            child.crashes = 0
            # What `run` left ready (manual tasks, ...) is no new work; a task that became
            # ready since it decided to end (a sync meanwhile) is, so the next poll reads.
            waiting = (child.summary or {}).get("waiting", [])
            self.left = (self._ready_tasks() or frozenset()) & frozenset(waiting)
            self.seen = None
            self.next_poll = now + self.config.poll_seconds
            self.log.info("child.finished", child=child.spec.name, child_pid=pid, exit_code=code,
                          left_ready=len(self.left))  # fmt: skip
            return
        if now - child.started >= STABLE_SECONDS:
            child.crashes = 0
        how = f"killed by {_signal_name(-code)}" if code < 0 else f"exit code {code}"
        self._backoff(child, now, how, child_pid=pid, exit_code=code)

    def _backoff(self, child: _Child, now: float, why: str, **fields: Any) -> None:
        child.crashes += 1
        delay = backoff_seconds(child.crashes, self.config.restart_base_seconds,
                                self.config.restart_max_seconds, self.random)  # fmt: skip
        child.state = ChildState.BACKOFF
        child.due = now + delay
        self.log.warning("child.crashed", child=child.spec.name, why=why,
                         restart_in=round(delay, 3), crashes=child.crashes, **fields)  # fmt: skip

    # --- new work -----------------------------------------------------------------------

    def _ready_tasks(self) -> frozenset[str] | None:
        """The ready tasks of the snapshot (``None`` when it cannot be read); never locks."""
        from .state import SnapshotError, read_snapshot

        try:
            self.seen = self.files.snapshot.stat().st_mtime_ns
            state = read_snapshot(self.files.snapshot)
        except (OSError, SnapshotError) as error:
            self.log.warning("daemon.snapshot_unreadable", error=str(error))
            return None
        if state is None:
            return None
        return frozenset(t for t, e in state.tasks.items() if e.get("status") == "ready")

    def _new_work(self) -> bool:
        """Whether a task is ready that was not when ``run`` last finished."""
        try:
            mtime = self.files.snapshot.stat().st_mtime_ns
        except OSError:
            return False
        if mtime == self.seen:
            return False
        ready = self._ready_tasks()
        fresh = sorted((ready or frozenset()) - self.left)
        if not fresh:
            return False
        self.log.info("daemon.new_work", tasks=fresh[:20], count=len(fresh))
        return True

    # --- stopping -----------------------------------------------------------------------

    def _shutdown(self) -> None:
        """Stop the children gracefully, then firmly; at most STOP_SECONDS."""
        begin = time.monotonic()
        self.log.info("daemon.stopping", signal=self.stopping)
        self._publish("stopping")
        live = [c for c in self.children if c.process is not None]
        self._signal(live, signal.SIGTERM)
        second = begin + min(self.config.drain_seconds, STOP_SECONDS - 1.0)
        deadline = begin + STOP_SECONDS
        sent_second = False
        while live:
            time.sleep(_TICK)
            now = time.monotonic()
            for child in list(live):
                assert child.process is not None
                if child.process.poll() is not None:
                    self.log.info("child.stopped", child=child.spec.name,
                                  exit_code=child.process.returncode)  # fmt: skip
                    live.remove(child)
            if live and not sent_second and now >= second:
                sent_second = True
                self._signal(live, signal.SIGINT)  # `run`: stop the attempts, release leases
            if live and now >= deadline:
                self._signal(live, signal.SIGKILL)
                for child in live:
                    assert child.process is not None
                    child.process.wait()
                    why = f"still running {STOP_SECONDS:g} s after SIGTERM"
                    self.log.error("child.killed", child=child.spec.name, why=why)
                live = []
        for child in self.children:
            if child.reader is not None:
                child.reader.join(max(0.0, deadline - time.monotonic()))
            child.process = None
            child.state = ChildState.STOPPED
        self.notifier.close(max(0.1, begin + STOP_SECONDS + 0.5 - time.monotonic()))

    def _signal(self, children: Sequence[_Child], number: signal.Signals) -> None:
        for child in children:
            assert child.process is not None
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(number)
            self.log.info("child.signalled", child=child.spec.name, signal=number.name)

    def _publish(self, state: str) -> None:
        now = time.monotonic()
        self.pidfile.publish({
            "schema_version": REPORT_VERSION, "root": str(self.root), "state": state,
            "started_at": self.started_at, "children": [c.report(now) for c in self.children],
        })  # fmt: skip


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


# --- the commands' side: start, stop, status ------------------------------------------------


def start_daemon(root: Path) -> int:
    """Spawn ``daemon run`` detached and wait until it reports; returns its pid.

    Raises:
        DaemonRunning: a daemon already runs on ``root`` (exit 1).
        OrchestrationError: the daemon exited at once, or did not report in time;
            the message holds the end of ``.state/logs/daemon.out``.
    """
    files = layout(root)
    found = probe(files.daemon)
    if found.running:
        msg = (f"a daemon already runs on {root} (pid {found.pid}); "
               "`orchestration daemon stop` stops it")  # fmt: skip
        raise DaemonRunning(msg)
    with open_output(files.logs, OUTPUT) as output:
        offset = output.tell()
        argv = [sys.executable, "-m", "orchestration", "--root", str(root), "daemon", "run"]
        pid = os.posix_spawn(
            sys.executable, argv, os.environ, setsid=True,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, output.fileno(), 1),
                (os.POSIX_SPAWN_DUP2, output.fileno(), 2),
            ],
        )  # fmt: skip
    end = time.monotonic() + START_TIMEOUT
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            said = _tail(files.logs / OUTPUT, offset)
            msg = f"the daemon exited at once (exit code {code}): {said}"
            raise (UsageError if code == 2 else OrchestrationError)(msg)
        found = probe(files.daemon)
        if found.running and found.pid == pid and found.report is not None:
            return pid
        time.sleep(_TICK)
    msg = (f"the daemon (pid {pid}) did not report within {START_TIMEOUT:g} s; "
           f"see {files.logs / OUTPUT}")  # fmt: skip
    raise OrchestrationError(msg)


def stop_daemon(root: Path, timeout: float = 10.0) -> int | None:
    """SIGTERM the daemon and wait until it has exited; returns its pid, ``None`` if none ran.

    Raises:
        OrchestrationError: it still runs ``timeout`` seconds later (exit 1).
    """
    files = layout(root)
    found = probe(files.daemon)
    end = time.monotonic() + timeout
    while found.running and found.pid is None and time.monotonic() < end:
        time.sleep(_TICK)  # it is starting: its pid is being written
        found = probe(files.daemon)
    if not found.running or found.pid is None:
        return None
    os.kill(found.pid, signal.SIGTERM)
    while time.monotonic() < end:
        if not probe(files.daemon).running:
            return found.pid
        time.sleep(_TICK)
    msg = (f"the daemon (pid {found.pid}) still runs {timeout:g} s after SIGTERM; see "
           f"{files.logs / OUTPUT}, and `kill -9 {found.pid}` if it is stuck (the next "
           "`run` recovers the leases it held)")  # fmt: skip
    raise OrchestrationError(msg)


def status_report(root: Path) -> dict[str, Any]:
    """Whether a daemon runs on ``root``, with its pid, uptime and children.

    ``running`` is decided by the lock of the PID file, so it is true only
    while the daemon's process lives, whatever became of its pid since.
    """
    found = probe(layout(root).daemon)
    now = time.time()
    document: dict[str, Any] = {
        "schema_version": REPORT_VERSION,
        "root": str(root),
        "running": found.running,
        "pid": found.pid if found.running else None,
        "stale_pid": found.pid if found.stale else None,
        "state": None,
        "started": None,
        "uptime_seconds": None,
        "children": [],
    }
    report = found.report if found.running else None
    if report is None:
        return document
    started_at = report.get("started_at")
    document["state"] = report.get("state")
    if isinstance(started_at, int | float):
        document["started"] = _iso(started_at)
        document["uptime_seconds"] = round(now - started_at, 3)
    for child in report.get("children", []):
        since = child.get("started_at")
        uptime = round(now - since, 3) if isinstance(since, int | float) else None
        document["children"].append({**child, "uptime_seconds": uptime})
    return document


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _tail(path: Path, offset: int, size: int = 2000) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(max(offset, path.stat().st_size - size))
            text = handle.read().decode("utf-8", "replace").strip()
    except OSError:
        return "(no output)"
    return text or "(no output)"
