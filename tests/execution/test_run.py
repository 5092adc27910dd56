"""`orchestration run` end to end: real processes, a real git repository, the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from orchestration.execution.definitions import Definitions, load_definitions
from orchestration.execution.runner import Runner, RunOptions
from orchestration.lifecycles import load_lifecycles
from orchestration.state.views import verify
from runs import FAST, evidence, journal, pipeline, run, snapshot, statuses, task

# --- dispatch and success ---------------------------------------------------------------


def test_run_executes_the_plan_in_dependency_order_and_exits_0_EXEC_DOC_011(
    tmp_path: Path,
) -> None:
    root = pipeline(
        tmp_path / "p",
        task("a", "echo a >> ../order.txt; echo out; echo err >&2"),
        task("b", "echo b >> ../order.txt", dependencies=["a"]),
        task("c", "echo c >> ../order.txt", dependencies=["b"]),
    )
    (root / ".state").mkdir(exist_ok=True)
    done = run(root, "-j", "2")
    assert done.returncode == 0, done.stderr
    assert statuses(root) == {"a": "succeeded", "b": "succeeded", "c": "succeeded"}
    sandboxes = root / ".state" / "sandboxes"
    # Each attempt ran in its own worktree (CONC-REG-012), removed after success (-013).
    assert (sandboxes / "order.txt").read_text() == "a\nb\nc\n"  # in dependency order
    assert list(sandboxes.iterdir()) == [sandboxes / "order.txt"]  # worktrees removed at the end
    found = evidence(root, "a")
    assert found["exit_code"] == 0 and found["duration_seconds"] >= 0
    assert (root / ".state" / "logs" / "a" / "1" / "stdout.log").read_text() == "out\n"
    assert (root / ".state" / "logs" / "a" / "1" / "stderr.log").read_text() == "err\n"
    assert found["result"]["status"] == "succeeded"
    assert "run: 3 succeeded of 3 tasks" in done.stdout


def test_each_attempt_runs_in_a_worktree_on_its_task_branch_CONC_REG_012(tmp_path: Path) -> None:
    root = pipeline(tmp_path / "p", task("a", "git rev-parse --abbrev-ref HEAD > ../branch.txt"))
    assert run(root).returncode == 0
    assert (root / ".state" / "sandboxes" / "branch.txt").read_text() == "task/a/1\n"
    branches = subprocess.run(["git", "-C", str(root), "branch", "--list", "task/*"],
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert branches.split() == ["task/a/1"]


def test_dispatch_order_is_priority_then_slack_then_id_EXEC_DOC_003(tmp_path: Path) -> None:
    root = pipeline(
        tmp_path / "p",
        *(task(t, f"echo {t} >> {tmp_path}/order.txt", priority=p)
          for t, p in (("low", 0), ("high", 5), ("mid-b", 1), ("mid-a", 1))),
    )  # fmt: skip
    assert run(root, "-j", "1").returncode == 0
    order = (tmp_path / "order.txt").read_text().split()
    assert order == ["high", "mid-a", "mid-b", "low"]


def test_json_streams_every_event_as_one_object_per_line_EXEC_DOC_010(tmp_path: Path) -> None:
    root = pipeline(tmp_path / "p", task("a", "true"), task("b", "true", dependencies=["a"]))
    done = run(root, "--format", "json")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    for event in events:
        assert {"seq", "ts", "entity", "id", "from", "to", "severity"} <= set(event)
    lines = [e for e in events if e["entity"] != "run"]
    assert [e["seq"] for e in lines] == [line["seq"] for line in journal(root)]
    assert events[-1]["entity"] == "run" and events[-1]["exit_code"] == 0


def test_dry_run_prints_the_order_and_writes_nothing_EXEC_DOC_005(tmp_path: Path) -> None:
    root = pipeline(tmp_path / "p", task("a", f"touch {tmp_path}/ran"),
                    task("b", "true", dependencies=["a"]))  # fmt: skip
    done = run(root, "--dry-run", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["order"] == ["a", "b"]
    assert not (root / ".state" / "current.json").exists()
    assert not (tmp_path / "ran").exists()


def test_target_and_workstream_limit_the_run(tmp_path: Path) -> None:
    root = pipeline(
        tmp_path / "p",
        task("a", "true"),
        task("b", "true", dependencies=["a"]),
        task("c", "true", workstream_id="other"),
    )
    assert run(root, "--target", "b").returncode == 0
    assert statuses(root) == {"a": "succeeded", "b": "succeeded", "c": "ready"}
    bad = run(root, "--target", "nope")
    assert bad.returncode == 2 and "'nope'" in bad.stderr


# --- failures ------------------------------------------------------------------------------


def test_a_failure_is_retried_with_backoff_and_then_succeeds_ERR_FM_005(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    flaky = f'n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}; [ "$n" -ge 2 ]'
    root = pipeline(tmp_path / "p", task("a", flaky, execution={"max_retries": 3}))
    done = run(root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert counter.read_text() == "3\n"
    lines = [line for line in journal(root) if line["id"] == "a" and line["entity"] == "task"]
    fails = [line for line in lines if line["trigger"] == "fail"]
    retries = [line for line in lines if line["trigger"] == "retry"]
    assert len(fails) == len(retries) == 2
    for line in fails + retries:  # ERR-FM-007
        assert line["reason"].startswith("FM-NONZERO-EXIT") and line["severity"] == "warning"
    assert snapshot(root)["tasks"]["a"]["retry_count"] == 2


def test_a_final_failure_blocks_dependents_and_the_rest_goes_on_ERR_FM_006(
    tmp_path: Path,
) -> None:
    root = pipeline(
        tmp_path / "p",
        task("bad", "exit 3"),
        task("after", "true", dependencies=["bad"]),
        task("later", "true", dependencies=["after"]),
        task("other", "true"),
    )
    done = run(root)
    assert done.returncode == 1
    assert statuses(root) == {
        "bad": "failed", "after": "blocked", "later": "blocked", "other": "succeeded",
    }  # fmt: skip
    fail = next(line for line in journal(root) if line["trigger"] == "fail")
    assert fail["reason"].startswith("FM-NONZERO-EXIT: attempt 1: exit 3")
    assert fail["severity"] == "error"  # ERR-FM-007: final
    assert evidence(root, "bad")["failure"]["mode"] == "FM-NONZERO-EXIT"
    kept = root / ".state" / "sandboxes" / "bad.1"
    assert kept.is_dir() and evidence(root, "bad")["sandbox"]["path"] == str(kept)  # CONC-REG-013


def test_fail_fast_stops_dispatching_at_the_first_final_failure_ERR_FM_006(
    tmp_path: Path,
) -> None:
    root = pipeline(tmp_path / "p", task("bad", "exit 1", priority=9), task("next", "true"))
    done = run(root, "-j", "1", "--fail-fast")
    assert done.returncode == 1
    assert statuses(root) == {"bad": "failed", "next": "ready"}
    assert "--fail-fast" in done.stdout


def test_a_timeout_stops_the_whole_process_group_ERR_FM_004(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    command = f"sleep 60 & echo $! > {pids}; sleep 60"
    root = pipeline(tmp_path / "p", task("slow", command, execution={"timeout_seconds": 1}))
    started = time.monotonic()
    done = run(root)
    assert done.returncode == 1 and time.monotonic() - started < 15
    fail = next(line for line in journal(root) if line["trigger"] == "fail")
    assert fail["reason"].startswith("FM-TIMEOUT")
    child = int(pids.read_text())
    time.sleep(0.2)
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text()


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_ERR_FM_004(tmp_path: Path) -> None:
    root = pipeline(tmp_path / "p",
                    task("stubborn", "trap '' TERM; sleep 60", execution={"timeout_seconds": 1}))  # fmt: skip
    load = partial(load_definitions, root)
    events: list[dict[str, Any]] = []
    options = RunOptions(max_workers=1, kill_grace=0.5)
    started = time.monotonic()
    summary = Runner(root, load, load_lifecycles(root), options, events.append).run()
    assert time.monotonic() - started < 10
    assert summary.failed == ["stubborn"]
    assert any(e["reason"].startswith("FM-TIMEOUT") for e in events if e["trigger"] == "fail")


def test_a_process_killed_by_a_signal_is_a_crash(tmp_path: Path) -> None:
    root = pipeline(tmp_path / "p", task("dies", "kill -9 $$"))
    assert run(root).returncode == 1
    fail = next(line for line in journal(root) if line["trigger"] == "fail")
    assert fail["reason"].startswith("FM-CRASH") and "signal 9" in fail["reason"]


def test_a_failing_pre_execution_rule_fails_the_attempt_naming_it_EXEC_DOC_009(
    tmp_path: Path,
) -> None:
    rules = {"pre_execution": ["test -f missing.txt"], "post_execution": []}
    root = pipeline(tmp_path / "p", task("a", f"touch {tmp_path}/ran", validation_rules=rules,
                                         execution={"max_retries": 2}))  # fmt: skip
    assert run(root).returncode == 1
    fail = next(line for line in journal(root) if line["trigger"] == "fail")
    assert (
        fail["reason"].startswith("FM-PRE-VALIDATION") and "test -f missing.txt" in fail["reason"]
    )
    assert snapshot(root)["tasks"]["a"]["failure"] == {"mode": "FM-PRE-VALIDATION", "final": True}
    assert not (tmp_path / "ran").exists()


def test_post_execution_rules_run_in_the_sandbox_EXEC_DOC_009(tmp_path: Path) -> None:
    rules = {"pre_execution": ["git_clean"], "post_execution": ["test -f made.txt"]}
    root = pipeline(tmp_path / "p",
                    task("good", "touch made.txt", validation_rules=rules),
                    task("bad", "true", validation_rules=rules))  # fmt: skip
    assert run(root).returncode == 1
    assert statuses(root) == {"good": "succeeded", "bad": "failed"}
    fail = next(line for line in journal(root) if line["trigger"] == "fail")
    assert fail["reason"].startswith("FM-POST-VALIDATION") and "made.txt" in fail["reason"]


def test_a_task_no_worker_can_take_is_blocked_with_its_failure_mode(tmp_path: Path) -> None:
    agentic = task("ai", None, type="aider", worker_requirements={"capabilities": ["aider"]})
    root = pipeline(tmp_path / "p", agentic, task("after", "true", dependencies=["ai"]),
                    task("fine", "true"))  # fmt: skip
    assert run(root).returncode == 1
    assert statuses(root) == {"ai": "blocked", "after": "blocked", "fine": "succeeded"}
    block = next(line for line in journal(root) if line["trigger"] == "block")
    assert block["reason"].startswith("FM-NO-CAPABLE-WORKER") and block["severity"] == "error"


# --- agents --------------------------------------------------------------------------------


def test_a_declared_aider_worker_runs_the_fake_agent_which_commits(tmp_path: Path) -> None:
    agentic = task(
        "ai", None, type="aider", worker_requirements={"capabilities": ["aider"]},
        context_requirements={"required_files": ["notes.md"], "max_context_tokens": 1000},
    )  # fmt: skip
    root = pipeline(tmp_path / "p", agentic)
    (root / "notes.md").write_text("# notes\n")
    (root / "workers.yaml").write_text(
        'schema_version: "1.0.0"\nworkers:\n  agent-1:\n    capabilities: [aider, shell]\n'
    )
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "notes"], check=True)
    done = run(root)
    assert done.returncode == 0, done.stdout + done.stderr
    found = evidence(root, "ai")
    assert found["commits"] and found["diff"]["files_changed"] == ["notes.md"]
    log = subprocess.run([*git, "log", "--format=%s", "task/ai/1"], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    assert len(log.splitlines()) == 3  # init, notes, and the agent's commit
    workers = snapshot(root)["workers"]
    assert workers["agent-1"]["status"] == "stopped"


def test_an_agent_touching_an_excluded_path_fails_the_attempt_AIDER_INT_002(
    tmp_path: Path,
) -> None:
    agentic = task(
        "ai", None, type="claude", worker_requirements={"capabilities": ["claude"]},
        context_requirements={"exclude_patterns": ["secrets/**"]},
    )  # fmt: skip
    root = pipeline(tmp_path / "p", agentic)
    (root / "workers.yaml").write_text(
        'schema_version: "1.0.0"\nworkers:\n  agent-1:\n    capabilities: [claude]\n'
    )
    done = run(root, env={"FAKE_AGENT_WRITE": "secrets/key.txt"})
    assert done.returncode == 1
    fail = next(line for line in journal(root) if line["trigger"] == "fail")
    assert fail["reason"].startswith("FM-EXCLUDED-PATH") and "secrets/**" in fail["reason"]


# --- interruption --------------------------------------------------------------------------


def _start(root: Path, *args: str) -> subprocess.Popen[str]:
    environ = {**os.environ, **FAST}
    return subprocess.Popen(
        [sys.executable, "-m", "orchestration", "--root", str(root), "run", "--format", "json",
         *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ,
    )  # fmt: skip


def _wait_for(process: subprocess.Popen[str], trigger: str) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        if json.loads(line).get("trigger") == trigger:
            return
    pytest.fail(f"no {trigger} event before the run ended")


def test_first_sigint_drains_and_leaves_no_lease_EXEC_DOC_007(tmp_path: Path) -> None:
    root = pipeline(tmp_path / "p", task("slow", f"sleep 1; touch {tmp_path}/slept", priority=1),
                    task("next", f"touch {tmp_path}/next"))  # fmt: skip
    process = _start(root, "-j", "1")
    _wait_for(process, "start")
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)
    assert process.returncode == 1  # interrupted: not everything ran
    assert (tmp_path / "slept").exists() and not (tmp_path / "next").exists()
    assert statuses(root) == {"slow": "succeeded", "next": "ready"}
    assert all("lease" not in entry for entry in snapshot(root)["tasks"].values())
    assert {w["status"] for w in snapshot(root)["workers"].values()} == {"stopped"}


def test_second_sigint_stops_attempts_and_releases_their_leases_CONC_REG_009(
    tmp_path: Path,
) -> None:
    root = pipeline(tmp_path / "p", task("slow", "sleep 60"))
    process = _start(root)
    _wait_for(process, "start")
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)
    entry = snapshot(root)["tasks"]["slow"]
    assert entry["status"] == "ready" and "lease" not in entry
    assert entry.get("retry_count", 0) == 0
    release = [line for line in journal(root) if line["trigger"] == "release"]
    assert len(release) == 1 and "Ctrl-C" in release[0]["reason"]


# --- workers, next, leases -------------------------------------------------------------------


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestration", "--root", str(root), *args],
                          capture_output=True, text=True, check=False)  # fmt: skip


def test_with_no_declared_worker_run_starts_n_local_shell_workers_EXEC_DOC_006(
    tmp_path: Path,
) -> None:
    root = pipeline(tmp_path / "p", *(task(f"t{n}", "sleep 0.3") for n in range(4)))
    assert run(root, "-j", "3").returncode == 0
    workers = snapshot(root)["workers"]
    assert sorted(workers) == ["local-1", "local-2", "local-3"]
    for entry in workers.values():
        assert "shell" in entry["capabilities"] and entry["local"] is True
        assert entry["status"] == "stopped"
    assigned = {line["id"] for line in journal(root) if line["trigger"] == "assign"}
    assert len(assigned) > 1  # attempts ran in parallel on several workers


def test_a_registered_worker_is_used_instead_of_local_ones_EXEC_DOC_006(tmp_path: Path) -> None:
    root = pipeline(tmp_path / "p", task("a", "true"))
    registered = cli(root, "worker", "register", "box", "-c", "shell", "-l", "pool=ci")
    assert registered.returncode == 0, registered.stderr
    assert cli(root, "worker", "register", "bad", "-c", "nope").returncode == 2
    assert run(root).returncode == 0
    assigned = [line["id"] for line in journal(root) if line["trigger"] == "assign"]
    assert assigned == ["box"]
    listed = json.loads(cli(root, "worker", "list", "--format", "json").stdout)["workers"]
    assert listed["box"]["labels"] == {"pool": "ci"} and listed["box"]["status"] == "stopped"


def test_next_names_the_task_run_dispatches_first_EXEC_DOC_004(tmp_path: Path) -> None:
    root = pipeline(
        tmp_path / "p",
        *(task(t, f"echo {t} >> {tmp_path}/order.txt", priority=p)
          for t, p in (("b", 1), ("a", 1), ("c", 3))),
    )  # fmt: skip
    assert cli(root, "sync").returncode == 0
    asked = json.loads(cli(root, "next", "--all", "--format", "json").stdout)["tasks"]
    assert run(root, "-j", "1").returncode == 0
    assert [row["task_id"] for row in asked] == (tmp_path / "order.txt").read_text().split()


def test_an_orphan_whose_holder_never_heartbeat_is_found_and_rerun_CONC_REG_008(
    tmp_path: Path,
) -> None:
    root = pipeline(tmp_path / "p", task("a", f"echo ran >> {tmp_path}/ran"))
    assert cli(root, "sync").returncode == 0
    from orchestration.state import Store

    with Store.open(root, load_lifecycles(root), actor="test") as store, store.transaction() as tx:
        tx.claim("a", holder="ghost", worker="w", ttl=1.0)  # died before its first heartbeat
        tx.start("a")
    started = time.monotonic()
    done = run(root, env={"ORCHESTRATOR_LEASES_SWEEP_INTERVAL_SECONDS": "0.2"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - started < 10
    abandon = [line for line in journal(root) if line["trigger"] == "abandon"]
    assert len(abandon) == 1 and abandon[0]["reason"].startswith("FM-LEASE-EXPIRED")
    assert (tmp_path / "ran").read_text() == "ran\n"


def test_a_frozen_runner_loses_its_lease_and_its_late_result_is_refused_CONC_REG_007(
    tmp_path: Path,
) -> None:
    out = tmp_path / "ran"
    root = pipeline(tmp_path / "p", task("a", f"sleep 2; echo ran >> {out}"))
    fast = {**os.environ, **FAST, "ORCHESTRATOR_LEASES_TTL_SECONDS": "0.5",
            "ORCHESTRATOR_LEASES_SWEEP_INTERVAL_SECONDS": "0.1"}  # fmt: skip
    first = subprocess.Popen(
        [sys.executable, "-m", "orchestration", "--root", str(root), "run", "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=fast,
    )  # fmt: skip
    pid = root / ".state" / "attempts" / "a" / "1" / "pid"
    deadline = time.monotonic() + 20
    while not pid.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    # Frozen between transactions (frozen inside one, it would hold every writer off).
    with FileLock(root / ".state" / ".lock"):
        first.send_signal(signal.SIGSTOP)  # alive, its attempt running, but its heartbeats stop
        stat = Path(f"/proc/{first.pid}/stat")
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "T":  # stopped before it may lock
            time.sleep(0.01)
    try:
        second = run(root, "--format", "json", env=fast)
    finally:
        first.send_signal(signal.SIGCONT)
    first.communicate(timeout=30)
    assert first.stdout is not None
    assert second.returncode == 0, second.stderr
    assert [e["trigger"] for e in map(json.loads, second.stdout.splitlines())].count("adopt") == 1
    lines = journal(root)
    refused = [line for line in lines if line["trigger"] == "refuse"]
    assert len(refused) == 1 and refused[0]["reason"].startswith("FM-LEASE-EXPIRED: late complete")
    assert [line["trigger"] for line in lines if line["trigger"] == "complete"] == ["complete"]
    assert out.read_text() == "ran\n"  # the attempt ran once; only its owner recorded it


def test_run_reports_potential_deadlocks_before_starting_CONC_REG_005(tmp_path: Path) -> None:
    registry = """@{
    schema_version = '1.0.0'
    resources = @{
        gpu = @{ kind = 'counted'; capacity = 1 }
        db = @{ kind = 'counted'; capacity = 1 }
    }
}
"""
    root = pipeline(tmp_path / "p", task("x", "true", resources={"gpu": 1, "db": 1}),
                    task("y", "true", resources={"db": 1, "gpu": 1}), resources=registry)  # fmt: skip
    dry = run(root, "--dry-run")
    assert dry.returncode == 1 and "x, y" in dry.stderr and "FM-DEADLOCK" in dry.stderr
    done = run(root)
    assert done.returncode == 1 and "FM-DEADLOCK" in done.stdout
    assert not (root / ".state" / "transitions.jsonl").exists()  # nothing started


def test_a_runner_frozen_around_its_claim_never_runs_what_it_lost_CONC_REG_011(
    tmp_path: Path,
) -> None:
    out = tmp_path / "ran"
    root = pipeline(tmp_path / "p", task("a", f"echo ran >> {out}; sleep 0.5"))
    fast = {**os.environ, **FAST, "ORCHESTRATOR_LEASES_TTL_SECONDS": "0.5",
            "ORCHESTRATOR_LEASES_SWEEP_INTERVAL_SECONDS": "0.1"}  # fmt: skip
    first = subprocess.Popen(
        [sys.executable, "-m", "orchestration", "--root", str(root), "run", "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=fast,
    )  # fmt: skip
    assert first.stdout is not None
    for line in first.stdout:
        if json.loads(line).get("trigger") == "start":
            break
    first.send_signal(signal.SIGSTOP)  # somewhere between its claim and its process
    try:
        time.sleep(0.6)  # past its lease
        second = run(root, env=fast)
    finally:
        first.send_signal(signal.SIGCONT)
    first.communicate(timeout=30)
    assert second.returncode == 0, second.stderr
    assert out.read_text() == "ran\n"  # exactly once, whoever ran it
    lines = journal(root)
    assert [line["trigger"] for line in lines].count("complete") == 1
    assert [line["trigger"] for line in lines].count("refuse") == 1
    assert verify(root, load_lifecycles(root)) == []


def test_a_dependency_cycle_stops_run_before_anything_starts_DAG_VIEW_001(tmp_path: Path) -> None:
    root = pipeline(tmp_path / "p", task("a", "true", dependencies=["b"]),
                    task("b", "true", dependencies=["a"]))  # fmt: skip
    done = run(root)
    assert done.returncode == 1 and "cycle" in done.stderr and "tasks/ws/a.json" in done.stderr
    assert not (root / ".state" / "transitions.jsonl").exists()


# --- definitions: cached, and validated again when dispatched ----------------------------


def test_a_task_file_made_invalid_after_the_cache_was_written_never_runs(tmp_path: Path) -> None:
    out = tmp_path / "ran"
    root = pipeline(tmp_path / "p", task("a", f"echo a >> {out}"), task("b", f"echo b >> {out}"))
    assert run(root, "--dry-run").returncode == 0  # checks the files and caches them
    path = root / "tasks" / "ws" / "b.json"
    path.write_text(path.read_text().replace('"timeout_seconds": 30', '"timeout_seconds": 0'))
    done = run(root)
    assert done.returncode == 1
    assert "tasks/ws/b.json" in done.stderr and "/execution/timeout_seconds" in done.stderr
    assert not out.exists()  # nothing ran: the definitions are refused whole


def _sync(root: Path) -> None:
    """``orchestration sync``: the state exists, so that a run resumes (and syncs nothing)."""
    command = [sys.executable, "-m", "orchestration", "--root", str(root), "sync"]
    subprocess.run(command, check=True, capture_output=True)


def test_a_task_file_made_invalid_while_the_run_goes_on_is_blocked_not_run(
    tmp_path: Path,
) -> None:
    out = tmp_path / "ran"
    root = pipeline(tmp_path / "p", task("a", f"echo a >> {out}"),
                    task("b", f"echo b >> {out}", dependencies=["a"]),
                    task("c", f"echo c >> {out}", dependencies=["b"]))  # fmt: skip
    _sync(root)

    def load() -> Definitions:
        definitions = load_definitions(root)  # valid when loaded ...
        path = root / "tasks" / "ws" / "b.json"  # ... and edited before b is dispatched
        path.write_text(path.read_text().replace('"shell"', '"bash"'))
        return definitions

    events: list[dict[str, Any]] = []
    summary = Runner(root, load, load_lifecycles(root), RunOptions(max_workers=1),
                     events.append).run()  # fmt: skip
    assert out.read_text() == "a\n"
    assert summary.blocked == ["b", "c"] and summary.exit_code == 1
    [block] = [e for e in events if e["id"] == "b" and e["trigger"] == "block"]
    assert block["reason"].startswith("invalid definition: tasks/ws/b.json:")
    assert "/type" in block["reason"] and "unblock" in block["reason"]


def test_a_task_edited_after_it_was_synced_is_blocked_not_run(tmp_path: Path) -> None:
    out = tmp_path / "ran"
    root = pipeline(tmp_path / "p", task("a", f"echo a >> {out}"),
                    task("b", f"echo b >> {out}", dependencies=["a"]))  # fmt: skip
    _sync(root)

    def load() -> Definitions:
        definitions = load_definitions(root)
        path = root / "tasks" / "ws" / "b.json"
        path.write_text(path.read_text().replace('"Task b"', '"Task b", "priority": 5'))
        return definitions

    events: list[dict[str, Any]] = []
    summary = Runner(root, load, load_lifecycles(root), RunOptions(max_workers=1),
                     events.append).run()  # fmt: skip
    assert out.read_text() == "a\n" and summary.blocked == ["b"]
    [block] = [e for e in events if e["id"] == "b" and e["trigger"] == "block"]
    assert "edited after this run synced it" in block["reason"]
    again = run(root)  # syncs the edit; b stays blocked until a person unblocks it
    assert again.returncode == 1 and statuses(root)["b"] == "blocked"
    assert snapshot(root)["tasks"]["b"]["priority"] == 5


def test_a_resumed_run_of_an_unchanged_pipeline_syncs_nothing(tmp_path: Path) -> None:
    root = pipeline(tmp_path / "p", task("a", "true"), task("b", "true", dependencies=["a"]))
    assert run(root, "--target", "a").returncode == 0
    done = run(root, "--format", "json")
    assert done.returncode == 0, done.stderr
    triggers = [json.loads(line).get("trigger") for line in done.stdout.splitlines()]
    assert "create" not in triggers and "redefine" not in triggers
    assert statuses(root) == {"a": "succeeded", "b": "succeeded"}
