"""Renderings of a plan: JSON document, terminal table, mermaid and Graphviz dot.

Stability: stable. The JSON shape (DAG-VIEW-004) is a public contract: keys
are only ever added.

``plan --format json`` prints::

    {
      "schema_version": "1.0.0",
      "tasks": int, "edges": int,
      "stages": [[task_id, ...], ...],          # ids sorted within a stage
      "stage_widths": [int, ...],
      "critical_path": [task_id, ...],
      "critical_path_seconds": number,
      "total_estimated_seconds": number,       # sum of estimates (one worker)
      "default_estimate_seconds": number,
      "defaulted_estimates": int,              # tasks that used the default
      "workstreams": {ws_id: [task_id, ...]},
      "schedule": {task_id: {"workstream", "stage", "estimated_seconds",
                   "earliest_start", "earliest_finish", "latest_start",
                   "latest_finish", "slack", "critical"}},
      "deadlocks": [{"tasks": [task_id, ...],     # can run at the same time
                     "resources": [name, ...],    # the cycle, first repeated last
                     "message": str, "hint": str}]  # [] when none (CONC-REG-005)
    }

The text renderings end with a warning section when resource orderings can
deadlock (the same ones, at most :data:`SHOWN_DEADLOCKS`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .deadlocks import DEADLOCK_HINT, Deadlock
from .plan import DEFAULT_ESTIMATE_SECONDS, Plan

__all__ = ["PLAN_SCHEMA_VERSION", "to_dot", "to_json", "to_mermaid", "to_text"]

PLAN_SCHEMA_VERSION = "1.0.0"
# More potential deadlocks than this are summarised in text: the first ones say what to fix.
SHOWN_DEADLOCKS = 20


def to_json(plan: Plan, deadlocks: Sequence[Deadlock] = ()) -> dict[str, Any]:
    """The plan as the documented JSON document, with its potential ``deadlocks``."""
    critical = set(plan.critical_path)
    workstreams: dict[str, list[str]] = {}
    for task_id in sorted(plan.tasks):
        workstreams.setdefault(plan.tasks[task_id].workstream_id, []).append(task_id)
    return {
        "schema_version": PLAN_SCHEMA_VERSION,
        "tasks": len(plan.tasks),
        "edges": plan.edges,
        "stages": plan.stages,
        "stage_widths": [len(stage) for stage in plan.stages],
        "critical_path": plan.critical_path,
        "critical_path_seconds": plan.critical_path_seconds,
        "total_estimated_seconds": plan.total_seconds,
        "default_estimate_seconds": DEFAULT_ESTIMATE_SECONDS,
        "defaulted_estimates": plan.defaulted,
        "workstreams": dict(sorted(workstreams.items())),
        "schedule": {
            task_id: {
                "workstream": plan.tasks[task_id].workstream_id,
                "stage": slot.stage,
                "estimated_seconds": slot.estimate,
                "earliest_start": slot.earliest_start,
                "earliest_finish": slot.earliest_finish,
                "latest_start": slot.latest_start,
                "latest_finish": slot.latest_finish,
                "slack": slot.slack,
                "critical": task_id in critical,
            }
            for task_id, slot in plan.schedule.items()
        },
        "deadlocks": [
            {
                "tasks": list(found.tasks),
                "resources": list(found.resources),
                "message": found.describe(),
                "hint": DEADLOCK_HINT,
            }
            for found in deadlocks
        ],
    }


def duration(seconds: float) -> str:
    """``3725`` → ``1h02m05s``: short and exact to the second."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def summary(plan: Plan) -> list[str]:
    """The lines under the table: totals, critical path, defaults used."""
    lines = [
        f"{len(plan.tasks)} tasks, {plan.edges} dependencies, {len(plan.stages)} stages "
        f"(widest {max((len(s) for s in plan.stages), default=0)})",
        f"critical path: {duration(plan.critical_path_seconds)}  "
        f"{' -> '.join(plan.critical_path) or '(empty)'}",
        f"total work: {duration(plan.total_seconds)} on one worker",
    ]
    if plan.defaulted:
        lines.append(
            f"{plan.defaulted} task{'s' if plan.defaulted != 1 else ''} without "
            f"execution.estimated_seconds: assumed {DEFAULT_ESTIMATE_SECONDS:g}s each"
        )
    return lines


def warning(deadlocks: Sequence[Deadlock]) -> list[str]:
    """The warning section on potential deadlocks; no lines when there is none."""
    if not deadlocks:
        return []
    count = len(deadlocks)
    lines = [
        "",
        f"warning: {count} potential deadlock{'s' if count != 1 else ''} (CONC-REG-005, "
        "FM-DEADLOCK): taken one by one, these resources can deadlock",
    ]
    lines.extend(f"  {found.describe()}" for found in deadlocks[:SHOWN_DEADLOCKS])
    if count > SHOWN_DEADLOCKS:
        lines.append(f"  ... and {count - SHOWN_DEADLOCKS} more (use --format json for all)")
    lines.append(f"  to fix: {DEADLOCK_HINT}")
    return lines


def to_text(plan: Plan, *, limit: int = 200, deadlocks: Sequence[Deadlock] = ()) -> str:
    """Plain text: one line per task, grouped by stage (for pipes and logs)."""
    critical = set(plan.critical_path)
    out = []
    shown = 0
    for number, stage in enumerate(plan.stages):
        out.append(f"stage {number} ({len(stage)} task{'s' if len(stage) != 1 else ''})")
        for task_id in stage:
            if shown == limit:
                break
            shown += 1
            slot = plan.schedule[task_id]
            mark = "*" if task_id in critical else " "
            out.append(
                f" {mark} {task_id:<24} {plan.tasks[task_id].workstream_id:<12} "
                f"est {duration(slot.estimate):>8}  start {duration(slot.earliest_start):>8}  "
                f"slack {duration(slot.slack):>8}"
            )
    if shown < len(plan.tasks):
        out.append(f"  ... {len(plan.tasks) - shown} more tasks (use --format json for all)")
    out.append("")
    out.extend(summary(plan))
    out.extend(warning(deadlocks))
    return "\n".join(out)


def to_rich(plan: Plan, *, limit: int = 200, deadlocks: Sequence[Deadlock] = ()) -> Any:
    """A rich renderable for terminals: a table by stage and the summary."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    critical = set(plan.critical_path)
    table = Table(title="Execution plan", show_lines=False, header_style="bold")
    for column, justify in [
        ("stage", "right"),
        ("task", "left"),
        ("workstream", "left"),
        ("name", "left"),
        ("estimate", "right"),
        ("start", "right"),
        ("slack", "right"),
    ]:
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for number, stage in enumerate(plan.stages):
        for task_id in stage:
            if table.row_count == limit:
                break
            slot = plan.schedule[task_id]
            task = plan.tasks[task_id]
            table.add_row(
                str(number),
                task_id,
                task.workstream_id,
                task.name,
                duration(slot.estimate),
                duration(slot.earliest_start),
                duration(slot.slack),
                style="bold red" if task_id in critical else None,
            )
    parts: list[Any] = [table]
    if table.row_count < len(plan.tasks):
        parts.append(Text(f"... {len(plan.tasks) - table.row_count} more tasks", style="dim"))
    parts.append(Text("\n".join(summary(plan)) + "\n(critical path in red)"))
    if deadlocks:
        parts.append(Text("\n".join(warning(deadlocks)[1:]), style="bold yellow"))
    return Group(*parts)


def _node_id(task_id: str) -> str:
    return "t_" + re.sub(r"[^A-Za-z0-9_]", "_", task_id)


def to_mermaid(plan: Plan) -> str:
    """A mermaid ``flowchart``: one subgraph per workstream, critical path highlighted."""
    lines = ["flowchart LR"]
    by_workstream: dict[str, list[str]] = {}
    for task_id in plan.schedule:
        by_workstream.setdefault(plan.tasks[task_id].workstream_id, []).append(task_id)
    for workstream, members in sorted(by_workstream.items()):
        lines.append(f'  subgraph {_node_id(workstream)}["{workstream}"]')
        for task_id in members:
            label = f"{task_id}<br/>{duration(plan.schedule[task_id].estimate)}"
            lines.append(f'    {_node_id(task_id)}["{label}"]')
        lines.append("  end")
    for task_id, deps in plan.predecessors.items():
        lines.extend(f"  {_node_id(dep)} --> {_node_id(task_id)}" for dep in deps)
    if plan.critical_path:
        lines.append("  classDef critical stroke:#d33,stroke-width:3px")
        lines.append(f"  class {','.join(map(_node_id, plan.critical_path))} critical")
    return "\n".join(lines) + "\n"


def to_dot(plan: Plan) -> str:
    """Graphviz dot: clusters per workstream, critical path in red."""
    critical = set(plan.critical_path)
    critical_edges = set(zip(plan.critical_path, plan.critical_path[1:], strict=False))
    lines = ["digraph plan {", "  rankdir=LR;", "  node [shape=box];"]
    by_workstream: dict[str, list[str]] = {}
    for task_id in plan.schedule:
        by_workstream.setdefault(plan.tasks[task_id].workstream_id, []).append(task_id)
    for workstream, members in sorted(by_workstream.items()):
        lines.append(f'  subgraph "cluster_{workstream}" {{')
        lines.append(f'    label="{workstream}";')
        for task_id in members:
            style = ", color=red, penwidth=2" if task_id in critical else ""
            label = f"{task_id}\\n{duration(plan.schedule[task_id].estimate)}"
            lines.append(f'    "{task_id}" [label="{label}"{style}];')
        lines.append("  }")
    for task_id, deps in plan.predecessors.items():
        for dep in deps:
            style = " [color=red, penwidth=2]" if (dep, task_id) in critical_edges else ""
            lines.append(f'  "{dep}" -> "{task_id}"{style};')
    lines.append("}")
    return "\n".join(lines) + "\n"
