"""The ``audit`` commands: rotate, verify, archive, restore and report (AUDIT-002..007).

Stability: stable (commands, options, exit codes and JSON shapes).

Each command parses, calls one function of ``orchestration.state`` (or
``orchestration.audit_report``) and renders; only click is imported here at
start-up, so that ``orchestration --help`` stays fast (MOD-IDX-005).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import click

from .cli import FORMAT, _actor, _emit_json, _project, cli
from .errors import OrchestrationError, UsageError

__all__ = ["audit_group"]


@cli.group(name="audit", short_help="Seal, verify, archive and report the audit trail.")
def audit_group() -> None:
    """The audit trail: the journal and the tool audit, sealed into segments.

    `rotate` seals the live journal (.state/transitions.jsonl) and tool audit
    (.state/audit/tool_audit.jsonl) into gzip segments in .state/audit/, each
    with its SHA-256 in .state/audit/manifest.json, hash-chained. `archive`
    moves segments past `audit.retention_days` to .state/archive/, `restore`
    brings them back. Replay, `history` and `state verify` read sealed and
    archived segments as if the journal were one file. The policy is in
    docs/operations/AUDIT_RETENTION.md.

    \b
    Examples:
      orchestration audit rotate                 seal what is live now
      orchestration audit verify                 exit 1 naming the first altered segment
      orchestration audit archive                move segments past retention
      orchestration audit restore --all          bring every archived segment back
      orchestration audit report --since 2026-11-01 --period week
    """


def _entry_row(entry: Any) -> str:
    seqs = f"seq {entry.first_seq}..{entry.last_seq}" if entry.kind == "journal" else ""
    return f"{entry.segment:<32} {entry.lines:>9} lines  {entry.size:>11} bytes  {seqs}"


@audit_group.command(name="rotate")
@FORMAT
@click.pass_context
def audit_rotate(ctx: click.Context, fmt: str) -> None:
    """Seal the journal and the tool audit into compressed, hash-chained segments.

    Journal segments hold whole transactions, at most `audit.segment_max_bytes`
    each (orchestration.yaml); seq stays contiguous across segments and into
    the new live journal. Writers wait on the store's lock while it runs
    (about a second per 64 MiB). Nothing live is ever dropped or rewritten.
    """
    from .config import load_config
    from .lifecycles import load_lifecycles
    from .state import Store

    project = _project(ctx, fmt)
    config = load_config(project.root)
    with Store.open(project.root, load_lifecycles(project.root), actor=_actor(None)) as store:
        entries = store.seal(config.audit.segment_max_bytes)
    if fmt == "json":
        _emit_json({"sealed": [_entry_document(entry) for entry in entries]})
        return
    for entry in entries:
        click.echo(_entry_row(entry))
    click.echo(f"sealed {len(entries)} segment(s)" if entries else "nothing live to seal")


def _entry_document(entry: Any) -> dict[str, Any]:
    from dataclasses import asdict

    document = asdict(entry)
    del document["blocks"]  # the block digests are for verify, not for people
    return document


@audit_group.command(name="verify")
@FORMAT
@click.pass_context
def audit_verify(ctx: click.Context, fmt: str) -> None:
    """Recompute every segment's SHA-256 and the manifest's hash chain.

    Exit 0 when intact; exit 1 naming the first altered segment and the byte
    offset of its first altered kilobyte, then every other finding.
    """
    from .state.layout import layout
    from .state.segments import Manifest, verify

    project = _project(ctx, fmt)
    files = layout(project.root)
    findings = verify(files)
    count = len(Manifest.read(files.audit).entries) if not findings else None
    if fmt == "json":
        _emit_json({
            "intact": not findings,
            "segments": count,
            "findings": [
                {"segment": f.segment, "problem": f.problem, "offset": f.offset}
                for f in findings
            ],
        })  # fmt: skip
    else:
        for finding in findings:
            click.echo(finding.render())
        if not findings:
            click.echo(f"intact: {count} segment(s), hash chain verified")
    if findings:
        first = findings[0]
        where = f" at byte {first.offset}" if first.offset is not None else ""
        msg = f"the audit trail was altered: first in {first.segment}{where}"
        raise OrchestrationError(msg)


@audit_group.command(name="archive")
@click.option("--older-than", "days", type=click.FloatRange(min=0), metavar="DAYS",
              help="Archive segments whose last record is older than this "
                   "(default: audit.retention_days).")  # fmt: skip
@FORMAT
@click.pass_context
def audit_archive(ctx: click.Context, days: float | None, fmt: str) -> None:
    """Move sealed segments past retention from .state/audit/ to .state/archive/.

    A rename: the bytes never change, the manifest still names them, and
    replay and `history` still read them (AUDIT-004, AUDIT-006).
    """
    from .config import load_config
    from .state.layout import layout
    from .state.segments import archive

    project = _project(ctx, fmt)
    if days is None:
        days = load_config(project.root).audit.retention_days
    moved = archive(layout(project.root), days)
    _report_moved(moved, fmt, f"archived (older than {days:g} days)")


@audit_group.command(name="restore")
@click.argument("segments", nargs=-1, metavar="[SEGMENT]...")
@click.option("--all", "everything", is_flag=True, help="Restore every archived segment.")
@FORMAT
@click.pass_context
def audit_restore(
    ctx: click.Context, segments: tuple[str, ...], everything: bool, fmt: str
) -> None:
    """Bring archived segments back to .state/audit/, byte-identical.

    Name the segments (as `audit verify --format json` or the manifest lists
    them), or give --all.
    """
    from .state.layout import layout
    from .state.segments import restore

    project = _project(ctx, fmt)
    if not segments and not everything:
        msg = "name the segments to restore, or give --all"
        raise UsageError(msg)
    moved = restore(layout(project.root), None if everything else list(segments))
    _report_moved(moved, fmt, "restored")


def _report_moved(moved: list[str], fmt: str, done: str) -> None:
    if fmt == "json":
        _emit_json({"moved": moved})
        return
    for name in moved:
        click.echo(name)
    click.echo(f"{done}: {len(moved)} segment(s)")


@audit_group.command(name="report")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="First day (UTC), inclusive.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Last day (UTC), inclusive.")
@click.option("--period", type=click.Choice(["day", "week", "month"]), default="day",
              show_default=True, help="How activity is grouped.")  # fmt: skip
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the .md and .json reports (default .state/audit/reports/).",
)
@click.option("--no-validate", is_flag=True, help="Leave out the requirements' current outcomes.")
@FORMAT
@click.pass_context
def audit_report(
    ctx: click.Context,
    since: Any,
    until: Any,
    period: str,
    output: Path | None,
    no_validate: bool,
    fmt: str,
) -> None:
    """Write a compliance report per requirement ID and per period, in Markdown and JSON.

    It holds the integrity of the sealed segments, each requirement's outcome
    under `validate` now, and per period the journal's activity (lines by
    severity, failures by failure mode) and the tool decisions per
    requirement ID (allowed, denied, warned) from the tool audit.

    \b
    Examples:
      orchestration audit report                            everything, by day
      orchestration audit report --since 2026-11-01 --until 2026-11-30 --period week
      orchestration audit report --format json | jq '.periods[].tools'
    """
    import orjson

    from .audit_report import audit_report as build_report
    from .audit_report import render_markdown
    from .state.layout import layout

    project = _project(ctx, fmt)
    first: date | None = since.date() if since else None
    last: date | None = until.date() if until else None
    if first and last and first > last:
        msg = f"--since {first} is after --until {last}"
        raise UsageError(msg)
    requirements: list[dict[str, Any]] = []
    if not no_validate:
        from .validation.report import validate

        requirements = [
            {"id": r.id, "level": r.level.value, "outcome": r.outcome.value}
            for r in validate(project.root).results
        ]
    report = build_report(
        project.root, since=first, until=last, period=period, requirements=requirements
    )
    folder = output or layout(project.root).audit / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"compliance-{report['since'] or 'start'}-{report['until'] or 'now'}"
    (folder / f"{stem}.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    (folder / f"{stem}.md").write_text(render_markdown(report), encoding="utf-8")
    if fmt == "json":
        _emit_json(report)
    else:
        click.echo(f"wrote {folder / stem}.md and .json")
