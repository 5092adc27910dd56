"""Configuration: orchestration.yaml, ORCHESTRATOR_* variables, defaults, and their errors."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestration.cli import main
from orchestration.config import (
    CONFIG_FILE,
    ENVIRONMENT,
    REFERENCE,
    SECRET_VARIABLE,
    Config,
    ConfigError,
    load_config,
    variable_of,
)
from orchestration.errors import DefinitionError, Problem, UsageError
from orchestration.execution.runner import RunOptions
from runs import pipeline, run, task

from conftest import REPO

Capture = pytest.CaptureFixture[str]

SPEC_DEFAULTS = {  # spec section 6
    "server.host": "127.0.0.1",
    "server.port": 8000,
    "leases.ttl_seconds": 20,
    "leases.sweep_interval_seconds": 5,
    "retry.base_seconds": 1,
    "retry.max_seconds": 300,
    "run.max_workers": None,  # the number of CPUs, decided by `run`
    "audit.retention_days": 90,
    "audit.segment_max_bytes": 67108864,
    "audit.tool_audit_max_bytes": 104857600,
    "state.backups": 10,
    # Section 13.3 (OBS-010..012): the daemon and its notifications.
    "daemon.serve": False,
    "daemon.restart_base_seconds": 1,
    "daemon.restart_max_seconds": 60,
    "daemon.poll_seconds": 2,
    "daemon.drain_seconds": 5,
    "notifications.webhooks": [],
    "notifications.retries": 5,
    "notifications.retry_base_seconds": 1,
    "notifications.timeout_seconds": 5,
}


def write(root: Path, text: str) -> Path:
    path = root / CONFIG_FILE
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(root: Path, environ: dict[str, str] | None = None) -> list[Problem]:
    with pytest.raises(ConfigError) as raised:
        load_config(root, environ or {})
    return list(raised.value.problems)


# --- defaults and precedence ----------------------------------------------------------------


def test_every_key_of_the_spec_with_its_default_EXEC_DOC_013(tmp_path: Path) -> None:
    config = load_config(tmp_path, {})
    assert {s.key for s in Config.documented()} == set(SPEC_DEFAULTS)
    for key, default in SPEC_DEFAULTS.items():
        assert config.value(key) == default, key
    assert config.jwt_secret is None


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n"])
def test_an_empty_file_means_the_defaults(tmp_path: Path, text: str) -> None:
    write(tmp_path, text)
    assert load_config(tmp_path, {}) == Config()


def test_env_overrides_file_overrides_defaults_EXEC_DOC_013(tmp_path: Path) -> None:
    write(tmp_path, "server:\n  port: 9000\n  host: 0.0.0.0\nretry:\n  base_seconds: 2\n")
    config = load_config(tmp_path, {"ORCHESTRATOR_SERVER_PORT": "9100", "HOME": "/x"})
    assert config.server.port == 9100  # environment over file
    assert config.server.host == "0.0.0.0"  # file over default
    assert config.retry.base_seconds == 2.0 and isinstance(config.retry.base_seconds, float)
    assert config.retry.max_seconds == 300  # default


def test_variables_are_named_after_the_key_path_EXEC_DOC_013() -> None:
    assert ENVIRONMENT["ORCHESTRATOR_SERVER_PORT"] == "server.port"
    assert ENVIRONMENT["ORCHESTRATOR_LEASES_TTL_SECONDS"] == "leases.ttl_seconds"
    for variable, key in ENVIRONMENT.items():
        assert variable == "ORCHESTRATOR_" + key.replace(".", "_").upper() == variable_of(key)


def test_environ_defaults_to_the_process_environment_EXEC_DOC_013(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCHESTRATOR_STATE_BACKUPS", "3")
    assert load_config(tmp_path).state.backups == 3


def test_jwt_secret_is_read_from_the_environment_and_kept_out_of_repr_EXEC_DOC_013(
    tmp_path: Path,
) -> None:
    config = load_config(tmp_path, {SECRET_VARIABLE: "s3cret-" * 6})
    assert config.jwt_secret == "s3cret-" * 6
    assert "s3cret" not in repr(config) and "s3cret" not in str(config)


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ("jwt_secret: abc\n", 1, "jwt_secret"),
        ("server:\n  port: 8000\n  jwt_secret: abc\n", 3, "server.jwt_secret"),
        ("jwt:\n  secret: abc\n", 1, "jwt"),
        ("server:\n  secret_key: abc\n", 2, "server.secret_key"),
    ],
)
def test_a_secret_in_the_file_is_an_error_naming_the_variable_EXEC_DOC_013(
    tmp_path: Path, text: str, line: int, key: str
) -> None:
    write(tmp_path, text)
    [problem] = problems_of(tmp_path, {SECRET_VARIABLE: "x" * 32})
    assert problem.requirement == "EXEC-DOC-013"
    assert (problem.file, problem.line) == (CONFIG_FILE, line)
    assert repr(key) in problem.message and SECRET_VARIABLE in problem.hint


# --- problems, located ------------------------------------------------------------------


def test_unknown_key_located_EXEC_DOC_014(tmp_path: Path) -> None:
    write(tmp_path, "server:\n  port: 8000\nleases:\n  ttl: 5\n")
    [problem] = problems_of(tmp_path)
    assert problem.location == "orchestration.yaml:4:3"
    assert problem.pointer == "/leases/ttl" and problem.requirement == "EXEC-DOC-014"
    assert "'leases.ttl'" in problem.message
    assert "did you mean 'leases.ttl_seconds'?" in problem.hint


@pytest.mark.parametrize(
    ("text", "guess"),
    [
        ("lease:\n  ttl_seconds: 5\n", "did you mean 'leases'?"),
        ("port: 8000\n", "did you mean 'server.port'?"),
        ("server:\n  ttl_seconds: 5\n", "did you mean 'leases.ttl_seconds'?"),
        ("server:\n  hots: x\n", "did you mean 'server.host'?"),
        ("retry:\n  max: 5\n", "did you mean 'retry.max_seconds'?"),
        ("nonsense: 1\n", "the sections are server, leases, retry, run, audit, state"),
        ("server:\n  nonsense: 1\n", "the keys of 'server' are host, port"),
    ],
)
def test_unknown_keys_say_what_was_meant_EXEC_DOC_014(
    tmp_path: Path, text: str, guess: str
) -> None:
    write(tmp_path, text)
    [problem] = problems_of(tmp_path)
    assert guess in problem.hint and REFERENCE in problem.hint


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        ("server:\n  port: 0\n", "an integer from 1 to 65535"),
        ("server:\n  port: 70000\n", "an integer from 1 to 65535"),
        ("server:\n  port: 80.5\n", "an integer from 1 to 65535"),
        ("server:\n  port: true\n", "an integer from 1 to 65535"),
        ("server:\n  port: '8000'\n", "without quotes: `port: 8000`"),
        ("server:\n  host: ''\n", "a non-empty string"),
        ("server:\n  host: 12\n", "a non-empty string"),
        ("leases:\n  ttl_seconds: -1\n", "a number greater than 0"),
        ("leases:\n  ttl_seconds: .inf\n", "a number greater than 0"),
        ("leases:\n  ttl_seconds: [1]\n", "a number greater than 0"),
        ("run:\n  max_workers: 0\n", "an integer of at least 1"),
        ("state:\n  backups: -1\n", "an integer of at least 0"),
    ],
)
def test_invalid_value_located_EXEC_DOC_014(tmp_path: Path, text: str, fix: str) -> None:
    write(tmp_path, text)
    [problem] = problems_of(tmp_path)
    assert (problem.file, problem.line, problem.column) == (CONFIG_FILE, 2, 3)
    assert problem.requirement == "EXEC-DOC-014"
    assert fix in problem.hint


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("server:\n  port: [\n", 3, "invalid YAML"),
        ("server:\n  port: 1\n  port: 2\n", 3, "given twice"),
        ("- server\n", 1, "holds a list, not a mapping"),
        ("just text\n", 1, "holds a string, not a mapping"),
        ("leases: 5\n", 1, "section 'leases' is 5, not a mapping"),
    ],
)
def test_malformed_files_are_located_EXEC_DOC_014(
    tmp_path: Path, text: str, line: int, what: str
) -> None:
    write(tmp_path, text)
    [problem] = problems_of(tmp_path)
    assert (problem.file, problem.line, problem.requirement) == (CONFIG_FILE, line, "EXEC-DOC-014")
    assert what in problem.message


def test_an_unreadable_file_is_reported_EXEC_DOC_014(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).mkdir()
    [problem] = problems_of(tmp_path)
    assert problem.file == CONFIG_FILE and "cannot read" in problem.message


def test_invalid_variable_named_EXEC_DOC_014(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path, {"ORCHESTRATOR_SERVER_PORT": "80a"})
    assert problem.file == "environment" and problem.requirement == "EXEC-DOC-014"
    assert problem.message.startswith("ORCHESTRATOR_SERVER_PORT='80a' (server.port)")
    assert "an integer from 1 to 65535" in problem.hint


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ORCHESTRATOR_LEASES_TTL_SECONDS", "0"),
        ("ORCHESTRATOR_LEASES_TTL_SECONDS", "-2"),
        ("ORCHESTRATOR_LEASES_TTL_SECONDS", "nan"),
        ("ORCHESTRATOR_RETRY_MAX_SECONDS", "inf"),
        ("ORCHESTRATOR_RETRY_BASE_SECONDS", ""),
        ("ORCHESTRATOR_RUN_MAX_WORKERS", "2.5"),
        ("ORCHESTRATOR_SERVER_HOST", ""),
        ("ORCHESTRATOR_STATE_BACKUPS", "ten"),
    ],
)
def test_every_invalid_variable_is_named_EXEC_DOC_014(
    tmp_path: Path, variable: str, value: str
) -> None:
    [problem] = problems_of(tmp_path, {variable: value})
    assert problem.file == "environment" and problem.message.startswith(f"{variable}={value!r}")


@pytest.mark.parametrize(
    ("variable", "guess"),
    [
        ("ORCHESTRATOR_PORT", "ORCHESTRATOR_SERVER_PORT"),
        ("ORCHESTRATOR_LEASE_TTL_SECONDS", "ORCHESTRATOR_LEASES_TTL_SECONDS"),
        ("ORCHESTRATOR_MAX_WORKERS", "ORCHESTRATOR_RUN_MAX_WORKERS"),
        ("ORCHESTRATOR_JWT", SECRET_VARIABLE),
    ],
)
def test_unknown_variable_named_with_a_guess_EXEC_DOC_014(
    tmp_path: Path, variable: str, guess: str
) -> None:
    [problem] = problems_of(tmp_path, {variable: "1"})
    assert problem.file == "environment" and problem.requirement == "EXEC-DOC-014"
    assert f"unknown variable {variable}" in problem.message
    assert f"did you mean {guess}" in problem.hint


def test_variables_that_are_not_keys_are_not_unknown(tmp_path: Path) -> None:
    environ = {SECRET_VARIABLE: "x" * 32, "ORCHESTRATOR_CRASH_POINT": "", "ORCHESTRATION_X": "1"}
    assert load_config(tmp_path, environ).jwt_secret == "x" * 32


def test_every_problem_is_reported_at_once_EXEC_DOC_014(tmp_path: Path) -> None:
    write(tmp_path, "server:\n  port: 0\n  hots: x\njwt_secret: s\n")
    environ = {"ORCHESTRATOR_PORT": "1", "ORCHESTRATOR_RETRY_BASE_SECONDS": "soon"}
    problems = problems_of(tmp_path, environ)
    assert [(p.file, p.line) for p in problems] == [
        (CONFIG_FILE, 2),
        (CONFIG_FILE, 3),
        (CONFIG_FILE, 4),
        ("environment", 0),
        ("environment", 0),
    ]
    assert [p.requirement for p in problems].count("EXEC-DOC-013") == 1


def test_a_configuration_error_is_a_usage_error_listing_its_problems_EXEC_DOC_014(
    tmp_path: Path,
) -> None:
    write(tmp_path, "server:\n  port: 0\n")
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path, {})
    error = raised.value
    assert isinstance(error, UsageError) and error.exit_code == 2
    assert isinstance(error, DefinitionError)  # so the CLI lists its problems
    assert "orchestration.yaml:2:3" in str(error)


# --- precedence, for any values ----------------------------------------------------------

FLOATS = st.floats(min_value=0.001, max_value=1e6, allow_nan=False, allow_infinity=False)
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "server.host": st.from_regex(r"[a-z0-9][a-z0-9.-]{0,20}", fullmatch=True),
    "server.port": st.integers(1, 65535),
    "leases.ttl_seconds": FLOATS | st.integers(1, 10**6),
    "leases.sweep_interval_seconds": FLOATS,
    "retry.base_seconds": FLOATS | st.integers(1, 10**6),
    "retry.max_seconds": FLOATS,
    "run.max_workers": st.integers(1, 512),
    "audit.retention_days": st.integers(1, 10**5),
    "audit.segment_max_bytes": st.integers(1, 2**40),
    "audit.tool_audit_max_bytes": st.integers(1, 2**40),
    "state.backups": st.integers(0, 1000),
    "daemon.serve": st.booleans(),
    "daemon.restart_base_seconds": FLOATS,
    "daemon.restart_max_seconds": FLOATS,
    "daemon.poll_seconds": FLOATS,
    "daemon.drain_seconds": st.floats(0, 8),
    # str() of a list is a flow sequence, which the variable accepts.
    "notifications.webhooks": st.lists(
        st.from_regex(r"https?://[a-z0-9.-]{1,20}(/[a-z0-9]{1,8})?", fullmatch=True), max_size=3
    ),
    "notifications.retries": st.integers(0, 100),
    "notifications.retry_base_seconds": FLOATS,
    "notifications.timeout_seconds": FLOATS,
}
SOURCES = st.fixed_dictionaries(
    {key: st.tuples(st.none() | values, st.none() | values) for key, values in VALUES.items()}
)


def test_the_property_test_covers_every_key() -> None:
    assert set(VALUES) == {s.key for s in Config.documented()}


@settings(max_examples=150, deadline=None)
@given(sources=SOURCES, file_exists=st.booleans())
def test_env_if_set_else_file_else_default_EXEC_DOC_013(
    sources: dict[str, tuple[Any, Any]], file_exists: bool
) -> None:
    document: dict[str, dict[str, Any]] = {}
    environ: dict[str, str] = {}
    for key, (in_file, in_env) in sources.items():
        section, _, name = key.partition(".")
        if in_file is not None:
            document.setdefault(section, {})[name] = in_file
        if in_env is not None:
            environ[variable_of(key)] = repr(in_env) if isinstance(in_env, float) else str(in_env)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        if document or file_exists:
            write(root, yaml.safe_dump(document) if document else "")
        config = load_config(root, environ)
    defaults = Config()
    for key, (in_file, in_env) in sources.items():
        expected = (
            in_env
            if in_env is not None
            else in_file
            if in_file is not None
            else defaults.value(key)
        )
        assert config.value(key) == expected, key


# --- `run` reads it -------------------------------------------------------------------------


def test_run_options_come_from_the_configuration_and_flags_beat_it_EXEC_DOC_013(
    tmp_path: Path,
) -> None:
    write(tmp_path, "leases:\n  ttl_seconds: 7\nrun:\n  max_workers: 3\n")
    config = load_config(tmp_path, {"ORCHESTRATOR_RETRY_MAX_SECONDS": "0.5"})
    options = RunOptions.configured(config, max_workers=None, target=None, fail_fast=False)
    assert (options.ttl, options.sweep_interval) == (7.0, 5.0)
    assert (options.retry_base, options.retry_max) == (1.0, 0.5)
    assert options.max_workers == 3  # run.max_workers when -j is not given
    assert RunOptions.configured(config, max_workers=2).max_workers == 2  # -j beats it
    assert RunOptions.configured(Config()).max_workers is None  # one per CPU, or the declared


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ORCHESTRATOR_* variable of the caller's shell leaks into an in-process command."""
    import os

    for name in list(os.environ):
        if name.startswith("ORCHESTRATOR_"):
            monkeypatch.delenv(name)


@pytest.mark.usefixtures("clean_environment")
def test_run_with_an_invalid_file_exits_2_naming_the_line_EXEC_DOC_014(
    tmp_path: Path, capsys: Capture
) -> None:
    root = pipeline(tmp_path / "p", task("a", "true"))
    write(root, "leases:\n  ttl_seconds: 0\n  ttl: 3\n")
    assert main(["--root", str(root), "run", "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "orchestration.yaml:2:3: leases.ttl_seconds is 0" in captured.err
    assert "orchestration.yaml:3:3: unknown key 'leases.ttl'" in captured.err
    assert "2 problems found" in captured.err and "Traceback" not in captured.err
    assert not (root / ".state").exists()


@pytest.mark.usefixtures("clean_environment")
def test_run_with_an_invalid_variable_exits_2_naming_it_as_json_EXEC_DOC_014(
    tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = pipeline(tmp_path / "p", task("a", "true"))
    monkeypatch.setenv("ORCHESTRATOR_RUN_MAX_WORKER", "2")
    assert main(["--root", str(root), "run", "--dry-run", "--format", "json"]) == 2
    [problem] = json.loads(capsys.readouterr().out)["problems"]
    assert problem["file"] == "environment"
    assert "ORCHESTRATOR_RUN_MAX_WORKER" in problem["message"]
    assert "did you mean ORCHESTRATOR_RUN_MAX_WORKERS" in problem["hint"]


@pytest.mark.usefixtures("clean_environment")
def test_run_with_a_valid_file_runs_EXEC_DOC_013(tmp_path: Path, capsys: Capture) -> None:
    root = pipeline(tmp_path / "p", task("a", "true"), task("b", "true", dependencies=["a"]))
    write(root, "run:\n  max_workers: 1\nleases:\n  ttl_seconds: 30\n")
    assert main(["--root", str(root), "run", "--dry-run"]) == 0
    assert capsys.readouterr().out.split() == ["1", "a", "2", "b"]


def test_run_in_a_real_process_exits_2_on_a_bad_variable_EXEC_DOC_014(tmp_path: Path) -> None:
    root = pipeline(tmp_path / "p", task("a", "true"))
    done = run(root, env={"ORCHESTRATOR_LEASES_TTL_SECONDS": "soon"})
    assert done.returncode == 2
    assert "environment: ORCHESTRATOR_LEASES_TTL_SECONDS='soon'" in done.stderr
    assert not (root / ".state").exists()


# --- the reference --------------------------------------------------------------------------

DOC = REPO / "docs" / "operations" / "CONFIGURATION.md"


def test_reference_lists_every_key_with_its_default_and_variable_EXEC_DOC_002() -> None:
    """A row per key naming its variable and default, so the document cannot drift."""
    rows = {
        cells[1].strip("` "): [cell.strip("` ") for cell in cells[1:-1]]
        for line in DOC.read_text(encoding="utf-8").splitlines()
        if line.startswith("| `") and (cells := line.split("|"))
    }
    documented = Config.documented()
    assert set(rows) == {s.key for s in documented}
    for setting in documented:
        key, _kind, default, variable, _what = rows[setting.key]
        assert (default, variable) == (setting.default, setting.variable), setting.key


def test_reference_names_only_real_variables_EXEC_DOC_002() -> None:
    text = DOC.read_text(encoding="utf-8")
    named = set(re.findall(r"ORCHESTRATOR_[A-Z_]*[A-Z]", text))
    assert named == {*ENVIRONMENT, SECRET_VARIABLE, "ORCHESTRATOR_CRASH_POINT"}


def test_reference_examples_are_valid_EXEC_DOC_002(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 2
    write(tmp_path, blocks[0])
    assert load_config(tmp_path, {}) == Config()  # "every key at its default"
    write(tmp_path, blocks[1])
    assert load_config(tmp_path, {}).run.max_workers == 4
