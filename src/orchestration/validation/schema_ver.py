"""Checks of schema versions, published schemas and migration documents (SCHEMA-VER).

Stability: provisional.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from ..errors import Problem
from .check import NotApplicable, check
from .repository import Repository

__all__ = ["migration_documents", "published_schemas", "versioned_documents"]

# The migrations the engine performs, each with its document (SCHEMA-VER-005).
MIGRATIONS = ("docs/schema_migrations/task_v1_to_v2.md",)


@check("SCHEMA-VER-001", "SCHEMA-VER-003")
def versioned_documents(repo: Repository) -> Iterator[Problem]:
    """Task files, registries, lifecycles and state documents carry a supported schema_version."""
    for found in (
        repo.tasks.problems,
        repo.lifecycles.problems,
        repo.capabilities.problems,
        repo.resources.problems,
    ):
        for problem in found:
            if problem.requirement in ("SCHEMA-VER-001", "SCHEMA-VER-003"):
                yield problem
    try:
        files = repo.state
    except NotApplicable:
        return
    for path in (files.snapshot, files.index):
        try:
            document = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue  # reported by the STATE-OBS checks
        if not isinstance(document, dict) or "schema_version" not in document:
            yield Problem(
                repo.rel(path),
                "the document carries no schema_version",
                "it was not written by the store: `orchestration state rebuild`",
                "SCHEMA-VER-001",
            )


@check("SCHEMA-VER-002")
def migration_documents(repo: Repository) -> Iterator[Problem]:
    """Task files still in v1 are listed for `migrate`; each migration has its document."""
    for problem in repo.tasks.problems:
        if problem.requirement == "SCHEMA-VER-002":
            yield problem
    try:
        repo.engine_dir  # noqa: B018 - the documents ship with the engine's repository
    except NotApplicable:
        return
    for rel in MIGRATIONS:
        if not repo.path(rel).is_file():
            yield Problem(rel, "the migration is not documented", "describe it", "SCHEMA-VER-002")


@check("SCHEMA-VER-004")
def published_schemas(repo: Repository) -> Iterator[Problem]:
    """The schemas in schemas/ are the ones the engine's models generate."""
    from ..tasks.schema import write_schemas

    folder = repo.path("schemas")
    if not folder.is_dir():
        msg = "the repository publishes no schemas/"
        raise NotApplicable(msg)
    for name in write_schemas(folder, check=True):
        yield Problem(
            f"schemas/{name}",
            "the checked-in schema differs from the one the models generate",
            "run `orchestration schemas` and commit the result",
            "SCHEMA-VER-004",
        )
