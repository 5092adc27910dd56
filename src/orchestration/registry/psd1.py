"""Read and write PowerShell data files (``.psd1``) as plain data (CAP-REG-003).

Stability: provisional.

:func:`parse` accepts only PowerShell's restricted data language: one
top-level hashtable ``@{ key = value }``, arrays ``@( ... )`` and bare comma
lists, single- and double-quoted strings and here-strings with their escape
rules, integers (decimal, ``0x`` hex) and decimals, ``$true``, ``$false``,
``$null``, and ``#`` / ``<# #>`` comments. Nothing is executed or evaluated:
anything else (a command, a variable, a cast, ``$(...)`` inside a string) is
reported as a :class:`~orchestration.errors.DefinitionError` with its line
and column. Nesting deeper than :data:`MAX_DEPTH` levels is reported the same
way, so the reader never exhausts the stack.

Arrays follow PowerShell: ``@( ... )`` unrolls each statement, so
``@(@('a', 'b'))`` is ``['a', 'b']`` and ``@(,@('a', 'b'))`` is
``[['a', 'b']]``; a unary comma makes a one-element array. Hashtable keys are
case-insensitive: a key given twice in any case is an error. Typographic
quotes count as quotes, as in PowerShell.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import NoReturn, TypeAlias

from ..errors import DefinitionError, Problem

__all__ = ["Document", "MAX_DEPTH", "dumps", "parse"]

MAX_DEPTH = 100
"""Deepest nesting that :func:`parse` reads, counting each ``@{``, ``@(`` and unary ``,``."""

_REQUIREMENT = "CAP-REG-003"
_SQ = "'\u2018\u2019\u201a\u201b"
_DQ = '"\u201c\u201d\u201e'
_BLANKS = " \t\f\v\u00a0\u202f\u205f\u3000\ufeff" + "".join(map(chr, range(0x2000, 0x200B)))
_BLANK = f"[{re.escape(_BLANKS)}]"
_GAP_START = frozenset(_BLANKS + "\n#<")
# Group 1 is set when at least one newline was crossed: a newline ends a statement.
_GAP = re.compile(rf"(?:{_BLANK}+|<#.*?#>|#[^\n]*|(\n))*", re.S)
_HERE_HEADER = re.compile(rf"{_BLANK}*\n")
_SINGLE_QUOTED = re.compile(f"[{_SQ}]((?:[^{_SQ}]++|[{_SQ}]{{2}})*+)[{_SQ}]")
_DOUBLED = re.compile(f"[{_SQ}]([{_SQ}])")  # a doubled quote stands for its second half
_QUOTE = re.compile(f"[{_SQ}]")
_RUN_DQ = re.compile(f"[^`${_DQ}]*")
_RUN_HERE = re.compile("[^`$]*")
_SINGLE, _DOUBLE = frozenset(_SQ), frozenset(_DQ)
_NUMBER = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?)")
_NUMBER_END = re.compile(r"[\w.]")
_BARE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_DUMP_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CONSTANT = re.compile(r"\$(true|false|null)(?![\w:])", re.I)
_TOKEN = re.compile(r"""[^\s;,(){}'"=#]+|.""", re.S)
_UNICODE = re.compile(r"u\{([0-9a-fA-F]{1,6})\}")
_ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "e": "\x1b", "f": "\f", "n": "\n", "r": "\r"}
_ESCAPES |= {"t": "\t", "v": "\v"}
_UNESCAPES = {char: f"`{letter}" for letter, char in _ESCAPES.items()}
_CONSTANTS: dict[str, object] = {"true": True, "false": False, "null": None}
_DATA_ONLY = (
    "only data (hashtables, arrays, strings, numbers, $true/$false/$null) "
    "is allowed in a .psd1 file"
)
_KEY = "expected a key (a bare word, a quoted string or an integer) or '}'"
_HINT = "a .psd1 file is data only: quote text ('like this') and write lists as @('a', 'b')"

# Where a value starts (an offset) and, for a container, where its members start.
_At: TypeAlias = "tuple[int, list[_At] | dict[str, _At] | None]"


@dataclass(frozen=True)
class Document:
    """A parsed ``.psd1`` file.

    Attributes:
        value: the top-level hashtable as plain data.
        positions: JSON pointer (RFC 6901) → 1-based ``(line, column)`` where
            the value starts; for a hashtable entry, where its key starts.
    """

    value: dict[str, object]
    positions: dict[str, tuple[int, int]] = field(repr=False)

    def position(self, pointer: str) -> tuple[int, int]:
        """Where ``pointer`` is, or its nearest enclosing value when it does not exist."""
        while pointer not in self.positions:
            pointer = pointer.rpartition("/")[0]
        return self.positions[pointer]


def parse(text: str, file: str) -> Document:
    """Read ``text``, the content of the ``.psd1`` file ``file``, without executing anything.

    Raises:
        DefinitionError: the text is not one hashtable in the data language;
            its single problem names ``file``, line, column and CAP-REG-003.
    """
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    reader = _Reader(text, file)
    value, at = reader.document()
    return Document(value, reader.positions(at))


class _Reader:
    """Recursive descent over the text; each method leaves ``pos`` after what it read.

    A nesting level takes three frames (container, expression, primary).
    """

    def __init__(self, text: str, file: str) -> None:
        self.text, self.file = text, file
        self.pos = 0
        self._starts: list[int] = []

    def line_column(self, offset: int) -> tuple[int, int]:
        if not self._starts:
            self._starts = [0, *(m.end() for m in re.finditer("\n", self.text))]
        line = bisect_right(self._starts, offset)
        return line, offset - self._starts[line - 1] + 1

    def positions(self, root: _At) -> dict[str, tuple[int, int]]:
        found: dict[str, tuple[int, int]] = {}
        stack: list[tuple[str, _At]] = [("", root)]
        while stack:
            pointer, (offset, members) = stack.pop()
            found[pointer] = self.line_column(offset)
            if isinstance(members, dict):
                for key, at in members.items():
                    if "~" in key or "/" in key:
                        key = key.replace("~", "~0").replace("/", "~1")
                    stack.append((f"{pointer}/{key}", at))
            elif members is not None:
                stack.extend((f"{pointer}/{index}", at) for index, at in enumerate(members))
        return found

    def fail(self, why: str, hint: str = _HINT, at: int | None = None, what: str = "") -> NoReturn:
        """Stop at ``at`` (default: here), showing ``what`` (default: the token found there)."""
        offset = self.pos if at is None else at
        if not what:
            token = _TOKEN.match(self.text, offset)
            what = f"unexpected {token.group()[:40]!r}" if token else "unexpected end of file"
        line, column = self.line_column(offset)
        message = f"{what} at line {line}, column {column}: {why}"
        raise DefinitionError([Problem(self.file, message, hint, _REQUIREMENT, "", line, column)])

    def gap(self) -> bool:
        """Skip blanks and comments; whether a newline was among them."""
        text, pos = self.text, self.pos
        if text[pos : pos + 1] not in _GAP_START:
            return False
        if text[pos] == " " and text[pos + 1 : pos + 2] not in _GAP_START:  # the common case
            self.pos += 1
            return False
        match = _GAP.match(text, pos)
        assert match is not None  # the pattern matches the empty string
        self.pos = match.end()
        if text.startswith("<#", self.pos):
            self.fail("it is never closed", "close it with #>", what="a block comment '<#'")
        return match.start(1) >= 0

    def document(self) -> tuple[dict[str, object], _At]:
        self.gap()
        if not self.text.startswith("@{", self.pos):
            self.fail("expected '@{': a .psd1 file holds exactly one hashtable")
        value, at = self.container(1)
        self.gap()
        if self.pos < len(self.text):
            self.fail("expected the end of the file after the top-level hashtable")
        assert isinstance(value, dict)
        return value, at

    def check_depth(self, depth: int) -> None:
        if depth > MAX_DEPTH:
            why = f"hashtables and arrays nest deeper than {MAX_DEPTH} levels"
            self.fail(why, "flatten the data", what="a value")

    def container(self, depth: int) -> tuple[object, _At]:
        """The hashtable ``@{ ... }`` or the array ``@( ... )`` that starts here."""
        text, opened = self.text, self.pos
        table = text[opened + 1] == "{"
        close = "}" if table else ")"
        self.check_depth(depth)
        self.pos += 2
        self.gap()
        items: list[object] = []
        ats: list[_At] = []
        value: dict[str, object] = {}
        members: dict[str, _At] = {}
        first: dict[str, tuple[str, int]] = {}  # folded key → (key as written, its offset)
        while (char := text[self.pos : self.pos + 1]) != close:
            if not char:
                why = f"it is never closed: the file ends where {close!r} was expected"
                what = repr(text[opened : opened + 2])
                self.fail(why, f"add the missing {close!r}", at=opened, what=what)
            if char == ";":
                self.pos += 1
                self.gap()
                continue
            if table:
                key_at = self.pos
                key = self.key()
                if (folded := key.casefold()) in first:
                    written, offset = first[folded]
                    why = f"it repeats the key {written!r} of line {self.line_column(offset)[0]}"
                    why += " (hashtable keys are case-insensitive)"
                    hint = "remove or rename one of the two"
                    self.fail(why, hint, at=key_at, what=f"key {key!r}")
                first[folded] = (key, key_at)
                self.gap()
                if not text.startswith("=", self.pos):
                    self.fail(f"expected '=' after the key {key!r}")
                self.pos += 1
                self.gap()
                value[key], at, newline = self.expression(depth)
                members[key] = (key_at, at[1])
            else:
                item, at, newline = self.expression(depth)
                if isinstance(item, list) and isinstance(at[1], list):
                    items.extend(item)  # PowerShell unrolls each statement into the array
                    ats.extend(at[1])
                else:
                    items.append(item)
                    ats.append(at)
            if not newline and text[self.pos : self.pos + 1] not in ("", close, ";"):
                self.fail(f"expected ',', ';', a new line or {close!r} after the value")
        self.pos += 1
        return (value, (opened, members)) if table else (items, (opened, ats))

    def expression(self, depth: int) -> tuple[object, _At, bool]:
        """A value or a comma list; then the gap after it, and whether it held a newline."""
        start = self.pos
        items: list[object] = []
        ats: list[_At] = []
        while True:
            item, at = self.primary(depth)
            items.append(item)
            ats.append(at)
            newline = self.gap()
            if newline or not self.text.startswith(",", self.pos):
                break
            self.pos += 1
            self.gap()
        if len(items) == 1:
            return item, at, newline
        return items, (start, ats), newline

    def primary(self, depth: int) -> tuple[object, _At]:
        """One value, after any unary commas (each wraps it in a one-element array)."""
        start, wraps = self.pos, 0
        while self.text.startswith(",", self.pos):
            wraps += 1
            self.check_depth(depth + wraps)
            self.pos += 1
            self.gap()
        at: _At
        value: object
        if self.text.startswith(("@{", "@("), self.pos):
            value, at = self.container(depth + wraps + 1)
        else:
            at = (self.pos, None)
            value = self.scalar()
        for _ in range(wraps):
            value, at = [value], (start, [at])
        return value, at

    def scalar(self, expected: str = _DATA_ONLY) -> object:
        text, start = self.text, self.pos
        char = text[start : start + 1]
        if char == "@" and text[start + 1 : start + 2] in ("'", '"'):
            return self.here_string()
        if char in _SINGLE:
            return self.single_quoted()
        if char in _DOUBLE:
            return self.double_quoted()
        if char == "$":
            constant = _CONSTANT.match(text, start)
            if constant is None:
                why = "variables are not allowed in a .psd1 file, only $true, $false and $null"
                self.fail(why, "write the value itself; a .psd1 file is never executed")
            self.pos = constant.end()
            return _CONSTANTS[constant.group(1).lower()]
        number = self.number()
        if number is None:
            self.fail(expected)
        return number

    def key(self) -> str:
        start, bare = self.pos, _BARE_KEY.match(self.text, self.pos)
        if bare is not None:
            self.pos = bare.end()
            return bare.group()
        if not self.text.startswith("$", start):  # $true, $false and $null are no keys
            key = self.scalar(_KEY)
            if isinstance(key, str | int):
                return str(key)
        self.pos = start
        self.fail(_KEY)

    def number(self) -> int | float | None:
        match = _NUMBER.match(self.text, self.pos)
        if match is None or _NUMBER_END.match(self.text, match.end()):
            return None
        token = match.group()
        number: int | float = math.inf
        if len(token) <= 1000:  # int() refuses longer digit strings, and no data needs them
            if "x" in token or "X" in token:
                number = int(token.lstrip("+-")[2:], 16) * (-1 if token[0] == "-" else 1)
            elif "." in token or "e" in token or "E" in token:
                number = float(token)
            else:
                number = int(token)
        if isinstance(number, float) and math.isinf(number):
            self.fail("it is too large for a number", "write it as a string", what=repr(token[:20]))
        self.pos = match.end()
        return number

    def single_quoted(self) -> str:
        match = _SINGLE_QUOTED.match(self.text, self.pos)
        if match is None:
            self.fail("it is never closed", "add the closing quote", what="a string")
        self.pos = match.end()
        content = match.group(1)
        return _DOUBLED.sub(lambda pair: pair[1], content) if _QUOTE.search(content) else content

    def double_quoted(self) -> str:
        start = self.pos
        value, end = self.expand(start + 1, len(self.text), _RUN_DQ)
        if end >= len(self.text):
            self.fail("it is never closed", "add the closing quote", start, "a string")
        self.pos = end + 1
        return value

    def here_string(self) -> str:
        text, start = self.text, self.pos
        quote = text[start + 1]
        header = _HERE_HEADER.match(text, start + 2)
        if header is None:
            why = f"a here-string must start with @{quote} alone at the end of its line"
            hint = f"put the text on the lines after @{quote}"
            self.fail(why, hint, start, f"'@{quote}'")
        newline = header.end() - 1
        end = text.find(f"\n{quote}@", newline)
        if end < 0:
            why = f"it is never closed by {quote}@ at the start of a line"
            self.fail(why, f"add {quote}@ at the start of a line", start, "a here-string")
        self.pos = end + 3
        if end == newline:
            return ""
        if quote == "'":
            return text[newline + 1 : end]
        return self.expand(newline + 1, end, _RUN_HERE)[0]

    def expand(self, pos: int, end: int, run_of: re.Pattern[str]) -> tuple[str, int]:
        """Unescape double-quoted text from ``pos`` to its closing quote (or ``end``)."""
        text, parts = self.text, []
        while True:
            run = run_of.match(text, pos, end)
            assert run is not None  # the pattern matches the empty string
            parts.append(run.group())
            pos = run.end()
            if pos >= end:
                return "".join(parts), pos
            char, escaped = text[pos], text[pos + 1 : pos + 2] if pos + 1 < end else ""
            if char in _DOUBLE and escaped in _DOUBLE and escaped:  # "" is one quote
                parts.append(escaped)
            elif char in _DOUBLE:
                return "".join(parts), pos
            elif char == "$" and escaped and (escaped.isalnum() or escaped in "_({?^$:"):
                what = "run a subexpression" if escaped == "(" else "expand a variable"
                why = f"it would {what} inside a double-quoted string"
                hint = "escape the dollar sign as `$, or use a single-quoted string"
                self.fail(why, hint, pos, "unexpected '$('" if escaped == "(" else "")
            elif char == "$":
                parts.append("$")
                pos -= 1
            elif not escaped:  # a backtick that ends the text
                return "".join(parts) + ("`" if end < len(text) else ""), end
            elif (code := _UNICODE.match(text, pos + 1, end)) and int(code[1], 16) <= 0x10FFFF:
                parts.append(chr(int(code[1], 16)))
                pos = code.end() - 2
            elif text.startswith("u{", pos + 1):
                self.fail("expected `u{X} with 1 to 6 hex digits up to 10FFFF", at=pos)
            else:
                parts.append(_ESCAPES.get(escaped, escaped))
            pos += 2


def dumps(value: object) -> str:
    """``value`` as ``.psd1`` text that :func:`parse` reads back equal (and PowerShell reads too).

    Raises:
        TypeError: a value is not a dict with str keys, list, str, int, float,
            bool or None.
        ValueError: a float is not finite, two keys of one dict differ only in
            case, or the data nests deeper than :data:`MAX_DEPTH`.
    """
    if not isinstance(value, dict):
        msg = f"the top level of a .psd1 file is a hashtable, not {type(value).__name__}"
        raise TypeError(msg)
    return _dump(value, 1, "") + "\n"


def _dump(value: object, depth: int, indent: str) -> str:
    if isinstance(value, dict | list) and depth > MAX_DEPTH:
        msg = f"data nests deeper than {MAX_DEPTH} levels"
        raise ValueError(msg)
    inner = indent + "    "
    if isinstance(value, dict):
        if not value:
            return "@{}"
        lines, folded = [], set()
        for key, item in value.items():
            if not isinstance(key, str):
                msg = f"hashtable keys must be strings, not {type(key).__name__}"
                raise TypeError(msg)
            if key.casefold() in folded:
                msg = f"keys differing only in case ({key!r}) are one key in PowerShell"
                raise ValueError(msg)
            folded.add(key.casefold())
            name = key if _DUMP_BARE.match(key) else _string(key)
            lines.append(f"{inner}{name} = {_dump(item, depth + 1, inner)}")
        return "@{\n" + "\n".join(lines) + f"\n{indent}}}"
    if isinstance(value, list):
        # @( ... ) unrolls a lone array: a unary comma keeps it one element (and nests once more).
        lead = "," if len(value) == 1 and isinstance(value[0], list) else ""
        items = [_dump(item, depth + 1 + len(lead), inner) for item in value]
        if any(isinstance(item, dict | list) for item in value):
            return f"@(\n{inner}{lead}" + f",\n{inner}".join(items) + f"\n{indent})"
        return f"@({lead}" + ", ".join(items) + ")"
    if value is None or isinstance(value, bool):
        return {None: "$null", True: "$true", False: "$false"}[value]
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, float):
        msg = f"{value!r} has no .psd1 form: only finite numbers do"
        raise ValueError(msg)
    msg = f"{type(value).__name__} has no .psd1 form"
    raise TypeError(msg)


def _string(value: str) -> str:
    if not any(ord(char) < 0x20 or char == "\x7f" for char in value):
        return "'" + "".join(char * 2 if char in _SINGLE else char for char in value) + "'"
    parts = []
    for char in value:
        if char in "`$" or char in _DOUBLE:
            parts.append("`" + char)
        elif ord(char) < 0x20 or char == "\x7f":
            parts.append(_UNESCAPES.get(char, f"`u{{{ord(char):X}}}"))
        else:
            parts.append(char)
    return '"' + "".join(parts) + '"'
