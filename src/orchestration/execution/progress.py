"""What ``run`` shows while it works: JSON events, plain lines, or a live display on a TTY.

Stability: provisional (the JSON events are stable: journal lines, EXEC-DOC-010).

``--format json`` streams every journal line the run commits, one JSON object
per line (``seq``, ``ts``, ``entity``, ``id``, ``from``, ``to``, ``trigger``,
``actor``, ``reason``, ``severity``, ...), and ends with a summary object whose
``entity`` is ``run``. Text on a terminal is a live rich display (EXEC-DOC-010:
only on a TTY); text into a pipe or file is one plain line per attempt event.
"""

from __future__ import annotations

import sys
from typing import IO, Any

import orjson

__all__ = ["Progress"]

# Task triggers worth a line of text: an attempt began, ended, or was decided on.
SHOWN = frozenset({"start", "complete", "fail", "retry", "block", "abandon", "release"})


class Progress:
    """Receives every committed journal line of a run and shows it in the chosen form."""

    def __init__(self, fmt: str, stream: IO[str] | None = None) -> None:
        self.fmt = fmt
        self.stream = stream if stream is not None else sys.stdout
        self.live: Any = None
        self.counts: dict[str, int] = {}
        self.running: dict[str, str] = {}
        if fmt == "text" and self.stream.isatty():
            from rich.console import Console
            from rich.live import Live

            self.live = Live(console=Console(file=self.stream), refresh_per_second=8)
            self.live.start()

    def __call__(self, line: dict[str, Any]) -> None:
        """Show one committed journal line."""
        if self.fmt == "json":
            self.stream.write(orjson.dumps(line).decode() + "\n")
            self.stream.flush()
            return
        if line["entity"] == "task" and line["trigger"] in ("start", "adopt"):
            self.running[line["id"]] = line["reason"]
        elif line["entity"] == "task" and line["to"] not in ("running", "claimed"):
            self.running.pop(line["id"], None)
        if line["entity"] == "task" and line["to"] in ("succeeded", "failed", "blocked"):
            self.counts[line["to"]] = self.counts.get(line["to"], 0) + 1
        if self.live is not None:
            self.live.update(self._table())
        elif (line["entity"] == "task" and line["trigger"] in SHOWN) or line["entity"] == "lease":
            reason = f"  {line['reason']}" if line["reason"] else ""
            self.stream.write(f"{line['id']:<24} {line['trigger']:<9}{reason}\n")
            self.stream.flush()

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(box=None, show_header=False)
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.counts.items()))
        table.add_row(f"[bold]{len(self.running)} running[/]", counts or "starting")
        for task_id, reason in sorted(self.running.items())[:20]:
            table.add_row(f"  {task_id}", reason)
        return table

    def close(self, summary: dict[str, Any]) -> None:
        """Stop the live display and show the run's summary."""
        if self.live is not None:
            self.live.stop()
        if self.fmt == "json":
            event = {"seq": None, "ts": None, "entity": "run", "id": "summary", "from": None,
                     "to": None, "trigger": None, "actor": "engine", "reason": "",
                     "severity": "error" if summary["exit_code"] else "info",
                     "schema_version": "1.0.0", **summary}  # fmt: skip
            self.stream.write(orjson.dumps(event).decode() + "\n")
            self.stream.flush()
            return
        parts = [f"{summary['succeeded']} succeeded"]
        for key in ("failed", "blocked", "waiting"):
            if summary[key]:
                parts.append(f"{len(summary[key])} {key} ({', '.join(summary[key][:5])}"
                             f"{', ...' if len(summary[key]) > 5 else ''})")  # fmt: skip
        if summary["retries"]:
            parts.append(f"{summary['retries']} retries")
        if summary["adopted"]:
            parts.append(f"{summary['adopted']} adopted")
        self.stream.write(f"run: {', '.join(parts)} of {summary['scope']} tasks\n")
        if summary["stopped"]:
            self.stream.write(f"run stopped: {summary['stopped']}\n")
        self.stream.flush()
