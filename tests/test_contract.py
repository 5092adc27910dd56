"""The command-line contract every command keeps: exit codes and JSON documents."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from orchestration.cli import main
from orchestration.validation.report import all_checks

Capture = pytest.CaptureFixture[str]

# Every command that prints data, as run on a pipeline scaffolded by `init` and synced.
DATA_COMMANDS = [
    ["plan"],
    ["status"],
    ["next"],
    ["history", "hello"],
    ["sync"],
    ["state", "verify"],
    ["validate"],
    ["validate", "--coverage"],
    ["migrate", "--dry-run"],
    ["task", "hello", "start"],
]


@pytest.fixture
def synced(tmp_path: Path) -> Path:
    assert main(["init", str(tmp_path)]) == 0
    assert main(["--root", str(tmp_path), "sync"]) == 0
    return tmp_path


@pytest.mark.parametrize("command", DATA_COMMANDS, ids=" ".join)
def test_COMPLIANCE_003_data_commands_print_versioned_json(
    command: list[str], synced: Path, capsys: Capture
) -> None:
    capsys.readouterr()
    code = main(["--root", str(synced), *command, "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert code in (0, 1)
    assert isinstance(document, dict)
    assert re.fullmatch(r"\d+\.\d+\.\d+", document["schema_version"])


def test_COMPLIANCE_002_exit_codes(synced: Path, capsys: Capture) -> None:
    root = ["--root", str(synced)]
    assert main([*root, "status"]) == 0
    assert main([*root, "task", "hello", "complete"]) == 1  # not allowed from ready: a finding
    assert main([*root, "plan", "--no-such-flag"]) == 2
    assert main(["--root", "/", "plan"]) == 2  # no pipeline there


def test_COMPLIANCE_002_internal_error_exits_3_with_traceback_in_logs(
    synced: Path, capsys: Capture
) -> None:
    snapshot = synced / ".state" / "current.json"
    snapshot.unlink()
    snapshot.mkdir()  # nothing the engine expects: an unexpected OSError deep inside
    capsys.readouterr()
    assert main(["--root", str(synced), "status"]) == 3
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    log = Path(re.search(r"traceback in (\S+)\)", err).group(1))  # type: ignore[union-attr]
    assert log.parent == synced / ".state" / "logs"
    assert "Traceback (most recent call last)" in log.read_text()


def test_COMPLIANCE_005_validate_covers_the_required_sections() -> None:
    families = {ident.rsplit("-", 1)[0] for check in all_checks() for ident in check.requirements}
    assert families >= {
        "STATE-OBS", "TASK-DEF", "DAG-VIEW", "SM-DEF", "ERR-FM",
        "CAP-REG", "CONC-REG", "SCHEMA-VER", "EXEC-DOC", "MOD-IDX",
    }  # fmt: skip
