"""Metrics for operators as a fold of the journal, and their Prometheus exposition (OBS-001..004).

Stability: provisional (the metric names of spec section 13 are stable; this
document may grow).

:class:`Metrics` is folded line by line by ``State.apply``, the one rule for
writers and replay, so the snapshot carries its ``metrics`` section, ``state
verify`` compares it with the replay of the journal, and a restart reads the
counters from the snapshot instead of replaying the journal. Nothing here
reads a clock: durations come from the ``ts`` of the journal lines.

The store writes ``.state/metrics.json`` with every snapshot (OBS-001)::

    {"schema_version": "1.0.0", "timestamp": "2025-01-15T10:00:00.120Z", "last_seq": 42,
     "tasks": {"ws-001": {"ready": 2, "running": 1}},   # gauge: tasks now, by workstream, status
     "tasks_by_status": {"ready": 2, "running": 1},     # the same, summed over workstreams
     "transitions": {"task": {"create": 3, "claim": 1}, "worker": {"register": 1}},
     "retries": {"ws-001": 1},                          # retry lines, by workstream
     "failures": {"FM-NONZERO-EXIT": 1},                # fail lines, by failure mode
     "lease_expiries": 0,                               # attempts ended by FM-LEASE-EXPIRED
     "attempt_duration_seconds": {"buckets": [0.1, 0.5, ...],
                                  "by_type": {"shell": {"counts": [0, 1, ...],
                                                        "sum": 0.42, "count": 1}}},
     "queue_wait_seconds": {"buckets": [0.01, 0.1, ...], "counts": [1, 0, ...],
                            "sum": 0.003, "count": 1}}

``transitions`` counts every journal line by ``entity`` and ``trigger`` (so
they sum to ``last_seq``). A failure's mode is the line's ``failure.mode``, or
the ``FM-…`` ID its reason starts with, else ``unclassified``. A lease expiry
is a ``fail`` with mode ``FM-LEASE-EXPIRED`` or an ``abandon`` whose reason
starts with it (what ``Transaction.expire`` commits). An attempt lasts from
its ``start`` line to its ``complete`` or ``fail`` line, labelled with the
task's ``type``; queue wait lasts from the line that made a task ``ready`` to
the one that claimed (or started) it. ``counts`` are observations per bucket,
not cumulative, the last one above the highest bound. The snapshot's
``metrics`` section holds the same counters (without the derived
``tasks_by_status``) and, to carry on after a restart, the ``running``
attempts' and ``waiting`` tasks' start times in epoch seconds.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "ATTEMPT_BUCKETS",
    "FAMILIES",
    "METRICS_VERSION",
    "NAMES",
    "QUEUE_BUCKETS",
    "Histogram",
    "Metrics",
    "MetricsCollector",
    "exposition",
    "render_text",
]

METRICS_VERSION = "1.0.0"
# Upper bounds in seconds (a last +Inf bucket is implied). Changing them makes
# every older snapshot unusable, so that its counters are rebuilt from the journal.
ATTEMPT_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)
QUEUE_BUCKETS = (0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0)
# The metrics of a document's counts: name, type, help, labels (in the nesting order of
# the document's dicts) and the document's key. The histograms follow apart.
FAMILIES = (
    ("orchestration_tasks", "gauge", "Tasks by runtime status and workstream.",
     ("workstream", "status"), "tasks"),
    ("orchestration_transitions_total", "counter",
     "Journal lines committed, by entity and trigger.", ("entity", "trigger"), "transitions"),
    ("orchestration_retries_total", "counter", "Retries of failed tasks, by workstream.",
     ("workstream",), "retries"),
    ("orchestration_failures_total", "counter", "Failed attempts, by failure mode (FM-...).",
     ("failure_mode",), "failures"),
    ("orchestration_lease_expiries_total", "counter", "Attempts whose lease expired.", (),
     "lease_expiries"),
    ("orchestration_last_seq", "gauge", "The seq of the last journal line these metrics reflect.",
     (), "last_seq"),
)  # fmt: skip
# Every metric name the engine exposes, with its type (spec section 13, OBS-003).
NAMES = {
    **{name: kind for name, kind, *_ in FAMILIES},
    "orchestration_attempt_duration_seconds": "histogram",
    "orchestration_queue_wait_seconds": "histogram",
}
LEASE_EXPIRED = "FM-LEASE-EXPIRED"
UNCLASSIFIED = "unclassified"  # a fail line naming no failure mode (a person's, without one)
_MODE = re.compile(r"FM-[A-Z]+(?:-[A-Z]+)*")
_COUNTED = frozenset({"retry", "fail", "abandon"})  # triggers that count besides moving
_FINISHED = frozenset({"complete", "fail"})  # triggers that end an attempt with an outcome
_TAKEN = frozenset({"claimed", "running"})  # statuses that take a task off the queue


@dataclass
class Histogram:
    """Observations in fixed buckets: counts per bucket (the last above every bound) and sum."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    sum: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, seconds: float) -> None:
        """Count one observation (``le`` semantics: a value equal to a bound is in its bucket)."""
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sum = round(self.sum + seconds, 3)  # ms timestamps: keep the sum readable

    def document(self) -> dict[str, Any]:
        """``{"counts": [...], "sum": s, "count": n}`` (a copy)."""
        return {"counts": list(self.counts), "sum": self.sum, "count": sum(self.counts)}

    @classmethod
    def load(cls, bounds: tuple[float, ...], data: Mapping[str, Any]) -> Histogram:
        """The histogram ``document`` describes.

        Raises:
            ValueError: its counts do not fit ``bounds``.
        """
        counts = [int(n) for n in data["counts"]]
        if len(counts) != len(bounds) + 1:
            msg = f"{len(counts)} bucket counts where {len(bounds) + 1} were expected"
            raise ValueError(msg)
        return cls(bounds, counts, float(data["sum"]))


def _seconds(ts: str, cache: dict[str, float]) -> float | None:
    """Epoch seconds of a journal ``ts``; ``None`` when it is not one (a hand edit)."""
    found = cache.get(ts)
    if found is None:
        try:
            found = round(datetime.fromisoformat(ts).timestamp(), 3)
        except (TypeError, ValueError):
            return None
        cache.clear()  # the lines of one transaction share one stamp: keep only the last
        cache[ts] = found
    return found


def _failure_mode(line: Mapping[str, Any]) -> str:
    failure = line.get("failure")
    if isinstance(failure, dict) and isinstance(failure.get("mode"), str):
        return str(failure["mode"])
    found = _MODE.match(str(line.get("reason") or ""))
    return found[0] if found else UNCLASSIFIED


@dataclass
class Metrics:
    """The counters, gauges and histograms the journal has folded into so far."""

    tasks: dict[tuple[str, str], int] = field(default_factory=dict)  # (workstream, status) → n
    transitions: dict[str, dict[str, int]] = field(default_factory=dict)  # entity → trigger → n
    retries: dict[str, int] = field(default_factory=dict)  # workstream → n
    failures: dict[str, int] = field(default_factory=dict)  # failure mode → n
    lease_expiries: int = 0
    attempts: dict[str, Histogram] = field(default_factory=dict)  # task type → durations
    queue_wait: Histogram = field(default_factory=lambda: Histogram(QUEUE_BUCKETS))
    running: dict[str, float] = field(default_factory=dict)  # task id → its attempt's start
    waiting: dict[str, float] = field(default_factory=dict)  # task id → ready since
    _stamps: dict[str, float] = field(default_factory=dict, repr=False, compare=False)

    def count(self, entity: str, trigger: str) -> None:
        """Count one journal line."""
        triggers = self.transitions.get(entity)
        if triggers is None:
            triggers = self.transitions[entity] = {}
        triggers[trigger] = triggers.get(trigger, 0) + 1

    def moved(
        self,
        task_id: str,
        line: Mapping[str, Any],
        before: tuple[str, str] | None,
        entry: Mapping[str, Any],
    ) -> None:
        """Fold a task line: ``before`` is the task's (workstream, status) before it, if known."""
        trigger = line["trigger"]
        if trigger in _COUNTED:
            self._count(line, entry)
        key = (entry["workstream_id"], entry["status"])
        if before == key:
            return  # a redefinition, a phase: the gauge and the clocks stay
        gauge = self.tasks
        gauge[key] = gauge.get(key, 0) + 1
        status, old = key[1], None
        if before is not None:
            left = gauge[before] - 1
            if left:
                gauge[before] = left
            else:  # only tasks that exist are shown, as `status` shows them (OBS-004)
                del gauge[before]
            old = before[1]
            if old == status:
                return  # only the workstream changed
        if old == "ready" or old == "running":
            self._ended(task_id, line, old, status, entry)
        if status == "ready" or status == "running":
            now = _seconds(line["ts"], self._stamps)
            if now is not None:
                (self.waiting if status == "ready" else self.running)[task_id] = now

    def _count(self, line: Mapping[str, Any], entry: Mapping[str, Any]) -> None:
        """Count a retry, a failure or a lease expiry."""
        trigger = line["trigger"]
        if trigger == "retry":
            workstream = entry["workstream_id"]
            self.retries[workstream] = self.retries.get(workstream, 0) + 1
        elif trigger == "fail":
            mode = _failure_mode(line)
            self.failures[mode] = self.failures.get(mode, 0) + 1
            self.lease_expiries += mode == LEASE_EXPIRED
        elif str(line.get("reason") or "").startswith(LEASE_EXPIRED):  # abandon
            self.lease_expiries += 1

    def _ended(
        self, task_id: str, line: Mapping[str, Any], old: str, status: str, entry: Mapping[str, Any]
    ) -> None:
        """Observe the queue wait or the attempt that a task leaving ``old`` ends."""
        since = (self.waiting if old == "ready" else self.running).pop(task_id, None)
        now = _seconds(line["ts"], self._stamps)
        if since is None or now is None:
            return
        if old == "ready" and status in _TAKEN:
            self.queue_wait.observe(max(0.0, now - since))
        elif old == "running" and line["trigger"] in _FINISHED:
            kind = entry.get("type", "shell")
            found = self.attempts.get(kind)
            if found is None:
                found = self.attempts[kind] = Histogram(ATTEMPT_BUCKETS)
            found.observe(max(0.0, now - since))

    def removed(self, task_id: str, entry: Mapping[str, Any], status: str) -> None:
        """Fold the archiving of a task that was in ``status``."""
        key = (entry["workstream_id"], status)
        left = self.tasks[key] - 1
        if left:
            self.tasks[key] = left
        else:
            del self.tasks[key]
        self.waiting.pop(task_id, None)
        self.running.pop(task_id, None)

    def by_workstream(self) -> dict[str, dict[str, int]]:
        """The task gauge as workstream → status → count, sorted."""
        nested: dict[str, dict[str, int]] = {}
        for (workstream, status), n in sorted(self.tasks.items()):
            nested.setdefault(workstream, {})[status] = n
        return nested

    # --- documents ---------------------------------------------------------------

    def document(self, last_seq: int, timestamp: str) -> dict[str, Any]:
        """The ``metrics.json`` document (copies: safe to serialise outside the store's lock)."""
        by_status: dict[str, int] = {}
        for (_, status), n in self.tasks.items():
            by_status[status] = by_status.get(status, 0) + n
        return {
            "schema_version": METRICS_VERSION,
            "timestamp": timestamp,
            "last_seq": last_seq,
            "tasks": self.by_workstream(),
            "tasks_by_status": dict(sorted(by_status.items())),
            "transitions": {
                e: dict(sorted(t.items())) for e, t in sorted(self.transitions.items())
            },
            "retries": dict(sorted(self.retries.items())),
            "failures": dict(sorted(self.failures.items())),
            "lease_expiries": self.lease_expiries,
            "attempt_duration_seconds": {
                "buckets": list(ATTEMPT_BUCKETS),
                "by_type": {kind: h.document() for kind, h in sorted(self.attempts.items())},
            },
            "queue_wait_seconds": {"buckets": list(QUEUE_BUCKETS), **self.queue_wait.document()},
        }

    def section(self) -> dict[str, Any]:
        """The snapshot's ``metrics`` section (not copied: written under the writer lock)."""
        return {
            "tasks": self.by_workstream(),
            "transitions": self.transitions,
            "retries": self.retries,
            "failures": self.failures,
            "lease_expiries": self.lease_expiries,
            "attempt_buckets": ATTEMPT_BUCKETS,
            "attempts": {kind: h.document() for kind, h in self.attempts.items()},
            "queue_buckets": QUEUE_BUCKETS,
            "queue_wait": self.queue_wait.document(),
            "running": self.running,
            "waiting": self.waiting,
        }

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> Metrics:
        """The metrics a snapshot's ``metrics`` section describes.

        Raises:
            KeyError, TypeError, ValueError: the section is malformed, or was
                written with other buckets (its counts cannot be carried over).
        """
        if tuple(section["attempt_buckets"]) != ATTEMPT_BUCKETS or (
            tuple(section["queue_buckets"]) != QUEUE_BUCKETS
        ):
            msg = "histogram buckets differ from this engine's"
            raise ValueError(msg)
        return cls(
            tasks={
                (ws, status): int(n)
                for ws, counts in section["tasks"].items()
                for status, n in counts.items()
            },
            transitions={e: dict(t) for e, t in section["transitions"].items()},
            retries=dict(section["retries"]),
            failures=dict(section["failures"]),
            lease_expiries=int(section["lease_expiries"]),
            attempts={
                kind: Histogram.load(ATTEMPT_BUCKETS, data)
                for kind, data in section["attempts"].items()
            },
            queue_wait=Histogram.load(QUEUE_BUCKETS, section["queue_wait"]),
            running=dict(section["running"]),
            waiting=dict(section["waiting"]),
        )


# --- the Prometheus exposition (OBS-002, OBS-003) -------------------------------------


def _buckets(bounds: list[float], counts: list[int]) -> list[tuple[str, float]]:
    """Cumulative ``(le, count)`` pairs, ``+Inf`` last, as Prometheus wants them."""
    found, total = [], 0
    for bound, n in zip([*bounds, None], counts, strict=True):
        total += n
        found.append(("+Inf" if bound is None else repr(float(bound)), float(total)))
    return found


def _samples(data: Any, depth: int) -> Iterator[tuple[list[str], float]]:
    """``(label values, value)`` of a count nested ``depth`` dicts deep."""
    if depth == 0:
        yield [], float(data)
        return
    for key, value in data.items():
        for labels, n in _samples(value, depth - 1):
            yield [key, *labels], n


class MetricsCollector:
    """A prometheus-client collector of one ``metrics.json`` document.

    Register it on a private ``CollectorRegistry`` (the process's own metrics
    are not the pipeline's); :func:`exposition` does.
    """

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document

    def collect(self) -> Iterator[Any]:
        """The metric families of the document, named as spec section 13 says."""
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        doc = self.document
        for name, kind, text, labels, key in FAMILIES:
            made = GaugeMetricFamily if kind == "gauge" else CounterMetricFamily
            family = made(name, text, labels=labels)
            for values, n in _samples(doc[key], len(labels)):
                family.add_metric(values, n)
            yield family
        durations = doc["attempt_duration_seconds"]
        attempts = HistogramMetricFamily(
            "orchestration_attempt_duration_seconds",
            "Attempt durations, start to complete or fail, by task type.", labels=["type"],
        )  # fmt: skip
        for kind, data in durations["by_type"].items():
            attempts.add_metric([kind], _buckets(durations["buckets"], data["counts"]), data["sum"])
        yield attempts
        wait = doc["queue_wait_seconds"]
        queue = HistogramMetricFamily(
            "orchestration_queue_wait_seconds", "Time tasks spent ready before being claimed."
        )
        queue.add_metric([], _buckets(wait["buckets"], wait["counts"]), wait["sum"])
        yield queue


def exposition(document: Mapping[str, Any]) -> bytes:
    """The Prometheus text format of a ``metrics.json`` document (``CONTENT_TYPE_LATEST``)."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(MetricsCollector(document))
    return generate_latest(registry)


def render_text(document: Mapping[str, Any]) -> str:
    """A short summary of a ``metrics.json`` document for people."""
    lines = [f"as of journal seq {document['last_seq']}"]
    by_status = document["tasks_by_status"]
    tasks = ", ".join(f"{n} {status}" for status, n in by_status.items()) or "none"
    lines.append(f"tasks          {sum(by_status.values())}: {tasks}")
    for workstream, counts in document["tasks"].items():
        shown = ", ".join(f"{n} {status}" for status, n in counts.items())
        lines.append(f"  {workstream:<12} {shown}")
    transitions = sum(sum(t.values()) for t in document["transitions"].values())
    lines.append(f"transitions    {transitions}")
    lines.append(f"retries        {sum(document['retries'].values())}")
    failures = ", ".join(f"{n} {mode}" for mode, n in document["failures"].items())
    lines.append(f"failures       {sum(document['failures'].values())}{': ' if failures else ''}"
                 f"{failures}")  # fmt: skip
    lines.append(f"lease expiries {document['lease_expiries']}")
    for kind, data in document["attempt_duration_seconds"]["by_type"].items():
        mean = data["sum"] / data["count"] if data["count"] else 0.0
        lines.append(f"attempts       {data['count']} {kind}, mean {mean:.2f} s")
    wait = document["queue_wait_seconds"]
    mean = wait["sum"] / wait["count"] if wait["count"] else 0.0
    lines.append(f"queue wait     {wait['count']} claims, mean {mean:.2f} s")
    return "\n".join(lines)
