"""The v2.0.0 task model and its published JSON Schema."""

from __future__ import annotations

import json

import jsonschema
import pytest
from pydantic import ValidationError

from orchestration.planning.plan import DEFAULT_ESTIMATE_SECONDS, PlanTask
from orchestration.tasks.model import Task
from orchestration.tasks.schema import published_schemas, write_schemas

from conftest import REPO, SEED_TASK, task_document


def test_seed_example_loads_unchanged_TASK_DEF_002() -> None:
    task = Task.model_validate_json(SEED_TASK.read_bytes())
    assert task.task_id == "task-001"
    assert task.worker_requirements.capabilities == ["aider"]
    assert task.context_requirements.max_context_tokens == 8000
    assert task.validation_rules.pre_execution == ["git_clean"]
    assert task.state.retry_count == 0


def test_missing_estimate_uses_documented_default_TASK_DEF_007() -> None:
    task = Task.model_validate(task_document("a"))
    assert task.execution.estimated_seconds is None
    assert PlanTask.of(task).estimate == DEFAULT_ESTIMATE_SECONDS == 60.0
    timed = Task.model_validate(task_document("b", execution={"estimated_seconds": 12.5}))
    assert PlanTask.of(timed).estimate == 12.5


def test_schema_key_is_accepted_TASK_DEF_009() -> None:
    document = task_document("a", **{"$schema": "../../schemas/task.schema.json"})
    assert Task.model_validate_json(json.dumps(document)).schema_ == document["$schema"]


@pytest.mark.parametrize(
    ("fields", "location"),
    [
        ({"priority": "1"}, ("priority",)),
        ({"execution": {"timeout_seconds": "600"}}, ("execution", "timeout_seconds")),
        ({"execution": {"timeout_seconds": 0}}, ("execution", "timeout_seconds")),
        ({"dependencies": "task-002"}, ("dependencies",)),
        ({"task_id": "has space"}, ("task_id",)),
        ({"worker_requirements": {"capability": ["x"]}}, ("worker_requirements", "capability")),
    ],
)
def test_wrong_types_and_unknown_fields_are_rejected(
    fields: dict[str, object], location: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError) as raised:
        Task.model_validate_json(json.dumps(task_document("a", **fields)))
    assert tuple(raised.value.errors()[0]["loc"]) == location


def test_checked_in_schema_matches_the_model_SCHEMA_VER_004() -> None:
    """Fails when schemas/task.schema.json drifts: run `orchestration schemas`."""
    assert write_schemas(REPO / "schemas", check=True) == []


def test_published_schema_agrees_with_the_model_on_examples() -> None:
    schema = json.loads(published_schemas()["task.schema.json"])
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(json.loads(SEED_TASK.read_text()))
    for path in sorted((REPO / "tasks").glob("*/*.json")):
        validator.validate(json.loads(path.read_text()))
    bad = task_document("a", bogus=True)
    assert list(validator.iter_errors(bad))
