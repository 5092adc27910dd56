"""Checks of the failure-mode catalog against the failure modes the engine emits (ERR-FM).

Stability: provisional.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..errors import Problem
from ..failures import CATALOG, CatalogEntry, FailureMode, read_catalog
from .check import NotApplicable, check
from .repository import ENGINE_SPEC, Repository

__all__ = ["catalog_links", "failure_mode_catalog"]

FM_TOKEN = re.compile(r"\bFM-[A-Z]+(?:-[A-Z]+)*\b")
LINK = re.compile(r"\]\(([^)#\s]*RECOVERY\.md)#([^)\s]+)\)")


def minimum_catalog() -> list[str]:
    """The failure-mode IDs of the spec's minimum table (ERR-FM-003), in order."""
    text = ENGINE_SPEC.read_text(encoding="utf-8")
    section = text[text.index("## 8. Failure modes") : text.index("## 9. ")]
    return re.findall(r"^\| `(FM-[A-Z-]+)` \|", section, flags=re.M)


def _entries(repo: Repository) -> tuple[list[CatalogEntry], list[Problem]]:
    return read_catalog(repo.path(CATALOG))


@check("ERR-FM-001", "ERR-FM-002", "ERR-FM-003")
def failure_mode_catalog(repo: Repository) -> Iterator[Problem]:
    """The catalog's table is well formed and names exactly the modes the engine emits."""
    entries, problems = _entries(repo)
    yield from problems
    if not entries and problems:
        return
    listed: dict[str, CatalogEntry] = {}
    for entry in entries:
        if entry.id in listed:
            yield Problem(
                CATALOG,
                f"{entry.id} is listed again (first on line {listed[entry.id].line})",
                "keep one row per failure mode",
                "ERR-FM-001",
                line=entry.line,
                column=1,
            )
        listed.setdefault(entry.id, entry)
        if entry.requirement not in repo.requirements:
            yield Problem(
                CATALOG,
                f"{entry.id}: requirement {entry.requirement!r} is not in the spec",
                "cite the requirement ID that defines this failure's handling",
                "ERR-FM-001",
                line=entry.line,
                column=6,
            )
    emitted = {mode.value for mode in FailureMode}
    for ident in sorted(emitted - set(listed)):
        yield Problem(
            CATALOG,
            f"the engine can emit {ident} but the catalog has no row for it",
            "add a row saying how it is detected, whether recovery is automatic and the decision",
            "ERR-FM-002",
        )
    for ident in sorted(set(listed) - emitted):
        yield Problem(
            CATALOG,
            f"{ident} is in the catalog but the engine never emits it",
            "remove the row, or teach the engine to detect it (orchestration.failures)",
            "ERR-FM-002",
            line=listed[ident].line,
            column=1,
        )
    for ident in minimum_catalog():
        if ident not in listed:
            yield Problem(
                CATALOG,
                f"{ident} of the spec's minimum table is missing",
                "add its row (spec section 8 gives the default decision)",
                "ERR-FM-003",
            )
    yield from _stray_modes(repo, emitted)


def _stray_modes(repo: Repository, emitted: set[str]) -> Iterator[Problem]:
    """FM- IDs written in the engine's code that the FailureMode enum does not define."""
    try:
        engine = repo.engine_dir
    except NotApplicable:
        return
    for path in sorted(engine.rglob("*.py")):
        if "scaffold" in path.parts:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for match in FM_TOKEN.finditer(line):
                if match.group() not in emitted:
                    yield Problem(
                        repo.rel(path),
                        f"{match.group()} is used in the code but is no FailureMode",
                        "add it to orchestration.failures.FailureMode and to the catalog",
                        "ERR-FM-002",
                        line=number,
                        column=match.start() + 1,
                    )


@check("ERR-FM-008")
def catalog_links(repo: Repository) -> Iterator[Problem]:
    """Each catalog row links the section of RECOVERY.md that tells an operator what to do."""
    entries, problems = _entries(repo)
    if problems:
        msg = "the catalog has problems (see ERR-FM-001)"
        raise NotApplicable(msg)
    catalog = repo.path(CATALOG)
    for entry in entries:
        link = LINK.search(entry.name)
        target = (catalog.parent / link.group(1)).resolve() if link else None
        if link is None or target is None:
            yield Problem(
                CATALOG,
                f"{entry.id}: the name does not link a section of RECOVERY.md",
                f"write it as [Name](../execution_model/RECOVERY.md#{entry.id.lower()})",
                "ERR-FM-008",
                line=entry.line,
                column=2,
            )
            continue
        try:
            headings = {
                _anchor(line.lstrip("#").strip())
                for line in target.read_text(encoding="utf-8").splitlines()
                if line.startswith("#")
            }
        except OSError:
            headings = set()
        if link.group(2) not in headings:
            yield Problem(
                CATALOG,
                f"{entry.id}: {repo.rel(target)} has no section #{link.group(2)}",
                f"add a heading `## {entry.id}` to {repo.rel(target)}",
                "ERR-FM-008",
                line=entry.line,
                column=2,
            )


def _anchor(heading: str) -> str:
    """The GitHub anchor of a Markdown heading."""
    kept = re.sub(r"[^\w\- ]", "", heading.lower())
    return kept.replace(" ", "-")
