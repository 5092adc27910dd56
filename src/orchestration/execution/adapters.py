"""Worker adapters: the command line of an attempt, its context checks and its result (AIDER-INT).

Stability: provisional.

The runner asks :func:`launch` for the argv and environment of an attempt,
spawns the process itself in the sandbox, then asks :func:`excluded_change`
whether the changes touch an excluded path and :func:`result_document` for
the attempt's result. Each task type is one branch here:

- ``shell`` runs ``execution.command`` with ``/bin/sh -c``;
- ``aider`` runs aider non-interactively with the message and, as files,
  only ``context_requirements.required_files`` (AIDER-INT-001);
- ``claude`` runs the claude CLI in print mode with stream-json output, whose
  session id goes into the result (AIDER-INT-005);
- ``manual`` is never launched: a person records the outcome.

Before an agent is spawned, its required files must exist inside the
sandbox (AIDER-INT-004), match no exclude pattern (AIDER-INT-002) and, with
the message, fit ``max_context_tokens`` (AIDER-INT-003). Whatever stops an
attempt from starting, or makes its result invalid, is an
:class:`AttemptRefused` carrying the failure mode the runner records.

The result document is a :class:`WorkerResult`, published as
``schemas/worker_result.schema.json`` (AIDER-INT-007). A process may write its
own result JSON to ``$ORCHESTRATION_RESULT``; it is merged in.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import OrchestrationError
from ..failures import FailureMode
from ..registry.globs import glob_matches
from ..tasks.model import Task, TaskType
from .sandbox import Changes, Sandbox

__all__ = [
    "AttemptRefused",
    "BYTES_PER_TOKEN",
    "Launch",
    "RESULT_SCHEMA_VERSION",
    "TestCounts",
    "WorkerResult",
    "estimate_tokens",
    "excluded_change",
    "launch",
    "result_document",
]

BYTES_PER_TOKEN = 4  # AIDER-INT-003's default estimate: UTF-8 bytes per token
RESULT_SCHEMA_VERSION = "1.0.0"
_SECRET = "ORCHESTRATOR_JWT_SECRET"  # never handed to a worker (AIDER-INT-006)
_SCHEMA_FILE = "schemas/worker_result.schema.json"
# aider options that hand it files besides the positional ones (AIDER-INT-001).
_AIDER_FILE_OPTIONS = frozenset({"--file", "--read"})


class AttemptRefused(OrchestrationError):
    """An attempt cannot start, or its result is not acceptable; ``str()`` is the reason.

    Args:
        failure_mode: what the runner records the attempt as.
        reason: what is wrong, where, and what to do.
        requirement: the spec requirement the refusal enforces.
    """

    def __init__(self, failure_mode: FailureMode, reason: str, requirement: str) -> None:
        super().__init__(reason)
        self.failure_mode = failure_mode
        self.reason = reason
        self.requirement = requirement

    def __reduce__(self) -> tuple[Any, ...]:
        # Survives pickling (a process pool) although __init__ takes three arguments.
        return type(self), (self.failure_mode, self.reason, self.requirement)


@dataclass(frozen=True)
class Launch:
    """How to start an attempt's process: the runner spawns it in the sandbox.

    Args:
        argv: the program and its arguments (no shell unless argv says so).
        env: the complete environment of the process.
    """

    argv: tuple[str, ...]
    env: dict[str, str]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class TestCounts(_Strict):
    """How many tests the worker ran, as it reports them (zeros when it does not)."""

    __test__ = False  # not a pytest test class, whatever its name

    passed: int = Field(ge=0)
    failed: int = Field(ge=0)


class WorkerResult(_Strict):
    """The result document of one attempt (AIDER-INT-007), the source of its JSON Schema."""

    model_config = ConfigDict(title="Worker result v1.0.0")

    schema_version: Literal["1.0.0"]
    task_id: str = Field(description="The task the attempt ran.")
    status: Literal["succeeded", "failed"] = Field(
        description="succeeded iff the process exited 0 and its own result does not say failed."
    )
    files_changed: list[str] = Field(
        description="Paths changed in the sandbox since its base, repository-relative, sorted."
    )
    commits: list[str] = Field(description="Commits made in the sandbox, oldest first.")
    tests: TestCounts
    session_id: str | None = Field(
        default=None, description="The agent's session id (claude: from its stream-json)."
    )
    summary: str = Field(default="", description="One paragraph for people.")


def estimate_tokens(size: int) -> int:
    """Tokens of ``size`` UTF-8 bytes by AIDER-INT-003's default estimate: bytes / 4, rounded up."""
    return -(-size // BYTES_PER_TOKEN)


def launch(
    task: Task, sandbox: Sandbox, attempt: int, result_path: Path, environ: Mapping[str, str]
) -> Launch:
    """The command line and environment of attempt ``attempt`` of ``task`` in ``sandbox``.

    Nothing is spawned. The runner starts ``argv`` with the sandbox as
    working directory and stdin from ``/dev/null`` (AIDER-INT-006). The
    environment is ``environ`` without ``ORCHESTRATOR_JWT_SECRET``, plus
    ``ORCHESTRATION_TASK_ID``, ``ORCHESTRATION_ATTEMPT``,
    ``ORCHESTRATION_SANDBOX`` and ``ORCHESTRATION_RESULT`` (where the process
    may write its own result JSON; best outside the sandbox, or it counts as
    a change); agents also get ``GIT_TERMINAL_PROMPT=0``.

    aider gets ``--yes-always`` (unless the command says ``--yes``), the
    message (``description``, else ``name``) unless the command gives one,
    ``--map-tokens 0`` (no repository map: it would show aider other files)
    and then the required files, the only files it is given. claude gets
    ``-p`` with the message and ``--output-format stream-json --verbose``.

    Raises:
        AttemptRefused: ``FM-PRE-VALIDATION`` for a manual task, a shell task
            without a command, a required file missing or outside the
            sandbox (AIDER-INT-004), or an aider command that names files
            itself (AIDER-INT-001); ``FM-EXCLUDED-PATH`` for a required file
            matching an exclude pattern (AIDER-INT-002);
            ``FM-CONTEXT-TOO-LARGE`` when the message and required files
            exceed ``max_context_tokens`` (AIDER-INT-003).
    """
    env = {name: value for name, value in environ.items() if name != _SECRET}
    env.update(
        ORCHESTRATION_TASK_ID=task.task_id,
        ORCHESTRATION_ATTEMPT=str(attempt),
        ORCHESTRATION_SANDBOX=str(sandbox.path),
        ORCHESTRATION_RESULT=str(result_path),
    )
    command = task.execution.command
    if task.type is TaskType.MANUAL:
        reason = (
            f"task {task.task_id!r} is manual: it is never launched; a person records its "
            f"outcome with `orchestration task {task.task_id} complete` (or `fail`)"
        )
        raise AttemptRefused(FailureMode.PRE_VALIDATION, reason, "TASK-DEF-013")
    if task.type is TaskType.SHELL:
        if not command:
            reason = (
                f"task {task.task_id!r} has type shell but no execution.command; "
                "add one to its task file"
            )
            raise AttemptRefused(FailureMode.PRE_VALIDATION, reason, "TASK-DEF-013")
        return Launch(("/bin/sh", "-c", command), env)
    message = task.description or task.name
    files = _context(task, sandbox, message)
    try:
        argv = shlex.split(command) if command else [task.type.value]
    except ValueError as error:
        reason = (
            f"execution.command of task {task.task_id!r} cannot be split into words ({error}); "
            "fix its quoting"
        )
        raise AttemptRefused(FailureMode.PRE_VALIDATION, reason, "TASK-DEF-013") from error
    if task.type is TaskType.AIDER:
        argv = _aider(task, argv, message, files)
    else:
        argv = _claude(argv, message)
    env["GIT_TERMINAL_PROMPT"] = "0"
    return Launch(tuple(argv), env)


def _options(argv: list[str]) -> set[str]:
    """The option names in ``argv`` after the program, ``--x=1`` counted as ``--x``."""
    return {token.split("=", 1)[0] for token in argv[1:] if token.startswith("-")}


def _aider(task: Task, argv: list[str], message: str, files: list[str]) -> list[str]:
    options = _options(argv)
    if named := sorted(options & _AIDER_FILE_OPTIONS):
        reason = (
            f"execution.command of aider task {task.task_id!r} gives files with "
            f"{', '.join(named)}; aider may only be given context_requirements.required_files: "
            "list the files there instead"
        )
        raise AttemptRefused(FailureMode.PRE_VALIDATION, reason, "AIDER-INT-001")
    if not options & {"--yes-always", "--yes"}:
        argv.append("--yes-always")
    if not options & {"--message", "-m", "--message-file", "-f"}:
        argv += ["--message", message]
    if "--map-tokens" not in options:
        argv += ["--map-tokens", "0"]
    # "./" keeps a file named like an option from being read as one.
    return argv + [f"./{name}" if name.startswith("-") else name for name in files]


def _claude(argv: list[str], message: str) -> list[str]:
    options = _options(argv)
    if not options & {"-p", "--print"}:
        argv += ["-p", message]
    kept: list[str] = []
    tokens = iter(argv)
    for token in tokens:  # any other output format gives way to stream-json (AIDER-INT-005)
        if token == "--output-format":
            next(tokens, None)
        elif not token.startswith("--output-format="):
            kept.append(token)
    kept += ["--output-format", "stream-json"]
    if "--verbose" not in options:  # print mode needs it for stream-json
        kept.append("--verbose")
    return kept


def _context(task: Task, sandbox: Sandbox, message: str) -> list[str]:
    """The required files, once each is inside the sandbox, not excluded, and all fit the budget."""
    context = task.context_requirements
    root = sandbox.path.resolve()
    size = len(message.encode("utf-8"))
    for name in context.required_files:
        try:
            path = (root / name).resolve()
            target = f"to {path}"
        except (OSError, RuntimeError):  # a loop of links: Python 3.11 raises RuntimeError
            path, target = Path("/"), "a loop of links"
        if Path(name).is_absolute() or not path.is_relative_to(root):
            reason = (
                f"required file {name!r} of task {task.task_id!r} resolves outside the sandbox "
                f"{root} ({target}); list paths inside the repository, without `..` or links "
                "that leave it"
            )
            raise AttemptRefused(FailureMode.PRE_VALIDATION, reason, "AIDER-INT-004")
        if not path.is_file():
            reason = (
                f"required file {name!r} of task {task.task_id!r} is not a file in the sandbox "
                f"{root} (commit {sandbox.base[:12]}); commit it before the run, or fix "
                "context_requirements.required_files"
            )
            raise AttemptRefused(FailureMode.PRE_VALIDATION, reason, "AIDER-INT-004")
        # Both the name given and the file it leads to must be outside every exclude pattern.
        names = (PurePosixPath(name).as_posix(), path.relative_to(root).as_posix())
        if pattern := _excluding(context.exclude_patterns, names):
            reason = (
                f"required file {name!r} of task {task.task_id!r} matches its exclude pattern "
                f"{pattern!r}, and an excluded path is never given to an agent; remove the file "
                "from required_files or narrow the pattern"
            )
            raise AttemptRefused(FailureMode.EXCLUDED_PATH, reason, "AIDER-INT-002")
        size += path.stat().st_size
    limit = context.max_context_tokens
    tokens = estimate_tokens(size)
    if limit is not None and tokens > limit:
        count = len(context.required_files)
        reason = (
            f"the context of task {task.task_id!r} is ~{tokens} tokens (its message and "
            f"{count} required file{'s' if count != 1 else ''}: {size} bytes / "
            f"{BYTES_PER_TOKEN}), over its max_context_tokens {limit}; raise the limit, or "
            "give the task a shorter message or fewer or smaller files"
        )
        raise AttemptRefused(FailureMode.CONTEXT_TOO_LARGE, reason, "AIDER-INT-003")
    return list(context.required_files)


def _excluding(patterns: list[str], paths: tuple[str, ...]) -> str | None:
    return next((p for p in patterns for path in paths if glob_matches(p, path)), None)


def excluded_change(task: Task, changes: Changes) -> str | None:
    """Why the changes touch an excluded path (AIDER-INT-002), or None when they do not.

    Applies to every task type: ``"path 'x' matches exclude pattern 'p'"``
    for the first changed path (in sorted order) that matches one of the
    task's ``exclude_patterns``.
    """
    for path in changes.files_changed:
        if pattern := _excluding(task.context_requirements.exclude_patterns, (path,)):
            return f"path {path!r} matches exclude pattern {pattern!r}"
    return None


def result_document(
    task: Task, *, exit_code: int, stdout_path: Path, changes: Changes, result_path: Path
) -> dict[str, Any]:
    """The attempt's result document, valid against ``schemas/worker_result.schema.json``.

    The engine's observations fill it: the changed files and the commits
    (always the engine's, whatever the process says), ``tests`` zero,
    ``status`` from the exit code. A JSON object the process wrote to
    ``result_path`` is merged over it: it may say ``"status": "failed"``
    (never turn a non-zero exit into a success) and set ``tests``,
    ``summary`` or ``session_id``. For claude, the session id and summary
    come from its stream-json on ``stdout_path`` (lines that are not JSON are
    skipped); a ``result`` line with ``is_error`` true makes it failed.

    Raises:
        AttemptRefused: ``FM-INVALID-RESULT`` (AIDER-INT-007) when
            ``result_path`` exists but is not a JSON object, when the merged
            document fails the schema (the JSON pointer says where), or when
            a claude process that exited 0 reported no session id.
    """
    session, summary, failed = None, "", False
    if task.type is TaskType.CLAUDE:
        session, summary, failed = _stream(stdout_path)
    if not summary:
        count = len(changes.files_changed)
        summary = (
            f"exit {exit_code}; {count} file{'s' if count != 1 else ''} changed "
            f"(+{changes.insertions} -{changes.deletions}) in {len(changes.commits)} "
            f"commit{'s' if len(changes.commits) != 1 else ''}"
        )
    observed: dict[str, Any] = {
        "schema_version": RESULT_SCHEMA_VERSION,
        "task_id": task.task_id,
        "files_changed": list(changes.files_changed),
        "commits": list(changes.commits),
    }
    document = {
        **observed,
        "status": "failed" if exit_code != 0 or failed else "succeeded",
        "tests": {"passed": 0, "failed": 0},
        "session_id": session,
        "summary": summary,
    }
    own = _own_result(task, result_path)
    claimed = _validated(task, {**document, **own}, result_path)
    status = "failed" if document["status"] == "failed" else claimed.status
    result = claimed.model_copy(
        update={**observed, "status": status, "session_id": session or claimed.session_id}
    )
    if task.type is TaskType.CLAUDE and exit_code == 0 and not result.session_id:
        reason = (
            f"the claude attempt of task {task.task_id!r} reported no session id (at "
            f"/session_id): {stdout_path} has no stream-json line "
            '{"type": "system", "subtype": "init"} or {"type": "result"} with one; run the '
            "claude CLI with --output-format stream-json --verbose"
        )
        raise AttemptRefused(FailureMode.INVALID_RESULT, reason, "AIDER-INT-007")
    return result.model_dump(mode="json")


def _stream(stdout_path: Path) -> tuple[str | None, str, bool]:
    """Session id, final result text and error flag of a claude stream-json transcript."""
    session: str | None = None
    summary, failed = "", False
    for event in _events(stdout_path):
        kind, found = event.get("type"), event.get("session_id")
        if kind == "system" and event.get("subtype") == "init" and isinstance(found, str):
            session = session or found
        elif kind == "result":
            session = found if isinstance(found, str) else session
            text = event.get("result")
            summary = text if isinstance(text, str) else summary
            failed = event.get("is_error") is True
    return session, summary, failed


def _events(path: Path) -> Iterator[dict[str, Any]]:
    try:
        handle = path.open(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    with handle:
        for line in handle:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # claude prints the odd plain line, e.g. a warning
            if isinstance(event, dict):
                yield event


def _own_result(task: Task, path: Path) -> dict[str, Any]:
    """The JSON object the process wrote to ``path``, or ``{}`` when it wrote none."""
    where = f"the result file {path} written by task {task.task_id!r}"
    fix = f"the process must write one JSON object valid against {_SCHEMA_FILE}, or nothing"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as error:
        problem = error.strerror if isinstance(error, OSError) else "it is not UTF-8 text"
        reason = f"cannot read {where}: {problem}; {fix}"
        raise AttemptRefused(FailureMode.INVALID_RESULT, reason, "AIDER-INT-007") from error
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        reason = (
            f"{where} is not valid JSON (line {error.lineno} column {error.colno}: "
            f"{error.msg}); {fix}"
        )
        raise AttemptRefused(FailureMode.INVALID_RESULT, reason, "AIDER-INT-007") from error
    if not isinstance(value, dict):
        reason = (
            f"{where} holds a JSON {type(value).__name__} at '' (the root), not an object; {fix}"
        )
        raise AttemptRefused(FailureMode.INVALID_RESULT, reason, "AIDER-INT-007")
    return value


def _validated(task: Task, document: dict[str, Any], path: Path) -> WorkerResult:
    try:
        return WorkerResult.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(
            f"at {_pointer(problem['loc'])}: {problem['msg']}" for problem in error.errors()
        )
        reason = (
            f"the result of task {task.task_id!r} (merged from {path}) fails {_SCHEMA_FILE} "
            f"{problems}; fix what the process writes there"
        )
        raise AttemptRefused(FailureMode.INVALID_RESULT, reason, "AIDER-INT-007") from error


def _pointer(location: tuple[int | str, ...]) -> str:
    """The JSON pointer (RFC 6901) of a pydantic error location."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in location)
