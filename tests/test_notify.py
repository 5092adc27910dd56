"""Notifications: real HTTP servers on 127.0.0.1, real retries, a dead webhook that costs nothing."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import time
from pathlib import Path
from typing import Any

from orchestration.config import NotificationsConfig
from orchestration.logs import EventLog
from orchestration.notify import Notifier, notification_of
from webhooks import receiving

FAILED = {"seq": 14, "ts": "2026-01-01T00:00:00.000Z", "entity": "task", "id": "f",
          "from": "running", "to": "failed", "trigger": "fail", "actor": "worker:local-2",
          "reason": "FM-NONZERO-EXIT: attempt 1: exit 3; no retry left", "severity": "error",
          "failure": {"mode": "FM-NONZERO-EXIT", "final": True}}  # fmt: skip
SUMMARY = {"seq": None, "ts": None, "entity": "run", "id": "summary", "from": None, "to": None,
           "trigger": None, "actor": "engine", "reason": "", "severity": "error",
           "schema_version": "1.0.0", "scope": 2, "succeeded": 1, "failed": ["f"], "blocked": [],
           "waiting": [], "retries": 0, "refused": 0, "adopted": 0, "stopped": "",
           "exit_code": 1}  # fmt: skip


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def log_lines(folder: Path) -> list[dict[str, Any]]:
    text = (folder / "engine.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_run_events_worth_notifying_OBS_012() -> None:
    assert notification_of(FAILED) == ("task.failed", {
        "task_id": "f", "failure_mode": "FM-NONZERO-EXIT", "seq": 14,
        "reason": "FM-NONZERO-EXIT: attempt 1: exit 3; no retry left"})  # fmt: skip
    retried = {**FAILED, "failure": {"mode": "FM-NONZERO-EXIT", "final": False}}
    assert notification_of(retried) is None  # not for good: a retry comes
    kind, summary = notification_of(SUMMARY) or ("", {})
    assert kind == "run.finished"
    assert summary == {"scope": 2, "succeeded": 1, "failed": ["f"], "blocked": [], "waiting": [],
                       "retries": 0, "refused": 0, "adopted": 0, "stopped": "",
                       "exit_code": 1}  # fmt: skip
    assert notification_of({**FAILED, "to": "succeeded", "failure": None}) is None


def test_a_notification_is_delivered_after_retries_OBS_012(tmp_path: Path) -> None:
    config = NotificationsConfig(webhooks=[], retries=3, retry_base_seconds=0.02)
    log = EventLog(tmp_path)
    console = io.StringIO()
    with receiving(failures=2) as server:
        config = config.model_copy(update={"webhooks": [server.url]})
        notifier = Notifier(tmp_path, config, log, console)
        notifier.observe(FAILED)
        notifier.observe(SUMMARY)
        wait_until(lambda: len(server.delivered) == 2)
        notifier.close()
    log.close()
    assert len(server.requests) == 4  # 503, 503, then each delivered once, in order
    failed, finished = server.delivered
    assert failed["kind"] == "task.failed" and failed["task_id"] == "f"
    assert failed["schema_version"] == "1.0.0" and failed["root"] == str(tmp_path)
    assert finished["kind"] == "run.finished" and finished["failed"] == ["f"]
    assert "notify: task f failed for good: FM-NONZERO-EXIT" in console.getvalue()
    assert "notify: run finished (exit 1): 1 succeeded, 1 failed" in console.getvalue()
    events = [line["event"] for line in log_lines(tmp_path)]
    assert events.count("notify.retrying") == 2 and events.count("notify.delivered") == 2
    retrying = next(line for line in log_lines(tmp_path) if line["event"] == "notify.retrying")
    assert retrying["error"] == "HTTP 503" and retrying["level"] == "warning"


def test_a_dead_webhook_never_delays_the_engine_nor_other_webhooks_OBS_012(
    tmp_path: Path,
) -> None:
    # Accepts connections (the kernel's backlog) but never answers: every POST times out.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    refusing = socket.socket()
    refusing.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    with contextlib.ExitStack() as stack:
        healthy = stack.enter_context(receiving())
        stack.callback(silent.close)
        stack.callback(refusing.close)
        webhooks = [f"http://127.0.0.1:{silent.getsockname()[1]}/hook",
                    f"http://127.0.0.1:{refusing.getsockname()[1]}/hook", healthy.url]  # fmt: skip
        config = NotificationsConfig(webhooks=webhooks, retries=5, timeout_seconds=5)
        log = EventLog(tmp_path)
        notifier = Notifier(tmp_path, config, log)
        began = time.monotonic()
        for _ in range(50):
            notifier.observe(FAILED)
        assert time.monotonic() - began < 0.5  # the caller only queues
        wait_until(lambda: len(healthy.delivered) == 50, timeout=5)
        began = time.monotonic()
        notifier.close(timeout=0.3)  # the dead ones are left behind, not waited for
        assert time.monotonic() - began < 1.0
        log.close()
