"""The store against a simple in-memory model, driven by hypothesis.

Random triggers, hand edits of the task files (followed by ``sync``) and
reopenings of the store: the store's statuses always equal the model's, an
illegal trigger is always refused without a journal line, and the snapshot
always equals the replay of the journal.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from orchestration.lifecycles import TransitionRejected, load_lifecycles
from orchestration.state import Store
from orchestration.state.views import verify
from orchestration.tasks.loading import load_tasks

from conftest import REPO, task_document
from strategies import SPEC_TASK_TABLE

TABLE = SPEC_TASK_TABLE
DONE = {"succeeded", "skipped"}
MAX_RETRIES = 1
SHAPES = [  # alternative dependency graphs a hand edit can switch between
    {"a": [], "b": ["a"], "c": ["b"], "d": [], "e": ["a", "d"]},
    {"a": [], "b": ["a"], "c": ["d"], "d": []},
    {"a": ["d"], "b": [], "c": ["b"], "d": [], "f": ["c"]},
]


class StoreModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="store-model-"))
        shutil.copytree(REPO / "docs" / "state_machines", self.root / "docs" / "state_machines")
        self.lifecycles = load_lifecycles(self.root)
        self.deps: dict[str, list[str]] = {}
        self.status: dict[str, str] = {}
        self.retries: dict[str, int] = {}
        self._write(SHAPES[0])
        self.context = Store.open(self.root, self.lifecycles, actor="model")
        self.store = self.context.__enter__()
        self._sync()

    def teardown(self) -> None:
        self.context.__exit__(None, None, None)
        shutil.rmtree(self.root, ignore_errors=True)

    # --- the model -------------------------------------------------------------

    def _dependents(self, task_id: str) -> list[str]:
        return [t for t, deps in self.deps.items() if task_id in deps]

    def _ready_able(self, task_id: str) -> bool:
        return self.status[task_id] == "pending" and all(
            self.status[d] in DONE for d in self.deps[task_id]
        )

    def _model_apply(self, task_id: str, trigger: str) -> bool:
        sources, dest = TABLE[trigger]
        if self.status[task_id] not in sources:
            return False
        if trigger == "enqueue" and not all(self.status[d] in DONE for d in self.deps[task_id]):
            return False
        if trigger == "retry" and self.retries[task_id] >= MAX_RETRIES:
            return False
        self.status[task_id] = dest
        if trigger == "retry":
            self.retries[task_id] += 1
        if dest in DONE:
            for dependent in self._dependents(task_id):
                if self._ready_able(dependent):
                    self.status[dependent] = "ready"
        elif dest == "cancelled" or (dest == "failed" and self.retries[task_id] >= MAX_RETRIES):
            stack, seen = self._dependents(task_id), set()
            while stack:
                dependent = stack.pop()
                if dependent in seen:
                    continue
                seen.add(dependent)
                if self.status[dependent] in ("pending", "ready"):
                    self.status[dependent] = "blocked"
                stack.extend(self._dependents(dependent))
        elif dest == "pending" and self._ready_able(task_id):
            self.status[task_id] = "ready"
        return True

    def _write(self, shape: dict[str, list[str]]) -> None:
        folder = self.root / "tasks" / "ws-001"
        shutil.rmtree(self.root / "tasks", ignore_errors=True)
        folder.mkdir(parents=True)
        for task_id, deps in shape.items():
            document = task_document(
                task_id, dependencies=deps, execution={"max_retries": MAX_RETRIES}
            )
            (folder / f"{task_id}.json").write_text(json.dumps(document))
        for task_id in list(self.status):
            if task_id not in shape:
                del self.status[task_id]
        for task_id in shape:
            self.status.setdefault(task_id, "pending")
            self.retries.setdefault(task_id, 0)
        for gone in set(self.retries) - set(shape):
            del self.retries[gone]
        self.deps = {task_id: list(deps) for task_id, deps in shape.items()}

    def _sync(self) -> None:
        self.store.sync(load_tasks(self.root).tasks)
        for task_id, deps in self.deps.items():
            if self.status[task_id] == "ready" and not all(self.status[d] in DONE for d in deps):
                self.status[task_id] = "pending"  # requeued: a new dependency is not done
            if self._ready_able(task_id):
                self.status[task_id] = "ready"

    # --- rules -----------------------------------------------------------------

    @rule(data=st.data(), trigger=st.sampled_from(sorted(TABLE)))
    def apply_trigger(self, data: st.DataObject, trigger: str) -> None:
        task_id = data.draw(st.sampled_from(sorted(self.status)))
        before = self.store.state.last_seq
        try:
            self.store.apply(task_id, trigger)
        except TransitionRejected:
            accepted = False
        else:
            accepted = True
        assert accepted == self._model_apply(task_id, trigger), (task_id, trigger)
        if not accepted:
            assert self.store.state.last_seq == before

    @rule()
    def reopen(self) -> None:
        self.context.__exit__(None, None, None)
        self.context = Store.open(self.root, self.lifecycles, actor="model")
        self.store = self.context.__enter__()

    @rule(shape=st.sampled_from(range(len(SHAPES))))
    def hand_edit(self, shape: int) -> None:
        self._write(SHAPES[shape])
        self._sync()

    # --- invariants ------------------------------------------------------------

    @invariant()
    def statuses_match(self) -> None:
        actual = {t: e["status"] for t, e in self.store.state.tasks.items()}
        assert actual == self.status

    @invariant()
    def snapshot_is_the_replay(self) -> None:
        self.store.flush()
        assert verify(self.root, self.lifecycles) == []


TestStoreModel = StoreModel.TestCase
TestStoreModel.settings = settings(max_examples=25, stateful_step_count=15, deadline=None)
