"""Tools: phase permissions, confinement to the sandbox and execution (AGENT-WF-010, AGENT-WF-011).

Real files, real symbolic links and real processes in ``tmp_path``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestration.enforcement import tools
from orchestration.enforcement.artifacts import artifact_problems
from orchestration.enforcement.tools import (
    TOOLS,
    PathEscape,
    ToolArgumentError,
    ToolFailed,
    ToolRule,
    audited_args,
    execute,
    refusal,
    relative_path,
    resolve,
    tool_path,
)
from orchestration.errors import OrchestrationError

TDD_WRITE = ToolRule("write_file", ("tests/**", "test/**", "**/test_*.py", "**/*_test.py"))
TDD = (ToolRule("read_file"), ToolRule("list_files"), TDD_WRITE, ToolRule("run_tests"))
PLAN_FORBIDDEN = ("write_file", "run_command")


def _build(base: Path) -> Path:
    """A sandbox with code, tests, .git, and symbolic links leading in and out of it."""
    sandbox, outside = base / "sandbox", base / "outside"
    for folder in (sandbox / "src", sandbox / "tests", sandbox / ".git", outside):
        folder.mkdir(parents=True)
    (sandbox / "src" / "app.py").write_text("def answer():\n    return 42\n")
    (sandbox / "tests" / "test_app.py").write_text("from app import answer\n")
    (sandbox / ".git" / "config").write_text("[core]\n")
    (outside / "secret.txt").write_text("the secret\n")
    (sandbox / "out_dir").symlink_to(outside, target_is_directory=True)
    (sandbox / "out_file").symlink_to(outside / "secret.txt")
    (sandbox / "out_dangling").symlink_to(outside / "planted.txt")
    (sandbox / "out_relative").symlink_to(Path("..") / "outside")
    (sandbox / "tests" / "src_link").symlink_to(Path("..") / "src", target_is_directory=True)
    (sandbox / "git_link").symlink_to(".git", target_is_directory=True)
    (sandbox / "loop").symlink_to("loop")
    return sandbox


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    return _build(tmp_path)


@pytest.fixture(scope="module")
def shared_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("tools"))


# --- permissions (AGENT-WF-010) ---------------------------------------------------------


def test_the_five_tools_of_the_spec_AGENT_WF_010() -> None:
    assert TOOLS == ("read_file", "write_file", "list_files", "run_tests", "run_command")


def test_a_tool_not_allowed_is_refused_naming_what_is_AGENT_WF_010() -> None:
    plan = (ToolRule("read_file"), ToolRule("list_files"))
    assert refusal(plan, PLAN_FORBIDDEN, "read_file", "src/app.py") is None
    assert refusal(plan, PLAN_FORBIDDEN, "write_file", "x") == "the phase forbids write_file"
    assert refusal(plan, PLAN_FORBIDDEN, "run_tests", None) == (
        "the phase does not allow run_tests; it allows read_file, list_files"
    )
    assert refusal((), (), "run_command", None) == (
        "the phase does not allow run_command; it allows no tool"
    )
    reason = refusal(plan, (), "rm_rf", None)
    assert reason is not None and reason.startswith("unknown tool 'rm_rf'")


def test_forbidding_wins_over_allowing_AGENT_WF_010() -> None:
    assert refusal((ToolRule("run_command"),), ("run_command",), "run_command", None) == (
        "the phase forbids run_command"
    )


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("tests/test_app.py", True),
        ("tests/unit/deep/x.json", True),
        ("./tests//test_app.py", True),
        ("test/a.py", True),
        ("pkg/test_thing.py", True),
        ("pkg/sub/thing_test.py", True),
        ("src/app.py", False),
        ("tests", False),
        ("conftest.py", False),
        ("src/testing.py", False),
        ("tests/../src/app.py", False),
        ("/abs/tests/x.py", False),
    ],
)
def test_in_tdd_write_file_only_under_test_paths_AGENT_WF_010(path: str, allowed: bool) -> None:
    reason = refusal(TDD, (), "write_file", path)
    assert (reason is None) == allowed, reason
    if not allowed:
        assert reason is not None and ("tests/**" in reason or "leaves the sandbox" in reason)


def test_rules_for_one_tool_add_up_and_an_unrestricted_one_wins_AGENT_WF_010() -> None:
    rules = (ToolRule("write_file", ("docs/**",)), ToolRule("write_file", ("tests/**",)))
    assert refusal(rules, (), "write_file", "docs/a.md") is None
    assert refusal(rules, (), "write_file", "tests/a.py") is None
    assert refusal(rules, (), "write_file", "src/a.py") is not None
    assert refusal((*rules, ToolRule("write_file")), (), "write_file", "src/a.py") is None


def test_a_path_restricted_tool_called_without_a_path_is_refused_AGENT_WF_010() -> None:
    reason = refusal((ToolRule("run_tests", ("tests/**",)),), (), "run_tests", None)
    assert reason is not None and "names none" in reason


def test_tool_path_is_the_argument_the_check_looks_at_AGENT_WF_010() -> None:
    assert tool_path("read_file", {"path": "a.py"}) == "a.py"
    assert tool_path("write_file", {"path": "b.py", "content": ""}) == "b.py"
    assert tool_path("list_files", {}) == "."
    assert tool_path("list_files", {"path": "src"}) == "src"
    assert tool_path("run_tests", {}) is None
    assert tool_path("run_command", {"command": "ls"}) is None
    with pytest.raises(ToolArgumentError, match="argument 'path' is required") as raised:
        tool_path("read_file", {})
    assert raised.value.argument == "path"
    with pytest.raises(ToolArgumentError, match="'path' must be a string, got int"):
        tool_path("write_file", {"path": 3, "content": ""})


# --- confinement (AGENT-WF-011) ---------------------------------------------------------

REFUSED: list[object] = [
    ("", "empty"),
    ("/etc/passwd", "absolute"),
    ("../outside/secret.txt", "'..'"),
    ("src/../../outside/secret.txt", "'..'"),
    ("src/..", "'..'"),
    ("..", "'..'"),
    ("src/app.py\x00.txt", "NUL"),
    ("src\\app.py", "backslash"),
    ("..\\outside", "backslash"),
    ("%2e%2e/outside/secret.txt", "percent-encoded"),
    ("src%2f..%2f..%2foutside", "percent-encoded"),
    ("src%2Fapp.py", "percent-encoded"),
    ("src%5capp.py", "percent-encoded"),
    ("%252e%252e%252foutside", "percent-encoded"),
    ("src%25252fapp.py", "percent-encoded"),
    ("a%00b", "percent-encoded"),
    ("%c0%ae%c0%ae/outside", "percent-encoded"),
    ("src/app.py\n", "control character"),
    (".git/config", ".git"),
    ("src/.git/hooks/pre-commit", ".git"),
    (".GIT/config", ".git"),
    pytest.param("x" * 5000, "longer than", id="5000-characters"),
]


@pytest.mark.parametrize(("raw", "why"), REFUSED)
def test_dangerous_paths_are_refused_before_touching_the_disk_AGENT_WF_011(
    sandbox: Path, raw: str, why: str
) -> None:
    with pytest.raises(PathEscape) as raised:
        resolve(sandbox, raw)
    assert why in raised.value.reason
    assert isinstance(raised.value, OrchestrationError)
    assert raised.value.requirement == "AGENT-WF-011"


@pytest.mark.parametrize(
    "raw",
    [
        "out_dir/secret.txt",
        "out_dir/new_file.txt",
        "out_dir/new/deeper/file.txt",
        "out_file",
        "out_dangling",
        "out_relative/secret.txt",
        "tests/src_link/../../outside",
    ],
)
def test_symlink_escape_refused_AGENT_WF_011(sandbox: Path, raw: str) -> None:
    with pytest.raises(PathEscape, match="refused"):
        resolve(sandbox, raw)


def test_symlink_into_git_is_refused_AGENT_WF_011(sandbox: Path) -> None:
    with pytest.raises(PathEscape, match=r"\.git"):
        resolve(sandbox, "git_link/config")


def test_paths_inside_resolve_to_real_paths_even_before_they_exist_AGENT_WF_011(
    sandbox: Path,
) -> None:
    real = sandbox.resolve()
    assert resolve(sandbox, "src/app.py") == real / "src" / "app.py"
    assert resolve(sandbox, "./src//app.py") == real / "src" / "app.py"
    assert resolve(sandbox, ".") == real
    assert resolve(sandbox, "new/deeper/file.py") == real / "new" / "deeper" / "file.py"
    assert resolve(sandbox, "tests/src_link/app.py") == real / "src" / "app.py"
    assert resolve(sandbox, "100%.txt") == real / "100%.txt"  # a plain percent sign is a name
    assert resolve(sandbox, ".gitignore") == real / ".gitignore"


def test_a_sandbox_reached_through_a_symlink_works_AGENT_WF_011(sandbox: Path) -> None:
    alias = sandbox.parent / "alias"
    alias.symlink_to(sandbox, target_is_directory=True)
    assert resolve(alias, "src/app.py") == sandbox.resolve() / "src" / "app.py"
    assert relative_path(alias, "tests/src_link/app.py") == "src/app.py"


def test_symlink_inside_sandbox_cannot_carry_a_tdd_write_out_of_tests_AGENT_WF_011(
    sandbox: Path,
) -> None:
    """The check sees the resolved path: tests/src_link/app.py is src/app.py."""
    assert refusal(TDD, (), "write_file", "tests/src_link/app.py") is None  # lexically fine
    resolved = relative_path(sandbox, "tests/src_link/app.py")
    assert resolved == "src/app.py"
    assert refusal(TDD, (), "write_file", resolved) is not None


def test_a_missing_sandbox_is_a_tool_failure(tmp_path: Path) -> None:
    with pytest.raises(ToolFailed, match="is not available"):
        resolve(tmp_path / "gone", "a.py")


_SEGMENTS = st.sampled_from(
    [
        "src", "tests", "app.py", "out_dir", "out_file", "out_dangling", "out_relative",
        "src_link", "git_link", "loop", ".git", ".", "..", "", "%2e", "%2f", "%252f", "a\\b",
        "\x00", "~", "new", "secret.txt", "outside",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    raw=st.lists(_SEGMENTS, min_size=1, max_size=6).map("/".join)
    | st.lists(_SEGMENTS, max_size=4).map(lambda parts: "/" + "/".join(parts))
    | st.text(max_size=20)
)
def test_resolve_stays_inside_or_raises_path_escape_AGENT_WF_011(
    shared_sandbox: Path, raw: str
) -> None:
    real = shared_sandbox.resolve()
    try:
        resolved = resolve(shared_sandbox, raw)
    except PathEscape:
        return
    assert resolved == real or real in resolved.parents
    assert resolved.is_absolute()
    inside = resolved.relative_to(real).parts
    assert ".git" not in inside and ".." not in inside
    assert (real.parent / "outside").resolve() not in (resolved, *resolved.parents)


# --- read_file, write_file, list_files --------------------------------------------------


def _call(tool: str, sandbox: Path, **args: object) -> dict[str, object]:
    return execute(tool, args, sandbox, test_command=None)


def test_read_file_returns_text_and_size_AGENT_WF_010(sandbox: Path) -> None:
    assert _call("read_file", sandbox, path="src/app.py") == {
        "path": "src/app.py",
        "content": "def answer():\n    return 42\n",
        "bytes": 28,
    }
    (sandbox / "bin.dat").write_bytes(b"ok\xff\xfe")
    assert _call("read_file", sandbox, path="bin.dat")["content"] == "ok\ufffd\ufffd"
    assert _call("read_file", sandbox, path="tests/src_link/app.py")["path"] == "src/app.py"


def test_read_file_refuses_files_over_one_mib(sandbox: Path) -> None:
    (sandbox / "big.txt").write_bytes(b"x" * (tools.MAX_READ_BYTES + 1))
    (sandbox / "fits.txt").write_bytes(b"x" * tools.MAX_READ_BYTES)
    with pytest.raises(ToolFailed, match="larger than 1048576 bytes"):
        _call("read_file", sandbox, path="big.txt")
    assert _call("read_file", sandbox, path="fits.txt")["bytes"] == tools.MAX_READ_BYTES


def test_read_file_fails_clearly_on_what_is_not_a_file(sandbox: Path) -> None:
    with pytest.raises(ToolFailed, match="no file 'nope.py'"):
        _call("read_file", sandbox, path="nope.py")
    with pytest.raises(ToolFailed, match="is a directory"):
        _call("read_file", sandbox, path="src")
    os.mkfifo(sandbox / "fifo")  # would block a plain open() forever
    with pytest.raises(ToolFailed, match="not a regular file"):
        _call("read_file", sandbox, path="fifo")
    with pytest.raises(ToolFailed, match="cannot open 'loop'"):
        _call("read_file", sandbox, path="loop")


def test_read_file_through_an_escaping_symlink_is_refused_AGENT_WF_011(sandbox: Path) -> None:
    with pytest.raises(PathEscape):
        _call("read_file", sandbox, path="out_file")


def test_write_file_creates_parents_and_replaces_atomically_AGENT_WF_010(sandbox: Path) -> None:
    assert _call("write_file", sandbox, path="tests/unit/test_new.py", content="é = 1\n") == {
        "path": "tests/unit/test_new.py",
        "bytes": 7,
    }
    assert (sandbox / "tests" / "unit" / "test_new.py").read_text() == "é = 1\n"
    _call("write_file", sandbox, path="src/app.py", content="replaced\n")
    assert (sandbox / "src" / "app.py").read_text() == "replaced\n"
    assert sorted(p.name for p in (sandbox / "src").iterdir()) == ["app.py"]  # no temp left


def test_write_file_through_symlinks_never_writes_outside_AGENT_WF_011(sandbox: Path) -> None:
    outside = sandbox.parent / "outside"
    for raw in ("out_dir/planted.txt", "out_dangling", "out_file", "out_dir/a/b.txt"):
        with pytest.raises(PathEscape):
            _call("write_file", sandbox, path=raw, content="pwned")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "the secret\n"


def test_write_file_refuses_a_directory_and_bad_content(sandbox: Path) -> None:
    with pytest.raises(ToolFailed, match="is a directory"):
        _call("write_file", sandbox, path="src", content="")
    with pytest.raises(ToolFailed, match="cannot write"):
        _call("write_file", sandbox, path="src/app.py/inner.py", content="")
    with pytest.raises(ToolArgumentError, match="lone surrogate"):
        _call("write_file", sandbox, path="a.py", content="\ud800")
    with pytest.raises(ToolArgumentError, match="'content' is required"):
        _call("write_file", sandbox, path="a.py")


def test_list_files_is_sorted_relative_and_skips_git_AGENT_WF_010(sandbox: Path) -> None:
    (sandbox / "src" / "pkg").mkdir()
    (sandbox / "src" / "pkg" / "mod.py").write_text("")
    (sandbox / "src" / "notes.txt").write_text("")
    listed = _call("list_files", sandbox)
    assert listed["path"] == "."
    assert listed["truncated"] is False
    files = listed["files"]
    assert isinstance(files, list)
    assert files == sorted(files)
    assert {"src/app.py", "src/pkg/mod.py", "tests/test_app.py", "out_file"} <= set(files)
    assert not [f for f in files if ".git/" in f or f.startswith(".git")]
    assert not [f for f in files if f.startswith(("out_dir/", "tests/src_link/"))]  # not followed
    assert _call("list_files", sandbox, path="src", pattern="**/*.py") == {
        "path": "src",
        "files": ["src/app.py", "src/pkg/mod.py"],
        "truncated": False,
    }
    assert _call("list_files", sandbox, path="src", pattern="*.py")["files"] == ["src/app.py"]


def test_list_files_stops_at_its_limit(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tools, "MAX_LISTED_FILES", 2)
    listed = _call("list_files", sandbox, path="src")
    assert listed == {"path": "src", "files": ["src/app.py"], "truncated": False}
    for name in ("b.py", "c.py"):
        (sandbox / "src" / name).write_text("")
    listed = _call("list_files", sandbox, path="src")
    assert listed["truncated"] is True
    assert listed["files"] == ["src/app.py", "src/b.py"]


def test_list_files_refuses_escapes_and_non_directories_AGENT_WF_011(sandbox: Path) -> None:
    with pytest.raises(PathEscape):
        _call("list_files", sandbox, path="out_dir")
    with pytest.raises(PathEscape):
        _call("list_files", sandbox, path=".git")
    with pytest.raises(ToolFailed, match="is not a directory"):
        _call("list_files", sandbox, path="src/app.py")
    with pytest.raises(ToolFailed, match="does not exist"):
        _call("list_files", sandbox, path="nowhere")


@pytest.mark.parametrize(
    ("tool", "args", "argument"),
    [
        ("read_file", {"path": "a", "mode": "w"}, "mode"),
        ("read_file", {"path": ["a"]}, "path"),
        ("list_files", {"pattern": 3}, "pattern"),
        ("list_files", {"pattern": ""}, "pattern"),
        ("run_tests", {"verbose": True}, "verbose"),
        ("run_command", {}, "command"),
        ("run_command", {"command": ""}, "command"),
        ("run_command", {"command": []}, "command"),
        ("run_command", {"command": ["ls", 3]}, "command"),
        ("run_command", {"command": {"sh": "ls"}}, "command"),
        ("run_command", {"command": "ls", "timeout": "5"}, "timeout"),
        ("run_command", {"command": "ls", "timeout": True}, "timeout"),
        ("run_command", {"command": "ls", "timeout": -1}, "timeout"),
        ("run_command", {"command": "ls", "timeout": float("nan")}, "timeout"),
        ("delete_everything", {}, "tool"),
    ],
)
def test_bad_arguments_name_the_argument(
    sandbox: Path, tool: str, args: dict[str, object], argument: str
) -> None:
    with pytest.raises(ToolArgumentError) as raised:
        execute(tool, args, sandbox, test_command="true")
    assert raised.value.argument == argument
    assert argument in str(raised.value)


def test_arguments_must_be_an_object(sandbox: Path) -> None:
    with pytest.raises(ToolArgumentError, match="must be a JSON object"):
        execute("read_file", ["a.py"], sandbox, test_command=None)  # type: ignore[arg-type]


# --- run_tests --------------------------------------------------------------------------


def test_run_tests_runs_pytest_and_reads_its_summary_AGENT_WF_010(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # start fast
    (sandbox / "tests" / "test_app.py").write_text(
        "def test_one():\n    assert True\n\n"
        "def test_two():\n    assert True\n\n"
        "def test_three():\n    assert False\n"
    )
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]
    result = execute("run_tests", {}, sandbox, test_command=command)
    assert (result["passed"], result["failed"], result["errors"]) == (2, 1, 0)
    assert result["exit_code"] == 1
    assert "1 failed, 2 passed" in result["output_tail"]
    assert result["command"].endswith("-m pytest -q -p no:cacheprovider tests")
    assert artifact_problems("test_result", result) == []


@pytest.mark.parametrize(
    ("output", "code", "counts"),
    [
        ("==== 3 passed, 1 warning in 0.52s ====", 0, (3, 0, 0)),
        ("2 failed, 5 passed, 1 skipped in 1.20s", 1, (5, 2, 0)),
        ("=== 1 error in 0.10s ===", 2, (0, 0, 1)),
        ("1 failed, 1 passed, 2 errors in 3.00s (0:00:03)", 1, (1, 1, 2)),
        ("=== 1 xfailed, 1 xpassed, 4 passed in 0.1s ===", 0, (4, 0, 0)),
        ("test_x.py::test_y printed 9 passed in 1s\n=== 1 failed in 0.2s ===", 1, (0, 1, 0)),
        ("no tests ran in 0.01s", 5, (0, 0, 0)),
        ("all good", 0, (1, 0, 0)),
        ("it broke", 3, (0, 1, 0)),
    ],
)
def test_run_tests_counts_from_the_summary_or_the_exit_code_AGENT_WF_010(
    sandbox: Path, output: str, code: int, counts: tuple[int, int, int]
) -> None:
    """pytest's last summary line counts; without one, the exit code decides."""
    (sandbox / "fake_tests.sh").write_text(f"printf '{output}\\n'\nexit {code}\n")
    result = execute("run_tests", {}, sandbox, test_command="sh fake_tests.sh")
    assert (result["passed"], result["failed"], result["errors"]) == counts
    assert result["exit_code"] == code
    assert artifact_problems("test_result", result) == []


def test_run_tests_without_a_command_says_how_to_set_one(sandbox: Path) -> None:
    for missing in (None, "", "  ", ()):
        with pytest.raises(ToolFailed, match="tests.command"):
            execute("run_tests", {}, sandbox, test_command=missing)


def test_run_tests_timeout_is_an_error_result(sandbox: Path) -> None:
    result = execute("run_tests", {}, sandbox, test_command="echo started; sleep 30", timeout=0.3)
    assert result["exit_code"] is None
    assert (result["passed"], result["failed"], result["errors"]) == (0, 0, 1)
    assert "started" in result["output_tail"] and "timed out after 0.3s" in result["output_tail"]
    assert artifact_problems("test_result", result) == []


# --- run_command ------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped counts as dead)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc here
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return fields[0] not in ("Z", "X")


def _wait_dead(pid: int, seconds: float = 3.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    value = "s" * 48
    monkeypatch.setenv("ORCHESTRATOR_JWT_SECRET", value)
    monkeypatch.setenv("ORCHESTRATION_TOOL_PROBE", "visible")
    yield value


def test_run_command_runs_in_the_sandbox_without_the_secret_AGENT_WF_010(
    sandbox: Path, secret: str
) -> None:
    result = _call("run_command", sandbox, command="pwd; env; echo oops >&2; exit 3")
    assert result["exit_code"] == 3
    assert result["timed_out"] is False
    stdout = result["stdout_tail"]
    assert isinstance(stdout, str)
    assert stdout.splitlines()[0] == str(sandbox.resolve())
    assert "ORCHESTRATION_TOOL_PROBE=visible" in stdout
    assert "ORCHESTRATOR_JWT_SECRET" not in stdout and secret not in stdout
    assert result["stderr_tail"] == "oops\n"
    assert isinstance(result["duration_seconds"], float)


def test_run_command_takes_an_argument_vector_AGENT_WF_010(sandbox: Path) -> None:
    result = _call("run_command", sandbox, command=["ls", "src"])
    assert (result["exit_code"], result["stdout_tail"]) == (0, "app.py\n")
    missing = _call("run_command", sandbox, command=["no-such-program-here"])
    assert missing["exit_code"] == 127
    assert "cannot start 'no-such-program-here'" in str(missing["stderr_tail"])


def test_run_command_timeout_kills_the_whole_group_AGENT_WF_010(sandbox: Path) -> None:
    started = time.monotonic()
    result = _call(
        "run_command", sandbox, command="sleep 30 & echo $! > bg.pid; sleep 30", timeout=0.5
    )
    assert time.monotonic() - started < 5
    assert result["exit_code"] is None and result["timed_out"] is True
    assert _wait_dead(int((sandbox / "bg.pid").read_text()))


def test_run_command_timeout_is_capped_by_the_servers_AGENT_WF_010(sandbox: Path) -> None:
    started = time.monotonic()
    result = execute(
        "run_command", {"command": "sleep 30", "timeout": 600}, sandbox, test_command=None,
        timeout=0.3,
    )  # fmt: skip
    assert result["timed_out"] is True and time.monotonic() - started < 5


def test_run_command_leaves_no_background_process_behind(sandbox: Path) -> None:
    result = _call("run_command", sandbox, command="sleep 30 & echo $!")
    assert result["exit_code"] == 0
    assert _wait_dead(int(str(result["stdout_tail"]).strip()))


def test_run_command_keeps_the_tail_of_long_output(sandbox: Path) -> None:
    result = _call("run_command", sandbox, command="seq 1 100000")
    stdout = str(result["stdout_tail"])
    assert len(stdout.encode()) <= tools.COMMAND_TAIL_BYTES
    assert stdout.endswith("99999\n100000\n")


# --- audit ------------------------------------------------------------------------------


def test_audited_args_keep_decisions_not_data_AGENT_WF_012() -> None:
    kept = audited_args("write_file", {"path": "a.py", "content": "x" * 5000})
    digest = hashlib.sha256(b"x" * 5000).hexdigest()
    assert kept == {"path": "a.py", "content": {"bytes": 5000, "sha256": digest}}
    long = audited_args("run_command", {"command": "y" * 3000, "timeout": 5})
    assert long["timeout"] == 5
    assert long["command"].startswith("y" * 1000) and long["command"].endswith("(3000 characters)")
