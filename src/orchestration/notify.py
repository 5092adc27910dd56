"""Notifications: task failures and run completions, on the console, in the log, to webhooks.

Stability: provisional (the JSON document POSTed is stable: ``schema_version`` 1.0.0).

The daemon reads the events of ``run --format json`` and hands each to
:meth:`Notifier.observe`, which notifies two kinds (OBS-012):

- ``task.failed``: a task failed for good (no retry left, or a failure mode
  that is not retried), with its ``task_id``, ``failure_mode``, ``reason``
  and the journal ``seq``;
- ``run.finished``: a run ended, with its summary (``succeeded``,
  ``failed``, ``blocked``, ``waiting``, ``stopped``, ``exit_code``, ...).

Each is printed as one line on the console (the daemon's stderr), logged,
and POSTed as JSON to every URL of ``notifications.webhooks``. Each webhook
has its own thread and queue, so the engine never waits for one: a
delivery that fails (a connection error, a timeout, a 408, 429 or 5xx
answer) is retried with exponential backoff and jitter, up to
``notifications.retries`` times, then given up with a log line; another 4xx
is given up at once. A webhook that cannot keep up loses its oldest queued
notifications, never the engine's time.
"""

from __future__ import annotations

import contextlib
import queue
import random
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

from .failures import backoff_seconds
from .state.journal import FIELDS

if TYPE_CHECKING:
    import httpx

    from .config import NotificationsConfig
    from .logs import EventLog

__all__ = ["NOTIFICATION_VERSION", "Notifier", "notification_of"]

NOTIFICATION_VERSION = "1.0.0"
QUEUE_SIZE = 1000  # notifications waiting per webhook before the oldest are dropped
RETRY_MAX_SECONDS = 60.0
_RETRIED = frozenset({408, 429})  # and every 5xx
_STOP: Final = None


def notification_of(event: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The notification an event of ``run --format json`` deserves: ``(kind, fields)``."""
    entity = event.get("entity")
    if entity == "run":
        summary = {k: v for k, v in event.items() if k not in _EVENT_KEYS}
        return "run.finished", summary
    failure = event.get("failure")
    if entity == "task" and event.get("to") == "failed" and failure and failure.get("final"):
        return "task.failed", {
            "task_id": event["id"],
            "failure_mode": failure.get("mode"),
            "reason": event.get("reason", ""),
            "seq": event.get("seq"),
        }
    return None


# Keys of the summary event that say nothing of the run itself: a journal line's.
_EVENT_KEYS = frozenset({*FIELDS, "schema_version"})


class Notifier:
    """Sends notifications without ever blocking its caller.

    Args:
        root: the pipeline root, named in every notification.
        config: the ``notifications`` section (webhooks, retries, backoff, timeout).
        log: where deliveries, retries and give-ups are logged.
        console: where each notification is printed as one line (``None``: nowhere).
    """

    def __init__(
        self,
        root: Path,
        config: NotificationsConfig,
        log: EventLog,
        console: IO[str] | None = None,
    ) -> None:
        self.root = root
        self.config = config
        self.log = log
        self.console = console
        self._webhooks = [_Webhook(url, config, log) for url in dict.fromkeys(config.webhooks)]

    def observe(self, event: Mapping[str, Any]) -> None:
        """Notify what an event of ``run --format json`` deserves, if anything."""
        found = notification_of(event)
        if found is not None:
            self.notify(*found)

    def notify(self, kind: str, fields: Mapping[str, Any]) -> None:
        """Print, log and queue for every webhook one notification; returns at once."""
        ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        document = {"schema_version": NOTIFICATION_VERSION, "kind": kind, "ts": ts,
                    "root": str(self.root), **fields}  # fmt: skip
        level = "error" if kind == "task.failed" or fields.get("exit_code") else "info"
        self.log.log(level, f"notify.{kind}", **fields)
        if self.console is not None:
            with contextlib.suppress(OSError, ValueError):  # a closed console stops nothing
                self.console.write(_line(kind, fields) + "\n")
                self.console.flush()
        for webhook in self._webhooks:
            webhook.put(document)

    def close(self, timeout: float = 1.0) -> None:
        """Give queued deliveries up to ``timeout`` seconds in all, then leave them."""
        end = time.monotonic() + timeout
        for webhook in self._webhooks:
            webhook.stop(end)
        for webhook in self._webhooks:
            webhook.join(max(0.0, end - time.monotonic()))


def _line(kind: str, fields: Mapping[str, Any]) -> str:
    if kind == "task.failed":
        return f"notify: task {fields['task_id']} failed for good: {fields['reason']}"
    parts = [f"{fields.get('succeeded', 0)} succeeded"]
    parts += [f"{len(fields[k])} {k}" for k in ("failed", "blocked", "waiting") if fields.get(k)]
    stopped = f"; stopped: {fields['stopped']}" if fields.get("stopped") else ""
    return f"notify: run finished (exit {fields.get('exit_code')}): {', '.join(parts)}{stopped}"


class _Webhook:
    """One URL: a queue and the thread that delivers it, in order, with retries."""

    def __init__(self, url: str, config: NotificationsConfig, log: EventLog) -> None:
        self.url = url
        self.config = config
        self.log = log
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=QUEUE_SIZE)
        self.stopping = threading.Event()
        self.deadline = float("inf")  # monotonic: past it, what is queued is abandoned
        self.random = random.Random()
        self.thread = threading.Thread(target=self._deliver_all, daemon=True, name="webhook")
        self.thread.start()

    def put(self, document: dict[str, Any]) -> None:
        while True:
            try:
                self.queue.put_nowait(document)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    dropped = self.queue.get_nowait()
                    if dropped is not None:
                        self.log.warning("notify.dropped", url=self.url, kind=dropped["kind"])

    def stop(self, deadline: float) -> None:
        self.deadline = deadline
        self.stopping.set()
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(_STOP)

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

    def _deliver_all(self) -> None:
        import httpx

        with httpx.Client(timeout=self.config.timeout_seconds) as client:
            while True:
                document = self.queue.get()
                if document is None:
                    return
                if time.monotonic() >= self.deadline:
                    self.log.warning("notify.abandoned", url=self.url,
                                     count=1 + self.queue.qsize())  # fmt: skip
                    return
                self._deliver(client, document)

    def _deliver(self, client: httpx.Client, document: dict[str, Any]) -> None:
        import httpx

        tries = self.config.retries + 1
        for number in range(1, tries + 1):
            # Once the daemon stops, a delivery may take only what is left of its time.
            timeout = min(self.config.timeout_seconds, self.deadline - time.monotonic())
            try:
                answer = client.post(self.url, json=document, timeout=max(0.01, timeout))
            except httpx.HTTPError as error:
                why = f"{type(error).__name__}: {error}"
            else:
                if answer.is_success:
                    self.log.info("notify.delivered", url=self.url, kind=document["kind"],
                                  tries=number)  # fmt: skip
                    return
                why = f"HTTP {answer.status_code}"
                if answer.status_code not in _RETRIED and answer.status_code < 500:
                    break  # the receiver refuses it: retrying would not help
            if number == tries or self.stopping.is_set():
                break
            delay = backoff_seconds(
                number, self.config.retry_base_seconds, RETRY_MAX_SECONDS, self.random
            )
            self.log.warning("notify.retrying", url=self.url, kind=document["kind"],
                             tries=number, delay=round(delay, 3), error=why)  # fmt: skip
            if self.stopping.wait(delay):
                break
        self.log.error("notify.failed", url=self.url, kind=document["kind"], tries=number,
                       error=why)  # fmt: skip
