"""Upgrade task files from schema v1.0.0 to v2.0.0 (SCHEMA-VER-002).

Stability: stable. The mapping is documented in
``docs/schema_migrations/task_v1_to_v2.md``.

A v1.0.0 file has no ``schema_version`` (or ``"1.0.0"``) and flat fields::

    {"id": "task-001", "workstream": "ws-001", "name": "...", "type": "shell",
     "status": "todo", "depends_on": ["task-000"], "capabilities": ["shell"],
     "command": "make test", "timeout": 600, "retries": 2, "estimate": 90,
     "files": ["src/app.py"], "max_tokens": 8000, "created_at": "..."}

Migration is idempotent (v2.0.0 files are left alone), all-or-nothing per
file (the result must validate against the v2.0.0 model before it is
written), and atomic (``write_atomic``). A v1 field with no v2 home is an
error, never silently dropped.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..atomic import write_atomic
from ..errors import Problem
from ..project import task_files
from .model import SCHEMA_VERSION, Task

__all__ = ["MigrationReport", "migrate_document", "migrate_tasks"]

# v1 status words that v2 spells differently.
_STATUS = {
    "todo": "pending",
    "queued": "pending",
    "in_progress": "running",
    "done": "succeeded",
    "error": "failed",
}
# v1 flat field → (v2 section or None for top level, v2 field).
_FIELDS: dict[str, tuple[str | None, str]] = {
    "id": (None, "task_id"),
    "task_id": (None, "task_id"),
    "workstream": (None, "workstream_id"),
    "workstream_id": (None, "workstream_id"),
    "name": (None, "name"),
    "description": (None, "description"),
    "type": (None, "type"),
    "status": (None, "status"),
    "priority": (None, "priority"),
    "depends_on": (None, "dependencies"),
    "dependencies": (None, "dependencies"),
    "blocks": (None, "blocks"),
    "capabilities": ("worker_requirements", "capabilities"),
    "min_version": ("worker_requirements", "min_version"),
    "command": ("execution", "command"),
    "timeout": ("execution", "timeout_seconds"),
    "timeout_seconds": ("execution", "timeout_seconds"),
    "retries": ("execution", "max_retries"),
    "max_retries": ("execution", "max_retries"),
    "estimate": ("execution", "estimated_seconds"),
    "files": ("context_requirements", "required_files"),
    "max_tokens": ("context_requirements", "max_context_tokens"),
    "exclude": ("context_requirements", "exclude_patterns"),
    "pre_checks": ("validation_rules", "pre_execution"),
    "post_checks": ("validation_rules", "post_execution"),
    "created_at": ("state", "created_at"),
    "retry_count": ("state", "retry_count"),
}
_SECTIONS = (
    "worker_requirements",
    "execution",
    "context_requirements",
    "validation_rules",
    "state",
)


@dataclass
class MigrationReport:
    """What ``migrate`` did (or, on a dry run, would do)."""

    migrated: list[str] = field(default_factory=list)
    current: int = 0
    diffs: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The report as printed by ``migrate --format json``."""
        return {
            "migrated": self.migrated,
            "already_current": self.current,
            "diffs": self.diffs,
            "problems": [problem.as_dict() for problem in self.problems],
        }


def migrate_document(v1: dict[str, Any], workstream: str) -> tuple[dict[str, Any], list[str]]:
    """Map a v1.0.0 document to v2.0.0.

    Args:
        v1: the parsed v1 file.
        workstream: the folder name, used when v1 has no ``workstream``.

    Returns:
        The v2 document (in the seed's field order) and the v1 fields that
        have no v2 equivalent (the caller refuses to drop them).
    """
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    unmapped = []
    for key, value in v1.items():
        if key in ("schema_version", "$schema"):
            continue
        target = _FIELDS.get(key)
        if target is None:
            unmapped.append(key)
            continue
        section, name = target
        (top if section is None else sections[section])[name] = value
    if isinstance(top.get("status"), str):
        top["status"] = _STATUS.get(top["status"], top["status"])
    task_id = top.get("task_id")
    document: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
    if "$schema" in v1:
        document = {"$schema": v1["$schema"], **document}
    document.update(
        {
            "task_id": task_id,
            "workstream_id": top.get("workstream_id", workstream),
            "name": top.get("name", task_id),
            "description": top.get("description", ""),
            "type": top.get("type", "shell"),
            "status": top.get("status", "pending"),
            "priority": top.get("priority", 0),
            "dependencies": top.get("dependencies", []),
            "blocks": top.get("blocks", []),
        }
    )
    for name in _SECTIONS:
        document[name] = sections[name]
    return document, unmapped


def _is_v1(document: object) -> bool:
    if not isinstance(document, dict):
        return False
    version = document.get("schema_version")
    return version is None or version == "1.0.0"


def migrate_tasks(root: Path, *, write: bool = True) -> MigrationReport:
    """Migrate every v1.0.0 task file under ``root/tasks`` in place.

    Args:
        root: the pipeline root.
        write: ``False`` for a dry run: compute diffs, write nothing.
    """
    report = MigrationReport()
    for name in task_files(root):
        path = Path(name)
        rel = path.relative_to(root).as_posix()
        old = path.read_text(encoding="utf-8-sig", errors="replace")
        try:
            document = json.loads(old)
        except json.JSONDecodeError as bad:
            report.problems.append(
                Problem(
                    rel,
                    f"invalid JSON: {bad.msg}; not migrated",
                    "fix the JSON syntax, then run migrate again",
                    "SCHEMA-VER-002",
                    line=bad.lineno,
                    column=bad.colno,
                )
            )
            continue
        if not _is_v1(document):
            report.current += 1
            continue
        migrated, unmapped = migrate_document(document, path.parent.name)
        if unmapped:
            report.problems.append(
                Problem(
                    rel,
                    f"v1 field(s) {', '.join(map(repr, unmapped))} have no v2.0.0 "
                    "equivalent; not migrated",
                    "move their content into description (or remove them), then run migrate again",
                    "SCHEMA-VER-002",
                )
            )
            continue
        new = json.dumps(migrated, indent=2, ensure_ascii=False) + "\n"
        try:
            Task.model_validate_json(new)
        except ValidationError as error:
            first = error.errors()[0]
            pointer = "".join(f"/{part}" for part in first["loc"])
            report.problems.append(
                Problem(
                    rel,
                    f"the migrated document would be invalid: {first['msg']} at "
                    f"{pointer or '/'}; not migrated",
                    "fix that value in the v1 file, then run migrate again",
                    "SCHEMA-VER-002",
                    pointer,
                )
            )
            continue
        report.migrated.append(rel)
        report.diffs.append(
            "".join(
                difflib.unified_diff(
                    old.splitlines(keepends=True),
                    new.splitlines(keepends=True),
                    fromfile=f"a/{rel}",
                    tofile=f"b/{rel}",
                )
            )
        )
        if write:
            write_atomic(path, new.encode("utf-8"))
    return report
