"""The run's definitions: cached columns, models when dispatched, and a sync skipped when idle."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestration import cache
from orchestration.errors import DefinitionError
from orchestration.execution import definitions as module
from orchestration.execution.definitions import load_definitions, mirror_of, start_loading
from orchestration.lifecycles import load_lifecycles
from orchestration.planning.plan import build_plan
from orchestration.state import Store
from orchestration.state.store import _mirror
from orchestration.tasks.loading import load_tasks
from orchestration.tasks.model import Task
from orchestration.tasks.screening import accept, plan_view, screen

from conftest import REPO, WriteTask, task_document


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Count the loads that read the task files (cache misses)."""
    misses: list[Path] = []
    check = module._check

    def counted(root: Path, located: list[tuple[str, str]], **options: bool) -> Any:
        misses.append(root)
        return check(root, located, **options)

    monkeypatch.setattr(module, "_check", counted)
    return misses


# --- the cached table ------------------------------------------------------------------


def test_columns_agree_with_the_validated_tasks(pipeline: Path) -> None:
    loaded = load_tasks(pipeline)
    definitions = load_definitions(pipeline)
    tasks = loaded.tasks
    assert list(definitions.dependencies) == list(tasks)
    assert {t: tuple(d) for t, d in definitions.dependencies.items()} == {
        t: tuple(task.dependencies) for t, task in tasks.items()
    }
    assert definitions.workstreams == {t: task.workstream_id for t, task in tasks.items()}
    assert {t: definitions.file(t) for t in tasks} == loaded.files
    plan = build_plan({t: _plan(task) for t, task in tasks.items()})
    assert definitions.slack == {t: slot.slack for t, slot in plan.schedule.items()}
    assert definitions.mirrors() == [mirror_of(task) for task in tasks.values()]


def _plan(task: Task) -> Any:
    from orchestration.planning.plan import PlanTask

    return PlanTask.of(task)


def test_an_unchanged_pipeline_is_loaded_from_the_cache(
    pipeline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    misses = _reads(monkeypatch)
    first = load_definitions(pipeline)
    again = load_definitions(pipeline)
    assert misses == [pipeline]  # the second load read no task file
    assert again.dependencies == {t: list(d) for t, d in first.dependencies.items()}
    assert again.slack == first.slack and again.key == first.key
    assert again.mirrors() == json.loads(json.dumps(first.mirrors()))


@pytest.mark.parametrize("change", ["edit", "touch", "new file", "removed file"])
def test_the_cache_is_invalidated_by_any_change_to_the_task_files(
    pipeline: Path, write_task: WriteTask, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    misses = _reads(monkeypatch)
    load_definitions(pipeline)
    path = pipeline / "tasks" / "ws-002" / "d.json"
    if change == "edit":
        write_task("d", "ws-002", priority=7)
    elif change == "touch":
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1000))
    elif change == "new file":
        write_task("e", dependencies=["d"])
    else:
        path.unlink()
    found = load_definitions(pipeline)
    assert len(misses) == 2
    assert ("e" in found.dependencies) is (change == "new file")
    assert ("d" in found.dependencies) is (change != "removed file")
    if change == "edit":
        assert found.priorities()["d"] == 7


def test_a_file_made_invalid_after_the_cache_was_written_is_reported(
    pipeline: Path,
) -> None:
    load_definitions(pipeline)
    path = pipeline / "tasks" / "ws-001" / "b.json"
    path.write_text(path.read_text().replace('"Task b"', '""'))
    with pytest.raises(DefinitionError) as raised:
        load_definitions(pipeline)
    first = raised.value.problems[0]
    assert (first.file, first.pointer) == ("tasks/ws-001/b.json", "/name")
    assert list(raised.value.problems) == load_tasks(pipeline).problems


def test_problems_are_those_load_tasks_reports(pipeline: Path, write_task: WriteTask) -> None:
    write_task("e", dependencies=["nope"])
    write_task("f", "ws-002", priority="high")
    with pytest.raises(DefinitionError) as raised:
        load_definitions(pipeline)
    assert list(raised.value.problems) == load_tasks(pipeline).problems


def test_a_cycle_is_refused_and_nothing_is_cached(pipeline: Path, write_task: WriteTask) -> None:
    write_task("a", dependencies=["c"])
    with pytest.raises(DefinitionError, match="problem"):
        load_definitions(pipeline)
    assert not cache.cache_file("run", pipeline).exists()


def test_the_signature_is_taken_in_a_child_while_the_caller_works(
    pipeline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    misses = _reads(monkeypatch)
    load_definitions(pipeline)
    loading = start_loading(pipeline)  # forks now
    (pipeline / "tasks" / "ws-002" / "d.json").unlink()  # too late: the child may have it
    found = loading()
    # Either the child listed the files before the removal (the cache answers,
    # and the next load misses), or after (a miss now): never a stale hit later.
    assert load_definitions(pipeline).dependencies.keys() == {"a", "b", "c"}
    assert len(misses) in (2, 3) and found.dependencies.keys() <= {"a", "b", "c", "d"}


def test_signature_later_is_the_signature(tmp_path: Path) -> None:
    files = []
    for number in range(3):
        path = tmp_path / f"{number}.json"
        path.write_text("x" * number)
        files.append((path.name, str(path)))
    later = cache.signature_later(("cache.py",), lambda: files)
    expected = cache.signature(("cache.py",), ((name, os.stat(path)) for name, path in files))
    assert later() == expected
    gone = cache.signature_later(("cache.py",), lambda: [("x", str(tmp_path / "missing"))])
    assert gone() is None


def test_read_signed_returns_the_signature_with_the_data(tmp_path: Path) -> None:
    stored = tmp_path / "c.json"
    assert cache.read_signed(stored) is None
    cache.write(stored, "key", {"a": [1]})
    assert cache.read_signed(stored) == ("key", {"a": [1]})
    stored.write_text('{"signature": 3, "data": 1}')
    assert cache.read_signed(stored) is None


# --- models, validated when dispatched --------------------------------------------------


def test_a_task_is_validated_from_its_file_when_asked_for(pipeline: Path) -> None:
    definitions = load_definitions(pipeline)
    assert definitions.task("b") == load_tasks(pipeline).tasks["b"]
    path = pipeline / "tasks" / "ws-001" / "c.json"
    path.write_text(path.read_text().replace('"shell"', '"bash"'))
    with pytest.raises(DefinitionError) as raised:
        definitions.task("c")
    [problem] = raised.value.problems
    assert problem.file == "tasks/ws-001/c.json" and problem.pointer == "/type"
    assert problem.line > 0


def test_a_task_scheduled_otherwise_than_synced_is_refused(pipeline: Path) -> None:
    definitions = load_definitions(pipeline)
    task = load_tasks(pipeline).tasks["b"]
    entry = {"status": "ready", **_mirror(task)}
    assert definitions.checked("b", entry) == task
    with pytest.raises(DefinitionError) as raised:
        definitions.checked("b", {**entry, "priority": 3})
    [problem] = raised.value.problems
    assert "edited after this run synced it" in problem.message
    assert problem.file == "tasks/ws-001/b.json"


# --- sync, skipped when it would change nothing ------------------------------------------


def _store(root: Path) -> Any:
    return Store.open(root, load_lifecycles(root), actor="test")


def test_an_unchanged_pipeline_skips_store_sync(
    pipeline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _store(pipeline) as store:
        store.sync(load_tasks(pipeline).tasks)
    definitions = load_definitions(pipeline)
    with _store(pipeline) as store:
        monkeypatch.setattr(store, "sync", _refuse)
        assert definitions.sync(store, "test") == []  # checked in full, then remembered
        assert definitions._mirrored_since(store)
        store.apply("a", "claim")
        assert definitions.sync(store, "test") == []  # only the queueing checked again


def _refuse(*args: object, **kwargs: object) -> list[dict[str, Any]]:
    msg = "Store.sync was called for nothing"
    raise AssertionError(msg)


def test_a_defining_line_since_the_remembered_position_forgets_it(pipeline: Path) -> None:
    definitions = load_definitions(pipeline)
    with _store(pipeline) as store:
        definitions.sync(store, "test")
        assert definitions._mirrored_since(store)
        tasks = load_tasks(pipeline).tasks
        store.sync({t: task for t, task in tasks.items() if t != "d"})  # archives d
        assert not definitions._mirrored_since(store)
        lines = definitions.sync(store, "test")
        assert [(line["id"], line["trigger"]) for line in lines] == [
            ("d", "create"),
            ("d", "enqueue"),
        ]


def _declare(root: Path, task_id: str, workstream: str, **fields: Any) -> None:
    path = root / "tasks" / workstream / f"{task_id}.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


SCENARIOS = {
    "new pipeline": lambda root: None,
    "changed definition": lambda root: _declare(root, "d", "ws-002", priority=4),
    "removed task": lambda root: (root / "tasks" / "ws-002" / "d.json").unlink(),
    "declared cancelled": lambda root: _declare(root, "c", "ws-001", status="cancelled"),
    "new dependency": lambda root: _declare(root, "d", "ws-002", dependencies=["c"]),
    "dependency removed": lambda root: _declare(root, "b", "ws-001", dependencies=[]),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_sync_decides_what_store_sync_decides(tmp_path: Path, scenario: str) -> None:
    """Whatever changed, the state ends as ``Store.sync`` of the validated tasks leaves it."""
    first, second = tmp_path / "first", tmp_path / "second"
    _pipeline(first)
    if scenario != "new pipeline":
        with _store(first) as store:
            store.sync(load_tasks(first).tasks)
            store.apply("a", "claim")
            store.apply("a", "start")
            store.apply("a", "complete")
            store.apply("d", "claim")  # d ready, then claimed
    SCENARIOS[scenario](first)
    shutil.copytree(first, second)
    with _store(first) as store:
        expected = [_plain(line) for line in store.sync(load_tasks(first).tasks)]
        state = store.state.tasks
    with _store(second) as store:
        found = [_plain(line) for line in load_definitions(second).sync(store, "test")]
        assert store.state.tasks == state
    assert found == expected


def _pipeline(root: Path) -> None:
    shutil.copytree(REPO / "docs" / "state_machines", root / "docs" / "state_machines")
    for task_id, workstream, fields in (
        ("a", "ws-001", {"execution": {"max_retries": 1}}),
        ("b", "ws-001", {"dependencies": ["a"]}),
        ("c", "ws-001", {"dependencies": ["b"]}),
        ("d", "ws-002", {}),
    ):
        folder = root / "tasks" / workstream
        folder.mkdir(parents=True, exist_ok=True)
        document = task_document(task_id, workstream, **fields)
        (folder / f"{task_id}.json").write_text(json.dumps(document))


def _plain(line: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in line.items() if key not in ("ts", "actor")}


# --- the mirror the state keeps ----------------------------------------------------------

# Not a resource name: a key written twice in a file is left to the model by the screen.
identifiers = st.from_regex(r"[a-z][a-z0-9-]{0,6}", fullmatch=True).filter(
    lambda name: name not in ("gpu", "db")
)
documents = st.fixed_dictionaries(
    {
        "schema_version": st.just("2.0.0"),
        "task_id": identifiers,
        "workstream_id": identifiers,
        "name": st.just("n"),
        "type": st.sampled_from(["shell", "aider", "claude", "manual"]),
    },
    optional={
        "status": st.sampled_from(["pending", "ready", "cancelled", "skipped", "failed"]),
        "priority": st.integers(-3, 3),
        "dependencies": st.lists(identifiers, max_size=3),
        "resources": st.dictionaries(st.sampled_from(["gpu", "db"]), st.integers(1, 3)),
        "worker_requirements": st.fixed_dictionaries(
            {}, optional={"capabilities": st.lists(identifiers, max_size=2)}
        ),
        "execution": st.fixed_dictionaries({}, optional={"max_retries": st.integers(0, 2)}),
    },
)


def test_the_mirrored_keys_are_the_snapshots() -> None:
    from orchestration.state.snapshot import DEFINITION

    assert ("workstream_id", *DEFINITION) == module._MIRRORED


@settings(max_examples=200)
@given(document=documents)
def test_the_mirror_is_the_one_store_sync_records(document: dict[str, Any]) -> None:
    raw = json.dumps(document).encode()
    task = Task.model_validate_json(raw)
    expected = [_mirror(task).get(key) for key in module._MIRRORED]
    assert mirror_of(task) == expected
    accepted = accept(raw)
    assert accepted is not None
    assert module._document_mirror(accepted) == expected
    assert plan_view(accepted) == screen(raw)


@pytest.mark.parametrize(
    ("task_id", "trigger", "status", "expected"),
    [
        ("a", "complete", "succeeded", [("b", "enqueue")]),  # b's dependencies are done
        ("c", "enqueue", "ready", [("c", "requeue")]),  # c's dependency b is not
        ("d", "complete", "skipped", []),  # d has no dependents: nothing to do
    ],
)
def test_a_task_queued_otherwise_than_sync_leaves_it_is_requeued(
    pipeline: Path, task_id: str, trigger: str, status: str, expected: list[tuple[str, str]]
) -> None:
    """A state changed without its cascade (as no transaction does) is still put right."""
    definitions = load_definitions(pipeline)
    with _store(pipeline) as store:
        definitions.sync(store, "test")
        with store.transaction() as tx:
            tx.record(task_id, trigger, status)  # the bare change, without what it implies
        lines = definitions.sync(store, "test")
        assert [(line["id"], line["trigger"]) for line in lines] == expected


def test_after_an_edit_the_files_are_checked_with_the_model_once_for_the_sync(
    pipeline: Path, write_task: WriteTask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run after an edit syncs every model: the check that found the edit made them."""
    with _store(pipeline) as store:
        load_definitions(pipeline).sync(store, "test")  # creates, and remembers the sync
    write_task("d", "ws-002", priority=4)
    definitions = load_definitions(pipeline)  # the files changed since: checked with the model
    import orchestration.tasks.loading as loading

    with monkeypatch.context() as patch, _store(pipeline) as store:
        patch.setattr(loading, "check_file", _refuse)  # no file is read again
        lines = definitions.sync(store, "test")
    assert [(line["id"], line["trigger"]) for line in lines] == [("d", "redefine")]
    assert definitions.task("d").priority == 4  # a dispatch reads its file again
