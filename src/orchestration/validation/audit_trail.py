"""Checks of the operator documents and of the sealed audit trail (EXEC-DOC-002, AUDIT).

Stability: provisional.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import Problem
from .check import NotApplicable, check
from .repository import Repository

__all__ = ["operator_docs", "retention_policy", "sealed_segments"]

RETENTION = "docs/operations/AUDIT_RETENTION.md"
CONFIGURATION = "docs/operations/CONFIGURATION.md"
# What the retention policy must name: the keys that configure it (AUDIT-001).
POLICY_KEYS = ("audit.retention_days", "audit.segment_max_bytes")
_FROM_SCAFFOLD = "copy it from a pipeline scaffolded by `orchestration init` and adapt it"


def _text(repo: Repository, rel: str) -> str | None:
    path = repo.path(rel)
    if not path.is_file():
        return None
    return path.read_text(encoding="utf-8").strip() or None


@check("EXEC-DOC-002")
def operator_docs(repo: Repository) -> Iterator[Problem]:
    """docs/operations/ holds AUDIT_RETENTION.md and a reference of every configuration key."""
    from ..config import Config

    if _text(repo, RETENTION) is None:
        yield Problem(RETENTION, "the audit retention policy is missing or empty", _FROM_SCAFFOLD,
                      "EXEC-DOC-002")  # fmt: skip
    reference = _text(repo, CONFIGURATION)
    if reference is None:
        yield Problem(CONFIGURATION, "the configuration reference is missing or empty",
                      _FROM_SCAFFOLD, "EXEC-DOC-002")  # fmt: skip
        return
    for setting in Config.documented():
        missing = [name for name in (setting.key, setting.variable) if name not in reference]
        if missing:
            yield Problem(
                CONFIGURATION,
                f"the configuration reference does not list {' nor '.join(missing)}",
                f"add `{setting.key}` (default {setting.default}, {setting.variable}), or copy "
                "the reference of this engine's version from `orchestration init`",
                "EXEC-DOC-002",
            )


@check("AUDIT-001")
def retention_policy(repo: Repository) -> Iterator[Problem]:
    """AUDIT_RETENTION.md states the policy with the keys of orchestration.yaml that set it."""
    text = _text(repo, RETENTION)
    if text is None:
        msg = f"{RETENTION} is missing (see EXEC-DOC-002)"
        raise NotApplicable(msg)
    for key in POLICY_KEYS:
        if key not in text:
            yield Problem(RETENTION, f"the policy does not say how `{key}` configures it",
                          f"state the retention policy with `{key}` and its default",
                          "AUDIT-001")  # fmt: skip


@check("AUDIT-002", "AUDIT-003", "AUDIT-005")
def sealed_segments(repo: Repository) -> Iterator[Problem]:
    """Every sealed segment has its recorded SHA-256, the chain holds, seq stays contiguous."""
    from ..state.journal import Journal
    from ..state.segments import Manifest, ManifestError, locate, verify

    files = repo.state
    if not (files.audit / "manifest.json").is_file():
        msg = "nothing sealed yet (`orchestration audit rotate`)"
        raise NotApplicable(msg)
    fix = "restore the segment from a backup or the archive; sealed segments are never edited"
    for finding in verify(files):
        where = locate(files, finding.segment) or files.audit / finding.segment
        offset = f" (byte {finding.offset})" if finding.offset is not None else ""
        yield Problem(repo.rel(where), f"{finding.problem}{offset}", fix, "AUDIT-003")
    try:
        sealed = Manifest.read(files.audit).sealed_seq
    except ManifestError:
        return  # reported above
    first = Journal(files.journal).first_seq()
    if first is not None and first > sealed + 1:
        yield Problem(
            repo.rel(files.journal),
            f"the live journal starts at seq {first}; the sealed segments end at {sealed}",
            "restore the missing segment and its manifest entry from a backup",
            "AUDIT-005",
        )
