"""The .psd1 reader accepts only PowerShell's data language, located on error (CAP-REG-003)."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestration.errors import DefinitionError
from orchestration.registry.psd1 import MAX_DEPTH, Document, dumps, parse

from conftest import REPO


def problem_of(text: str) -> tuple[int, int, str]:
    """Line, column and message of the one problem ``text`` has."""
    with pytest.raises(DefinitionError) as caught:
        parse(text, "capabilities/registry.psd1")
    (problem,) = caught.value.problems
    assert problem.file == "capabilities/registry.psd1"
    assert problem.requirement == "CAP-REG-003"
    assert problem.hint
    assert f"at line {problem.line}, column {problem.column}" in problem.message
    return problem.line, problem.column, problem.message


def typed(value: Any) -> Any:
    """``value`` with the type of every scalar spelled out (``True == 1`` in Python)."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value).__name__, value)


@pytest.mark.parametrize(
    "path",
    [
        REPO / "capabilities" / "registry.psd1",
        REPO / "capabilities" / "resources.psd1",
        REPO / "src/orchestration/scaffold/files/capabilities/registry.psd1",
        REPO / "src/orchestration/scaffold/files/capabilities/resources.psd1",
    ],
    ids=lambda path: path.relative_to(REPO).as_posix(),
)
def test_CAP_REG_003_shipped_files_parse(path: Any) -> None:
    document = parse(path.read_text(encoding="utf-8"), path.name)
    assert document.value["schema_version"] == "1.0.0"


def test_CAP_REG_003_shipped_registry_values_and_positions() -> None:
    text = (REPO / "capabilities" / "registry.psd1").read_text(encoding="utf-8")
    document = parse(text, "registry.psd1")
    capabilities: Any = document.value["capabilities"]
    assert capabilities["shell"]["local"] is True
    assert capabilities["aider"]["local"] is False
    lines = text.splitlines()
    line, column = document.positions["/capabilities/shell/local"]
    assert lines[line - 1][column - 1 :].startswith("local = $true")
    assert document.positions[""] == (3, 1)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("'plain'", "plain"),
        ("'it''s'", "it's"),
        ("''", ""),
        ("\u2018curly\u2019\u2019s\u2019", "curly\u2019s"),
        ("'a\nb'", "a\nb"),
        ('"tab`there"', "tab`there".replace("`t", "\t")),
        ('"`n`t`r`0`a`b`f`v`e"', "\n\t\r\0\a\b\f\v\x1b"),
        ('"`"q`" ""q"" `` `$ `x"', '"q" "q" ` $ x'),
        ('"`u{1F600}`u{41}"', "\U0001f600A"),
        ('"cost: $ 5 and $"', "cost: $ 5 and $"),
        ('"it\'s"', "it's"),
        ("@'\nline 1\n  'quoted' $x `n\n'@", "line 1\n  'quoted' $x `n"),
        ("@'\n'@", ""),
        ('@"\nsay "hi"`t`$x\n"@', 'say "hi"\t$x'),
        ('@"  \n\n"@', ""),
        ("42", 42),
        ("-7", -7),
        ("+7", 7),
        ("0x1F", 31),
        ("-0x10", -16),
        ("1.5", 1.5),
        ("-2.5e-3", -0.0025),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("$true", True),
        ("$FALSE", False),
        ("$Null", None),
        ("@()", []),
        ("@( )", []),
        ("@(1, 'a', $null)", [1, "a", None]),
        ("@(\n  1\n  2, 3\n  4; 5\n)", [1, 2, 3, 4, 5]),
        ("@(1,\n 2)", [1, 2]),
        ("'a', 'b'", ["a", "b"]),
        ("1,\n2", [1, 2]),
        (",1", [1]),
        ("@(@(1, 2), @(3))", [[1, 2], [3]]),
        ("@(@(1, 2))", [1, 2]),
        ("@(,@(1, 2))", [[1, 2]]),
        ("@(@(1, 2)\n@(3, 4))", [1, 2, 3, 4]),
        ("@(1, ,2)", [1, [2]]),
        ("@{}", {}),
        ("@{ a = 1; b = @{ c = 'd' } }", {"a": 1, "b": {"c": "d"}}),
        (
            "@{\n  'quoted key' = 1\n  \"double\" = 2\n  7 = 3\n  with-dash = 4\n}",
            {"quoted key": 1, "double": 2, "7": 3, "with-dash": 4},
        ),
        ("@{ a = 1 <# inline #> ; b = 2 # trailing\n}", {"a": 1, "b": 2}),
        ("@{ a =\n 1 }", {"a": 1}),
        ("@{ ; a = 1 ;; }", {"a": 1}),
    ],
)
def test_CAP_REG_003_constructs_parse_to_their_values(source: str, expected: Any) -> None:
    document = parse(f"@{{ value = {source}\n}}", "f.psd1")
    assert typed(document.value["value"]) == typed(expected)


def test_CAP_REG_003_comments_bom_and_crlf_around_the_hashtable() -> None:
    text = "\ufeff# header\r\n<# block\r\ncomment #>\r\n@{\r\n  a = 'x'\r\n}\r\n# end\r\n"
    document = parse(text, "f.psd1")
    assert document.value == {"a": "x"}
    assert document.positions["/a"] == (5, 3)


def test_CAP_REG_003_positions_of_nested_values() -> None:
    text = "@{\n  list = @(\n    'x'\n    @{ k = 1 }\n  )\n  'a/b~c' = 'a', 'b'\n}\n"
    document = parse(text, "f.psd1")
    assert document.positions["/list"] == (2, 3)
    assert document.positions["/list/0"] == (3, 5)
    assert document.positions["/list/1"] == (4, 5)
    assert document.positions["/list/1/k"] == (4, 8)
    assert document.positions["/a~1b~0c"] == (6, 3)
    assert document.positions["/a~1b~0c/1"] == (6, 18)
    assert document.position("/list/1/missing/deeper") == (4, 5)


def test_CAP_REG_003_unrolled_arrays_keep_the_positions_of_their_items() -> None:
    document = parse("@{ a = @(@(1, 2)\n@(3)) }", "f.psd1")
    assert document.value == {"a": [1, 2, 3]}
    assert document.positions["/a/1"] == (1, 15)
    assert document.positions["/a/2"] == (2, 3)


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ("@{\n  a = 1\n  when = Get-Date\n}", 3, 10, "unexpected 'Get-Date'"),
        ("@{ a = $env:X }", 1, 8, "variables are not allowed"),
        ("@{ a = $x }", 1, 8, "unexpected '$x'"),
        ("@{ a = $true1 }", 1, 8, "variables are not allowed"),
        ("@{ a = [int]5 }", 1, 8, "unexpected '[int]5'"),
        ("@{ a = 'x' + 'y' }", 1, 12, "unexpected '+'"),
        ("@{ a = (1) }", 1, 8, "unexpected '('"),
        ("@{ a = bare }", 1, 8, "only data"),
        ('@{ a = "x $name" }', 1, 11, "expand a variable"),
        ('@{ a = "x $(Get-Date)" }', 1, 11, "run a subexpression"),
        ('@{ a = "${x}" }', 1, 9, "expand a variable"),
        ('@{\n  a = @"\n$x\n"@\n}', 3, 1, "expand a variable"),
        ("@{ a = 1", 1, 1, "never closed"),
        ("@{ a = @(1, 2 }", 1, 15, "unexpected '}'"),
        ("@{ a = @(1, 2", 1, 8, "never closed"),
        ("@{ a = 'open }", 1, 8, "never closed"),
        ('@{ a = "open }', 1, 8, "never closed"),
        ('@{ a = "ends with backtick`" }', 1, 8, "never closed"),
        ("@{ a = @'\ntext\n}", 1, 8, "never closed"),
        ("@{ a = @' text\n'@ }", 1, 8, "here-string must start"),
        ("@{ a = 1 } trailing", 1, 12, "end of the file"),
        ("@{ a = 1 }\n@{ b = 2 }", 2, 1, "end of the file"),
        ("@{ a = 1\n  A = 2 }", 2, 3, "repeats the key 'a' of line 1"),
        ("@{ Key = 1; 'KEY' = 2 }", 1, 13, "case-insensitive"),
        ("@{ a = 1 b = 2 }", 1, 10, "expected ',', ';', a new line or '}'"),
        ("@{ a 1 }", 1, 6, "expected '=' after the key 'a'"),
        ("@{ = 1 }", 1, 4, "expected a key"),
        ("@{ $true = 1 }", 1, 4, "expected a key"),
        ("@{ 1.5 = 1 }", 1, 4, "expected a key"),
        ("@{ a = 1kb }", 1, 8, "unexpected '1kb'"),
        ("@{ a = 1.2.3 }", 1, 8, "unexpected '1.2.3'"),
        ("@{ a = 1e999 }", 1, 8, "too large"),
        ("@{ a = 0x" + "f" * 1000 + " }", 1, 8, "too large"),
        ("@{ a = " + "9" * 5000 + " }", 1, 8, "too large"),
        ("@{ a = 1 <# open", 1, 10, "block comment"),
        ('@{ a = "`u{110000}" }', 1, 9, "`u{X}"),
        ("@{ a = 'x',\n}", 2, 1, "unexpected '}'"),
        ("@{ a = 1\n, 2 }", 2, 1, "expected a key"),
        ("@{ a = }", 1, 8, "unexpected '}'"),
        ("@{ a = @x }", 1, 8, "unexpected '@x'"),
        ("@(1, 2)", 1, 1, "exactly one hashtable"),
        ("", 1, 1, "unexpected end of file"),
        ("# only a comment\n", 2, 1, "exactly one hashtable"),
        ("Get-Process", 1, 1, "exactly one hashtable"),
    ],
)
def test_CAP_REG_003_forbidden_constructs_are_rejected_with_position(
    text: str, line: int, column: int, fragment: str
) -> None:
    found = problem_of(text)
    assert found[:2] == (line, column), found
    assert fragment in found[2]


def test_CAP_REG_003_command_is_rejected_with_position() -> None:
    assert problem_of("@{\n  a = 1\n  b = Get-Date\n}") == (
        3,
        7,
        "unexpected 'Get-Date' at line 3, column 7: only data (hashtables, arrays, strings, "
        "numbers, $true/$false/$null) is allowed in a .psd1 file",
    )


def test_CAP_REG_003_nesting_up_to_the_limit_is_read() -> None:
    text = "@{ a = " * MAX_DEPTH + "1" + " }" * MAX_DEPTH
    value: Any = parse(text, "f.psd1").value
    for _ in range(MAX_DEPTH - 1):
        value = value["a"]
    assert value == {"a": 1}


@pytest.mark.parametrize("opening", ["@(", "@{ a = ", ","])
def test_CAP_REG_003_nesting_beyond_the_limit_is_a_located_problem(opening: str) -> None:
    text = "@{ a = " + opening * 100_000 + "1"
    line, column, message = problem_of(text)
    assert line == 1
    assert 1 < column < 8 + len(opening) * (MAX_DEPTH + 1)
    assert f"deeper than {MAX_DEPTH} levels" in message


def test_CAP_REG_003_parsing_time_grows_linearly_with_the_entries() -> None:
    """10,000 entries take about ten times as long as 1,000: no quadratic step (timing-robust)."""
    entry = "  cap{0} = @{{ description = 'Capability {0}'; local = $true; version = '1.0.{0}' }}\n"

    def seconds(count: int) -> float:
        text = "@{\n capabilities = @{\n" + "".join(map(entry.format, range(count))) + " }\n}\n"
        best = float("inf")
        for _ in range(2):
            started = time.perf_counter()
            document = parse(text, "f.psd1")
            best = min(best, time.perf_counter() - started)
        assert len(document.value["capabilities"]) == count  # type: ignore[arg-type]
        return best

    small, large = seconds(1_000), seconds(10_000)
    assert large < 30 * small  # linear: ~10x; quadratic would be ~100x


# -- round trip ---------------------------------------------------------------------

# PowerShell's quotes, escapes and separators, control characters, and letters of several scripts.
SPECIAL = "'\"`$@#<>(){};,=\n\r\t \u2018\u2019\u201c\u201d\x00\x1b\x7f\u0085\u2028-/~.aZ_1ßİé中😀"
texts = st.text(SPECIAL, max_size=10)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
keys = texts | st.sampled_from(["a", "Key", "schema_version", "with-dash", "_x1", "1"])


def first_of_each_case(table: dict[str, Any]) -> dict[str, Any]:
    """``table`` without keys that equal an earlier one case-insensitively."""
    kept: dict[str, Any] = {}
    for key, item in table.items():
        if all(key.casefold() != other.casefold() for other in kept):
            kept[key] = item
    return kept


def tables(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts whose keys differ case-insensitively, as PowerShell hashtables' do."""
    return st.dictionaries(keys, children, max_size=4).map(first_of_each_case)


data = st.recursive(
    scalars, lambda children: st.lists(children, max_size=4) | tables(children), max_leaves=8
)


@settings(max_examples=200, deadline=None)
@given(tables(data))
def test_CAP_REG_003_dumps_then_parse_gives_the_data_back(value: dict[str, Any]) -> None:
    text = dumps(value)
    assert typed(parse(text, "f.psd1").value) == typed(value)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ({"a": math.inf}, ValueError),
        ({"a": math.nan}, ValueError),
        ({"Key": 1, "KEY": 2}, ValueError),
        ({1: "a"}, TypeError),
        ({"a": (1, 2)}, TypeError),
        ({"a": object()}, TypeError),
        (["not", "a", "table"], TypeError),
    ],
)
def test_dumps_refuses_what_has_no_psd1_form(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        dumps(value)


def test_dumps_refuses_data_nested_beyond_what_parse_reads() -> None:
    value: Any = []
    for _ in range(MAX_DEPTH):
        value = [value]
    with pytest.raises(ValueError, match="deeper"):
        dumps({"a": value})


def test_dumps_writes_readable_psd1() -> None:
    text = dumps({"schema_version": "1.0.0", "odd key": [1, "it's"], "nested": {"x": None}})
    assert text == (
        "@{\n"
        "    schema_version = '1.0.0'\n"
        "    'odd key' = @(1, 'it''s')\n"
        "    nested = @{\n"
        "        x = $null\n"
        "    }\n"
        "}\n"
    )


# -- robustness ----------------------------------------------------------------------

TOKENS = [
    "@{", "}", "@(", ")", "=", ";", ",", "\n", " ", "\r\n", "\t", "key", "'a'", "'", '"',
    "''", '""', "`", "`n", "`u{", "$", "$true", "$null", "$x", "$(", "<#", "#>", "#",
    "@'\n", "\n'@", '@"\n', '\n"@', "1", "-", "0x1F", "1.5e3", "1e999", "[int]", "Get-Date",
    "\ufeff", "\u2018", "\u201c", "@", "{", "(", ".",
]  # fmt: skip


def check_parse(text: str) -> Document | None:
    """Parse ``text``: a document, or a located CAP-REG-003 problem; nothing else."""
    try:
        document = parse(text, "f.psd1")
    except DefinitionError as error:
        (problem,) = error.problems
        assert problem.requirement == "CAP-REG-003"
        assert problem.line >= 1
        assert problem.column >= 1
        return None
    assert "" in document.positions
    return document


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_CAP_REG_003_random_text_parses_or_is_a_located_problem(text: str) -> None:
    check_parse(text)


@settings(max_examples=300, deadline=None)
@given(st.booleans(), st.lists(st.sampled_from(TOKENS), max_size=40))
def test_CAP_REG_003_random_tokens_parse_or_are_a_located_problem(
    opened: bool, tokens: list[str]
) -> None:
    document = check_parse(("@{ " if opened else "") + "".join(tokens))
    if document is not None:  # whatever parses, dumps writes back the same
        assert typed(parse(dumps(document.value), "f.psd1").value) == typed(document.value)
