"""The command line: parse, call one domain function, render.

Stability: stable (commands, options, exit codes and JSON shapes).

Exit codes: 0 success; 1 findings (invalid definitions, a rejected change, a
failed run); 2 usage (bad flags, no pipeline at the root); 3 internal error
(a bug: one line here, the traceback in ``.state/logs/``).

Only click is imported at start-up; each command imports what it needs, so
that ``--help`` and small pipelines answer fast.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from .errors import DefinitionError, OrchestrationError, Problem, UsageError

__all__ = ["main", "run"]

SHOWN_PROBLEMS = 50
CLI_JSON_VERSION = "1.0.0"  # of every --format json document that states none of its own


@dataclass
class Invocation:
    """What the group options and the running command chose, shared with :func:`main`."""

    root: Path | None = None  # --root as given
    fmt: str = "text"
    project_root: Path | None = None  # the pipeline found, for crash logs


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` and return the exit code."""
    invocation = Invocation()
    try:
        cli.main(
            args=list(argv) if argv is not None else None,
            standalone_mode=False,
            obj=invocation,
        )
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as bad:
        bad.show()
        return 2
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    except DefinitionError as error:
        _report_problems(error.problems, invocation.fmt)
        return error.exit_code
    except OrchestrationError as error:
        click.echo(f"error: {error}", err=True)
        return error.exit_code
    except BrokenPipeError:
        # `orchestration plan | head`: the reader left; that is not our failure.
        sys.stderr.close()
        return 0
    except Exception as bug:  # noqa: BLE001 - the last line of defence
        where = _log_bug(bug, invocation.project_root or Path.cwd())
        click.echo(
            f"internal error: {type(bug).__name__}: {bug} (a bug in orchestration; "
            f"traceback in {where})",
            err=True,
        )
        return 3
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


def _log_bug(bug: BaseException, root: Path) -> str:
    """Write the traceback under ``root/.state/logs/`` (or the temp dir); return where."""
    import tempfile

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    text = "".join(traceback.format_exception(bug))
    for folder in (root / ".state" / "logs", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"crash-{stamp}.log"
            path.write_text(text, encoding="utf-8")
        except OSError:
            continue
        return str(path)
    return "(nowhere: no writable folder)"


def _report_problems(problems: Sequence[Problem], fmt: str) -> None:
    if fmt == "json":
        _emit_json({"ok": False, "problems": [p.as_dict() for p in problems]})
    for problem in problems[:SHOWN_PROBLEMS]:
        click.echo(problem.render(), err=True)
    if len(problems) > SHOWN_PROBLEMS:
        click.echo(f"... and {len(problems) - SHOWN_PROBLEMS} more problems", err=True)
    count = len(problems)
    click.echo(f"{count} problem{'s' if count != 1 else ''} found; nothing was changed.", err=True)


def _emit_json(document: Any) -> None:
    """Print a command's JSON document; one without its own version is CLI shape 1.0.0."""
    import orjson

    if isinstance(document, dict) and "schema_version" not in document:
        document = {"schema_version": CLI_JSON_VERSION, **document}  # COMPLIANCE-003

    sys.stdout.buffer.write(
        orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    )
    sys.stdout.flush()


ROOT_HELP = "Pipeline root (the folder holding tasks/). Default: the nearest above the cwd."


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=ROOT_HELP,
)
@click.version_option(package_name="orchestration", message="orchestration %(version)s")
@click.pass_context
def cli(ctx: click.Context, root: Path | None) -> None:
    """Run AI development pipelines from plain files.

    Tasks are JSON files under tasks/<workstream>/<task>.json; lifecycles are
    YAML under docs/state_machines/; runtime state is written to .state/.

    \b
    Start here:
      orchestration init my-pipeline     scaffold a pipeline
      orchestration plan                 stages, critical path, estimates
      orchestration plan --format json   the same, for machines

    Exit codes: 0 ok, 1 findings, 2 usage, 3 internal error.
    """
    ctx.ensure_object(Invocation).root = root


def _project(ctx: click.Context, fmt: str = "text") -> Any:
    """The pipeline the command works on; records the output format for errors."""
    from .project import Project

    invocation = ctx.find_object(Invocation)
    assert invocation is not None  # set by the group
    invocation.fmt = fmt
    project = Project.find(invocation.root)
    invocation.project_root = project.root
    return project


FORMATS = ["text", "json", "mermaid", "dot"]


@cli.command(short_help="Stages, critical path, estimates and slack.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text: a table on a terminal, plain lines in a pipe; json: the documented shape.",
)
@click.option("--workstream", "-w", metavar="WS", help="Plan only this workstream's tasks.")
@click.option("--target", "-t", metavar="TASK", help="Plan only TASK and what it needs.")
@click.option("--limit", default=200, show_default=True, help="Rows shown by the text table.")
@click.pass_context
def plan(
    ctx: click.Context, fmt: str, workstream: str | None, target: str | None, limit: int
) -> None:
    """Plan the pipeline: stages, critical path, earliest start and slack.

    Stages are topological generations: every task's dependencies are in
    earlier stages. The critical path is the longest chain of dependencies
    weighted by execution.estimated_seconds (tasks without it count
    60 s). Slack is how long a task can slip without delaying the end.
    Tasks that can run together and list shared resources in opposite
    orders are warned of (potential deadlocks, CONC-REG-005); the plan
    still succeeds.

    \b
    Examples:
      orchestration plan --target task-012       what task-012 needs
      orchestration plan --format mermaid > plan.mmd
      orchestration plan --format dot | dot -Tsvg > plan.svg
    """
    from .bulk import gc_paused
    from .planning.deadlocks import plan_deadlocks
    from .planning.inputs import plan_inputs
    from .planning.plan import build_plan, scope
    from .planning.render import to_dot, to_json, to_mermaid, to_text

    project = _project(ctx, fmt)
    # One short-lived process building ~10 objects per task: collecting cycles
    # that cannot exist only costs time (see orchestration.bulk).
    with gc_paused():
        tasks, files = plan_inputs(project.root)
        result = build_plan(scope(tasks, workstream=workstream, target=target), files)
        deadlocks = plan_deadlocks(result, tasks)
        if fmt == "json":
            _emit_json(to_json(result, deadlocks))
        elif fmt == "mermaid":
            click.echo(to_mermaid(result), nl=False)
        elif fmt == "dot":
            click.echo(to_dot(result), nl=False)
        elif sys.stdout.isatty():
            from rich.console import Console

            from .planning.render import to_rich

            Console().print(to_rich(result, limit=limit, deadlocks=deadlocks))
        else:
            click.echo(to_text(result, limit=limit, deadlocks=deadlocks))


VALIDATE_FORMATS = ["text", "json", "junit", "github"]


@cli.command(short_help="Check the repository against the spec's requirement IDs.")
@click.option(
    "--section",
    "-s",
    "sections",
    multiple=True,
    metavar="PREFIX",
    help="Only requirements whose ID starts with PREFIX (e.g. TASK-DEF). Repeatable.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(VALIDATE_FORMATS),
    default="text",
    show_default=True,
    help="junit: one test case per requirement; github: workflow annotations.",
)
@click.option("--verbose", "-v", is_flag=True, help="List every requirement, not only failures.")
@click.option("--coverage", is_flag=True, help="Print the requirement matrix instead.")
@click.pass_context
def validate(
    ctx: click.Context, sections: tuple[str, ...], fmt: str, verbose: bool, coverage: bool
) -> None:
    """Check the repository against the requirement IDs of the spec.

    Every check declares the requirement IDs it verifies; each ID is reported
    as pass, fail or not applicable (nothing to inspect, e.g. no .state/ yet),
    and each failure with its file, line:column, JSON pointer and a fix.
    A failed MUST makes the repository non-compliant (exit 1); a failed
    SHOULD or MAY is a warning.

    \b
    Examples:
      orchestration validate                          everything
      orchestration validate -s TASK-DEF -s DAG-VIEW  two sections
      orchestration validate --format github          annotations in CI
      orchestration validate --format junit > compliance.xml
      orchestration validate --coverage               which check covers what

    Exit codes: 0 compliant, 1 violations, 2 usage.
    """
    project = _project(ctx, "json" if fmt == "json" else "text")
    if coverage:
        from .validation.coverage import coverage_matrix, coverage_text

        rows = coverage_matrix(project.root)
        if fmt == "json":
            _emit_json({"schema_version": "1.0.0", "requirements": [r.as_dict() for r in rows]})
        else:
            click.echo(coverage_text(rows), nl=False)
        return
    from .validation.render import to_github, to_json, to_junit, to_text
    from .validation.report import validate as run_checks

    report = run_checks(project.root, sections)
    if fmt == "json":
        _emit_json(to_json(report))
    elif fmt == "junit":
        click.echo(to_junit(report), nl=False)
    elif fmt == "github":
        click.echo(to_github(report), nl=False)
    else:
        click.echo(to_text(report, verbose=verbose), nl=False)
    if not report.compliant:
        count = len(report.violations)
        msg = f"{count} MUST requirement{'s' if count != 1 else ''} violated"
        raise OrchestrationError(msg)


@cli.command(short_help="Scaffold a pipeline (never overwrites).")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def init(directory: Path, fmt: str) -> None:
    """Scaffold a pipeline in DIRECTORY (default: here); never overwrites a file.

    Creates the spec, lifecycles, registries, an example workstream and a
    .gitignore entry for .state/. Existing files are kept and reported.
    """
    from .scaffold import scaffold

    created, kept = scaffold(directory)
    if fmt == "json":
        _emit_json({"root": str(directory.resolve()), "created": created, "kept": kept})
        return
    for path in created:
        click.echo(f"created  {path}")
    for path in kept:
        click.echo(f"kept     {path} (exists)")
    click.echo(f"\nNext: cd {directory} && orchestration plan")


@cli.command(short_help="Upgrade v1.0.0 task files to v2.0.0.")
@click.option("--dry-run", is_flag=True, help="Show the changes as a diff; write nothing.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def migrate(ctx: click.Context, dry_run: bool, fmt: str) -> None:
    """Upgrade v1.0.0 task files to schema v2.0.0, in place.

    Idempotent: v2.0.0 files are left as they are. See
    docs/schema_migrations/task_v1_to_v2.md for the field mapping.
    """
    from .tasks.migration import migrate_tasks

    project = _project(ctx, fmt)
    report = migrate_tasks(project.root, write=not dry_run)
    if fmt == "json":
        _emit_json(report.as_dict())
    else:
        for diff in report.diffs:
            click.echo(diff, nl=False)
        verb = "would migrate" if dry_run else "migrated"
        click.echo(
            f"{verb} {len(report.migrated)} file(s); {report.current} already at v2.0.0",
            err=bool(report.diffs),
        )
    if report.problems:
        raise DefinitionError(report.problems)


@cli.command(short_help="Regenerate (or --check) schemas/ from the models.")
@click.option("--check", is_flag=True, help="Exit 1 if a checked-in schema differs.")
@click.pass_context
def schemas(ctx: click.Context, check: bool) -> None:
    """Regenerate the published JSON Schemas in schemas/ from the models."""
    from .tasks.schema import write_schemas

    project = _project(ctx)
    stale = write_schemas(project.root / "schemas", check=check)
    for name in stale:
        click.echo(f"{'stale' if check else 'wrote'}: schemas/{name}")
    if check and stale:
        msg = "schemas are out of date: run `orchestration schemas`"
        raise OrchestrationError(msg)


# --- state: sync, task, status, next, history, state verify|rebuild -----------

FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)


def _actor(given: str | None) -> str:
    if given:
        return given
    import getpass

    try:
        return f"user:{getpass.getuser()}"
    except (KeyError, OSError):
        return "user:unknown"


def _describe(line: dict[str, Any]) -> str:
    arrow = f"{line['from'] or '(new)'} -> {line['to'] or '(archived)'}"
    reason = f"  ({line['reason']})" if line["reason"] else ""
    trigger = f"{line['trigger']:<9} by {line['actor']}"
    return f"#{line['seq']:<6} {line['id']:<24} {arrow:<24} {trigger}{reason}"


def _print_lines(lines: list[dict[str, Any]], fmt: str, empty: str) -> None:
    if fmt == "json":
        _emit_json({"committed": lines})
    elif lines:
        click.echo("\n".join(_describe(line) for line in lines))
    else:
        click.echo(empty)


@cli.command(short_help="Reconcile .state/ with the task files.")
@FORMAT
@click.option("--actor", help="Who is recorded in the journal (default: user:<login>).")
@click.pass_context
def sync(ctx: click.Context, fmt: str, actor: str | None) -> None:
    """Bring .state/ in line with the task files (STATE-OBS-014).

    New tasks enter the lifecycle's initial state (and become ready when their
    dependencies are done), changed definitions are recorded, removed tasks are
    archived with their history kept, and a status of cancelled or skipped
    declared in a file is applied. Invalid task files change nothing.
    """
    from .lifecycles import load_lifecycles
    from .state import Store
    from .tasks.loading import load_tasks

    project = _project(ctx, fmt)
    loaded = load_tasks(project.root)
    if loaded.problems:
        raise DefinitionError(loaded.problems)
    lifecycles = load_lifecycles(project.root)
    with Store.open(project.root, lifecycles, actor=_actor(actor)) as store:
        lines = store.sync(loaded.tasks)
    _print_lines(lines, fmt, "in sync: nothing to change")


@cli.command(short_help="Apply a lifecycle trigger to a task.")
@click.argument("task_id")
@click.argument("trigger")
@click.option("--reason", default="", help="Why, recorded in the journal.")
@click.option("--actor", help="Who, recorded in the journal (default: user:<login>).")
@FORMAT
@click.pass_context
def task(
    ctx: click.Context, task_id: str, trigger: str, reason: str, actor: str | None, fmt: str
) -> None:
    """Apply TRIGGER to TASK_ID through the store (SM-DEF-011).

    Changes it implies are committed with it: completing a task enqueues the
    dependents that became ready; failing one for good blocks its dependents.
    A trigger the task's state does not allow is refused (exit 1) with the
    triggers allowed there.

    \b
    Examples:
      orchestration task task-004 start
      orchestration task task-004 fail --reason "FM-NONZERO-EXIT: exit 2"
    """
    from .lifecycles import load_lifecycles
    from .state import Store

    project = _project(ctx, fmt)
    lifecycles = load_lifecycles(project.root)
    with Store.open(project.root, lifecycles, actor=_actor(actor)) as store:
        lines = store.apply(task_id, trigger, reason=reason)
    _print_lines(lines, fmt, "")


@cli.command(short_help="Runtime status of every task.")
@click.option("--workstream", "-w", metavar="WS", help="Only this workstream.")
@click.option("--status", "-s", "statuses", multiple=True, metavar="STATUS", help="Only these.")
@FORMAT
@click.pass_context
def status(ctx: click.Context, workstream: str | None, statuses: tuple[str, ...], fmt: str) -> None:
    """Runtime status of tasks and workstreams, read from .state/ without locking.

    A task whose file declares a status other than its runtime one is flagged
    (the declared status is applied at the next sync when it is cancelled or
    skipped).
    """
    from .state.views import current_state, status_rows

    project = _project(ctx, fmt)
    state = current_state(project.root)
    rows = status_rows(state, workstream=workstream, statuses=statuses)
    if fmt == "json":
        _emit_json({"last_seq": state.last_seq, "workstreams": state.workstreams, "tasks": rows})
        return
    for row in rows:
        flag = f"  (file declares {row['declared']})" if "declared" in row else ""
        click.echo(f"{row['task_id']:<24} {row['workstream_id']:<12} {row['status']:<10}{flag}")
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    summary = ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))
    click.echo(f"\n{len(rows)} tasks: {summary or 'none'} (as of journal seq {state.last_seq})")
    for name, entry in state.workstreams.items():
        if workstream is None or name == workstream:
            click.echo(f"workstream {name}: {entry['status']}")


@cli.command(name="next", short_help="The ready task to take now.")
@click.option("--capability", "-c", "capabilities", multiple=True, help="What you can offer.")
@click.option("--all", "show_all", is_flag=True, help="Every ready task, in order.")
@FORMAT
@click.pass_context
def next_(ctx: click.Context, capabilities: tuple[str, ...], show_all: bool, fmt: str) -> None:
    """The ready task to take now: highest priority, then least slack.

    With --capability, only tasks whose required capabilities you all offer.
    Exit 1 when nothing is ready.
    """
    from .bulk import gc_paused
    from .planning.inputs import plan_inputs
    from .planning.plan import build_plan
    from .state.views import current_state, next_tasks

    project = _project(ctx, fmt)
    state = current_state(project.root)
    with gc_paused():
        tasks, files = plan_inputs(project.root)
        plan = build_plan(tasks, files)
    slack = {task_id: slot.slack for task_id, slot in plan.schedule.items()}
    ready = next_tasks(state, slack, capabilities or None)
    chosen = ready if show_all else ready[:1]
    if fmt == "json":
        _emit_json({"tasks": chosen})
    else:
        for row in chosen:
            click.echo(
                f"{row['task_id']}  priority {row['priority']}  slack {row['slack_seconds']:g}s  "
                f"needs {', '.join(row['capabilities']) or 'nothing'}"
            )
    if not ready:
        msg = "no ready task" + (
            f" for capabilities {', '.join(capabilities)}" if capabilities else ""
        )
        raise OrchestrationError(msg)


@cli.command(name="run", short_help="Execute the plan: ready tasks on workers, in parallel.")
@click.option("--max-workers", "-j", type=click.IntRange(min=1), metavar="N",
              help="Run at most N attempts at once (default: run.max_workers of the "
              "configuration, else the declared workers, or one local worker "
              "per CPU).")  # fmt: skip
@click.option("--workstream", "-w", metavar="WS", help="Only this workstream's tasks.")
@click.option("--target", "-t", metavar="TASK", help="Only TASK and what it needs.")
@click.option("--dry-run", is_flag=True, help="Print the dispatch order; run and write nothing.")
@click.option("--fail-fast", is_flag=True, help="Stop dispatching at the first final failure.")
@FORMAT
@click.pass_context
def run_(
    ctx: click.Context,
    max_workers: int | None,
    workstream: str | None,
    target: str | None,
    dry_run: bool,
    fail_fast: bool,
    fmt: str,
) -> None:
    """Dispatch ready tasks to workers until the plan is done (EXEC-DOC-003).

    Order: highest priority, then least slack, then task id. A task runs on a
    worker offering every capability it requires, with all its resources and
    path locks taken at once, in its own git worktree on the branch
    task/<task_id>/<attempt>. Failures are classified by the failure-mode
    catalog: retried with backoff while execution.max_retries allows, or the
    task fails for good and its dependents are blocked while the rest goes on.

    Ctrl-C once: finish running attempts, take no new ones. Twice: stop them.
    Running `run` again after any crash resumes from the journal: attempts
    still running are adopted, finished ones recorded, lost ones re-run.

    Leases, retries and the default of --max-workers come from
    orchestration.yaml and ORCHESTRATOR_* variables, listed in
    docs/operations/CONFIGURATION.md; an invalid configuration exits 2.

    Exit 0 when every task it ran succeeded, 1 when one failed for good or
    was blocked, 2 on bad usage.

    \b
    Examples:
      orchestration run -j 4
      orchestration run --target task-007 --dry-run
      orchestration run --format json | jq 'select(.severity != "info")'
    """
    from .execution.definitions import start_loading

    project = _project(ctx, fmt)
    # Checked as `plan` checks them, and cached while no file changes: the files'
    # signatures are taken in a child process while this one reads the rest.
    loading = start_loading(project.root)

    from .config import load_config
    from .execution.definitions import check_scope
    from .execution.progress import Progress
    from .execution.runner import Runner, RunOptions
    from .execution.runner import dry_run as plan_run
    from .lifecycles import load_lifecycles

    config = load_config(project.root)  # ConfigError: every problem located, exit 2
    options = RunOptions.configured(config, max_workers=max_workers, workstream=workstream,
                                    target=target, fail_fast=fail_fast)  # fmt: skip
    if dry_run:
        definitions = loading()  # DefinitionError: every problem, exit 1
        check_scope(definitions, target=target, workstream=workstream)  # UsageError, exit 2
        planned = plan_run(project.root, definitions, options)
        if fmt == "json":
            _emit_json({"order": planned.order, "deadlocks": planned.deadlocks,
                        "waiting_for_people": planned.waiting})  # fmt: skip
        else:
            for number, task_id in enumerate(planned.order, start=1):
                click.echo(f"{number:>5}  {task_id}")
            for deadlock in planned.deadlocks:
                click.echo(f"potential deadlock (FM-DEADLOCK): {deadlock}", err=True)
        if planned.deadlocks:
            msg = f"{len(planned.deadlocks)} potential deadlock(s): fix the resource orders"
            raise OrchestrationError(msg)
        return
    progress = Progress(fmt)
    lifecycles = load_lifecycles(project.root)
    # Runner.run loads the definitions (when resuming, once the state is read) and
    # checks --target and --workstream: DefinitionError exit 1, UsageError exit 2.
    runner = Runner(project.root, loading, lifecycles, options, progress)
    summary = runner.run()
    progress.close(summary.document())
    if summary.exit_code:
        raise SystemExit(summary.exit_code)


@cli.group(name="worker", short_help="Register and list workers.")
def worker_group() -> None:
    """Workers offer capabilities and run one attempt at a time (SM-DEF-009).

    Declare them in workers.yaml, or register them here; `run` uses the
    declared and registered workers no other live run holds, and with none
    starts N local workers offering the registry's local capabilities.
    """


@worker_group.command(name="register")
@click.argument("worker_id")
@click.option("--capability", "-c", "capabilities", multiple=True, required=True,
              help="A capability it offers (repeat for several).")  # fmt: skip
@click.option("--label", "-l", "labels", multiple=True, metavar="KEY=VALUE", help="A tag.")
@FORMAT
@click.pass_context
def worker_register(
    ctx: click.Context, worker_id: str, capabilities: tuple[str, ...], labels: tuple[str, ...],
    fmt: str,
) -> None:  # fmt: skip
    """Record WORKER_ID offering the given capabilities (in the journal, like every change).

    \b
    Example:
      orchestration worker register gpu-box -c shell -c python -l pool=gpu
    """
    import re

    from .lifecycles import load_lifecycles
    from .registry import load_capabilities
    from .state import Store
    from .tasks.model import ID_PATTERN

    project = _project(ctx, fmt)
    if not re.match(ID_PATTERN, worker_id):
        msg = f"worker id {worker_id!r} is not letters, digits, '.', '_' or '-'"
        raise UsageError(msg)
    known = load_capabilities(project.root)
    unknown = [name for name in capabilities if name not in known]
    if unknown:
        msg = (f"capability {unknown[0]!r} is not in the capability registry; "
               f"use one of {', '.join(sorted(known))}")  # fmt: skip
        raise UsageError(msg)
    tags = {}
    for label in labels:
        key, sep, value = label.partition("=")
        if not sep or not key:
            msg = f"label {label!r} is not KEY=VALUE"
            raise UsageError(msg)
        tags[key] = value
    data = {"capabilities": sorted(set(capabilities)), "labels": tags, "registered": True,
            "local": False, "holder": None}  # fmt: skip
    lifecycles = load_lifecycles(project.root)
    with (
        Store.open(project.root, lifecycles, actor=_actor(None)) as store,
        store.transaction() as tx,
    ):
        status = store.state.workers.get(worker_id, {}).get("status")
        if status in ("idle", "busy", "draining"):
            msg = f"worker {worker_id!r} is {status} in a run; register it when it stops"
            raise UsageError(msg)
        # Registered, then stopped until a run starts it (the worker lifecycle).
        tx.worker(worker_id, "recover" if status == "lost" else "register",
                  reason="registered by hand", data=data)  # fmt: skip
        tx.worker(worker_id, "drain", reason="waits for a run to start it")
        tx.worker(worker_id, "stop", reason="waits for a run to start it")
    _print_lines(tx.lines, fmt, "")


@worker_group.command(name="list")
@FORMAT
@click.pass_context
def worker_list(ctx: click.Context, fmt: str) -> None:
    """Every worker the state knows: status, capabilities, labels and the run holding it."""
    from .state.views import current_state

    project = _project(ctx, fmt)
    workers = current_state(project.root).workers
    if fmt == "json":
        _emit_json({"workers": workers})
        return
    for worker_id, entry in sorted(workers.items()):
        labels = ",".join(f"{k}={v}" for k, v in entry.get("labels", {}).items())
        click.echo(f"{worker_id:<16} {entry['status']:<9} "
                   f"{','.join(entry.get('capabilities', ())):<24} {labels:<16} "
                   f"{entry.get('holder') or ''}")  # fmt: skip
    if not workers:
        click.echo("no workers yet: `orchestration worker register` or `orchestration run`")


@cli.command(short_help="Every journal line about a task.")
@click.argument("task_id")
@FORMAT
@click.pass_context
def history(ctx: click.Context, task_id: str, fmt: str) -> None:
    """Every change of TASK_ID, oldest first, from the journal."""
    from .state.views import history as read_history

    project = _project(ctx, fmt)
    lines = read_history(project.root, task_id)
    if fmt == "json":
        _emit_json({"task_id": task_id, "history": lines})
        return
    if not lines:
        msg = f"no history for {task_id!r}; is it synced? (`orchestration sync`)"
        raise OrchestrationError(msg)
    for line in lines:
        click.echo(f"{line['ts']}  " + _describe(line))


@cli.group(name="state", short_help="Verify or rebuild the snapshot.")
def state_group() -> None:
    """Check .state/current.json against the journal, or rebuild it."""


@state_group.command(name="verify")
@FORMAT
@click.pass_context
def state_verify(ctx: click.Context, fmt: str) -> None:
    """Exit 0 when the snapshot equals the replay of the journal, else 1 with every difference."""
    from .lifecycles import load_lifecycles
    from .state.views import verify

    project = _project(ctx, fmt)
    differences = verify(project.root, load_lifecycles(project.root))
    if fmt == "json":
        _emit_json(
            {
                "ok": not differences,
                "differences": [
                    {"where": d.where, "snapshot": d.snapshot, "journal": d.journal}
                    for d in differences
                ],
            }
        )
    else:
        for difference in differences:
            click.echo(difference.render())
        click.echo("snapshot == replay(journal)" if not differences else "")
    if differences:
        msg = (
            f"{len(differences)} difference(s); `orchestration state rebuild` rewrites the snapshot"
        )
        raise OrchestrationError(msg)


@state_group.command(name="rebuild")
@click.pass_context
def state_rebuild(ctx: click.Context) -> None:
    """Rewrite the snapshot from the whole journal."""
    from .lifecycles import load_lifecycles
    from .state import Store

    project = _project(ctx)
    state = Store.rebuild(project.root, load_lifecycles(project.root), actor=_actor(None))
    click.echo(f"rebuilt .state/current.json from {state.last_seq} journal lines")


@cli.command(short_help="Regenerate (or --check) docs/execution_model/STATE_MACHINE.md.")
@click.option("--check", is_flag=True, help="Exit 1 if the checked-in diagrams are stale.")
@click.pass_context
def lifecycles(ctx: click.Context, check: bool) -> None:
    """Validate the lifecycle YAML and write its mermaid diagrams (SM-DEF-010).

    docs/execution_model/STATE_MACHINE.md is generated from
    docs/state_machines/*.yaml: never edit it by hand.
    """
    from .lifecycles import write_state_machine_doc

    project = _project(ctx)
    changed = write_state_machine_doc(project.root, check=check)
    where = "docs/execution_model/STATE_MACHINE.md"
    if check and changed:
        msg = f"{where} is stale: run `orchestration lifecycles`"
        raise OrchestrationError(msg)
    click.echo(f"{'wrote' if changed else 'up to date:'} {where}")


# --- agents: serve, agent-prompt ------------------------------------------------


@cli.command(short_help="Serve the agent REST API (OpenAPI docs at /docs).")
@click.option("--host", metavar="HOST",
              help="Address to bind (default: server.host, 127.0.0.1).")  # fmt: skip
@click.option("--port", type=click.IntRange(0, 65535), metavar="PORT",
              help="Port to bind, 0 for any free one (default: server.port, 8000).")  # fmt: skip
@click.option("--dev", is_flag=True,
              help="Sign phase tokens with a random secret (they die with the server) "
              "instead of requiring ORCHESTRATOR_JWT_SECRET. Never in production.")  # fmt: skip
@FORMAT
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, dev: bool, fmt: str) -> None:
    """Serve the agent workflow API of the pipeline until Ctrl-C or SIGTERM (AGENT-WF-013).

    Agents claim ready tasks and move them through the phases of
    agent_workflow.yaml with the tools each phase allows; every change goes
    through the same store as the CLI. Phase tokens are signed with
    ORCHESTRATOR_JWT_SECRET, which must be at least 32 bytes: without it the
    command exits 2, unless --dev. An invalid agent_workflow.yaml exits 1
    listing its problems. With --format json, a document on stdout says
    where it listens: {"url", "docs", "root", "dev"}.

    \b
    Examples:
      export ORCHESTRATOR_JWT_SECRET=$(python -c "import secrets; print(secrets.token_urlsafe(48))")
      orchestration serve                         http://127.0.0.1:8000, docs at /docs
      orchestration serve --port 0 --format json  any free port, printed as JSON
      orchestration serve --dev                   a throwaway secret, for trying it out
      orchestration agent-prompt task-007         what to tell the agent
    """
    from .config import load_config
    from .enforcement.tokens import dev_secret, secret_problem

    project = _project(ctx, fmt)
    config = load_config(project.root)  # ConfigError: every problem located, exit 2
    secret = config.jwt_secret
    problem = secret_problem(secret)
    if problem is not None and not dev:
        msg = f"refusing to serve (AGENT-WF-008): {problem}; or pass --dev to try it out"
        raise UsageError(msg)
    if problem is not None or secret is None:
        click.echo("warning: --dev: phase tokens are signed with a random secret; they stop "
                   "working when the server stops. Set ORCHESTRATOR_JWT_SECRET in production.",
                   err=True)  # fmt: skip
        secret = dev_secret()

    def announce(bound_host: str, bound_port: int) -> None:
        url = f"http://{bound_host}:{bound_port}"
        if fmt == "json":
            _emit_json({"url": url, "docs": f"{url}/docs", "root": str(project.root), "dev": dev})
        click.echo(f"serving {project.root} on {url} (API docs: /docs)", err=True)

    from .api.server import serve as serve_api

    serve_api(project.root, host=host or config.server.host,
              port=config.server.port if port is None else port, secret=secret,
              lease_ttl=config.leases.ttl_seconds,
              audit_max_bytes=config.audit.tool_audit_max_bytes, announce=announce)  # fmt: skip
    click.echo("stopped; the store is closed", err=True)


@cli.command(name="agent-prompt", short_help="The instructions to give an agent for a task.")
@click.argument("task_id")
@click.option("--url", metavar="URL",
              help="Where the API is served (default: server.host and server.port).")  # fmt: skip
@FORMAT
@click.pass_context
def agent_prompt(ctx: click.Context, task_id: str, url: str | None, fmt: str) -> None:
    """Print what a coding agent needs to work on TASK_ID through the API (AGENT-WF-019).

    The task, the contract of agent_workflow.yaml in words (each phase's
    tools, allowed with their path limits, and forbidden; each transition's
    artifacts with their schemas and its gates), the rules (phase tokens,
    heartbeats, sandbox paths) and a Python example with
    orchestration.sdk.AgentClient. Paste it into the agent's prompt.

    \b
    Examples:
      orchestration agent-prompt task-007 > prompt.md
      orchestration agent-prompt task-007 --url http://10.0.0.5:8000
      orchestration agent-prompt task-007 --format json | jq '.phases[].allowed'
    """
    from .api.prompt import agent_prompt as build_prompt
    from .api.prompt import render_prompt
    from .config import load_config
    from .enforcement.contract import load_contract
    from .tasks.loading import load_tasks

    project = _project(ctx, fmt)
    config = load_config(project.root)
    loaded = load_tasks(project.root)
    task = loaded.tasks.get(task_id)
    if task is None:
        if loaded.problems:
            raise DefinitionError(loaded.problems)
        msg = f"task {task_id!r} is not in this pipeline; `orchestration status` lists the tasks"
        raise UsageError(msg)
    contract = load_contract(project.root)  # DefinitionError: located problems, exit 1
    url = url or f"http://{config.server.host}:{config.server.port}"
    document = build_prompt(task, contract, url=url, lease_ttl=config.leases.ttl_seconds)
    if fmt == "json":
        _emit_json(document)
    else:
        click.echo(render_prompt(document), nl=False)


# Commands that grew their own modules (doit's cmd_*.py) register on import.
from . import cmd_audit, cmd_daemon, cmd_metrics, cmd_watch  # noqa: E402, F401
