"""The engine's structured logs: JSON lines written with structlog under ``.state/logs/``.

Stability: provisional (the file name and the keys ``ts``, ``level``, ``event``,
``task_id``, ``attempt`` and ``seq`` are stable, OBS-005; event names may grow).

Every line of ``.state/logs/engine.jsonl`` is one JSON object with ``ts`` (UTC,
ISO 8601), ``level`` (``debug`` .. ``critical``), ``event`` (a dotted name such
as ``attempt.failed``), ``component`` (``run``, ``daemon``, ...) and ``pid``,
and with ``task_id``, ``attempt`` and ``seq`` (the journal line it reports)
when they apply. Several processes append to the file: each burst of lines
is written by one ``write`` to a file opened for appending, so that lines of
different processes never interleave.

An :class:`EventLog` hands its events to a background thread that renders
and writes them, so that logging costs the engine's loop a queue put, never
a disk write nor the import of structlog. Its structlog logger is built with
``structlog.wrap_logger``: the process-wide structlog configuration is
neither read nor changed. Logs are for people: events still queued when the
process is killed are lost, which the journal (the record) never is.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Mapping, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

__all__ = ["LOG_FILE", "EventLog", "journal_event", "open_output"]

LOG_FILE = "engine.jsonl"
BATCH_SECONDS = 0.05  # how long the writer gathers events before one write
_CLOSE: Final = None  # the queue's last item


class EventLog:
    """A JSON-lines log under a ``.state/logs/`` folder, written from a background thread.

    The file is created with its folder at the first event, so that a command
    that fails before it changes anything leaves no ``.state/`` behind.

    Args:
        folder: the logs folder (``layout(root).logs``).
        context: keys every line carries, e.g. ``component="run"``.
    """

    def __init__(self, folder: Path, **context: Any) -> None:
        self.path = folder / LOG_FILE
        self.context = {"component": "engine", **context, "pid": os.getpid()}
        self._queue: queue.SimpleQueue[tuple[float, str, str, dict[str, Any]] | None] = (
            queue.SimpleQueue()
        )
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._write, daemon=True, name="event-log")
        self._thread.start()

    def debug(self, event: str, **fields: Any) -> None:
        """Log ``event`` at level debug."""
        self._queue.put((time.time(), "debug", event, fields))

    def info(self, event: str, **fields: Any) -> None:
        """Log ``event`` at level info."""
        self._queue.put((time.time(), "info", event, fields))

    def warning(self, event: str, **fields: Any) -> None:
        """Log ``event`` at level warning."""
        self._queue.put((time.time(), "warning", event, fields))

    def error(self, event: str, **fields: Any) -> None:
        """Log ``event`` at level error."""
        self._queue.put((time.time(), "error", event, fields))

    def log(self, level: str, event: str, **fields: Any) -> None:
        """Log ``event`` at ``level``: ``debug``, ``info``, ``warning``, ``error``, ``critical``."""
        self._queue.put((time.time(), level, event, fields))

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued and stop the thread (waiting at most ``timeout`` seconds)."""
        self._closing.set()
        self._queue.put(_CLOSE)
        self._thread.join(timeout)

    def _write(self) -> None:
        import orjson
        import structlog

        rendered: list[bytes] = []
        logger = structlog.wrap_logger(
            _Lines(rendered),
            processors=[
                structlog.processors.add_log_level,
                _timestamp,
                structlog.processors.JSONRenderer(serializer=orjson.dumps),
            ],
            wrapper_class=structlog.BoundLogger,
            context_class=dict,
            **self.context,
        )
        handle: IO[bytes] | None = None
        closing = False
        while not closing:
            batch = [self._queue.get()]
            # Gather what comes within a moment: a burst is one wake-up and one write.
            self._closing.wait(BATCH_SECONDS)
            with contextlib.suppress(queue.Empty):
                while True:  # what was queued meanwhile goes in the same write
                    batch.append(self._queue.get_nowait())
            for item in batch:
                if item is _CLOSE:
                    closing = True
                    continue
                stamp, level, event, fields = item
                getattr(logger, level)(event, _ts=stamp, **fields)
            if not rendered:
                continue
            try:
                if handle is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    handle = self.path.open("ab", buffering=0)  # one write() per batch
                handle.write(b"".join(rendered))
            except OSError:
                pass  # a full disk must not stop the engine; the journal is the record
            rendered.clear()
        if handle is not None:
            handle.close()


class _Lines:
    """structlog's output: rendered lines kept for one append (several processes write)."""

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines

    def msg(self, message: bytes) -> None:
        self.lines.append(message + b"\n")

    debug = info = warning = error = critical = msg


def _timestamp(_logger: object, _name: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    """``ts`` (when the event happened, not when it was written), ``level``, ``event`` first."""
    stamp = event_dict.pop("_ts", None) or time.time()
    moment = datetime.fromtimestamp(stamp, UTC)
    ts = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    level, event = event_dict.pop("level"), event_dict.pop("event")
    return {"ts": ts, "level": level, "event": event, **event_dict}


# Journal lines worth a log line: (entity, trigger) -> event name.
_EVENTS: Final[Mapping[tuple[str, str], str]] = {
    ("task", "claim"): "attempt.dispatched",
    ("task", "start"): "attempt.started",
    ("task", "complete"): "attempt.succeeded",
    ("task", "fail"): "attempt.failed",
    ("task", "abandon"): "lease.expired",
    ("task", "release"): "attempt.released",
    ("task", "retry"): "task.retrying",
    ("task", "block"): "task.blocked",
    ("lease", "adopt"): "attempt.adopted",
    ("lease", "refuse"): "lease.refused",
}


def journal_event(
    line: Mapping[str, Any], tasks: Mapping[str, Mapping[str, Any]]
) -> tuple[str, str, dict[str, Any]] | None:
    """The log event of a committed journal line: ``(level, event, fields)``, or ``None``.

    Args:
        line: the journal line.
        tasks: the task entries of the state, where the task's attempt number is.
    """
    event = _EVENTS.get((line["entity"], line["trigger"]))
    if event is None:
        return None
    fields: dict[str, Any] = {"task_id": line["id"], "seq": line["seq"], "reason": line["reason"]}
    number = line.get("attempt") or tasks.get(line["id"], {}).get("attempt")
    if number is not None:
        fields["attempt"] = number
    failure = line.get("failure")
    if failure is not None:
        fields["failure_mode"] = failure.get("mode")
        fields["final"] = failure.get("final")
        if failure.get("mode") == "FM-LEASE-EXPIRED":
            event = "lease.expired"
    lease = line.get("lease")
    if lease is not None:
        fields["worker"] = lease.get("worker")
    return line["severity"], event, fields


def open_output(folder: Path, name: str) -> IO[bytes]:
    """A file under the logs folder opened for appending (a process's stdout and stderr)."""
    folder.mkdir(parents=True, exist_ok=True)
    return (folder / name).open("ab")
