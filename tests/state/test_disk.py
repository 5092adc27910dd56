"""A full disk and a read-only .state/: a clear error, and the state stays consistent.

Uses a small tmpfs (root only): the kernel itself says ENOSPC and EROFS.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestration.cli import main
from orchestration.lifecycles import load_lifecycles
from orchestration.state.views import verify

from conftest import REPO, task_document


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[Path]:
    """A pipeline on its own 512 KiB tmpfs."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        shutil.copytree(REPO / "docs" / "state_machines", mount / "docs" / "state_machines")
        folder = mount / "tasks" / "ws-001"
        folder.mkdir(parents=True)
        for task_id in ("a", "b"):
            (folder / f"{task_id}.json").write_text(json.dumps(task_document(task_id)))
        assert main(["--root", str(mount), "sync"]) == 0
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_is_a_clear_error_and_loses_nothing_STATE_OBS_013(
    mounted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = mounted / ".state" / "transitions.jsonl"
    before = journal.read_bytes()
    filler = mounted / "filler"
    with filler.open("wb", buffering=0) as handle:
        for chunk in (4096, 1):  # to the last byte
            try:
                while True:
                    handle.write(b"\0" * chunk)
            except OSError:
                pass
    capsys.readouterr()
    assert main(["--root", str(mounted), "task", "a", "claim"]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    after = journal.read_bytes()
    # Either the append failed and was undone, or it fit in the journal's last
    # page and only the snapshot failed: never a half-written line.
    assert after == before or (
        after.startswith(before)
        and after.count(b"\n") == before.count(b"\n") + 1
        and b'"trigger":"claim"' in after
        and after.endswith(b'"commit":true}\n')
    )
    filler.unlink()
    assert main(["--root", str(mounted), "status"]) == 0
    assert main(["--root", str(mounted), "sync"]) == 0  # reopening repairs the snapshot
    assert verify(mounted, load_lifecycles(mounted)) == []


def test_read_only_state_is_a_clear_error_STATE_OBS_013(
    mounted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(mounted)], check=True)
    capsys.readouterr()
    assert main(["--root", str(mounted), "task", "a", "claim"]) == 1
    err = capsys.readouterr().err
    assert "Read-only file system" in err and "Traceback" not in err
    assert main(["--root", str(mounted), "status"]) == 0  # readers need no write access
