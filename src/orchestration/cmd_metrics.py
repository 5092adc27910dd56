"""The ``metrics`` command: counters and gauges as JSON or Prometheus text (OBS-002).

Stability: provisional.

It reads the snapshot ``.state/current.json`` without locking, as ``status``
does, so its values are those of ``status --format json`` at the same
``last_seq`` (OBS-004). The JSON document is that of ``.state/metrics.json``,
described in :mod:`orchestration.state.metrics`.
"""

from __future__ import annotations

import click

from .cli import _emit_json, _project, cli

__all__ = ["metrics"]


@cli.command(short_help="Counters, gauges and histograms (JSON or Prometheus text).")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "prometheus"]), default="text",
    show_default=True, help="prometheus: the text format Prometheus scrapes (as GET /metrics).",
)  # fmt: skip
@click.pass_context
def metrics(ctx: click.Context, fmt: str) -> None:
    """Tasks by status and workstream, transitions, retries, failures by mode,
    lease expiries, attempt durations and queue wait, read from .state/ without
    locking (the values of `status --format json` at the same journal seq).

    \b
    Examples:
      orchestration metrics                       a summary
      orchestration metrics --format json         the document of .state/metrics.json
      orchestration metrics --format prometheus   for node_exporter's textfile collector
      orchestration serve                         ... and scrape GET /metrics instead

    Exit 2 when there is no state yet (run `orchestration sync`).
    """
    from .errors import UsageError
    from .state.journal import now
    from .state.layout import layout
    from .state.snapshot import read_snapshot

    project = _project(ctx, "json" if fmt == "json" else "text")
    files = layout(project.root)
    state = read_snapshot(files.snapshot)  # a snapshot without metrics: SnapshotError, exit 1
    if state is None:
        msg = f"no state yet in {files.folder}: run `orchestration sync` to create it"
        raise UsageError(msg)
    document = state.metrics.document(state.last_seq, now())
    if fmt == "json":
        _emit_json(document)
    elif fmt == "prometheus":
        import sys

        from .state.metrics import exposition

        sys.stdout.buffer.write(exposition(document))
        sys.stdout.flush()
    else:
        from .state.metrics import render_text

        click.echo(render_text(document))
