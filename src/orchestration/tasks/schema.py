"""Published JSON Schemas, generated from the models (TASK-DEF-002).

Stability: stable.

``schemas/task.schema.json`` is checked in so that editors validate task
files as people type (``"$schema": "../../schemas/task.schema.json"``); a
test fails when it drifts from the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..enforcement.artifacts import artifact_json_schemas
from ..enforcement.contract import workflow_json_schema
from ..execution.adapters import WorkerResult
from ..lifecycles.definition import lifecycle_json_schema
from .model import Task

__all__ = ["published_schemas", "write_schemas"]

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def published_schemas() -> dict[str, str]:
    """File name → text of every schema this package publishes (as checked in)."""
    documents: dict[str, dict[str, Any]] = {
        "task.schema.json": {"$schema": DIALECT, **Task.model_json_schema(by_alias=True)},
        "lifecycle.schema.json": {"$schema": DIALECT, **lifecycle_json_schema()},
        "worker_result.schema.json": {"$schema": DIALECT, **WorkerResult.model_json_schema()},
        "agent_workflow.schema.json": {"$schema": DIALECT, **workflow_json_schema()},
        **{name: {"$schema": DIALECT, **doc} for name, doc in artifact_json_schemas().items()},
    }
    return {
        name: json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        for name, document in documents.items()
    }


def write_schemas(folder: Path, *, check: bool = False) -> list[str]:
    """Write (or with ``check``, only compare) every published schema.

    Returns:
        Names of the files that were out of date.
    """
    stale = []
    for name, text in published_schemas().items():
        path = folder / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(name)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return stale
