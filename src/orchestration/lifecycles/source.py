"""A YAML file read with its positions: the document and where each value is.

Stability: internal.

PyYAML's ``compose`` keeps every node's start mark; constructing the document
from that same node tree (what ``yaml.safe_load`` does inside) gives the data
and the positions in one parse. A JSON pointer into the data then maps back to
a line and column, so every problem a loader reports names the line to fix.
PyYAML keeps the last of two equal keys silently; :func:`read_yaml` reports
them instead, since a state declared twice would otherwise vanish.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from ..errors import Problem

__all__ = ["YamlSource", "pointer_of", "read_yaml"]

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class YamlSource:
    """One parsed YAML document.

    Attributes:
        file: the file, relative to the pipeline root when possible.
        data: the document as plain Python data (``None`` for an empty file).
        node: the composed node tree the data was built from.
    """

    file: str
    data: Any
    node: yaml.Node | None

    def position(self, pointer: str) -> tuple[int, int]:
        """1-based line and column of the value ``pointer`` names, ``(0, 0)`` if unknown.

        For an object member the key's position is returned (where a person
        looks); for a member that does not exist, the enclosing object's.
        """
        node = self.node
        if node is None:
            return (0, 0)
        mark = node.start_mark
        for segment in _segments(pointer):
            if isinstance(node, yaml.MappingNode):
                found = _member(node, segment)
                if found is None:
                    break
                key, node = found
                mark = key.start_mark
            elif isinstance(node, yaml.SequenceNode) and segment.isdigit():
                index = int(segment)
                if index >= len(node.value):
                    break
                node = node.value[index]
                mark = node.start_mark
            else:
                break
        return mark.line + 1, mark.column + 1

    def problem(self, message: str, hint: str, requirement: str, pointer: str = "") -> Problem:
        """A :class:`Problem` located at ``pointer`` in this file."""
        return Problem(self.file, message, hint, requirement, pointer, *self.position(pointer))


def pointer_of(*parts: str | int) -> str:
    """The JSON pointer (RFC 6901) of a path of keys and indexes."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def read_yaml(raw: bytes, file: str, requirement: str) -> tuple[YamlSource | None, list[Problem]]:
    """Parse ``raw`` as one YAML document, keeping positions.

    Returns:
        The source, or ``None`` when the text is not YAML; and the problems
        found (syntax, encoding, duplicate keys), each with ``requirement``.
    """
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as bad:
        before = raw[: bad.start].decode("utf-8", "replace")
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        problem = Problem(
            file,
            f"byte {raw[bad.start]:#04x} at offset {bad.start} is not valid UTF-8",
            "save the file as UTF-8",
            requirement,
            line=line,
            column=column,
        )
        return None, [problem]
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as bad:
        mark = bad.problem_mark or bad.context_mark
        context = f" ({bad.context})" if bad.context else ""
        problem = Problem(
            file,
            f"invalid YAML: {bad.problem}{context}",
            "fix the YAML syntax at that position (indentation, a missing quote, bracket or colon)",
            requirement,
            line=mark.line + 1 if mark else 0,
            column=mark.column + 1 if mark else 0,
        )
        return None, [problem]
    except yaml.YAMLError as bad:
        return None, [Problem(file, f"invalid YAML: {bad}", "fix the YAML syntax", requirement)]
    finally:
        loader.dispose()
    source = YamlSource(file, data, node)
    return source, list(_duplicate_keys(source, requirement))


def _segments(pointer: str) -> list[str]:
    return [s.replace("~1", "/").replace("~0", "~") for s in pointer.split("/")[1:]]


def _member(node: yaml.MappingNode, name: str) -> tuple[yaml.Node, yaml.Node] | None:
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value == name:
            return key, value
    return None


def _duplicate_keys(source: YamlSource, requirement: str) -> Iterator[Problem]:
    """Keys given twice in one mapping: PyYAML would keep the last one silently."""
    stack: list[tuple[yaml.Node, str]] = [(source.node, "")] if source.node else []
    while stack:
        node, pointer = stack.pop()
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode):
                    continue
                if key.value in first:
                    yield Problem(
                        source.file,
                        f"key {key.value!r} is given twice in one mapping (first on line "
                        f"{first[key.value]})",
                        "remove or rename one of the two; YAML keeps only the last",
                        requirement,
                        pointer + pointer_of(key.value),
                        key.start_mark.line + 1,
                        key.start_mark.column + 1,
                    )
                else:
                    first[key.value] = key.start_mark.line + 1
                stack.append((value, pointer + pointer_of(key.value)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, f"{pointer}/{index}") for index, item in enumerate(node.value))
