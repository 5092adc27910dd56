"""Checks: functions that inspect a repository and declare the requirements they verify.

Stability: provisional.

A check is a function of a :class:`~orchestration.validation.repository.Repository`
that yields the problems it finds, each citing one of the requirement IDs the
check declares. It raises :class:`NotApplicable` when the repository holds
nothing for it to inspect (no ``.state/`` yet, no engine sources), so that the
report can tell "nothing to check" from "checked and compliant"::

    @check("TASK-DEF-003", "TASK-DEF-005")
    def task_references(repo: Repository) -> Iterator[Problem]:
        '''Task ids are unique and every dependency names a task.'''
        ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import Problem

if TYPE_CHECKING:
    from .repository import Repository

__all__ = ["REGISTERED", "Check", "NotApplicable", "check"]


class NotApplicable(Exception):  # noqa: N818 - an outcome, not an error
    """The repository holds nothing this check can inspect; ``str(self)`` says why."""


@dataclass(frozen=True)
class Check:
    """One check: its name, the requirement IDs it verifies, and the function.

    Attributes:
        name: the function's name, stable, used in reports and the coverage matrix.
        requirements: the requirement IDs it verifies, as declared.
        summary: the first line of the function's docstring.
        run: the function; yields problems, may raise :class:`NotApplicable`.
    """

    name: str
    requirements: tuple[str, ...]
    summary: str
    run: Callable[[Repository], Iterable[Problem]]


# Every check defined with @check, in definition order (the section modules
# register theirs when `orchestration.validation.checks` imports them).
REGISTERED: list[Check] = []


def check(*requirements: str) -> Callable[[Callable[[Repository], Iterable[Problem]]], Check]:
    """Declare a check verifying ``requirements`` and register it.

    Raises:
        ValueError: no requirement is declared (a check must verify something).
    """
    if not requirements:
        msg = "a check must declare at least one requirement ID"
        raise ValueError(msg)

    def register(function: Callable[[Repository], Iterable[Problem]]) -> Check:
        doc = (function.__doc__ or function.__name__).strip().splitlines()[0]
        made = Check(function.__name__, tuple(requirements), doc, function)
        REGISTERED.append(made)
        return made

    return register
