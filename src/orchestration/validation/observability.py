"""Checks of what operators observe: ``.state/metrics.json`` and the Grafana dashboard (OBS).

Stability: provisional.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from ..errors import Problem
from .check import NotApplicable, check
from .repository import ENGINE_SPEC, Repository

__all__ = ["grafana_dashboard", "metric_table", "metrics_document", "series_names"]

DASHBOARD = "docs/operations/grafana-dashboard.json"
METRIC = re.compile(r"\borchestration_[A-Za-z0-9_:]*")
QUERY_KEYS = frozenset({"expr", "query", "definition"})  # where Grafana keeps PromQL
DOCUMENT_KEYS = (
    "schema_version", "last_seq", "tasks", "transitions", "retries", "failures",
    "lease_expiries", "attempt_duration_seconds", "queue_wait_seconds",
)  # fmt: skip
REWRITE = "any command that writes the state rewrites it (e.g. `orchestration sync`)"
SUFFIXES = {"gauge": ("",), "counter": ("",), "histogram": ("_bucket", "_sum", "_count")}


def metric_table() -> dict[str, str]:
    """Name → type of the metric table of spec section 13 (the engine's spec)."""
    text = ENGINE_SPEC.read_text(encoding="utf-8")
    section = text[text.index("## 13. ") : text.index("## 14. ")]
    rows = re.findall(r"^\| `(orchestration_\w+)` \| (\w+) \|", section, flags=re.M)
    return dict(rows)


def series_names(table: dict[str, str]) -> set[str]:
    """The series names PromQL can select for the metrics of ``table``."""
    return {name + suffix for name, kind in table.items() for suffix in SUFFIXES.get(kind, ("",))}


def _queries(node: Any, pointer: str = "") -> Iterator[tuple[str, str]]:
    """``(pointer, text)`` of every query string in a dashboard document."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}"
            if key in QUERY_KEYS and isinstance(value, str):
                yield where, value
            else:
                yield from _queries(value, where)
    elif isinstance(node, list):
        for number, value in enumerate(node):
            yield from _queries(value, f"{pointer}/{number}")


@check("OBS-006")
def grafana_dashboard(repo: Repository) -> Iterator[Problem]:
    """``docs/operations/`` holds a Grafana dashboard using only the metrics of section 13."""
    path = repo.path(DASHBOARD)
    if not path.is_file():
        yield Problem(
            DASHBOARD,
            "there is no Grafana dashboard for the pipeline's metrics",
            "copy it from a pipeline scaffolded by `orchestration init`",
            "OBS-006",
        )
        return
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as bad:
        line = getattr(bad, "lineno", 0)
        yield Problem(DASHBOARD, f"the dashboard is not valid JSON ({bad})",
                      "export it again from Grafana", "OBS-006", line=line)  # fmt: skip
        return
    if not isinstance(document, dict) or not isinstance(document.get("panels"), list):
        yield Problem(DASHBOARD, "the document is not a Grafana dashboard (it has no panels)",
                      "export the dashboard's JSON model from Grafana", "OBS-006")  # fmt: skip
        return
    table = metric_table()
    known = series_names(table)
    for pointer, text in _queries(document):
        for name in METRIC.findall(text):
            if name not in known:
                yield Problem(
                    DASHBOARD,
                    f"the query uses {name!r}, which is not a metric of spec section 13",
                    f"use one of {', '.join(sorted(known))}",
                    "OBS-006",
                    pointer=pointer,
                )


@check("OBS-001")
def metrics_document(repo: Repository) -> Iterator[Problem]:
    """``.state/metrics.json`` exists, holds every metric, and agrees with the snapshot."""
    files = repo.state
    rel = repo.rel(files.metrics)
    try:
        document = json.loads(files.metrics.read_bytes())
    except FileNotFoundError:
        yield Problem(rel, "there is no metrics document", REWRITE, "OBS-001")
        return
    except ValueError as bad:
        yield Problem(rel, f"the metrics document is not JSON ({bad})", REWRITE, "OBS-001")
        return
    if not isinstance(document, dict):
        yield Problem(rel, "the metrics document is not a JSON object", REWRITE, "OBS-001")
        return
    missing = [key for key in DOCUMENT_KEYS if key not in document]
    for key in missing:
        yield Problem(rel, f"the metrics document lacks {key!r}", REWRITE, "OBS-001",
                      pointer=f"/{key}")  # fmt: skip
    try:
        snapshot = repo.snapshot
    except NotApplicable:
        return  # reported by snapshot_document
    if missing or document["last_seq"] != snapshot.last_seq:
        return  # written a moment apart: nothing to compare
    expected = snapshot.metrics.document(snapshot.last_seq, document.get("timestamp", ""))
    for key in DOCUMENT_KEYS:
        if document[key] != expected[key]:
            yield Problem(
                rel,
                f"{key!r} differs from the snapshot's metrics at the same last_seq",
                "the file was edited by hand; " + REWRITE,
                "OBS-001",
                pointer=f"/{key}",
            )
