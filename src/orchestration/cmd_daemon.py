"""The ``daemon`` commands: run, watch and serve in the background (OBS-010, OBS-011).

Stability: provisional (commands, exit codes and the ``status --format json`` shape are
stable).

``daemon start`` spawns ``daemon run`` detached and prints its pid; ``daemon
stop`` sends it SIGTERM and waits; ``daemon status`` says whether it runs,
from the lock of ``.state/daemon.pid`` (so a daemon killed with ``kill -9``
is reported as not running); ``daemon run`` is the supervisor itself, in the
foreground (for systemd and the like). The supervisor is
:class:`orchestration.daemon.Supervisor`.
"""

from __future__ import annotations

import click

from .cli import FORMAT, _emit_json, _project, cli

__all__ = ["daemon_group"]


@cli.group(name="daemon", short_help="Run, watch and serve in the background.")
def daemon_group() -> None:
    """Keep `run` and `watch` (and `serve`, with daemon.serve) running in the background.

    The daemon restarts a child that crashes (with backoff), starts `run`
    again when new work is ready, notifies task failures and run completions
    (notifications.webhooks), and stops within 10 s on SIGTERM with the state
    consistent. One daemon per repository: its PID file is .state/daemon.pid;
    its logs are .state/logs/engine.jsonl and .state/logs/daemon.out.

    \b
    Examples:
      orchestration daemon start
      orchestration daemon status --format json
      orchestration daemon stop
    """


@daemon_group.command(name="start", short_help="Start it in the background; print its pid.")
@FORMAT
@click.pass_context
def daemon_start(ctx: click.Context, fmt: str) -> None:
    """Start the daemon in the background and print its pid once it runs.

    Exits 1 when a daemon already runs on the repository, 2 when the
    configuration is invalid (daemon.serve needs ORCHESTRATOR_JWT_SECRET).
    """
    from .config import load_config
    from .daemon import check_serve, start_daemon

    project = _project(ctx, fmt)
    check_serve(load_config(project.root))  # ConfigError or UsageError: exit 2, before spawning
    pid = start_daemon(project.root)
    if fmt == "json":
        _emit_json({"running": True, "pid": pid, "root": str(project.root)})
    else:
        click.echo(f"daemon started on {project.root} (pid {pid}); logs in .state/logs/")


@daemon_group.command(name="stop", short_help="Stop it (SIGTERM) and wait, at most 10 s.")
@FORMAT
@click.pass_context
def daemon_stop(ctx: click.Context, fmt: str) -> None:
    """Stop the daemon (SIGTERM) and wait until it has exited, at most 10 s.

    Its children stop gracefully: `run` lets running attempts finish for
    daemon.drain_seconds, then stops them and releases their leases. Exits
    0 when it stopped or none ran, 1 when it still runs after 10 s.
    """
    from .daemon import stop_daemon

    project = _project(ctx, fmt)
    pid = stop_daemon(project.root)  # OrchestrationError: still running, exit 1
    if fmt == "json":
        _emit_json({"running": False, "stopped": pid, "root": str(project.root)})
    elif pid is None:
        click.echo(f"no daemon runs on {project.root}: nothing to stop")
    else:
        click.echo(f"daemon stopped (pid {pid})")


@daemon_group.command(name="status", short_help="Whether it runs: pid, uptime, children.")
@FORMAT
@click.pass_context
def daemon_status(ctx: click.Context, fmt: str) -> None:
    """Whether the daemon runs: pid, uptime, and each child's state and restarts.

    Exits 0 when it runs, 1 when it does not (a PID file left by a daemon
    that was killed is reported as stale, not as running).
    """
    from .daemon import status_report

    project = _project(ctx, fmt)
    report = status_report(project.root)
    if fmt == "json":
        _emit_json(report)
    else:
        click.echo(_render(report))
    if not report["running"]:
        raise SystemExit(1)  # as `run` does: the report said it all


@daemon_group.command(name="run", short_help="Run it in the foreground (what start spawns).")
@click.pass_context
def daemon_run(ctx: click.Context) -> None:
    """Run the daemon in the foreground until SIGTERM or Ctrl-C (what `start` spawns).

    Notifications are printed on stderr. Exits 1 when a daemon already runs
    on the repository.
    """
    import os
    import sys

    from .config import load_config
    from .daemon import Supervisor, check_serve

    project = _project(ctx)
    config = load_config(project.root)
    check_serve(config)
    supervisor = Supervisor(project.root, config, console=sys.stderr)
    click.echo(f"daemon running on {project.root} (pid {os.getpid()}); Ctrl-C stops it", err=True)
    code = supervisor.run()  # DaemonRunning: exit 1
    click.echo("daemon stopped", err=True)
    if code:
        raise SystemExit(code)


def _render(report: dict[str, object]) -> str:
    """The status report as text: one line for the daemon, one per child."""
    if not report["running"]:
        stale = report["stale_pid"]
        note = f" (stale PID file of pid {stale}, which died without removing it)" if stale else ""
        return f"daemon: not running on {report['root']}{note}"
    lines = [
        f"daemon: {report['state'] or 'starting'} (pid {report['pid']}, up "
        f"{_duration(report['uptime_seconds'])}) on {report['root']}"
    ]
    children = report["children"]
    assert isinstance(children, list)
    for child in children:
        pid = child["pid"] if child["pid"] is not None else "-"
        detail = f"up {_duration(child['uptime_seconds'])}" if child["pid"] is not None else ""
        if child["state"] == "backoff":
            detail = f"restart in {child['next_start_in']:.1f} s"
        last = f", last exit {child['last_exit']}" if child["last_exit"] is not None else ""
        lines.append(
            f"  {child['name']:<6} {child['state']:<8} pid {pid:<8} {detail:<18} "
            f"restarts {child['restarts']}{last}"
        )
    return "\n".join(lines)


def _duration(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "?"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
