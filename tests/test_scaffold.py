"""What `init` ships is what this repository uses."""

from __future__ import annotations

import pytest

from orchestration.scaffold import template_files

from conftest import REPO

SHARED = [
    "agent_workflow.yaml",
    "specifications/content/orchestration/spec.md",
    "capabilities/registry.psd1",
    "capabilities/resources.psd1",
    "docs/state_machines/task_lifecycle.yaml",
    "docs/state_machines/workstream_lifecycle.yaml",
    "docs/state_machines/worker_lifecycle.yaml",
    "docs/execution_model/OVERVIEW.md",
    "docs/execution_model/RECOVERY.md",
    "docs/execution_model/STATE_MACHINE.md",
    "docs/failure_modes/CATALOG.md",
    "docs/operations/AUDIT_RETENTION.md",
    "docs/operations/CONFIGURATION.md",
    "docs/operations/grafana-dashboard.json",
    "schemas/task.schema.json",
    "schemas/lifecycle.schema.json",
]


@pytest.mark.parametrize("rel", SHARED)
def test_scaffold_copy_is_identical_to_the_repository(rel: str) -> None:
    """Fails when one copy is edited alone: copy the repository's file into scaffold/files/."""
    assert template_files()[rel] == (REPO / rel).read_bytes()


def test_scaffold_has_an_example_workstream() -> None:
    assert [p for p in template_files() if p.startswith("tasks/")] == [
        "tasks/ws-example/check.json",
        "tasks/ws-example/hello.json",
    ]
