"""``orchestration watch`` as a real process: its output, its signals, its exit codes (OBS-007)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from orchestration.cli import main

from conftest import task_document

TIMEOUT = 30.0  # seconds a line may take on a loaded machine; never waited in passing


class Process:
    """``python -m orchestration watch`` with its stdout read line by line."""

    def __init__(self, root: Path, *args: str) -> None:
        command = [sys.executable, "-m", "orchestration", "--root", str(root), "watch", *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put("")  # the end

    def line(self) -> str:
        return self.lines.get(timeout=TIMEOUT)

    def until(self, text: str) -> list[str]:
        """Lines up to the first one holding ``text``."""
        seen = [self.line()]
        while text not in seen[-1]:
            assert seen[-1], f"the watch ended before printing {text!r}: {seen}"
            seen.append(self.line())
        return seen

    def close(self) -> None:
        """Kill the process if it still runs; release its pipe."""
        self.process.kill()
        self.process.wait(TIMEOUT)
        self.reader.join(TIMEOUT)  # it reads to the end of the pipe, then ends
        assert self.process.stdout is not None
        self.process.stdout.close()

    def stop(self, number: signal.Signals) -> tuple[int, list[str]]:
        """Send the signal; the exit code and the lines printed after it."""
        self.process.send_signal(number)
        rest = [line for line in iter(self.line, "")]
        return self.process.wait(TIMEOUT), rest


def test_watch_prints_json_lines_and_sigterm_stops_it_with_exit_0_OBS_007(pipeline: Path) -> None:
    watching = Process(pipeline, "--format", "json", "--debounce", "0.1")
    try:
        started = [json.loads(line) for line in watching.until('"watching"')]
        assert [event["event"] for event in started] == ["planned", "synced", "watching"]
        assert started[0]["tasks"] == 4 and started[0]["schema_version"] == "1.0.0"
        assert started[0]["critical_path"] == ["a", "b", "c"]
        path = pipeline / "tasks" / "ws-001" / "e.json"
        temporary = path.with_name(".e.json.tmp")
        temporary.write_text(json.dumps(task_document("e", "ws-001", dependencies=["c"])))
        os.replace(temporary, path)
        event = json.loads(watching.line())
        assert event["event"] == "replanned" and event["added"] == ["e"] and event["seq"] == 1
        assert event["critical_path"] == ["a", "b", "c", "e"] and event["syncing"]
        synced = json.loads(watching.line())
        assert synced["event"] == "synced" and synced["seq"] == 1 and synced["lines"] >= 1
        code, rest = watching.stop(signal.SIGTERM)
    finally:
        watching.close()
    assert code == 0
    assert [json.loads(line) for line in rest][-1]["event"] == "stopped"
    assert json.loads(rest[-1])["signal"] == "SIGTERM"


def test_watch_prints_text_and_ctrl_c_stops_it_with_exit_0_OBS_007(pipeline: Path) -> None:
    watching = Process(pipeline, "--debounce", "0.1")
    try:
        started = watching.until("watching")
        assert "planned 4 tasks in 3 stages" in started[0]
        assert "critical path (3 tasks, 180 s): a -> b -> c" in "".join(started)
        (pipeline / "tasks" / "ws-001" / "c.json").write_text("{")
        problems = watching.until("fix:")
        assert "1 problem found; nothing was changed:" in problems[0]
        assert problems[1].startswith("tasks/ws-001/c.json:1:2: invalid JSON")
        code, rest = watching.stop(signal.SIGINT)
    finally:
        watching.close()
    assert code == 0 and rest[-1] == "stopped (SIGINT)\n"


def test_watch_without_a_pipeline_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--root", str(tmp_path), "watch"]) == 2
    assert "no pipeline" in capsys.readouterr().err
