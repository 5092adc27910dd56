"""The normative spec and its requirement IDs."""

from __future__ import annotations

import re
from collections import Counter

from orchestration.spec import Level, parse_spec, read_spec

from conftest import REPO

SPEC = REPO / "specifications" / "content" / "orchestration" / "spec.md"
FAMILIES = {
    "STATE-OBS", "TASK-DEF", "DAG-VIEW", "SM-DEF", "EXEC-DOC", "AIDER-INT", "ERR-FM",
    "CAP-REG", "CONC-REG", "AUDIT", "OBS", "SCHEMA-VER", "MOD-IDX", "COMPLIANCE",
}  # fmt: skip


def test_spec_has_fifteen_sections_and_sixty_requirements() -> None:
    requirements, problems = read_spec(SPEC)
    assert problems == []
    assert len(requirements) >= 60
    assert len(re.findall(r"^## \d+\. ", SPEC.read_text(), flags=re.M)) == 15
    families = Counter(r.family for r in requirements)
    assert set(families) >= FAMILIES
    assert len(set(families) - FAMILIES) >= 1  # one family of our own


def test_every_statement_uses_its_level_keyword() -> None:
    for requirement in read_spec(SPEC)[0]:
        assert requirement.level.value in requirement.text, requirement.id


def test_ids_cited_by_code_and_tests_exist_in_the_spec() -> None:
    known = {r.id for r in read_spec(SPEC)[0]}
    families = "|".join(sorted({r.family for r in read_spec(SPEC)[0]}, key=len, reverse=True))
    dashed = re.compile(rf"\b(?:{families})-\d{{3}}\b")
    underscored = re.compile(rf"_((?:{families.replace('-', '_')})_\d{{3}})\b")
    cited: set[str] = set()
    for path in [*(REPO / "src").rglob("*.py"), *(REPO / "tests").rglob("*.py")]:
        text = path.read_text()
        cited |= set(dashed.findall(text))
        cited |= {m.replace("_", "-") for m in underscored.findall(text)}
    assert cited, "no requirement IDs cited at all"
    assert cited - known == set()


def test_parser_reports_malformed_and_duplicate_lines() -> None:
    text = "- [AB-001] MUST: One.\n- [AB-001] MAY: Again.\n- AB-002 MUST one\n"
    requirements, problems = parse_spec(text)
    assert [(r.id, r.level, r.line) for r in requirements] == [("AB-001", Level.MUST, 1)]
    assert [p.line for p in problems] == [2, 3]
