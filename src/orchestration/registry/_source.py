"""One registry file, ``.psd1`` or YAML, read with positions and its common shape checked.

Stability: internal.

Both registries live in ``capabilities/<name>.psd1`` or ``capabilities/<name>.yaml``
(exactly one of the two), hold ``schema_version`` and one section of named
entries, and report problems located by JSON pointer. What differs, the
fields of an entry, is checked by :mod:`.capabilities` and :mod:`.resources`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import DefinitionError, Problem
from . import psd1

__all__ = ["RegistryFile", "describe", "entries", "pointer_of", "read_registry", "unknown_keys"]

SCHEMA_VERSION = (1, 0)
"""Major and minor schema version of both registries that this engine reads."""

_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)\Z")


@dataclass(frozen=True)
class RegistryFile:
    """A registry as plain data, and where each value of it is.

    Attributes:
        file: the file, relative to the pipeline root.
        data: the document as plain data (any YAML value; a dict for ``.psd1``).
        locate: JSON pointer → 1-based ``(line, column)`` of the value, or of
            its nearest enclosing value when the pointer names nothing.
    """

    file: str
    data: object
    locate: Callable[[str], tuple[int, int]]

    def problem(self, pointer: str, message: str, hint: str, requirement: str) -> Problem:
        """A :class:`Problem` located at ``pointer`` in this file."""
        return Problem(self.file, message, hint, requirement, pointer, *self.locate(pointer))


def describe(value: object) -> str:
    """What kind of value ``value`` is, in the words of a registry's author."""
    if value is None:
        return "empty ($null)"
    if isinstance(value, bool):
        return "a boolean"
    kinds = {dict: "a hashtable", list: "an array", str: "a string", int: "an integer"}
    kinds[float] = "a decimal number"
    return kinds.get(type(value), f"a {type(value).__name__}")


def pointer_of(*parts: str) -> str:
    """The JSON pointer (RFC 6901) of a path of keys."""
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def read_registry(root: Path, stem: str, *, missing: str, both: str, example: str) -> RegistryFile:
    """Read ``capabilities/<stem>.psd1`` or ``capabilities/<stem>.yaml`` under ``root``.

    Args:
        missing: requirement cited when neither file exists.
        both: requirement cited when both exist.
        example: a minimal entry in ``.psd1`` form, for the hint of a missing file.

    Raises:
        DefinitionError: neither or both files exist, or the one that does
            cannot be read or parsed (its syntax problems, located).
    """
    forms = [f"capabilities/{stem}.psd1", f"capabilities/{stem}.yaml"]
    present = [rel for rel in forms if (root / rel).is_file()]
    if len(present) != 1:
        if present:
            message = f"both {forms[0]} and {forms[1]} exist: a registry is declared in one file"
            hint = "merge them into one of the two and delete the other"
            requirement = both
        else:
            message = f"no {stem} registry: neither {forms[0]} nor {forms[1]} exists"
            hint = f"create {forms[0]} declaring {example} (`orchestration init` writes one)"
            requirement = missing
        raise DefinitionError([Problem(forms[0], message, hint, requirement)])
    rel = present[0]
    try:
        raw = (root / rel).read_bytes()
    except OSError as error:
        hint = "check the file's permissions"
        message = f"cannot read {rel}: {error.strerror or error}"
        raise DefinitionError([Problem(rel, message, hint, missing)]) from None
    if rel.endswith(".yaml"):
        from ..lifecycles.source import read_yaml

        source, problems = read_yaml(raw, rel, missing)
        if source is None or problems:
            raise DefinitionError(problems)
        return RegistryFile(rel, source.data, source.position)
    # Windows PowerShell 5.1 saves files as UTF-16 with a byte order mark.
    encoding = "utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as bad:
        message = f"byte {raw[bad.start]:#04x} at offset {bad.start} is not valid {encoding}"
        raise DefinitionError([Problem(rel, message, "save the file as UTF-8", missing)]) from None
    document = psd1.parse(text, rel)
    return RegistryFile(rel, document.value, document.position)


def entries(
    source: RegistryFile, section: str, requirement: str
) -> tuple[dict[str, dict[str, object]], list[Problem]]:
    """The named entries of ``section``, each a hashtable, and the problems of the common shape.

    Checks ``schema_version`` (SCHEMA-VER-001, SCHEMA-VER-003), that the top
    level holds nothing but it and ``section``, and that every entry is a
    hashtable with a non-empty string name. A version newer than this engine
    stops the checks there: the rest of the file may follow rules it does not know.
    """
    data = source.data
    if not isinstance(data, dict):
        message = (
            f"the registry is {describe(data)}, not a hashtable of schema_version and {section}"
        )
        return {}, [
            source.problem("", message, f"write {{schema_version, {section}}}", requirement)
        ]
    problems = list(_version_problems(source, data.get("schema_version")))
    if any(problem.requirement == "SCHEMA-VER-003" for problem in problems):
        return {}, problems
    problems.extend(unknown_keys(source, "", data, ("schema_version", section), requirement))
    found = data.get(section)
    if not isinstance(found, dict):
        what = "is missing" if section not in data else f"is {describe(found)}"
        message = f"{section} {what}: it must map each name to its entry"
        hint = f"write {section} = @{{ name = @{{ ... }} }}"
        problems.append(source.problem(pointer_of(section), message, hint, requirement))
        return {}, problems
    named: dict[str, dict[str, object]] = {}
    for name, entry in found.items():
        pointer = pointer_of(section, str(name))
        if not isinstance(name, str) or not name.strip():
            message = f"entry name {name!r} in {section} is not a non-empty string"
            hint = "name each entry with a word, quoted if it holds spaces or punctuation"
            problems.append(source.problem(pointer, message, hint, requirement))
        elif not isinstance(entry, dict):
            message = f"entry {name!r} is {describe(entry)}, not a hashtable of fields"
            problems.append(source.problem(pointer, message, "write it as @{ ... }", requirement))
        else:
            named[name] = entry
    return named, problems


def unknown_keys(
    source: RegistryFile,
    pointer: str,
    mapping: Mapping[str, object] | Mapping[object, object],
    allowed: Collection[str],
    requirement: str,
) -> Iterator[Problem]:
    """A problem for each key of ``mapping`` not in ``allowed``."""
    for key in mapping:
        if key not in allowed:
            message = f"unknown key {key!r}"
            hint = f"remove it, or use one of: {', '.join(sorted(allowed))}"
            yield source.problem(pointer + pointer_of(str(key)), message, hint, requirement)


def _version_problems(source: RegistryFile, version: object) -> Iterator[Problem]:
    supported = f"{SCHEMA_VERSION[0]}.{SCHEMA_VERSION[1]}.0"
    pointer = "/schema_version"
    if version is None:
        message = "no schema_version: every registry states the schema it is written for"
        hint = f"add schema_version = '{supported}' at the top of the hashtable"
        yield source.problem(pointer, message, hint, "SCHEMA-VER-001")
        return
    match = _VERSION.match(version) if isinstance(version, str) else None
    if match is None:
        message = f"schema_version {version!r} is not a version like '{supported}'"
        yield source.problem(pointer, message, f"write '{supported}'", "SCHEMA-VER-001")
        return
    major, minor = int(match.group(1)), int(match.group(2))
    if (major, minor) > SCHEMA_VERSION:
        message = f"schema_version {version!r} is newer than this engine reads ({supported})"
        hint = "upgrade orchestration to a release that reads this version"
        yield source.problem(pointer, message, hint, "SCHEMA-VER-003")
    elif major != SCHEMA_VERSION[0]:
        message = f"schema_version {version!r} is not supported (this engine reads {supported})"
        yield source.problem(pointer, message, f"rewrite it for '{supported}'", "SCHEMA-VER-001")
