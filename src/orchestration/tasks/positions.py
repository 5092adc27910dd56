"""Find where a JSON pointer lives in a JSON text, as line and column.

Stability: internal.

Used only on the error path: validation reports a JSON pointer, and a person
wants the line to jump to. The scanner follows the pointer through the text
without building the document, and gives up quietly (``(0, 0)``) on anything
it does not understand, so that a diagnostic never raises.
"""

from __future__ import annotations

import json.decoder
import re
from collections.abc import Callable

__all__ = ["line_column", "locate"]

# The stdlib's string scanner (C speed), not in typeshed: (text, index after quote) → (value, end).
scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_WS = re.compile(r"[ \t\n\r]*")
_SCALAR = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null")


class _Lost(Exception):
    """The text is not JSON where the scanner looked."""


def line_column(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of ``index`` in ``text``."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def locate(text: str, pointer: str) -> tuple[int, int]:
    """Line and column of the value (or member key) that ``pointer`` names.

    For a pointer to an object member the key's position is returned, which is
    where a person looks; for a member that is missing, the position of the
    enclosing object. ``(0, 0)`` when the text cannot be followed.
    """
    segments = [s.replace("~1", "/").replace("~0", "~") for s in pointer.split("/")[1:]]
    try:
        return line_column(text, _follow(text, _skip_ws(text, 0), segments))
    except (_Lost, IndexError, ValueError, RecursionError):
        return (0, 0)


def _skip_ws(text: str, index: int) -> int:
    match = _WS.match(text, index)
    assert match is not None  # the pattern matches the empty string
    return match.end()


def _follow(text: str, index: int, segments: list[str]) -> int:
    """Index of the target: descend through ``segments`` starting at a value."""
    for depth, segment in enumerate(segments):
        last = depth == len(segments) - 1
        char = text[index]
        if char == "{":
            found = _member(text, index, segment)
            if found is None:
                return index
            key_at, index = found
            if last:
                return key_at
        elif char == "[":
            index = _element(text, index, int(segment))
        else:
            return index
    return index


def _member(text: str, index: int, name: str) -> tuple[int, int] | None:
    """``(key index, value index)`` of member ``name`` of the object at ``index``."""
    index = _skip_ws(text, index + 1)
    while text[index] != "}":
        if text[index] != '"':
            raise _Lost
        key_at = index
        key, index = scanstring(text, index + 1)
        index = _skip_ws(text, index)
        if text[index] != ":":
            raise _Lost
        index = _skip_ws(text, index + 1)
        if key == name:
            return key_at, index
        index = _skip_ws(text, _skip_value(text, index))
        if text[index] == ",":
            index = _skip_ws(text, index + 1)
    return None


def _element(text: str, index: int, position: int) -> int:
    """Index of element ``position`` of the array at ``index``."""
    index = _skip_ws(text, index + 1)
    for _ in range(position):
        index = _skip_ws(text, _skip_value(text, index))
        if text[index] != ",":
            raise _Lost
        index = _skip_ws(text, index + 1)
    return index


def _skip_value(text: str, index: int) -> int:
    """Index just past the value starting at ``index``."""
    char = text[index]
    if char == '"':
        return scanstring(text, index + 1)[1]
    if char in "{[":
        closing = "}" if char == "{" else "]"
        index = _skip_ws(text, index + 1)
        while text[index] != closing:
            if char == "{":
                index = _skip_ws(text, scanstring(text, index + 1)[1])
                if text[index] != ":":
                    raise _Lost
                index = _skip_ws(text, index + 1)
            index = _skip_ws(text, _skip_value(text, index))
            if text[index] == ",":
                index = _skip_ws(text, index + 1)
            elif text[index] != closing:
                raise _Lost
        return index + 1
    match = _SCALAR.match(text, index)
    if match is None:
        raise _Lost
    return match.end()
