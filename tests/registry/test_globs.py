"""Path-lock globs: matching, and overlap whenever some path could match both (CONC-REG-003)."""

from __future__ import annotations

import itertools
import re
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestration.registry import glob_matches, globs_overlap


def reference(pattern: str) -> re.Pattern[str]:
    """The glob as a regular expression, written from the documented rules."""
    out, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            stars = len(pattern[index:]) - len(pattern[index:].lstrip("*"))
            at_start = index == 0 or pattern[index - 1] == "/"
            if stars == 1:
                out.append("[^/]*")
            elif at_start and pattern[index + stars : index + stars + 1] == "/":
                out.append("(?:.*/)?")
                stars += 1
            else:
                out.append(".*")
            index += stars
        elif char == "?":
            out.append("[^/]")
            index += 1
        elif char == "[" and (close := _closing(pattern, index)) > 0:
            body = pattern[index + 1 : close]
            negated = body[:1] in ("!", "^")
            body = body[1:] if negated else body
            parts, position = [], 0
            while position < len(body):
                if position + 2 < len(body) and body[position + 1] == "-":
                    low, high = body[position], body[position + 2]
                    if low <= high:
                        parts.append(f"{re.escape(low)}-{re.escape(high)}")
                    position += 3
                else:
                    parts.append(re.escape(body[position]))
                    position += 1
            members = "".join(parts)
            if negated:
                out.append(f"[^/{members}]")
            else:
                out.append(f"(?!/)[{members}]" if members else "(?!)")
            index = close + 1
        else:
            out.append(re.escape(char))
            index += 1
    return re.compile("".join(out), re.S)


def _closing(pattern: str, start: int) -> int:
    """Index of the ``]`` closing the class at ``start``, or -1."""
    first = start + 1 + (pattern[start + 1 : start + 2] in ("!", "^"))
    found = pattern.find("]", first + 1)
    return found


PIECES = ["a", "b", ".", "/", "*", "**", "**/", "?", "[ab]", "[!a]", "[a-b]", "[^/]", "[b-a]", "["]
globs = st.lists(st.sampled_from(PIECES), max_size=7).map("".join)
paths = st.text("ab/.", max_size=12)


@st.composite
def generalized(draw: st.DrawFn, path: str) -> str:
    """A glob made from ``path`` by replacing parts of it with wildcards (often matching it)."""
    out = []
    for char in path:
        choice = draw(st.integers(0, 5))
        if choice == 1 and char != "/":
            out.append("?")
        elif choice == 2:
            out.append("*" + char)
        elif choice == 3:
            out.append(char + "**")
        elif choice == 4 and char == "/":
            out.append("/**/")
        else:
            out.append(char)
    return "".join(out)


@st.composite
def two_globs_and_a_path(draw: st.DrawFn) -> tuple[str, str, str]:
    path = draw(paths)
    a = draw(generalized(path) | globs)
    b = draw(generalized(path) | globs)
    return a, b, path


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("docs/**", "docs/ops/x.md", True),
        ("src/*.py", "tests/*.py", False),
        ("**/x", "a/**", True),
        ("a/*", "a/b/c", False),
        ("src/orchestration/state/**", "src/orchestration/planning/**", False),
        ("src/**", "src/orchestration/state/**", True),
        ("**/*.md", "README.md", True),
        ("docs/**", "README.md", False),
        ("*.py", "src/x.py", False),
        ("**", "anything/at/all", True),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("a/?", "a/bc", False),
        ("a/[xy]", "a/z", True),  # classes are treated as any one character: when unsure, True
        ("a/[xy]", "a/zz", False),
        ("*", "", True),
        ("a*", "*b", True),
        ("a/*/c", "*/b/*", True),
        ("x/*", "x/", True),
    ],
)
def test_CONC_REG_003_globs_overlap_hand_cases(a: str, b: str, expected: bool) -> None:
    assert globs_overlap(a, b) is expected
    assert globs_overlap(b, a) is expected


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("docs/**", "docs/ops/x.md", True),
        ("docs/**", "docs", False),
        ("**/x.py", "x.py", True),
        ("**/x.py", "a/b/x.py", True),
        ("**/x.py", "a/bx.py", False),
        ("src/*.py", "src/a.py", True),
        ("src/*.py", "src/a/b.py", False),
        ("a/**/b", "a/b", True),
        ("a**", "ab/c", True),
        ("?", "/", False),
        ("[ab]", "b", True),
        ("[!ab]", "c", True),
        ("[!ab]", "a", False),
        ("[!a]", "/", False),
        ("[a-c]x", "bx", True),
        ("[]]", "]", True),
        ("[", "[", True),
        ("a[b", "a[b", True),
        ("", "", True),
        ("", "a", False),
    ],
)
def test_glob_matches_hand_cases(pattern: str, path: str, expected: bool) -> None:
    assert glob_matches(pattern, path) is expected


@settings(max_examples=200, deadline=None)
@given(globs, paths)
def test_glob_matches_agrees_with_a_regex_translation(pattern: str, path: str) -> None:
    assert glob_matches(pattern, path) == bool(reference(pattern).fullmatch(path))


@settings(max_examples=200, deadline=None)
@given(two_globs_and_a_path())
def test_CONC_REG_003_a_path_matching_both_globs_means_they_overlap(
    case: tuple[str, str, str],
) -> None:
    a, b, path = case
    if glob_matches(a, path) and glob_matches(b, path):
        assert globs_overlap(a, b)
    assert globs_overlap(a, b) == globs_overlap(b, a)


# Every glob of up to three characters from a small alphabet, and every path that could
# witness an overlap of two of them: a shortest witness is no longer than the two globs.
SMALL_GLOBS = ["".join(p) for n in range(4) for p in itertools.product("a/*?", repeat=n)]
SMALL_PATHS = ["".join(p) for n in range(7) for p in itertools.product("a/x", repeat=n)]


@cache
def matched(pattern: str) -> frozenset[str]:
    compiled = reference(pattern)
    return frozenset(path for path in SMALL_PATHS if compiled.fullmatch(path))


def test_CONC_REG_003_overlap_is_exact_for_small_globs_without_classes() -> None:
    """Without character classes the answer is exact: True only when a path matches both."""
    wrong = [
        (a, b)
        for a in SMALL_GLOBS
        for b in SMALL_GLOBS
        if globs_overlap(a, b) != bool(matched(a) & matched(b))
    ]
    assert wrong == []


def test_CONC_REG_003_overlap_says_true_when_deciding_costs_too_much() -> None:
    """These never overlap (the last character differs), but proving it is too costly."""
    a, b = "*a" * 80 + "x", "*a" * 80 + "y"
    assert not (glob_matches(a, "a" * 80 + "x") and glob_matches(b, "a" * 80 + "x"))
    assert globs_overlap(a, b)
    assert not globs_overlap("*a" * 20 + "x", "*a" * 20 + "y")
