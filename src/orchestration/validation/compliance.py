"""Checks of the spec itself and of the validators' entry points (COMPLIANCE).

Stability: provisional.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..errors import Problem
from .check import NotApplicable, check
from .repository import Repository

__all__ = ["compliance_workflow", "powershell_entry_points", "spec_requirements"]

SPEC = "specifications/content/orchestration/spec.md"
SCRIPTS = {
    "scripts/validate/validate_state_obs.ps1": "STATE-OBS",
    "scripts/validate/validate_task_defs.ps1": "TASK-DEF",
    "scripts/validate/validate_dag_structure.ps1": "DAG-VIEW",
    "scripts/validate/validate_failure_modes.ps1": "ERR-FM",
    "scripts/validate/validate_compliance.ps1": "",
}
PARAMETERS = ("$VerboseOutput", "$Root", "$Format")
WORKFLOW = ".github/workflows/compliance.yml"


@check("COMPLIANCE-011")
def spec_requirements(repo: Repository) -> Iterator[Problem]:
    """The spec defines each ID once, and every ID the engine's code and tests cite exists."""
    from ..spec import parse_spec

    path = repo.path(SPEC)
    if not path.is_file():
        yield Problem(SPEC, "the spec is missing", "run `orchestration init`", "COMPLIANCE-011")
        return
    found, problems = parse_spec(path.read_text(encoding="utf-8"), SPEC)
    yield from problems
    known = {requirement.id for requirement in found}
    try:
        engine = repo.engine_dir
    except NotApplicable:
        return
    families = "|".join(
        family.replace("-", "[-_]")
        for family in sorted({r.family for r in found}, key=len, reverse=True)
    )
    # IDs as written in prose (TASK-DEF-005) and in test names (test_TASK_DEF_005_...).
    cited = re.compile(rf"(?<![A-Za-z0-9])(?:{families})[-_]\d{{3}}(?!\d)")
    for folder in (engine, repo.path("tests")):
        for source in sorted(folder.rglob("*.py")):
            if "scaffold" in source.parts:
                continue
            text = source.read_text(encoding="utf-8")
            for number, line in enumerate(text.splitlines(), start=1):
                for match in cited.finditer(line):
                    ident = _dashed(match.group())
                    if ident not in known:
                        yield Problem(
                            repo.rel(source),
                            f"cites {ident}, which the spec does not define",
                            f"fix the ID, or define it in {SPEC}",
                            "COMPLIANCE-011",
                            line=number,
                            column=match.start() + 1,
                        )


def _dashed(ident: str) -> str:
    family, number = ident[:-4], ident[-3:]
    return family.replace("_", "-") + "-" + number


@check("COMPLIANCE-012")
def powershell_entry_points(repo: Repository) -> Iterator[Problem]:
    """The PowerShell entry points exist, take the three parameters and call `validate`."""
    repo.engine_dir  # noqa: B018 - they ship with the engine's repository
    for rel, section in SCRIPTS.items():
        path = repo.path(rel)
        if not path.is_file():
            yield Problem(rel, "the script is missing", "restore it from git", "COMPLIANCE-012")
            continue
        text = path.read_text(encoding="utf-8")
        wanted = [*PARAMETERS, "validate", "$LASTEXITCODE", *([section] if section else [])]
        for token in wanted:
            if token not in text:
                yield Problem(
                    rel,
                    f"the script does not mention {token!r}",
                    "keep it a thin wrapper: the three parameters, `validate`, its exit code",
                    "COMPLIANCE-012",
                )
    if not repo.path("scripts/validate/README.md").is_file():
        yield Problem(
            "scripts/validate/README.md",
            "the scripts are not documented",
            "write it",
            "COMPLIANCE-012",
        )


@check("COMPLIANCE-013")
def compliance_workflow(repo: Repository) -> Iterator[Problem]:
    """A GitHub workflow runs the validators with annotations on every push and pull request."""
    repo.engine_dir  # noqa: B018 - the workflow ships with the engine's repository
    path = repo.path(WORKFLOW)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    for token in ("push", "pull_request", "validate --format github"):
        if token not in text:
            yield Problem(
                WORKFLOW,
                f"the workflow is missing or does not contain {token!r}",
                "run `python -m orchestration validate --format github` on push and pull_request",
                "COMPLIANCE-013",
            )
