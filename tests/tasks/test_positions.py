"""Locating JSON pointers in text (for error positions)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from orchestration.tasks.positions import locate

leaves = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
documents = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=10,
)


def _paths(value: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _offset(text: str, line: int, column: int) -> int:
    lines = text.split("\n")
    return sum(len(x) + 1 for x in lines[: line - 1]) + column - 1


@given(documents, st.sampled_from([None, 1, 2]), st.data())
def test_locate_finds_the_key_or_value(
    document: object, indent: int | None, data: st.DataObject
) -> None:
    text = json.dumps(document, indent=indent)
    path = data.draw(st.sampled_from(_paths(document)))
    pointer = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)
    line, column = locate(text, pointer)
    at = _offset(text, line, column)
    parent: object = document
    for part in path[:-1]:
        parent = parent[part]  # type: ignore[index]
    if path and isinstance(parent, dict):
        key, end = json.decoder.scanstring(text, at + 1)  # type: ignore[attr-defined]
        assert key == path[-1]
    else:
        target: object = document
        for part in path:
            target = target[part]  # type: ignore[index]
        assert json.JSONDecoder().raw_decode(text, at)[0] == target


def test_missing_member_points_at_its_object() -> None:
    text = '{\n  "a": {\n    "b": 1\n  }\n}'
    assert locate(text, "/a/zzz") == (2, 8)
    assert locate("not json", "/a") == (1, 1)
    assert locate('{"a": [1, 2', "/a/5") == (0, 0)
