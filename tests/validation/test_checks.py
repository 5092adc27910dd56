"""Every check, shown failing on a repository that violates it (COMPLIANCE-008).

Each case copies this repository (sources, tests, docs, pipeline), breaks one
thing, runs ``orchestration validate`` through the CLI and asserts that the
violation is reported with the right requirement ID and location.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestration.cli import main
from orchestration.lifecycles import load_lifecycles
from orchestration.state import Store, Transaction
from orchestration.state.attempts import AttemptRecord, write_attempt
from orchestration.validation.report import all_checks
from runs import pipeline, run, task


def validate(root: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    capsys.readouterr()
    code = main(["--root", str(root), "validate", "--format", "json", *args])
    return code, json.loads(capsys.readouterr().out)


def problems_of(report: Any) -> list[dict[str, Any]]:
    return [p for r in report["requirements"] for p in r["problems"]]


def edit_json(path: Path, change: Callable[[Any], None]) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document, indent=2) + "\n")


def replace_text(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def synced(root: Path) -> None:
    assert main(["--root", str(root), "sync"]) == 0


def transact(root: Path, change: Callable[[Transaction], object]) -> None:
    """Sync, then commit ``change`` through the real store (journal and snapshot agree)."""
    synced(root)
    with Store.open(root, load_lifecycles(root), actor="test") as store, store.transaction() as tx:
        change(tx)


def start_attempt(tx: Transaction, root: Path, task_id: str, branch: str = "") -> int:
    """Claim and start ``task_id`` as a run does, with its attempt record; returns the epoch."""
    epoch = tx.claim(task_id, holder="run-1", worker="local-1", ttl=20.0)
    number = tx.start(task_id)
    record = AttemptRecord(task_id, number, epoch, "run-1", time.time(), "sandbox",
                           branch or f"task/{task_id}/{number}", "0" * 40)  # fmt: skip
    write_attempt(root / ".state" / "attempts" / task_id / str(number), record)
    return epoch


def write_evidence(root: Path, task_id: str, result: dict[str, Any]) -> None:
    """Evidence of attempt 1 of ``task_id`` as the runner writes it, with ``result``."""
    folder = root / ".state" / "logs" / task_id / "1"
    folder.mkdir(parents=True)
    for name in ("stdout.log", "stderr.log"):
        (folder / name).write_text("")
    evidence = {
        "schema_version": "1.0.0", "task_id": task_id, "attempt": 1, "epoch": 1,
        "holder": "run-1", "exit_code": 0, "duration_seconds": 0.5, "stdout": "stdout.log",
        "stderr": "stderr.log", "diff": {"files_changed": [], "insertions": 0, "deletions": 0},
        "commits": [], "result": result,
    }  # fmt: skip
    (folder / "evidence.json").write_text(json.dumps(evidence, indent=2))


def result_of(task_id: str, **fields: Any) -> dict[str, Any]:
    """A valid worker result of ``task_id``, with ``fields`` overriding."""
    return {
        "schema_version": "1.0.0", "task_id": task_id, "status": "succeeded",
        "files_changed": [], "commits": [], "tests": {"passed": 0, "failed": 0},
        "session_id": None, "summary": "exit 0", **fields,
    }  # fmt: skip


TASK = "tasks/ws-001/task-002.json"
JOURNAL = ".state/transitions.jsonl"


# --- the breakages: one per check ---------------------------------------------


def unknown_dependency(root: Path) -> None:
    edit_json(root / TASK, lambda d: d["dependencies"].append("task-999"))


def ai_task_without_limit(root: Path) -> None:
    def change(d: dict[str, Any]) -> None:
        d["type"] = "aider"
        d["context_requirements"].pop("max_context_tokens", None)

    edit_json(root / TASK, change)


def missing_required_file(root: Path) -> None:
    edit_json(root / TASK, lambda d: d["context_requirements"]["required_files"].append("nope.py"))


def cycle(root: Path) -> None:
    last = root / "tasks/ws-003/task-021.json"  # the end of the critical path from task-002
    edit_json(root / TASK, lambda d: d["dependencies"].append("task-021"))
    edit_json(last, lambda d: d.__setitem__("blocks", [*d["blocks"], "task-002"]))


def lifecycle_without_initial(root: Path) -> None:
    replace_text(
        root / "docs/state_machines/worker_lifecycle.yaml", "initial: idle", "initial: nap"
    )


def stale_diagram(root: Path) -> None:
    replace_text(
        root / "docs/state_machines/worker_lifecycle.yaml",
        "description:",
        "description: Edited.",
    )


def journal_with_illegal_transition(root: Path) -> None:
    synced(root)
    journal = root / ".state/transitions.jsonl"
    lines = journal.read_text().splitlines()
    last = json.loads(lines[-1])
    lines.append(
        json.dumps(
            {**last, "seq": last["seq"] + 1, "entity": "task", "id": "task-001", "from": "ready",
             "to": "succeeded", "trigger": "complete", "data": None, "commit": True}
        )
    )  # fmt: skip
    journal.write_text("\n".join(lines) + "\n")


def pending_although_ready(root: Path) -> None:
    synced(root)
    edit_json(
        root / ".state/current.json", lambda d: d["tasks"]["task-001"].update(status="pending")
    )


def state_not_ignored(root: Path) -> None:
    replace_text(root / ".gitignore", ".state/", "state-not-ignored/")


def snapshot_not_json(root: Path) -> None:
    synced(root)
    (root / ".state/current.json").write_text('{"schema_version": "1.0.0", "tas')


def journal_bad_severity(root: Path) -> None:
    synced(root)
    journal = root / ".state/transitions.jsonl"
    journal.write_text(journal.read_text().replace('"severity":"info"', '"severity":"loud"', 1))


def snapshot_edited(root: Path) -> None:
    synced(root)
    edit_json(root / ".state/current.json", lambda d: d["tasks"]["task-003"].update(priority=9))


def index_missing(root: Path) -> None:
    synced(root)
    (root / ".state/index.json").unlink()


def task_added_after_sync(root: Path) -> None:
    synced(root)
    source = json.loads((root / TASK).read_text())
    source.update(task_id="task-050", dependencies=[], blocks=[])
    (root / "tasks/ws-001/task-050.json").write_text(json.dumps(source, indent=2))


def catalog_row_removed(root: Path) -> None:
    catalog = root / "docs/failure_modes/CATALOG.md"
    catalog.write_text(
        "\n".join(row for row in catalog.read_text().splitlines() if "FM-CRASH" not in row)
    )


def catalog_link_broken(root: Path) -> None:
    replace_text(root / "docs/failure_modes/CATALOG.md", "#fm-timeout", "#fm-time-out")


def registry_runs_code(root: Path) -> None:
    replace_text(root / "capabilities/registry.psd1", "local = $true", "local = (Get-Date)")


def unknown_capability(root: Path) -> None:
    edit_json(root / TASK, lambda d: d["worker_requirements"]["capabilities"].append("teleport"))


def resource_without_capacity(root: Path) -> None:
    replace_text(root / "capabilities/resources.psd1", "capacity = 4", "capacity = 0")


def claim_over_capacity(root: Path) -> None:
    edit_json(root / TASK, lambda d: d.__setitem__("resources", {"test-slots": 3}))


def opposite_resource_orders(root: Path) -> None:
    edit_json(root / TASK, lambda d: d.__setitem__("resources", {"llm-api": 1, "test-slots": 1}))
    edit_json(  # stage 0 beside task-002: the two can run at once
        root / "tasks/ws-001/task-001.json",
        lambda d: d.__setitem__("resources", {"test-slots": 1, "llm-api": 1}),
    )


def snapshot_without_version(root: Path) -> None:
    synced(root)
    edit_json(root / ".state/index.json", lambda d: d.pop("schema_version"))


def migration_doc_missing(root: Path) -> None:
    (root / "docs/schema_migrations/task_v1_to_v2.md").unlink()


def schema_drift(root: Path) -> None:
    edit_json(root / "schemas/task.schema.json", lambda d: d.__setitem__("title", "Drifted"))


def overview_missing(root: Path) -> None:
    (root / "docs/execution_model/OVERVIEW.md").unlink()


def module_without_stability(root: Path) -> None:
    replace_text(root / "src/orchestration/atomic.py", "Stability:", "Stable-ish:")


def export_without_docstring(root: Path) -> None:
    path = root / "src/orchestration/bulk.py"
    replace_text(path, "__all__ = [", '__all__ = ["undocumented", ')
    path.write_text(path.read_text() + "\n\ndef undocumented() -> None:\n    pass\n")


def utils_module(root: Path) -> None:
    (root / "src/orchestration/utils.py").write_text('"""Grab bag.\n\nStability: internal.\n"""\n')


def state_file_named_outside_the_store(root: Path) -> None:
    path = root / "src/orchestration/project.py"
    path.write_text(path.read_text() + '\nJOURNAL = ".state/transitions.jsonl"\n')


def eager_import(root: Path) -> None:
    replace_text(root / "src/orchestration/cli.py", "import click\n", "import click\nimport rich\n")


def undefined_requirement_cited(root: Path) -> None:
    unknown = "TASK_DEF_" + "999"  # spelled apart: this file must not cite it itself
    (root / "tests/test_extra.py").write_text(f"def test_{unknown}_nothing() -> None:\n    pass\n")


def powershell_script_missing(root: Path) -> None:
    (root / "scripts/validate/validate_task_defs.ps1").unlink()


def workflow_without_annotations(root: Path) -> None:
    replace_text(root / ".github/workflows/compliance.yml", "--format github", "--format text")


def lease_without_ttl(root: Path) -> None:
    lease = {"holder": "run-1", "worker": "local-1", "epoch": 1, "granted": time.time(), "ttl": 0}
    transact(root, lambda tx: tx.apply("task-001", "claim", actor="worker:local-1", lease=lease))


def worker_result_without_lease(root: Path) -> None:
    def change(tx: Transaction) -> None:
        tx.apply("task-001", "claim", actor="user:alice")  # a person's claim: no lease
        tx.apply("task-001", "start", actor="user:alice")
        tx.apply("task-001", "complete", actor="worker:local-1", reason="exit 0")

    transact(root, change)


def attempt_on_a_shared_branch(root: Path) -> None:
    def change(tx: Transaction) -> None:
        epoch = start_attempt(tx, root, "task-002", branch="main")
        tx.finish("task-002", epoch, "complete", reason="attempt 1: exit 0")

    transact(root, change)


def path_lock_taken_twice(root: Path) -> None:
    for path in (root / "tasks/ws-001/task-001.json", root / TASK):
        edit_json(path, lambda d: d.__setitem__("resources", {"docs": 1}))  # capacity 1

    def change(tx: Transaction) -> None:
        tx.claim("task-001", holder="run-1", worker="local-1", ttl=20.0)
        tx.claim("task-002", holder="run-2", worker="local-2", ttl=20.0)

    transact(root, change)


def failure_without_mode(root: Path) -> None:
    def change(tx: Transaction) -> None:
        epoch = start_attempt(tx, root, "task-002")
        tx.finish("task-002", epoch, "fail", reason="attempt 1: exit 3",
                  failure={"mode": "FM-NONZERO-EXIT", "final": True})  # fmt: skip

    transact(root, change)


def result_without_tests(root: Path) -> None:
    synced(root)
    result = result_of("task-002")
    del result["tests"]
    write_evidence(root, "task-002", result)


def epoch_granted_again(root: Path) -> None:
    lease = {
        "holder": "run-1",
        "worker": "local-1",
        "epoch": 1,
        "granted": time.time(),
        "ttl": 20.0,
    }

    def change(tx: Transaction) -> None:
        tx.apply("task-001", "claim", actor="worker:local-1", lease=lease)
        tx.apply("task-001", "release", actor="worker:local-1")
        tx.apply("task-001", "claim", actor="worker:local-1", lease=lease)  # epoch 1 again

    transact(root, change)


def refusal_without_mode(root: Path) -> None:
    def change(tx: Transaction) -> None:
        start_attempt(tx, root, "task-002")
        tx.lines.append({
            "seq": 0, "ts": "", "entity": "lease", "id": "task-002", "from": "running",
            "to": "running", "trigger": "refuse", "actor": "test",
            "reason": "late complete refused", "severity": "warning",
        })  # fmt: skip

    transact(root, change)


def attempt_started_twice(root: Path) -> None:
    def change(tx: Transaction) -> None:
        start_attempt(tx, root, "task-002")
        tx.apply("task-002", "release", actor="worker:local-1", reason="stopped")
        tx.claim("task-002", holder="run-2", worker="local-2", ttl=20.0)
        tx.apply("task-002", "start", actor="worker:local-2", attempt=1)  # not 2

    transact(root, change)


def retry_logged_as_info(root: Path) -> None:
    def change(tx: Transaction) -> None:
        epoch = start_attempt(tx, root, "task-002")
        tx.finish("task-002", epoch, "fail", reason="FM-NONZERO-EXIT: attempt 1: exit 3",
                  failure={"mode": "FM-NONZERO-EXIT", "final": False})  # fmt: skip
        tx.apply("task-002", "retry", actor="engine", reason="FM-NONZERO-EXIT: retry 1 of 1",
                 severity="info")  # fmt: skip

    transact(root, change)


def finished_attempt_without_evidence(root: Path) -> None:
    def change(tx: Transaction) -> None:
        epoch = start_attempt(tx, root, "task-002")
        (root / ".state/attempts/task-002/1/exit").write_text("0\n")
        tx.finish("task-002", epoch, "complete", reason="attempt 1: exit 0")

    transact(root, change)


def log_longer_than_its_tail(root: Path) -> None:
    synced(root)
    write_evidence(root, "task-002", result_of("task-002"))
    (root / ".state/logs/task-002/1/stdout.log").write_bytes(b"x" * (64 * 1024 + 1))


def claude_result_without_session(root: Path) -> None:
    synced(root)
    write_evidence(root, "task-009", result_of("task-009"))  # task-009 is a claude task


CONTRACT = "agent_workflow.yaml"


def contract_with_unknown_gate(root: Path) -> None:
    replace_text(root / CONTRACT, "gates: [tests_are_failing]", "gates: [tests_fail]")


def contract_without_a_gate(root: Path) -> None:
    replace_text(root / CONTRACT, "    gates: [tests_are_failing]\n", "")


def artifact_schema_missing(root: Path) -> None:
    (root / "schemas/artifacts/plan.schema.json").unlink()


def audit_record_without_reason(root: Path) -> None:
    synced(root)
    (root / ".state/audit").mkdir()
    record = {"timestamp": "2026-01-01T00:00:00.000Z", "agent_id": "a1", "task_id": "task-002",
              "phase": "PLAN", "tool": "read_file", "args": {"path": "x"}, "decision": "allowed",
              "requirement": "AGENT-WF-010", "severity": "info"}  # fmt: skip
    (root / ".state/audit/tool_audit.jsonl").write_text(json.dumps(record) + "\n")


def metrics_edited(root: Path) -> None:
    synced(root)
    edit_json(root / ".state/metrics.json", lambda d: d["transitions"]["task"].update(create=0))


def dashboard_unknown_metric(root: Path) -> None:
    replace_text(root / "docs/operations/grafana-dashboard.json",
                 "rate(orchestration_transitions_total", "rate(orchestration_transition_total")  # fmt: skip


def configuration_key_undocumented(root: Path) -> None:
    path = root / "docs/operations/CONFIGURATION.md"
    path.write_text(path.read_text().replace("audit.retention_days", "audit.retention"))


def retention_policy_without_keys(root: Path) -> None:
    path = root / "docs/operations/AUDIT_RETENTION.md"
    path.write_text("# Audit retention\n\nWe keep everything forever.\n")


def sealed_segment_altered(root: Path) -> None:
    synced(root)
    assert main(["--root", str(root), "audit", "rotate"]) == 0
    segment = root / ".state/audit/transitions-000001.jsonl.gz"
    data = bytearray(segment.read_bytes())
    data[20] ^= 0xFF
    segment.write_bytes(bytes(data))


@dataclass(frozen=True)
class Case:
    """A breakage and where the validator must report it."""

    check: str
    breakage: Callable[[Path], None]
    requirement: str
    file: str
    line: int | None = None  # asserted when given (0: no line is known)


CASES = [
    Case("task_files", unknown_dependency, "TASK-DEF-005", TASK),
    Case("ai_tasks_declare_limits", ai_task_without_limit, "TASK-DEF-008", TASK),
    Case("ai_context", missing_required_file, "AIDER-INT-004", TASK),
    Case("dependency_graph", cycle, "DAG-VIEW-001", TASK),
    Case("lifecycle_files", lifecycle_without_initial, "SM-DEF-002",
         "docs/state_machines/worker_lifecycle.yaml"),
    Case("state_machine_doc", stale_diagram, "SM-DEF-010", "docs/execution_model/STATE_MACHINE.md"),
    Case("journal_transitions", journal_with_illegal_transition, "SM-DEF-006",
         ".state/transitions.jsonl"),
    Case("ready_tasks_enqueued", pending_although_ready, "SM-DEF-005", ".state/current.json"),
    Case("state_ignored_by_git", state_not_ignored, "STATE-OBS-001", ".gitignore"),
    Case("snapshot_document", snapshot_not_json, "STATE-OBS-003", ".state/current.json"),
    Case("journal_lines", journal_bad_severity, "STATE-OBS-005", ".state/transitions.jsonl", 1),
    Case("snapshot_matches_journal", snapshot_edited, "STATE-OBS-012", ".state/current.json"),
    Case("index_document", index_missing, "STATE-OBS-006", ".state/index.json"),
    Case("state_matches_definitions", task_added_after_sync, "STATE-OBS-014",
         "tasks/ws-001/task-050.json"),
    Case("failure_mode_catalog", catalog_row_removed, "ERR-FM-002", "docs/failure_modes/CATALOG.md"),
    Case("catalog_links", catalog_link_broken, "ERR-FM-008", "docs/failure_modes/CATALOG.md"),
    Case("capability_registry", registry_runs_code, "CAP-REG-003", "capabilities/registry.psd1"),
    Case("required_capabilities", unknown_capability, "CAP-REG-002", TASK),
    Case("resource_registry", resource_without_capacity, "CONC-REG-002",
         "capabilities/resources.psd1"),
    Case("claimed_resources", claim_over_capacity, "CONC-REG-004", TASK),
    Case("resource_deadlocks", opposite_resource_orders, "CONC-REG-005",
         "tasks/ws-001/task-001.json"),
    Case("versioned_documents", snapshot_without_version, "SCHEMA-VER-001", ".state/index.json"),
    Case("migration_documents", migration_doc_missing, "SCHEMA-VER-002",
         "docs/schema_migrations/task_v1_to_v2.md"),
    Case("published_schemas", schema_drift, "SCHEMA-VER-004", "schemas/task.schema.json"),
    Case("execution_docs", overview_missing, "EXEC-DOC-001", "docs/execution_model/OVERVIEW.md"),
    Case("module_docstrings", module_without_stability, "MOD-IDX-001",
         "src/orchestration/atomic.py", 1),
    Case("module_exports", export_without_docstring, "MOD-IDX-010", "src/orchestration/bulk.py"),
    Case("module_names", utils_module, "MOD-IDX-003", "src/orchestration/utils.py"),
    Case("state_ownership", state_file_named_outside_the_store, "MOD-IDX-004",
         "src/orchestration/project.py"),
    Case("lazy_imports", eager_import, "MOD-IDX-005", "src/orchestration/cli.py"),
    Case("spec_requirements", undefined_requirement_cited, "COMPLIANCE-011", "tests/test_extra.py", 1),
    Case("powershell_entry_points", powershell_script_missing, "COMPLIANCE-012",
         "scripts/validate/validate_task_defs.ps1"),
    Case("compliance_workflow", workflow_without_annotations, "COMPLIANCE-013",
         ".github/workflows/compliance.yml"),
    Case("leases_recorded", lease_without_ttl, "CONC-REG-006", JOURNAL),
    Case("lease_fencing", worker_result_without_lease, "CONC-REG-007", JOURNAL),
    Case("attempt_records", attempt_on_a_shared_branch, "CONC-REG-012",
         ".state/attempts/task-002/1/attempt.json"),
    Case("exclusive_attempts", path_lock_taken_twice, "CONC-REG-011", JOURNAL),
    Case("failures_journaled", failure_without_mode, "ERR-FM-007", JOURNAL),
    Case("attempt_evidence", result_without_tests, "AIDER-INT-007",
         ".state/logs/task-002/1/evidence.json"),
    Case("claude_sessions", claude_result_without_session, "AIDER-INT-005",
         ".state/logs/task-009/1/evidence.json"),
    Case("agent_contract", contract_with_unknown_gate, "AGENT-WF-001", CONTRACT, 53),
    Case("contract_phases", contract_without_a_gate, "AGENT-WF-004", CONTRACT, 49),
    Case("artifact_schemas", artifact_schema_missing, "AGENT-WF-003", CONTRACT, 45),
    Case("tool_audit", audit_record_without_reason, "AGENT-WF-012",
         ".state/audit/tool_audit.jsonl", 1),
    Case("operator_docs", configuration_key_undocumented, "EXEC-DOC-002",
         "docs/operations/CONFIGURATION.md"),
    Case("retention_policy", retention_policy_without_keys, "AUDIT-001",
         "docs/operations/AUDIT_RETENTION.md"),
    Case("sealed_segments", sealed_segment_altered, "AUDIT-003",
         ".state/audit/transitions-000001.jsonl.gz"),
    Case("metrics_document", metrics_edited, "OBS-001", ".state/metrics.json"),
    Case("grafana_dashboard", dashboard_unknown_metric, "OBS-006",
         "docs/operations/grafana-dashboard.json", 200),
]  # fmt: skip


def test_COMPLIANCE_008_every_check_has_a_breaking_fixture() -> None:
    assert sorted(case.check for case in CASES) == sorted(c.name for c in all_checks())


RUN_REQUIREMENTS = (
    "CONC-REG-006", "CONC-REG-007", "CONC-REG-010", "CONC-REG-011", "CONC-REG-012",
    "ERR-FM-007", "AIDER-INT-005", "AIDER-INT-007", "AIDER-INT-008",
)  # fmt: skip


def test_the_state_a_real_run_leaves_passes_the_run_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run with a retry, a final failure, a shared path lock and a claude attempt complies."""
    counter = tmp_path / "count"
    flaky = f'n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}; [ "$n" -ge 1 ]'
    agent = task("ai", None, type="claude", worker_requirements={"capabilities": ["claude"]},
                 context_requirements={"max_context_tokens": 1000})  # fmt: skip
    root = pipeline(
        tmp_path / "p",
        task("flaky", flaky, execution={"max_retries": 2}),
        task("broken", "exit 3"),
        task("after", "true", dependencies=["broken"]),
        task("docs-a", "sleep 0.2", resources={"docs": 1}),
        task("docs-b", "sleep 0.2", resources={"docs": 1}),
        agent,
    )
    (root / "workers.yaml").write_text(
        'schema_version: "1.0.0"\nworkers:\n'
        "  agent-1:\n    capabilities: [claude, shell]\n"
        "  local-1:\n    capabilities: [shell]\n"
        "  local-2:\n    capabilities: [shell]\n"
    )
    done = run(root, "-j", "3")
    assert done.returncode == 1, done.stdout + done.stderr  # broken failed for good
    assert "1 retries" in done.stdout
    branches = subprocess.run(["git", "-C", str(root), "branch", "--list", "task/*"],
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "task/flaky/2" in branches.split()
    _, report = validate(root, capsys=capsys)
    found = {r["id"]: (r["outcome"], r["problems"]) for r in report["requirements"]}
    assert {ident: found[ident] for ident in RUN_REQUIREMENTS} == dict.fromkeys(
        RUN_REQUIREMENTS, ("pass", [])
    )


# More ways to break what a run leaves, beyond the one case per check above.
RUN_CASES = [
    Case("leases_recorded", epoch_granted_again, "CONC-REG-006", JOURNAL),
    Case("lease_fencing", refusal_without_mode, "CONC-REG-007", JOURNAL),
    Case("exclusive_attempts", attempt_started_twice, "CONC-REG-011", JOURNAL),
    Case("failures_journaled", retry_logged_as_info, "ERR-FM-007", JOURNAL),
    Case("attempt_evidence", finished_attempt_without_evidence, "AIDER-INT-008",
         ".state/logs/task-002/1/evidence.json"),
    Case("attempt_evidence", log_longer_than_its_tail, "AIDER-INT-008",
         ".state/logs/task-002/1/stdout.log"),
]  # fmt: skip


@pytest.mark.parametrize(
    "case", CASES + RUN_CASES, ids=lambda case: f"{case.check}-{case.breakage.__name__}"
)
def test_COMPLIANCE_008_check_reports_the_violation_where_it_is(
    case: Case, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every check (and the run checks once per kind of violation) names ID, file and line."""
    case.breakage(repo)
    family = case.requirement.rsplit("-", 1)[0]  # only its section: the others are not at stake
    code, report = validate(repo, "--section", family, capsys=capsys)
    found = [
        p
        for r in report["requirements"]
        for p in r["problems"]
        if p["requirement"] == case.requirement and p["file"] == case.file
    ]
    assert found, problems_of(report)
    if case.line is not None:
        assert found[0]["line"] == case.line
    level = next(r["level"] for r in report["requirements"] if r["id"] == case.requirement)
    assert code == (1 if level == "MUST" else 0)
    result = next(r for r in report["requirements"] if r["id"] == case.requirement)
    assert result["outcome"] == "fail"
    assert case.check in result["checks"]
