"""Path-lock globs: whether a path matches one, and whether two can conflict (CONC-REG-003).

Stability: provisional.

A glob names repository paths, posix style (``/`` between folders):

- ``*`` matches any run of characters within one path segment (no ``/``);
- ``?`` matches one character other than ``/``;
- ``[abc]``, ``[a-z]``, ``[!abc]`` (or ``[^abc]``) match one character of,
  or not of, the class, never ``/``; a ``[`` without its ``]`` is literal;
- ``**/`` at the start of the glob or of a segment matches zero or more whole
  segments, so ``**/x.py`` matches ``x.py`` and ``a/b/x.py``;
- any other ``**`` matches any run of characters, ``/`` included, so
  ``src/**`` matches everything below ``src/``;
- every other character matches itself.

:func:`globs_overlap` answers whether some path matches both of two globs by
exploring the product of the two patterns' automata, character classes
counted as ``?`` (so it may say yes where only the classes tell the globs
apart, never no where a path matches both). Beyond a fixed amount of work it
answers yes: two locks that cannot be told apart are treated as overlapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

__all__ = ["glob_matches", "globs_overlap"]

# Pairs of automaton states explored before globs_overlap gives up and says True.
_BUDGET = 20_000
# Stands for every character that is not "/" and not a literal the current state expects.
_OTHER = "\0"


class _Kind(Enum):
    """One element of a glob."""

    LITERAL = "literal"  # exactly `char`
    ONE = "?"  # any one character but "/"
    CLASS = "[]"  # one character but "/" that is (or, negated, is not) in the class
    STAR = "*"  # any run of characters without "/"
    GLOBSTAR = "**"  # any run of characters, "/" included
    SEGMENTS = "**/"  # nothing, or any run of characters that ends with "/"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Kind
    char: str = ""  # the character of a literal; the members of a class
    ranges: tuple[tuple[str, str], ...] = ()  # a class's ranges, first and last
    negated: bool = False

    def accepts(self, char: str) -> bool:
        """Whether a class admits ``char`` (``/`` excluded by the caller)."""
        inside = char in self.char or any(low <= char <= high for low, high in self.ranges)
        return inside != self.negated


@dataclass(frozen=True, slots=True)
class _Glob:
    """A glob as an automaton.

    State ``2 * i`` is "before token i"; state ``2 * i + 1`` is "inside the
    ``**/`` at token i, waiting for its closing ``/``". ``accept`` is
    ``2 * len(tokens)``. ``closures[s]`` is ``s`` with every state reachable
    from it without reading a character.
    """

    tokens: tuple[_Token, ...]
    closures: tuple[tuple[int, ...], ...]

    @property
    def accept(self) -> int:
        return 2 * len(self.tokens)

    def literal(self, state: int) -> str | None:
        """The one character state ``state`` can read, if it reads only one."""
        index, inner = divmod(state, 2)
        if inner or index == len(self.tokens):
            return None
        token = self.tokens[index]
        return token.char if token.kind is _Kind.LITERAL else None

    def step(self, state: int, char: str, classes: bool) -> tuple[int, ...]:
        """States after reading ``char`` in ``state``, closed (classes as ``?`` unless asked)."""
        index, inner = divmod(state, 2)
        if index == len(self.tokens):
            return ()
        after = self.closures[2 * index + 2]
        if inner:
            return (state, *after) if char == "/" else (state,)
        token = self.tokens[index]
        kind = token.kind
        if kind is _Kind.GLOBSTAR:
            return self.closures[state]
        if kind is _Kind.SEGMENTS:
            return (state + 1, *after) if char == "/" else (state + 1,)
        if kind is _Kind.LITERAL:
            return after if char == token.char else ()
        if char == "/":
            return ()
        if kind is _Kind.STAR:
            return self.closures[state]
        if kind is _Kind.CLASS and classes and not token.accepts(char):
            return ()
        return after


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> _Glob:
    tokens: list[_Token] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            end = index
            while end < len(pattern) and pattern[end] == "*":
                end += 1
            if end - index == 1:
                tokens.append(_Token(_Kind.STAR))
            elif (index == 0 or pattern[index - 1] == "/") and pattern[end : end + 1] == "/":
                tokens.append(_Token(_Kind.SEGMENTS))
                end += 1
            else:
                tokens.append(_Token(_Kind.GLOBSTAR))
            index = end
        elif char == "?":
            tokens.append(_Token(_Kind.ONE))
            index += 1
        elif char == "[" and (found := _class(pattern, index)) is not None:
            token, index = found
            tokens.append(token)
        else:
            tokens.append(_Token(_Kind.LITERAL, char))
            index += 1
    skippable = (_Kind.STAR, _Kind.GLOBSTAR, _Kind.SEGMENTS)
    closures: list[tuple[int, ...]] = [(2 * len(tokens),), (2 * len(tokens) + 1,)]
    for position in range(len(tokens) - 1, -1, -1):
        inner = (2 * position + 1,)
        if tokens[position].kind in skippable:
            closures[:0] = [(2 * position, *closures[0]), inner]
        else:
            closures[:0] = [(2 * position,), inner]
    return _Glob(tuple(tokens), tuple(closures))


def _class(pattern: str, start: int) -> tuple[_Token, int] | None:
    """The class opened at ``start`` and the index after it, or None when it is never closed."""
    index = start + 1
    negated = pattern[index : index + 1] in ("!", "^")
    index += negated
    first = index
    while index < len(pattern) and (pattern[index] != "]" or index == first):
        index += 1
    if index >= len(pattern):
        return None
    body, chars, ranges = pattern[first:index], [], []
    position = 0
    while position < len(body):
        if position + 2 < len(body) and body[position + 1] == "-":
            ranges.append((body[position], body[position + 2]))
            position += 3
        else:
            chars.append(body[position])
            position += 1
    return _Token(_Kind.CLASS, "".join(chars), tuple(ranges), negated), index + 1


def glob_matches(pattern: str, path: str) -> bool:
    """Whether the repository path ``path`` (posix, ``/``-separated) matches ``pattern``."""
    glob = _compile(pattern)
    states = set(glob.closures[0])
    for char in path:
        states = {after for state in states for after in glob.step(state, char, True)}
        if not states:
            return False
    return glob.accept in states


def globs_overlap(a: str, b: str) -> bool:
    """Whether some path could match both globs ``a`` and ``b`` (CONC-REG-003).

    True when a path matches both, and also when the answer depends on the
    members of character classes or is too costly to find: two path locks
    that cannot be told apart must not run together.
    """
    return _overlap(a, b) if a <= b else _overlap(b, a)


@lru_cache(maxsize=4096)
def _overlap(a: str, b: str) -> bool:
    first, second = _compile(a), _compile(b)
    start = [(x, y) for x in first.closures[0] for y in second.closures[0]]
    seen, stack = set(start), list(start)
    while stack:
        x, y = stack.pop()
        if x == first.accept and y == second.accept:
            return True
        if len(seen) > _BUDGET:
            return True
        # Only "/", the literal a state expects, or any other character make a difference.
        expected = first.literal(x) or second.literal(y)
        for char in (expected,) if expected else ("/", _OTHER):
            for p in first.step(x, char, False):
                for q in second.step(y, char, False):
                    if (p, q) not in seen:
                        seen.add((p, q))
                        stack.append((p, q))
    return False
