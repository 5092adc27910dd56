"""The planner's screen accepts only what the model accepts, with the same values."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from orchestration.planning.plan import PlanTask
from orchestration.tasks import model
from orchestration.tasks.model import Task
from orchestration.tasks.screening import screen

from conftest import REPO, task_document

# --- documents near the schema, valid or not, written in many ways -----------


class Pairs(list[tuple[str, Any]]):
    """A JSON object written member by member, so that a key may repeat."""


def _write(value: Any, indent: int | None) -> str:
    if isinstance(value, Pairs):
        gap = "\n" + " " * (indent or 0) if indent is not None else ""
        members = [f"{gap}{json.dumps(key)}: {_write(item, indent)}" for key, item in value]
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_write(item, indent) for item in value) + "]"
    if isinstance(value, dict):
        return _write(Pairs(value.items()), indent)
    return json.dumps(value)


junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
identifiers = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,8}", fullmatch=True) | st.sampled_from(
    ["x" * 128, "x" * 129, "a\n", "a\nb", "-a", ".a", "a b", "é", "\u0661", "", "A.b_c-9"]
)
strings = st.text(max_size=8) | st.sampled_from(["", "\u0000", "\ud83d\ude00", "a\\b"])
numbers = (
    st.integers(-3, 3)
    | st.integers()
    | st.sampled_from([2**53, 2**53 + 1, 2**63, 2**64, -(2**63) - 1, 10**30])
    | st.floats(allow_nan=False)
    | st.sampled_from([0.0, -0.0, 1.0, 1e-320, 1e308])
)
date_times = (
    st.datetimes().map(lambda moment: moment.isoformat())
    | st.datetimes().map(lambda moment: moment.isoformat(sep=" "))
    | st.from_regex(
        r"[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9](\.[0-9]{1,7})?"
        r"(Z|z|[+-][0-2][0-9]:[0-6][0-9])?",
        fullmatch=True,
    )
    | st.sampled_from(["2026-02-29T00:00:00Z", "2024-02-29T00:00:00Z", "0000-01-01T00:00:00"])
)


def maybe(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly ``good``, sometimes anything at all."""
    return st.one_of(good, good, good, junk)


def objects(
    members: dict[str, st.SearchStrategy[Any]], required: tuple[str, ...] = ()
) -> st.SearchStrategy[Pairs]:
    """An object of some of ``members`` (``required`` ones usually), an unknown key, or a repeat."""

    @st.composite
    def build(draw: st.DrawFn) -> Pairs:
        pairs = Pairs()
        for key, value in members.items():
            if key in required and draw(st.integers(0, 20)) or draw(st.booleans()):
                pairs.append((key, draw(value)))
        if pairs and draw(st.integers(0, 5)) == 0:
            key, _ = draw(st.sampled_from(pairs))
            at = draw(st.integers(0, len(pairs)))
            pairs.insert(at, (key, draw(junk | members[key])))
        if draw(st.integers(0, 10)) == 0:
            pairs.append((draw(st.sampled_from(["x", "schema_", "Name", "timeout"])), 1))
        return Pairs(draw(st.permutations(pairs))) if draw(st.booleans()) else pairs

    return build()


ids_lists = st.lists(identifiers, max_size=3)
task_documents = objects(
    {
        "$schema": maybe(st.none() | strings),
        "schema_version": st.sampled_from(["2.0.0", "2.0.0", "1.0.0", "2.0"]) | junk,
        "task_id": maybe(identifiers),
        "workstream_id": maybe(identifiers),
        "name": maybe(strings),
        "description": maybe(strings),
        "type": maybe(st.sampled_from(["shell", "aider", "claude", "manual", "SHELL", ""])),
        "status": maybe(st.sampled_from(["pending", "running", "skipped", "done"])),
        "priority": maybe(numbers),
        "dependencies": maybe(ids_lists),
        "blocks": maybe(ids_lists),
        "resources": maybe(
            objects({"gpu": maybe(numbers), "lock/a": maybe(numbers), "é\n": maybe(numbers)})
        ),
        "worker_requirements": maybe(
            objects({"capabilities": maybe(ids_lists), "min_version": maybe(st.none() | strings)})
        ),
        "execution": maybe(
            objects(
                {
                    "command": maybe(st.none() | strings),
                    "timeout_seconds": maybe(numbers),
                    "max_retries": maybe(numbers),
                    "estimated_seconds": maybe(st.none() | numbers),
                }
            )
        ),
        "context_requirements": maybe(
            objects(
                {
                    "max_context_tokens": maybe(st.none() | numbers),
                    "required_files": maybe(st.lists(strings, max_size=2)),
                    "exclude_patterns": maybe(st.lists(strings, max_size=2)),
                }
            )
        ),
        "validation_rules": maybe(
            objects(
                {
                    "pre_execution": maybe(st.lists(strings, max_size=2)),
                    "post_execution": maybe(st.lists(strings, max_size=2)),
                }
            )
        ),
        "state": maybe(
            objects(
                {
                    "created_at": maybe(st.none() | date_times | numbers),
                    "retry_count": maybe(numbers),
                }
            )
        ),
    },
    required=("schema_version", "task_id", "workstream_id", "name", "type"),
)


def _model_view(raw: bytes) -> PlanTask | None:
    try:
        return PlanTask.of(Task.model_validate_json(raw))
    except ValidationError:
        return None


def _disagreement(raw: bytes) -> str | None:
    """How the screen disagrees with the model on ``raw``; ``None`` when it does not."""
    screened = screen(raw)
    if screened is None:
        return None  # deferred: the model decides
    modelled = _model_view(raw)
    if modelled is None:
        return "the screen accepted what the model refuses"
    if repr(screened) != repr(modelled):  # same values and types, -0.0 included
        return f"the screen read {screened!r}, the model {modelled!r}"
    return None


def _agrees(raw: bytes) -> PlanTask | None:
    """Check the screen against the model on ``raw``; the screen's answer."""
    problem = _disagreement(raw)
    assert problem is None, problem
    return screen(raw)


@settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow])
@given(document=task_documents, indent=st.none() | st.integers(0, 2))
@example(document=Pairs([("resources", {"a": "x"}), ("resources", {"a": 1})]), indent=None)
def test_the_screen_accepts_only_what_the_model_accepts_TASK_DEF_002(
    document: Pairs, indent: int | None
) -> None:
    assert _disagreement(_write(document, indent).encode()) is None


plain = st.fixed_dictionaries(
    {
        "schema_version": st.just("2.0.0"),
        "task_id": st.from_regex(r"[a-z0-9][a-z0-9-]{0,12}", fullmatch=True),
        "workstream_id": st.from_regex(r"ws-[0-9]{1,3}", fullmatch=True),
        "name": st.text(min_size=1, max_size=20),
        "type": st.sampled_from(["shell", "aider", "claude", "manual"]),
    },
    optional={
        "$schema": st.just("../../schemas/task.schema.json"),
        "description": st.text(max_size=20),
        "status": st.sampled_from(["pending", "ready", "succeeded", "cancelled"]),
        "priority": st.integers(-5, 5),
        "dependencies": st.lists(st.from_regex(r"t-[0-9]{1,3}", fullmatch=True), max_size=3),
        "blocks": st.lists(st.from_regex(r"t-[0-9]{1,3}", fullmatch=True), max_size=2),
        "resources": st.dictionaries(st.sampled_from(["gpu", "db"]), st.integers(1, 9)),
        "worker_requirements": st.fixed_dictionaries(
            {}, optional={"capabilities": st.lists(st.just("shell")), "min_version": st.none()}
        ),
        "execution": st.fixed_dictionaries(
            {},
            optional={
                "command": st.text(max_size=10),
                "timeout_seconds": st.integers(1, 10**6),
                "max_retries": st.integers(0, 5),
                "estimated_seconds": st.none()
                | st.integers(0, 10**6)
                | st.floats(0, 1e9, allow_infinity=False),
            },
        ),
        "context_requirements": st.fixed_dictionaries(
            {},
            optional={
                "max_context_tokens": st.none() | st.integers(1, 10**6),
                "exclude_patterns": st.lists(st.text(max_size=8), max_size=2),
            },
        ),
        "validation_rules": st.fixed_dictionaries(
            {}, optional={"pre_execution": st.lists(st.text(max_size=8), max_size=2)}
        ),
        "state": st.fixed_dictionaries(
            {},
            optional={
                "created_at": st.none()
                | st.datetimes(allow_imaginary=False).map(
                    lambda moment: moment.replace(year=max(moment.year, 1)).isoformat() + "Z"
                ),
                "retry_count": st.integers(0, 3),
            },
        ),
    },
)


INTS = [True, False, 0, 1, -1, 1.0, "1", None, 2**53, 2**64, -(2**64), [], {}]
FLOATS = [True, 0, -0.0, 0.0, -1e-300, -1, 1e308, 2**53, 2**53 + 1, 2**64, 10**400, "1", [], 1.5]
TEXTS = [None, 1, 1.5, True, [], {}, "", "x", "\u0000", "\\"]
LISTS = [None, "x", [1], [None], ["x", 1], [], ["x"], [True], {"x": 1}]
BAD_IDS = ["a\nb", "a\n", "", "x" * 128, "x" * 129, "\u0661", "a b", "-a", "_a", "é", 1]
ID_LISTS = [*LISTS, *([bad] for bad in BAD_IDS), ["ok", "a\nb"]]
DATES = [
    "2026-01-01T00:00:00Z", "2026-02-29T00:00:00Z", "2024-02-29T00:00:00+23:59",
    "1900-02-29T00:00:00", "2000-02-29T00:00:00", "0000-01-01T00:00:00", "2026-04-31T00:00:00",
    "2026-01-01T24:00:00", "2026-01-01T00:60:00", "2026-01-01T00:00:60", "2026-13-01T00:00:00",
    "2026-01-01T00:00:00.1234567Z", "2026-01-01T00:00:00+24:00", "2026-01-01t00:00:00z",
    "2026-01-01 00:00:00", "2026-01-01", "٢٠٢٦-01-01T00:00:00", "1700000000", 1700000000,
    "2026-01-01T00:00:00-00:00", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59",
]  # fmt: skip
NEAR_MISSES: dict[tuple[str, ...], list[Any]] = {
    ("$schema",): TEXTS,
    ("schema_version",): ["2.0.0 ", "2.0", "1.0.0", None, 2, "v2.0.0"],
    ("task_id",): BAD_IDS + TEXTS,
    ("workstream_id",): BAD_IDS + TEXTS,
    ("name",): TEXTS,
    ("description",): TEXTS,
    ("type",): ["SHELL", "Shell", "bash", "", None, 1, ["shell"]],
    ("status",): ["PENDING", "done", "", None, 0, ["pending"]],
    ("priority",): INTS,
    ("dependencies",): ID_LISTS,
    ("blocks",): ID_LISTS,
    ("resources",): [None, [], "x", {"a": 0}, {"a": -1}, {"a": True}, {"a": 1.0}, {"": 1}],
    ("resources", "gpu"): INTS,
    ("worker_requirements",): [None, [], "x", {"capability": []}],
    ("worker_requirements", "capabilities"): ID_LISTS,
    ("worker_requirements", "min_version"): TEXTS,
    ("execution",): [None, [], "x", {"timeout": 1}],
    ("execution", "command"): TEXTS,
    ("execution", "timeout_seconds"): INTS,
    ("execution", "max_retries"): INTS,
    ("execution", "estimated_seconds"): FLOATS,
    ("context_requirements",): [None, [], {"tokens": 1}],
    ("context_requirements", "max_context_tokens"): INTS,
    ("context_requirements", "required_files"): LISTS,
    ("context_requirements", "exclude_patterns"): LISTS,
    ("validation_rules",): [None, [], {"pre": []}],
    ("validation_rules", "pre_execution"): LISTS,
    ("validation_rules", "post_execution"): LISTS,
    ("state",): [None, [], {"created": None}],
    ("state", "created_at"): DATES + INTS,
    ("state", "retry_count"): INTS,
}
FULL = task_document(
    "a",
    **{
        "$schema": "../../schemas/task.schema.json",
        "description": "d",
        "status": "pending",
        "priority": 1,
        "dependencies": ["b"],
        "blocks": ["c"],
        "resources": {"gpu": 1},
        "worker_requirements": {"capabilities": ["shell"], "min_version": "1"},
        "execution": {"command": "x", "timeout_seconds": 5, "max_retries": 1, "estimated_seconds": 2.5},
        "context_requirements": {"max_context_tokens": 9, "required_files": [], "exclude_patterns": ["x"]},
        "validation_rules": {"pre_execution": ["x"], "post_execution": []},
        "state": {"created_at": "2026-01-01T00:00:00Z", "retry_count": 0},
    },
)  # fmt: skip


def _replaced(document: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A deep copy of ``document`` with ``value`` at ``path``."""
    copy: dict[str, Any] = json.loads(json.dumps(document))
    target = copy
    for key in path[:-1]:
        inner = target.get(key)
        target[key] = inner = dict(inner) if isinstance(inner, dict) else {}
        target = inner
    target[path[-1]] = value
    return copy


def test_every_near_miss_of_a_full_document_is_left_to_the_model_TASK_DEF_002() -> None:
    """One member off by a little, absent, repeated or unknown: never taken wrongly."""
    accepted = 0
    # Without `resources` too: with it, any escape in the file defers to the model.
    bare = {key: value for key, value in FULL.items() if key != "resources"}
    for base in (FULL, bare):
        assert _agrees(json.dumps(base).encode()) is not None
        for path, values in NEAR_MISSES.items():
            for value in values:
                document = _replaced(base, path, value)
                for raw in (json.dumps(document), json.dumps(document, indent=1)):
                    accepted += _agrees(raw.encode()) is not None
                # The same member twice, the near miss first: the last one counts.
                if len(path) == 1:
                    member = f"{json.dumps(path[0])}: {json.dumps(value)}, "
                    _agrees(("{" + member + json.dumps(base)[1:]).encode())
            if len(path) == 1:
                _agrees(json.dumps({k: v for k, v in base.items() if k != path[0]}).encode())
            _agrees(json.dumps(_replaced(base, (*path[:-1], "unknown"), 1)).encode())
    assert accepted > 100  # the valid edges (-0.0, 2**53, "x" * 128, leap days, ...) pass


@settings(max_examples=200)
@given(
    document=plain,
    path=st.sampled_from(sorted(NEAR_MISSES)),
    data=st.data(),
    indent=st.none() | st.just(1),
)
def test_near_misses_of_random_documents_are_left_to_the_model(
    document: dict[str, Any], path: tuple[str, ...], data: st.DataObject, indent: int | None
) -> None:
    value = data.draw(
        st.sampled_from(NEAR_MISSES[path]) | (date_times if path[-1] == "created_at" else junk)
    )
    assert _disagreement(_write(_replaced(document, path, value), indent).encode()) is None


@settings(max_examples=150)
@given(document=plain, indent=st.none() | st.integers(0, 2), ascii_only=st.booleans())
def test_plainly_valid_documents_pass_the_screen(
    document: dict[str, Any], indent: int | None, ascii_only: bool
) -> None:
    """The fast path is the usual path: a task file as people write it is screened in.

    Except `resources` in a file with escapes, where a repeated key could hide.
    """
    raw = json.dumps(document, indent=indent, ensure_ascii=ascii_only).encode()
    screened = _agrees(raw)
    assert screened is not None or (document.get("resources") and b"\\" in raw)


@settings(max_examples=150)
@given(content=st.binary(max_size=200))
@example(content=b"\xef\xbb\xbf" + json.dumps(task_document("a")).encode())
@example(content=json.dumps(task_document("a")).encode() + b"\x00")
def test_random_bytes_never_raise_and_never_pass_wrongly(content: bytes) -> None:
    assert _disagreement(content) is None


def test_repository_tasks_all_pass_the_screen() -> None:
    for path in sorted((REPO / "tasks").glob("*/*.json")):
        assert _agrees(path.read_bytes()) is not None, path


def test_what_only_the_model_decides_is_left_to_it() -> None:
    """Forms the model reads but the screen does not claim to: each goes to the model."""
    deferred = [
        task_document("a", state={"created_at": "2026-01-01 10:00:00"}),
        task_document("a", state={"created_at": 1700000000}),
        task_document("a", priority=2**64),
        task_document("a", execution={"estimated_seconds": 2**60}),
        task_document("a", resources={"a\\b": 1}),
        task_document("a", schema_="x"),
    ]
    for document in deferred:
        raw = json.dumps(document).encode()
        assert screen(raw) is None
        assert _model_view(raw) is not None
    # A repeated key in `resources`: the model checks the value it drops.
    raw = b'{"schema_version": "2.0.0", "task_id": "a", "workstream_id": "w", "name": "n", "type": "shell", "resources": {"r": "x", "r": 1}}'
    assert screen(raw) is None and _model_view(raw) is None
    assert _agrees(raw.replace(b'"x"', b"2")) is None  # the screen cannot tell, so defers


def _shape(schema: Any) -> Any:
    """A JSON Schema without its prose: what constrains documents."""
    if isinstance(schema, dict):
        return {k: _shape(v) for k, v in schema.items() if k not in ("description", "title")}
    if isinstance(schema, list):
        return [_shape(item) for item in schema]
    return schema


def _strictness() -> list[str]:
    models = [
        getattr(model, name)
        for name in model.__all__
        if isinstance(getattr(model, name), type) and issubclass(getattr(model, name), BaseModel)
    ]
    return sorted(
        f"{cls.__name__}: {cls.model_config.get('strict')} {cls.model_config.get('extra')} "
        + " ".join(f"{name}={info.metadata!r}" for name, info in cls.model_fields.items())
        for cls in models
    )


# When this fails, the model changed: update tasks/screening.py to accept no
# more than the new model does, then the fingerprint.
MODEL_FINGERPRINT = "5d4e6d08340da89cfb4309b3791555e37d29d6d0e5cb2f3e50420787f34653e8"


def test_the_model_is_the_one_the_screen_was_written_for() -> None:
    text = json.dumps(
        [_shape(Task.model_json_schema(by_alias=True)), _strictness()], sort_keys=True
    )
    assert hashlib.sha256(text.encode()).hexdigest() == MODEL_FINGERPRINT


def test_the_identifier_rule_is_the_models() -> None:
    assert model.ID_PATTERN == r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
