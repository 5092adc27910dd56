"""`plan` warns of resource orderings that can deadlock, end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestration.cli import main
from orchestration.planning.deadlocks import Deadlock, plan_deadlocks
from orchestration.planning.plan import PlanTask, build_plan

from conftest import WriteTask

Capture = pytest.CaptureFixture[str]


def _plan(root: Path, capsys: Capture, *args: str) -> tuple[int, str]:
    code = main(["--root", str(root), "plan", *args])
    return code, capsys.readouterr().out


def _json(root: Path, capsys: Capture, *args: str) -> dict[str, Any]:
    code, out = _plan(root, capsys, "--format", "json", *args)
    assert code == 0
    document: dict[str, Any] = json.loads(out)
    return document


def test_plan_reports_opposite_resource_orders_in_text_and_json_CONC_REG_005(
    tmp_path: Path, write_task: WriteTask, capsys: Capture
) -> None:
    """Two tasks that can run together, taking gpu and db in opposite orders."""
    write_task("x", resources={"gpu": 1, "db": 1})
    write_task("y", resources={"db": 1, "gpu": 1})
    write_task("z", dependencies=["x"], resources={"db": 1, "gpu": 1})  # after x: never beside it

    code, text = _plan(tmp_path, capsys)
    assert code == 0  # a warning: the plan itself is sound
    warning = text[text.index("warning:") :].splitlines()
    assert warning[0].startswith("warning: 1 potential deadlock (CONC-REG-005, FM-DEADLOCK)")
    assert warning[1] == (
        "  tasks 'x', 'y' can run at the same time and take db → gpu → db in opposite orders"
    )
    assert warning[2].startswith("  to fix: list shared resources in the same order")
    assert text.index("critical path:") < text.index("warning:")  # after the summary

    deadlocks = _json(tmp_path, capsys)["deadlocks"]
    assert [(d["tasks"], d["resources"]) for d in deadlocks] == [(["x", "y"], ["db", "gpu", "db"])]
    assert deadlocks[0]["message"] == warning[1].strip()
    assert "same order" in deadlocks[0]["hint"]


def test_plan_json_has_empty_deadlocks_and_text_no_warning_when_orders_agree_CONC_REG_005(
    tmp_path: Path, write_task: WriteTask, capsys: Capture
) -> None:
    write_task("x", resources={"gpu": 1, "db": 1})
    write_task("y", resources={"gpu": 2, "db": 1})
    write_task("z", resources={"db": 1})
    assert _json(tmp_path, capsys)["deadlocks"] == []
    code, text = _plan(tmp_path, capsys)
    assert code == 0 and "warning" not in text and "deadlock" not in text


def test_a_narrowed_plan_knows_tasks_ordered_through_one_outside_it_CONC_REG_005(
    tmp_path: Path, write_task: WriteTask, capsys: Capture
) -> None:
    """x → m (another workstream) → y: x and y never run together, even in `plan -w ws-a`."""
    write_task("x", "ws-a", resources={"gpu": 1, "db": 1})
    write_task("m", "ws-b", dependencies=["x"])
    write_task("y", "ws-a", dependencies=["m"], resources={"db": 1, "gpu": 1})
    write_task("w", "ws-a", resources={"db": 1, "gpu": 1})  # beside x: a deadlock
    for args in ((), ("--workstream", "ws-a")):
        found = _json(tmp_path, capsys, *args)["deadlocks"]
        assert [d["tasks"] for d in found] == [["w", "x"]], args
    assert _json(tmp_path, capsys, "--target", "y")["deadlocks"] == []  # w is not needed by y


def test_a_cached_plan_still_reports_deadlocks_CONC_REG_005(
    tmp_path: Path, write_task: WriteTask, capsys: Capture
) -> None:
    """The resources each task claims are kept in the plan cache with the rest."""
    write_task("x", resources={"gpu": 1, "db": 1})
    write_task("y", resources={"db": 1, "gpu": 1})
    cold = _json(tmp_path, capsys)["deadlocks"]
    warm = _json(tmp_path, capsys)["deadlocks"]
    assert cold == warm and len(warm) == 1


def test_plan_deadlocks_names_pairs_then_longer_cycles_CONC_REG_005() -> None:
    """Three tasks in a longer cycle: a → b, b → c, c → a, and one pair."""
    tasks = {
        "p": PlanTask("p", "ws", "p", (), (), None, ("a", "b")),
        "q": PlanTask("q", "ws", "q", (), (), None, ("b", "c")),
        "r": PlanTask("r", "ws", "r", (), (), None, ("c", "a")),
        "s": PlanTask("s", "ws", "s", (), (), None, ("b", "a")),
    }
    assert plan_deadlocks(build_plan(tasks)) == [
        Deadlock(("p", "s"), ("a", "b", "a")),
        Deadlock(("p", "q", "r"), ("a", "b", "c", "a")),
    ]


def test_the_terminal_table_ends_with_the_same_warning_CONC_REG_005() -> None:
    from rich.console import Console

    from orchestration.planning.render import to_rich

    tasks = {
        "x": PlanTask("x", "ws", "x", (), (), None, ("gpu", "db")),
        "y": PlanTask("y", "ws", "y", (), (), None, ("db", "gpu")),
    }
    plan = build_plan(tasks)
    console = Console(record=True, width=200, color_system=None)
    console.print(to_rich(plan, deadlocks=plan_deadlocks(plan)))
    text = console.export_text()
    assert "warning: 1 potential deadlock (CONC-REG-005, FM-DEADLOCK)" in text
    assert "tasks 'x', 'y' can run at the same time and take db → gpu → db" in text
