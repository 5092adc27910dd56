"""The tools an agent calls, their permissions and their confinement to the sandbox.

Stability: provisional (tool names and result shapes are stable, AGENT-WF-010).

Five tools, each run for an agent by ``POST /api/v1/tools/execute``:

================  ============================  ==================================================
tool              arguments                     result
================  ============================  ==================================================
``read_file``     ``path``                      ``{path, content, bytes}`` (text, at most 1 MiB)
``write_file``    ``path``, ``content``         ``{path, bytes}`` (parents created, atomic)
``list_files``    ``path="."``, ``pattern``     ``{path, files, truncated}`` (``.git`` skipped)
``run_tests``     none                          a ``test_result`` artifact
``run_command``   ``command``, ``timeout?``     ``{exit_code, stdout_tail, stderr_tail,
                                                duration_seconds, timed_out}``
================  ============================  ==================================================

A call goes through four steps, in this order (AGENT-WF-010, AGENT-WF-011)::

    raw = tool_path(tool, args)                     # ToolArgumentError: 422
    rel = None if raw is None else relative_path(sandbox, raw)  # PathEscape: 403, audited
    reason = refusal(allowed, forbidden, tool, rel)  # not None: 403, audited
    result = execute(tool, args, sandbox, test_command=...)  # ToolFailed: 409

The permission check looks at the *resolved* path relative to the sandbox,
so a symbolic link inside the sandbox cannot carry a TDD ``write_file`` from
``tests/`` into ``src/``. :func:`execute` resolves every path again itself.

Confinement is of the tools' paths, not of processes: ``run_tests`` and
``run_command`` run code the agent wrote, with the sandbox as working
directory, in their own process group (killed as a whole on timeout and once
the command ends), without ``ORCHESTRATOR_JWT_SECRET`` in their environment
and with stdin from ``/dev/null``; they are not jailed.

Errors::

    OrchestrationError
    └── ToolError                a tool call cannot be carried out
        ├── ToolArgumentError    an argument is missing, unknown or of the wrong type
        ├── PathEscape           a path argument is refused: it could leave the sandbox
        └── ToolFailed           the sandbox's files do not allow it (missing, too large, ...)
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import shlex
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar

from ..atomic import write_atomic
from ..errors import OrchestrationError
from ..registry.globs import glob_matches

__all__ = [
    "MAX_LISTED_FILES",
    "MAX_READ_BYTES",
    "READ_ONLY",
    "TOOLS",
    "PathEscape",
    "ToolArgumentError",
    "ToolError",
    "ToolFailed",
    "ToolRule",
    "audited_args",
    "execute",
    "refusal",
    "relative_path",
    "resolve",
    "tool_path",
]

TOOLS: tuple[str, ...] = ("read_file", "write_file", "list_files", "run_tests", "run_command")
READ_ONLY = frozenset({"read_file", "list_files"})  # the tools that change nothing
"""Every tool an agent may call."""

MAX_READ_BYTES = 1_048_576
"""``read_file`` refuses larger files."""

MAX_LISTED_FILES = 10_000
"""``list_files`` returns at most this many paths (and says ``truncated``)."""

MAX_PATH_CHARS = 4096  # PATH_MAX on Linux; longer arguments are refused unread
COMMAND_TAIL_BYTES = 65_536  # of run_command's stdout and stderr each, as AIDER-INT-008 keeps
TEST_TAIL_BYTES = 16_384  # of run_tests' output: the summary and the last failures
_AUDITED_CHARS = 1_000  # longer string arguments are cut in audit records
_SECRET = "ORCHESTRATOR_JWT_SECRET"  # never handed to a tool's process (AIDER-INT-006)

# %2f / %5c / %2e / %00, also double (%252f) or more encoded, and the overlong
# UTF-8 lead bytes %c0 %c1 some decoders turn into "/" or ".".
_ENCODED = re.compile(r"%(?:25)*(?:2f|5c|2e|00|c0|c1)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_COUNT = re.compile(r"(\d+) (passed|failed|errors?)\b")
_DURATION = re.compile(r"\bin \d+(?:\.\d+)?s\b")


class ToolError(OrchestrationError):
    """A tool call cannot be carried out."""

    requirement: ClassVar[str] = "AGENT-WF-010"


class ToolArgumentError(ToolError):
    """An argument of a tool call is missing, unknown or of the wrong type.

    Attributes:
        tool: the tool called.
        argument: the argument at fault (``""`` for the arguments as a whole).
    """

    requirement: ClassVar[str] = "AGENT-WF-015"

    def __init__(self, message: str, *, tool: str, argument: str) -> None:
        self.tool = tool
        self.argument = argument
        super().__init__(message)


class PathEscape(ToolError):
    """A path argument is refused because it could leave the sandbox (AGENT-WF-011).

    Attributes:
        path: the argument as given.
        reason: why it is refused.
    """

    requirement: ClassVar[str] = "AGENT-WF-011"

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"path {_shown(path)} refused: {reason}")


class ToolFailed(ToolError):
    """The tool was allowed but the sandbox's files do not let it work (missing, too large)."""


@dataclass(frozen=True, slots=True)
class ToolRule:
    """A tool a phase allows, on some paths only.

    Args:
        tool: one of :data:`TOOLS`.
        paths: globs relative to the sandbox (``**`` spans folders, see
            :mod:`orchestration.registry.globs`) limiting the paths the tool may
            touch; empty: anywhere in the sandbox.
    """

    tool: str
    paths: tuple[str, ...] = ()


# --- permissions --------------------------------------------------------------


def refusal(
    allowed: Sequence[ToolRule], forbidden: Collection[str], tool: str, path: str | None
) -> str | None:
    """Why the phase's permissions refuse the call, or None when they allow it.

    Args:
        allowed: the phase's allowed tools; several rules for one tool add up.
        forbidden: tools the phase forbids (forbidding wins over allowing).
        tool: the tool called.
        path: the path the call touches, relative to the sandbox, best as
            :func:`relative_path` resolves it; None for tools without one.
    """
    if tool not in TOOLS:
        return f"unknown tool {tool!r}: the tools are {', '.join(TOOLS)}"
    if tool in forbidden:
        return f"the phase forbids {tool}"
    rules = [rule for rule in allowed if rule.tool == tool]
    if not rules:
        others = [name for name in TOOLS if name not in forbidden and _any(allowed, name)]
        return f"the phase does not allow {tool}; it allows {', '.join(others) or 'no tool'}"
    if any(not rule.paths for rule in rules):
        return None
    globs = [glob for rule in rules for glob in rule.paths]
    shown = ", ".join(globs)
    if path is None:
        return f"the phase allows {tool} only on paths matching {shown}, and the call names none"
    normal = _normal(path)
    if normal is None:
        return f"the path {_shown(path)} leaves the sandbox"
    if any(glob_matches(glob, normal) for glob in globs):
        return None
    return f"the phase allows {tool} only on paths matching {shown}, not on {normal!r}"


def _any(rules: Sequence[ToolRule], tool: str) -> bool:
    return any(rule.tool == tool for rule in rules)


def _normal(path: str) -> str | None:
    """``path`` without ``.`` and empty segments; None when it is absolute or climbs."""
    if path.startswith("/"):
        return None
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        return None
    return "/".join(parts) or "."


def tool_path(tool: str, args: Mapping[str, Any]) -> str | None:
    """The path argument the permission check looks at; None for tools without one.

    ``list_files`` without a ``path`` lists the sandbox, ``"."``.

    Raises:
        ToolArgumentError: the tool takes a path and it is missing or not a string.
    """
    if tool in ("read_file", "write_file"):
        return _string(tool, args, "path")
    if tool == "list_files":
        return _string(tool, args, "path", ".")
    return None


# --- confinement --------------------------------------------------------------


def _lexical_problem(raw: str) -> str | None:
    """Why ``raw`` is refused before the file system is consulted, or None."""
    if not raw:
        return "it is empty: give a path relative to the sandbox"
    if len(raw) > MAX_PATH_CHARS:
        return f"it is longer than {MAX_PATH_CHARS} characters"
    if "\x00" in raw:
        return "it contains a NUL byte"
    if _CONTROL.search(raw):
        return "it contains a control character"
    if "\\" in raw:
        return "it contains a backslash: separate folders with /"
    if _ENCODED.search(raw):
        return (
            "it contains a percent-encoded separator, dot or NUL (such as %2f or %2e): "
            "paths are taken literally, never decoded; give the plain path"
        )
    if raw.startswith("/"):
        return "it is absolute: give a path relative to the sandbox"
    parts = raw.split("/")
    if ".." in parts:
        return "it has a '..' component: paths may not climb out of the sandbox"
    if any(part.lower() == ".git" for part in parts):
        return "it is inside .git: agents may not touch git's internals"
    return None


def _real(path: str) -> str:
    """``os.path.realpath(path)``, asked of the kernel when ``path`` exists.

    Python's ``realpath`` stats each component in turn, each stat walking the
    path again from the root: deep sandboxes made it the dearest step of a
    tool check. Opening the path (``O_PATH``: nothing is read) resolves it
    in one walk, and ``/proc`` names what was opened. A path that does not
    exist (a file to write) is left to ``realpath``, which follows a dangling
    symbolic link as the write would.
    """
    if _O_PATH is None:
        return os.path.realpath(path)
    try:
        fd = os.open(path, _O_PATH | os.O_CLOEXEC)
    except OSError:
        return os.path.realpath(path)
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # no /proc
        return os.path.realpath(path)
    finally:
        os.close(fd)


_O_PATH: int | None = getattr(os, "O_PATH", None)  # Linux


def _root(sandbox: Path) -> Path:
    try:
        os.stat(sandbox)
    except OSError as error:
        msg = f"the sandbox {str(sandbox)!r} is not available ({error.strerror}): reclaim the task"
        raise ToolFailed(msg) from None
    return Path(_real(str(sandbox)))


def resolve(sandbox: Path, raw: str) -> Path:
    """The real path a tool's path argument names inside ``sandbox``.

    Symbolic links are followed, also for a file that does not exist yet (its
    deepest existing parent decides). Refused, without decoding anything: an
    empty path, absolute paths, ``..`` components, NUL bytes and control
    characters, backslashes, percent-encoded separators, dots or NULs (also
    double-encoded), anything in ``.git``, and any path whose real path leaves
    the sandbox's real path.

    Returns:
        An absolute real path equal to, or below, the sandbox's real path.

    Raises:
        PathEscape: the path is refused (AGENT-WF-011).
        ToolFailed: the sandbox itself does not exist.
    """
    return _resolved(sandbox, raw)[1]


def relative_path(sandbox: Path, raw: str) -> str:
    """:func:`resolve`'s answer relative to the sandbox, posix style (``"."`` for the sandbox).

    Raises:
        PathEscape: the path is refused (AGENT-WF-011).
        ToolFailed: the sandbox itself does not exist.
    """
    root, target = _resolved(sandbox, raw)
    return target.relative_to(root).as_posix()


def _resolved(sandbox: Path, raw: str) -> tuple[Path, Path]:
    """The sandbox's real path and the real path ``raw`` names in it (see :func:`resolve`)."""
    if not isinstance(raw, str):
        raise PathEscape(repr(raw), "a path must be a string")
    problem = _lexical_problem(raw)
    if problem is not None:
        raise PathEscape(raw, problem)
    root = _root(sandbox)
    target = Path(_real(f"{root}/{raw}"))
    if not target.is_relative_to(root):
        raise PathEscape(raw, "it leads outside the sandbox through a symbolic link")
    if any(part.lower() == ".git" for part in target.relative_to(root).parts):
        raise PathEscape(raw, "it leads into .git: agents may not touch git's internals")
    return root, target


# --- arguments ----------------------------------------------------------------

_ARGUMENTS: Mapping[str, tuple[str, ...]] = {
    "read_file": ("path",),
    "write_file": ("path", "content"),
    "list_files": ("path", "pattern"),
    "run_tests": (),
    "run_command": ("command", "timeout"),
}


def _check_names(tool: str, args: object) -> Mapping[str, Any]:
    if tool not in _ARGUMENTS:
        msg = f"unknown tool {tool!r}: the tools are {', '.join(TOOLS)}"
        raise ToolArgumentError(msg, tool=tool, argument="tool")
    if not isinstance(args, Mapping):
        msg = f"{tool}: the arguments must be a JSON object, got {type(args).__name__}"
        raise ToolArgumentError(msg, tool=tool, argument="")
    unknown = sorted(str(name) for name in args if name not in _ARGUMENTS[tool])
    if unknown:
        known = ", ".join(_ARGUMENTS[tool]) or "none"
        msg = f"{tool}: unknown argument {unknown[0]!r}; {tool} takes {known}"
        raise ToolArgumentError(msg, tool=tool, argument=unknown[0])
    return args


def _string(tool: str, args: Mapping[str, Any], name: str, default: str | None = None) -> str:
    if name not in args and default is not None:
        return default
    if name not in args:
        msg = f"{tool}: argument {name!r} is required (a string)"
        raise ToolArgumentError(msg, tool=tool, argument=name)
    value = args[name]
    if not isinstance(value, str):
        msg = f"{tool}: argument {name!r} must be a string, got {type(value).__name__}"
        raise ToolArgumentError(msg, tool=tool, argument=name)
    return value


# --- execution ----------------------------------------------------------------


def execute(
    tool: str,
    args: Mapping[str, Any],
    sandbox: Path,
    *,
    test_command: Sequence[str] | str | None,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """Run a tool whose call the phase's permissions allowed.

    Args:
        tool: one of :data:`TOOLS`.
        args: its arguments (see the module's table).
        sandbox: the task's sandbox, the tools' root and working directory.
        test_command: what ``run_tests`` runs: a string for ``/bin/sh -c``
            or an argument vector; None when none is configured.
        timeout: seconds after which ``run_tests`` and ``run_command`` are
            killed; also the most a ``run_command`` may ask for.

    Returns:
        The tool's result, a JSON-ready dict (see the module's table).

    Raises:
        ToolArgumentError: an argument is missing, unknown or of the wrong type.
        PathEscape: a path leaves the sandbox (AGENT-WF-011).
        ToolFailed: the files do not allow the call (missing, too large, a
            directory where a file is expected), or no test command is set.
    """
    checked = _check_names(tool, args)
    return _RUNNERS[tool](checked, sandbox, test_command, timeout)


def _read_file(
    args: Mapping[str, Any], sandbox: Path, test_command: object, timeout: float
) -> dict[str, Any]:
    raw = _string("read_file", args, "path")
    target = resolve(sandbox, raw)
    rel = target.relative_to(_root(sandbox)).as_posix()
    try:
        # O_NONBLOCK: a FIFO planted in the sandbox must not hang the server.
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        msg = f"read_file: there is no file {rel!r} in the sandbox; list_files shows what exists"
        raise ToolFailed(msg) from None
    except OSError as error:
        msg = f"read_file: cannot open {rel!r}: {error.strerror}"
        raise ToolFailed(msg) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            msg = f"read_file: {rel!r} is a directory; list its files with list_files"
            raise ToolFailed(msg)
        if not stat.S_ISREG(mode):
            msg = f"read_file: {rel!r} is not a regular file"
            raise ToolFailed(msg)
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(MAX_READ_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_READ_BYTES:
        msg = (
            f"read_file: {rel!r} is larger than {MAX_READ_BYTES} bytes (1 MiB), the most "
            "read_file returns; read a smaller file, or look into it with run_command "
            "where the phase allows it"
        )
        raise ToolFailed(msg)
    return {"path": rel, "content": data.decode("utf-8", errors="replace"), "bytes": len(data)}


def _write_file(
    args: Mapping[str, Any], sandbox: Path, test_command: object, timeout: float
) -> dict[str, Any]:
    raw = _string("write_file", args, "path")
    content = _string("write_file", args, "content")
    try:
        data = content.encode("utf-8")
    except UnicodeEncodeError:
        msg = "write_file: argument 'content' is not valid Unicode (it holds a lone surrogate)"
        raise ToolArgumentError(msg, tool="write_file", argument="content") from None
    target = resolve(sandbox, raw)
    rel = target.relative_to(_root(sandbox)).as_posix()
    if target.is_dir():
        msg = f"write_file: {rel!r} is a directory; give the path of a file"
        raise ToolFailed(msg)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, data)
    except OSError as error:
        msg = f"write_file: cannot write {rel!r}: {error.strerror or error}"
        raise ToolFailed(msg) from None
    return {"path": rel, "bytes": len(data)}


def _list_files(
    args: Mapping[str, Any], sandbox: Path, test_command: object, timeout: float
) -> dict[str, Any]:
    raw = _string("list_files", args, "path", ".")
    pattern = _string("list_files", args, "pattern", "**/*")
    if not pattern:
        msg = "list_files: argument 'pattern' is empty; give a glob such as '**/*.py'"
        raise ToolArgumentError(msg, tool="list_files", argument="pattern")
    root = _root(sandbox)
    target = resolve(sandbox, raw)
    rel = target.relative_to(root).as_posix()
    if not target.is_dir():
        what = "does not exist" if not target.exists() else "is not a directory"
        msg = f"list_files: {rel!r} {what}; give a directory of the sandbox"
        raise ToolFailed(msg)
    files: list[str] = []
    truncated = False
    for folder, dirnames, filenames in os.walk(target):
        dirnames[:] = sorted(name for name in dirnames if name.lower() != ".git")
        here = Path(folder)
        for name in sorted(filenames):
            if name.lower() == ".git":
                continue
            path = here / name
            if not glob_matches(pattern, path.relative_to(target).as_posix()):
                continue
            if len(files) == MAX_LISTED_FILES:
                truncated = True
                break
            files.append(path.relative_to(root).as_posix())
        if truncated:
            break
    return {"path": rel, "files": sorted(files), "truncated": truncated}


def _run_tests(
    args: Mapping[str, Any], sandbox: Path, test_command: object, timeout: float
) -> dict[str, Any]:
    command = _test_command(test_command)
    ran = _run(command, _root(sandbox), timeout, merged=True, tail=TEST_TAIL_BYTES)
    output = ran.stdout
    counts = _pytest_counts(output)
    if counts is not None:
        passed, failed, errors = counts
    elif ran.timed_out:
        passed, failed, errors = 0, 0, 1
    else:
        passed, failed, errors = (1, 0, 0) if ran.exit_code == 0 else (0, 1, 0)
    if ran.timed_out:
        output += f"\n[run_tests: timed out after {timeout:g}s; the process group was killed]\n"
    return {
        "command": command if isinstance(command, str) else shlex.join(command),
        "passed": passed,
        "failed": failed,
        "errors": errors,
        "exit_code": ran.exit_code,
        "output_tail": output[-TEST_TAIL_BYTES:],
    }


def _test_command(test_command: object) -> str | tuple[str, ...]:
    if isinstance(test_command, str) and test_command.strip():
        return test_command
    if (
        isinstance(test_command, Sequence)
        and not isinstance(test_command, str)
        and test_command
        and all(isinstance(part, str) for part in test_command)
    ):
        return tuple(test_command)
    msg = (
        "run_tests: no test command is configured; set tests.command in agent_workflow.yaml "
        "(e.g. 'python -m pytest -q')"
    )
    raise ToolFailed(msg)


def _pytest_counts(output: str) -> tuple[int, int, int] | None:
    """passed, failed, errors from pytest's last summary line, or None when there is none."""
    for line in reversed(output.splitlines()):
        if not _DURATION.search(line):
            continue
        found = _COUNT.findall(line)
        if not found and "no tests ran" not in line:
            continue
        counts = {"passed": 0, "failed": 0, "error": 0}
        for number, word in found:
            counts[word.rstrip("s") if word.startswith("error") else word] += int(number)
        return counts["passed"], counts["failed"], counts["error"]
    return None


def _run_command(
    args: Mapping[str, Any], sandbox: Path, test_command: object, timeout: float
) -> dict[str, Any]:
    if "command" not in args:
        msg = "run_command: argument 'command' is required (a string for the shell, or a list)"
        raise ToolArgumentError(msg, tool="run_command", argument="command")
    command = args["command"]
    if isinstance(command, str):
        if not command.strip():
            msg = "run_command: argument 'command' is empty"
            raise ToolArgumentError(msg, tool="run_command", argument="command")
        checked: str | tuple[str, ...] = command
    elif (
        isinstance(command, list)
        and command
        and all(isinstance(part, str) for part in command)
        and command[0]
    ):
        checked = tuple(command)
    else:
        msg = (
            "run_command: argument 'command' must be a non-empty string (run by /bin/sh) or a "
            f"non-empty list of strings (program and arguments), got {_shown(command)}"
        )
        raise ToolArgumentError(msg, tool="run_command", argument="command")
    limit = timeout
    if "timeout" in args:
        asked = args["timeout"]
        if (
            isinstance(asked, bool)
            or not isinstance(asked, int | float)
            or not math.isfinite(asked)
            or asked <= 0
        ):
            msg = (
                "run_command: argument 'timeout' must be a positive number of seconds, "
                f"got {_shown(asked)}"
            )
            raise ToolArgumentError(msg, tool="run_command", argument="timeout")
        limit = min(float(asked), timeout)
    ran = _run(checked, _root(sandbox), limit, merged=False, tail=COMMAND_TAIL_BYTES)
    return {
        "exit_code": ran.exit_code,
        "stdout_tail": ran.stdout,
        "stderr_tail": ran.stderr,
        "duration_seconds": round(ran.duration, 3),
        "timed_out": ran.timed_out,
    }


_Runner = Callable[[Mapping[str, Any], Path, object, float], dict[str, Any]]
_RUNNERS: Mapping[str, _Runner] = {
    "read_file": _read_file,
    "write_file": _write_file,
    "list_files": _list_files,
    "run_tests": _run_tests,
    "run_command": _run_command,
}


@dataclass(frozen=True, slots=True)
class _Ran:
    exit_code: int | None  # None when killed at the timeout
    stdout: str  # the tail (stdout and stderr together when merged)
    stderr: str
    duration: float
    timed_out: bool


def _run(
    command: str | tuple[str, ...], cwd: Path, timeout: float, *, merged: bool, tail: int
) -> _Ran:
    """Run ``command`` in ``cwd`` in its own process group; the tails of its output."""
    env = {name: value for name, value in os.environ.items() if name != _SECRET}
    # Output goes to files, not pipes: memory stays bounded, and a background
    # child holding the pipe open cannot hang us.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        try:
            process = subprocess.Popen(
                command,
                shell=isinstance(command, str),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT if merged else err,
                start_new_session=True,
            )
        except OSError as error:  # no such program (an argument vector), or no cwd
            program = command if isinstance(command, str) else command[0]
            said = f"cannot start {_shown(program)}: {error.strerror or error}\n"
            return _Ran(127, "", said, 0.0, False)
        timed_out = False
        try:
            code: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out, code = True, None
        finally:
            _kill_group(process.pid)  # on timeout, and any child left running
            process.wait()
        duration = time.monotonic() - started
        return _Ran(code, _tail(out, tail), "" if merged else _tail(err, tail), duration, timed_out)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _tail(handle: IO[bytes], size: int) -> str:
    end = handle.seek(0, os.SEEK_END)
    handle.seek(max(0, end - size))
    return handle.read().decode("utf-8", errors="replace")


# --- audit --------------------------------------------------------------------


def audited_args(tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """``args`` as a tool audit record keeps them (AGENT-WF-012).

    ``write_file``'s content is replaced by its size and SHA-256, and any
    other string longer than 1,000 characters is cut, so that the audit
    records decisions, not data.
    """
    kept: dict[str, Any] = {}
    for name, value in args.items():
        if tool == "write_file" and name == "content" and isinstance(value, str):
            data = value.encode("utf-8", errors="surrogatepass")
            kept[str(name)] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        elif isinstance(value, str) and len(value) > _AUDITED_CHARS:
            kept[str(name)] = value[:_AUDITED_CHARS] + f"... ({len(value)} characters)"
        else:
            kept[str(name)] = value
    return kept


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
