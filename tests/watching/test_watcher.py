"""Watch mode against real files, a real watchdog observer and the real store (OBS-007, OBS-008).

Each test runs :func:`orchestration.watching.watch` in a thread on a small
pipeline, edits its files as editors and git do, and reads the events.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestration.watching import Event, Failed, Invalid, Planned, Synced, watch

from conftest import REPO, task_document

DEBOUNCE = 0.1
TIMEOUT = 20.0  # seconds an event may take on a loaded machine; never waited in passing


class Watch:
    """``watch`` running in a thread; its events, in order."""

    def __init__(self, root: Path, debounce: float) -> None:
        self.root = root
        self.events: queue.Queue[Event | BaseException] = queue.Queue()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(debounce,), daemon=True)
        self.thread.start()

    def _run(self, debounce: float) -> None:
        try:
            watch(self.root, actor="test", emit=self.events.put, stop=self.stop,
                  debounce=debounce)  # fmt: skip
        except BaseException as bug:  # noqa: BLE001 - handed to the test's thread
            self.events.put(bug)

    def next(self) -> Event:
        event = self.events.get(timeout=TIMEOUT)
        if isinstance(event, BaseException):
            raise event
        return event

    def replanned(self) -> Planned:
        event = self.next()
        assert isinstance(event, Planned), event
        assert event.event == "replanned"
        return event

    def synced(self) -> Synced:
        event = self.next()
        assert isinstance(event, Synced), event
        return event

    def invalid(self) -> Invalid:
        event = self.next()
        assert isinstance(event, Invalid), event
        return event

    def close(self) -> None:
        self.stop.set()
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive()


@pytest.fixture
def pipeline_with_registries(pipeline: Path) -> Path:
    """The conftest pipeline (a -> b -> c, d) with the repository's registries and contract."""
    shutil.copytree(REPO / "capabilities", pipeline / "capabilities")
    shutil.copy(REPO / "agent_workflow.yaml", pipeline / "agent_workflow.yaml")
    return pipeline


def started(root: Path, debounce: float = DEBOUNCE) -> Watch:
    watching = Watch(root, debounce)
    first = watching.next()
    assert isinstance(first, Planned) and first.event == "planned", first
    assert first.tasks == 4 and first.syncing
    assert watching.synced().lines > 4  # each task created, the roots enqueued
    assert watching.next().event == "watching"
    return watching


@pytest.fixture
def watching(pipeline_with_registries: Path) -> Iterator[Watch]:
    watching = started(pipeline_with_registries)
    yield watching
    watching.close()


def save(path: Path, text: str) -> None:
    """Save as an editor does: a temporary file in the same folder, renamed over the file."""
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    temporary.write_text(text)
    os.replace(temporary, path)


def save_task(root: Path, task_id: str, workstream: str = "ws-001", **fields: Any) -> Path:
    path = root / "tasks" / workstream / f"{task_id}.json"
    save(path, json.dumps(task_document(task_id, workstream, **fields), indent=2))
    return path


def state_files(root: Path) -> dict[str, str]:
    """Every file under .state/, by path, with a digest of its bytes."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((root / ".state").rglob("*"))
        if path.is_file()
    }


def snapshot(root: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((root / ".state" / "current.json").read_text())
    return document


def test_an_editor_save_is_one_replan_OBS_008(watching: Watch) -> None:
    """vim's save: a write test (4913), a swap file, the file renamed to a backup, the new
    file written, the backup deleted: one re-plan, of the one file that changed."""
    folder = watching.root / "tasks" / "ws-001"
    probe = folder / "4913"
    probe.write_text("")
    probe.unlink()
    swap = folder / ".b.json.swp"
    swap.write_bytes(b"\0" * 64)
    os.replace(folder / "b.json", folder / "b.json~")
    document = task_document("b", "ws-001", dependencies=["a", "d"])
    (folder / "b.json").write_text(json.dumps(document, indent=2))
    (folder / "b.json~").unlink()
    swap.unlink()
    event = watching.replanned()
    assert (event.added, event.removed, event.changed) == ([], [], ["b"])
    assert event.dependencies == {"b": ["a", "d"]} and event.syncing
    assert watching.synced().lines == 1  # b redefined
    assert snapshot(watching.root)["tasks"]["b"]["dependencies"] == ["a", "d"]
    # Nothing else came of it: the next event is the next edit's.
    save_task(watching.root, "c", dependencies=["a"])
    following = watching.replanned()
    assert following.seq == event.seq + 1 and following.changed == ["c"]


def test_a_burst_of_1000_files_is_one_replan_OBS_008(pipeline_with_registries: Path) -> None:
    watching = started(pipeline_with_registries, debounce=0.5)
    try:
        folder = watching.root / "tasks" / "ws-001"  # as a checkout writes them: in place
        for number in range(1000):
            document = task_document(f"n{number:04d}", "ws-001", dependencies=["a"])
            (folder / f"n{number:04d}.json").write_text(json.dumps(document))
        event = watching.replanned()
        assert len(event.added) == 1000 and event.files == 1000 and event.tasks == 1004
        assert watching.synced().lines >= 1000
        save_task(watching.root, "d", "ws-002", priority=2)
        following = watching.replanned()
        assert following.seq == event.seq + 1 and following.changed == ["d"]
    finally:
        watching.close()


def test_a_workstream_folder_moved_in_is_read_whole_OBS_007(watching: Watch) -> None:
    """A folder renamed into tasks/ brings files no event names: every file is compared."""
    outside = watching.root / "incoming"
    outside.mkdir()
    for name in ("x", "y", "z"):
        document = task_document(name, "ws-003", dependencies=["d"])
        (outside / f"{name}.json").write_text(json.dumps(document))
    os.rename(outside, watching.root / "tasks" / "ws-003")
    event = watching.replanned()
    assert event.added == ["x", "y", "z"] and event.files == 3
    assert watching.synced().lines >= 3


def test_an_invalid_edit_changes_nothing_then_the_fix_applies_OBS_008(watching: Watch) -> None:
    root = watching.root
    before = state_files(root)
    path = root / "tasks" / "ws-001" / "e.json"
    save(path, '{\n  "schema_version": "2.0.0",\n  "task_id": "e"\n  "name": "E"\n}\n')
    event = watching.invalid()
    assert event.count == 1
    assert event.problems[0]["file"] == "tasks/ws-001/e.json"
    assert (event.problems[0]["line"], event.problems[0]["column"]) == (4, 3)
    assert "nothing was changed" in event.text()
    assert "tasks/ws-001/e.json:4:3: invalid JSON" in event.text()
    assert "fix:" in event.text()
    save_task(root, "e", dependencies=["nobody"])  # valid JSON, an unknown dependency
    event = watching.invalid()
    assert event.problems[0]["requirement"] == "TASK-DEF-005"
    assert state_files(root) == before  # not one byte changed

    save_task(root, "e", dependencies=["c"])
    event = watching.replanned()
    assert event.added == ["e"] and event.critical_path == ["a", "b", "c", "e"]
    assert event.critical_path_changed and event.syncing
    assert watching.synced().seq == event.seq
    assert snapshot(root)["tasks"]["e"]["status"] == "pending"
    assert state_files(root) != before


def test_a_removed_task_is_archived_OBS_007(watching: Watch) -> None:
    (watching.root / "tasks" / "ws-002" / "d.json").unlink()
    event = watching.replanned()
    assert event.removed == ["d"] and event.tasks == 3
    assert watching.synced().lines == 1
    state = snapshot(watching.root)
    assert "d" not in state["tasks"] and "d" in state["archived"]


def test_an_edit_the_state_does_not_mirror_is_planned_without_a_sync_OBS_007(
    watching: Watch,
) -> None:
    root = watching.root
    journal = root / ".state" / "transitions.jsonl"
    before = journal.read_bytes()
    save_task(root, "d", "ws-002", execution={"estimated_seconds": 3600})
    event = watching.replanned()
    assert event.changed == ["d"] and event.dependencies == {}
    assert event.critical_path == ["d"] and event.critical_path_changed
    assert not event.syncing
    assert "new critical path (1 task, 3600 s): d" in event.text()
    assert journal.read_bytes() == before
    save_task(root, "d", "ws-002", execution={"estimated_seconds": 3600}, priority=1)
    following = watching.replanned()  # no `synced` event came between the two
    assert following.seq == event.seq + 1 and following.syncing
    assert watching.synced().lines == 1  # d redefined
    assert journal.read_bytes() != before


def test_a_store_that_refuses_the_sync_is_reported_and_the_next_edit_tries_again_OBS_007(
    watching: Watch,
) -> None:
    journal = watching.root / ".state" / "transitions.jsonl"
    good = journal.read_bytes()
    first, newline, rest = good.partition(b"\n")
    journal.write_bytes(b'{"seq": 1, "edited": "by hand"}' + newline + rest)
    save_task(watching.root, "d", "ws-002", priority=1)
    assert watching.replanned().syncing
    failed = watching.next()
    assert isinstance(failed, Failed), failed
    assert "edited by hand" in failed.message and "the next edit tries again" in failed.text()
    journal.write_bytes(good)
    save_task(watching.root, "d", "ws-002", priority=1, name="D")  # the same definition
    assert watching.replanned().syncing  # synced again: the last sync failed
    assert watching.synced().lines == 1  # d redefined, at last


def test_a_lifecycle_edit_is_validated_again_OBS_007(watching: Watch) -> None:
    root = watching.root
    before = state_files(root)
    path = root / "docs" / "state_machines" / "task_lifecycle.yaml"
    good = path.read_text()
    save(path, good.replace("initial:", "initial: [", 1))
    event = watching.invalid()
    assert event.reloaded == ["lifecycles"]
    assert {p["file"] for p in event.problems} == {"docs/state_machines/task_lifecycle.yaml"}
    assert all(p["line"] for p in event.problems)
    assert state_files(root) == before
    save(path, good)
    event = watching.replanned()
    assert event.reloaded == ["lifecycles"] and not event.syncing


def test_a_registry_edit_is_validated_again_OBS_007(watching: Watch) -> None:
    root = watching.root
    path = root / "capabilities" / "registry.psd1"
    good = path.read_text()
    (root / "capabilities" / "4913").write_text("")  # ignored, as every editor file
    save(path, good + "\n@{ broken")
    event = watching.invalid()
    assert event.reloaded == ["capabilities"]
    assert event.problems[0]["file"] == "capabilities/registry.psd1"
    save(path, good)
    assert watching.replanned().reloaded == ["capabilities"]
