"""Artifacts: their models, their published schemas, and the problems reported (AGENT-WF-003)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from orchestration.enforcement.artifacts import (
    ARTIFACT_MODELS,
    ARTIFACTS,
    ArtifactProblem,
    artifact_json_schemas,
    artifact_problems,
)
from orchestration.tasks.schema import DIALECT

from conftest import REPO

VALID: dict[str, dict[str, Any]] = {
    "plan": {
        "summary": "Add a --dry-run flag to sync.",
        "acceptance_criteria": ["sync --dry-run changes no file"],
        "steps": ["write the test", "add the flag"],
    },
    "scope": {"files": ["src/app/sync.py", "tests/**"], "out_of_scope": ["the CLI help"]},
    "tests": {"files": ["tests/test_sync.py"], "cases": ["tests/test_sync.py::test_dry_run"]},
    "test_result": {
        "command": "python -m pytest -q",
        "passed": 3,
        "failed": 1,
        "errors": 0,
        "exit_code": 1,
        "output_tail": "1 failed, 3 passed in 0.12s",
    },
    "implementation": {
        "summary": "The flag skips the writes.",
        "files_changed": ["src/app/sync.py"],
        "commits": ["0123abc"],
    },
    "review": {
        "verdict": "request_changes",
        "issues": [
            {"severity": "blocking", "description": "writes anyway", "file": "a.py", "line": 3},
            {"severity": "nit", "description": "typo", "file": None, "line": None},
        ],
        "summary": "Close.",
    },
    "completion": {"summary": "sync has --dry-run."},
}

MINIMAL: dict[str, dict[str, Any]] = {
    "plan": {"summary": "s", "acceptance_criteria": []},
    "scope": {"files": ["a.py"]},
    "tests": {"files": ["tests/test_a.py"]},
    "test_result": {"command": "pytest", "passed": 0, "failed": 0},
    "implementation": {"summary": "s", "files_changed": []},
    "review": {"verdict": "approve"},
    "completion": {"summary": "s"},
}


def _published(name: str) -> dict[str, Any]:
    return json.loads((REPO / "schemas" / "artifacts" / f"{name}.schema.json").read_text())


VALIDATORS = {name: jsonschema.Draft202012Validator(_published(name)) for name in ARTIFACTS}


def test_the_seven_artifacts_of_the_spec_AGENT_WF_003() -> None:
    assert ARTIFACTS == (
        "plan",
        "scope",
        "tests",
        "test_result",
        "implementation",
        "review",
        "completion",
    )
    assert set(VALID) == set(MINIMAL) == set(ARTIFACTS)


def test_checked_in_artifact_schemas_match_the_models_AGENT_WF_003() -> None:
    """Fails when schemas/artifacts/ drifts from the models: regenerate the files."""
    expected = {
        name: json.dumps(
            {"$schema": DIALECT, **document}, indent=2, sort_keys=True, ensure_ascii=False
        )
        + "\n"
        for name, document in artifact_json_schemas().items()
    }
    folder = REPO / "schemas" / "artifacts"
    assert sorted(f"artifacts/{path.name}" for path in folder.glob("*.json")) == sorted(expected)
    for name, text in expected.items():
        assert (REPO / "schemas" / name).read_text(encoding="utf-8") == text, name


@pytest.mark.parametrize("name", ARTIFACTS)
def test_every_schema_has_an_id_and_a_title_and_forbids_unknown_fields_AGENT_WF_003(
    name: str,
) -> None:
    schema = _published(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"].endswith(name)
    assert schema["title"]
    assert schema["additionalProperties"] is False
    assert "schema_version" not in schema["properties"]


@pytest.mark.parametrize("name", ARTIFACTS)
def test_valid_and_minimal_artifacts_are_accepted_AGENT_WF_003(name: str) -> None:
    validator = VALIDATORS[name]
    for document in (VALID[name], MINIMAL[name]):
        assert artifact_problems(name, document) == []
        assert list(validator.iter_errors(document)) == []


@pytest.mark.parametrize(
    ("name", "document", "pointers"),
    [
        ("plan", {"summary": "s", "acceptance_criteria": ["ok", 1]}, ["/acceptance_criteria/1"]),
        ("plan", {"acceptance_criteria": []}, ["/summary"]),
        ("plan", {"summary": "", "acceptance_criteria": [], "extra": 1}, ["/summary", "/extra"]),
        ("scope", {"files": []}, ["/files"]),
        ("tests", {"files": [""]}, ["/files/0"]),
        ("test_result", {"command": "c", "passed": -1, "failed": "2"}, ["/passed", "/failed"]),
        ("test_result", {"command": "c", "passed": True, "failed": 0}, ["/passed"]),
        ("review", {"verdict": "maybe"}, ["/verdict"]),
        (
            "review",
            {"verdict": "approve", "issues": [{"severity": "nit", "description": "d"}, {}]},
            ["/issues/1/severity", "/issues/1/description"],
        ),
        (
            "review",
            {"verdict": "approve", "issues": [{"severity": "x", "description": "d", "line": 0}]},
            ["/issues/0/severity", "/issues/0/line"],
        ),
        ("completion", {"summary": "s", "a/b~c": 1}, ["/a~1b~0c"]),
    ],
)
def test_problems_are_located_by_json_pointer_AGENT_WF_003(
    name: str, document: dict[str, Any], pointers: list[str]
) -> None:
    problems = artifact_problems(name, document)
    assert [problem.pointer for problem in problems] == pointers
    assert all(problem.message for problem in problems)


def test_messages_say_what_is_wrong_AGENT_WF_003() -> None:
    missing, unknown = artifact_problems("completion", {"sumary": "s"})
    assert missing == ArtifactProblem("/summary", "required field 'summary' is missing")
    assert unknown.pointer == "/sumary"
    assert "unknown field 'sumary'; allowed here: summary" in unknown.message
    (wrong,) = artifact_problems("test_result", {"command": "c", "passed": 1, "failed": "x"})
    assert "integer" in wrong.message and '"x"' in wrong.message
    assert wrong.as_dict() == {"pointer": "/failed", "message": wrong.message}


@pytest.mark.parametrize("document", [None, [], "plan", 3, 2.5, True])
def test_a_document_that_is_no_object_is_one_problem_at_the_root_AGENT_WF_003(
    document: object,
) -> None:
    (problem,) = artifact_problems("plan", document)
    assert problem.pointer == ""
    assert "must be a JSON object" in problem.message


def test_an_unknown_artifact_name_is_the_callers_bug() -> None:
    with pytest.raises(KeyError, match="unknown artifact 'plans'"):
        artifact_problems("plans", {})


# --- property: artifact_problems agrees with the model and the published schema ---------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-3, max_value=3)
    | st.floats(allow_nan=False).filter(lambda f: not f.is_integer())
    | st.sampled_from(["", " ", "x", "blocking", "approve", "nit", "request_changes"])
    | st.text(max_size=5)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["severity", "description", "file", "line", "x"]), inner)
    ),
    max_leaves=8,
)


@st.composite
def _documents(draw: st.DrawFn) -> tuple[str, object]:
    """An artifact name and a document near it: its fields with random values, some dropped."""
    name = draw(st.sampled_from(ARTIFACTS))
    if draw(st.integers(0, 9)) == 0:
        return name, draw(_values)
    document: dict[str, object] = {}
    for field, value in VALID[name].items():
        if draw(st.booleans()):
            document[field] = value
        elif draw(st.booleans()):
            document[field] = draw(_values)
    if draw(st.integers(0, 4)) == 0:
        document[draw(st.sampled_from(["x", "schema_version"]))] = draw(_values)
    return name, document


@settings(max_examples=300, deadline=None)
@given(_documents())
def test_problems_are_empty_exactly_when_model_and_schema_accept_AGENT_WF_003(
    drawn: tuple[str, object],
) -> None:
    name, document = drawn
    problems = artifact_problems(name, document)
    assert isinstance(problems, list)
    try:
        ARTIFACT_MODELS[name].model_validate(document)
    except ValidationError:
        accepted = False
    else:
        accepted = True
    assert (problems == []) == accepted
    schema_accepts = VALIDATORS[name].is_valid(document)
    assert schema_accepts == accepted
    for problem in problems:
        assert problem.pointer == "" or problem.pointer.startswith("/")
