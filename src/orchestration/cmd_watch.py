"""The ``watch`` command: re-validate, re-plan and sync on every edit (OBS-007..009).

Stability: provisional (its options, exit codes and JSON events are stable).

The work is done by :mod:`orchestration.watching`; this module parses the
options, stops on SIGINT and SIGTERM, and prints the events.
"""

from __future__ import annotations

import click

from .cli import CLI_JSON_VERSION, FORMAT, _actor, _project, cli

__all__ = ["watch"]


@cli.command(short_help="Re-validate, re-plan and sync on every edit of the definitions.")
@click.option("--debounce", type=click.FloatRange(0.0, 60.0), default=0.2, show_default=True,
              metavar="SECONDS",
              help="Re-plan once no definition changed for this long (a burst of edits, "
              "such as a git checkout, is one re-plan; it waits at most 10 times this, "
              "and at least 2 s).")  # fmt: skip
@FORMAT
@click.pass_context
def watch(ctx: click.Context, debounce: float, fmt: str) -> None:
    """Follow the definitions; on every edit re-validate, re-plan and sync (OBS-007).

    Follows tasks/, docs/state_machines/, capabilities/ and
    agent_workflow.yaml. At start, and after each burst of edits, the
    definitions are checked as `plan` and `validate` check them and planned,
    and what changed in the plan is printed: tasks added, removed (archived)
    and changed, new dependencies, the critical path when it changed; then
    .state/ is synced as `sync` does it. An invalid edit changes nothing: its
    problems are printed with file:line:column and the fix, and the edit that
    fixes them is applied. Only the files that changed are read again.
    Editors' swap, backup and temporary files are ignored.

    Stop with Ctrl-C or SIGTERM (exit 0). Exit 2 when there is no pipeline.

    \b
    --format json prints one JSON object per line, each with
    schema_version, event and at (UTC), by event:
      planned, replanned  seq, files, reloaded, tasks, edges, stages, added,
                          removed, changed, dependencies, critical_path,
                          critical_path_seconds, critical_path_changed,
                          syncing, seconds, waited
      synced              seq, seconds, lines (.state/ holds the plan's changes)
      failed              seq, seconds, message (the store refused the sync)
      invalid             seq, files, reloaded, count, problems (the first
                          50: file, line, column, pointer, message, hint,
                          requirement), seconds, waited
      watching            root, paths, debounce (once, after the first plan)
      stopped             signal (the last line)
    The plan is printed before the store is synced. The fields are
    described in the docstring of the module orchestration.watching.

    \b
    Examples:
      orchestration watch
      orchestration watch --format json | jq -c 'select(.event == "invalid")'
    """
    import signal
    import sys
    import threading

    from .watching import Event, Stopped
    from .watching import watch as follow

    project = _project(ctx, fmt)
    if fmt == "json":
        import orjson

        def emit(event: Event) -> None:
            document = {"schema_version": CLI_JSON_VERSION, **event.document()}
            sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE))
            sys.stdout.flush()
    else:

        def emit(event: Event) -> None:
            click.echo(event.text())
            sys.stdout.flush()

    stop = threading.Event()
    received: list[str] = []

    def on_signal(number: int, _frame: object) -> None:
        # Only this: the loop looks at `stop` and finishes the re-plan under way.
        received.append(signal.Signals(number).name)
        stop.set()

    caught = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, on_signal) for number in caught}
    try:
        follow(project.root, actor=_actor(None), emit=emit, stop=stop, debounce=debounce)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    emit(Stopped(received[0] if received else "stop"))
