"""What the watch follows, and when a burst of events is over (OBS-008)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestration.watching import Debouncer, Kind, definition_kinds
from orchestration.watching.following import Burst, Follower

from strategies import bursts

QUIET, LONGEST = 0.2, 2.0


def flushes(times: list[float], quiet: float, longest: float) -> list[list[float]]:
    """The events at ``times`` grouped into the bursts a Debouncer ends, as a clock would."""
    debouncer = Debouncer(quiet, longest)
    groups: list[list[float]] = [[]]
    for now in times:
        deadline = debouncer.deadline
        if deadline is not None and now >= deadline:
            debouncer.flush()
            groups.append([])
        debouncer.add(now)
        groups[-1].append(now)
    return [group for group in groups if group]


@given(bursts(QUIET, LONGEST))
def test_events_closer_than_the_window_are_one_burst_OBS_008(times: list[float]) -> None:
    assert flushes(times, QUIET, LONGEST) == [times]


@given(st.lists(st.floats(0, 10), max_size=100).map(sorted))
def test_no_burst_outlasts_the_cap_and_bursts_are_apart_OBS_008(times: list[float]) -> None:
    groups = flushes(times, QUIET, LONGEST)
    assert [t for group in groups for t in group] == times
    for group in groups:
        assert group[-1] - group[0] < LONGEST
    for before, after in zip(groups, groups[1:], strict=False):
        # The next burst starts once the last was quiet long enough, or at its cap.
        assert after[0] >= min(before[-1] + QUIET, before[0] + LONGEST)


def test_a_debouncer_without_events_has_no_deadline() -> None:
    debouncer = Debouncer(QUIET, LONGEST)
    assert debouncer.deadline is None
    debouncer.add(5.0)
    debouncer.add(5.1)
    assert debouncer.deadline == pytest.approx(5.3)
    assert debouncer.flush() == 5.0
    assert debouncer.deadline is None


def test_a_burst_is_taken_once_it_is_quiet_and_stop_ends_the_wait() -> None:
    burst = Burst(Debouncer(0.05, 1.0))
    stop = threading.Event()
    for name in ("tasks/ws/a.json", "tasks/ws/b.json", "tasks/ws/a.json"):
        burst.add({Kind.TASKS}, name)
    began = time.monotonic()
    changes = burst.take(stop)
    assert changes is not None
    assert changes.paths == {"tasks/ws/a.json", "tasks/ws/b.json"}
    assert changes.kinds == {Kind.TASKS} and not changes.rescan
    assert changes.first is not None and changes.first <= began
    threading.Timer(0.05, stop.set).start()
    assert burst.take(stop) is None  # nothing more came: only the stop ends the wait


@pytest.mark.parametrize(
    ("rel", "kinds"),
    [
        ("tasks/ws-001/a.json", {Kind.TASKS}),
        ("tasks/ws-001/4913", set()),  # vim checks that it may write the folder
        ("tasks/ws-001/.a.json.swp", set()),
        ("tasks/ws-001/a.json~", set()),
        ("tasks/ws-001/.a.json.tmp1234", set()),
        ("docs/state_machines/task_lifecycle.yaml", {Kind.LIFECYCLES}),
        ("docs/state_machines/.task_lifecycle.yaml.swp", set()),
        ("docs/execution_model/STATE_MACHINE.md", set()),
        ("capabilities/registry.psd1", {Kind.CAPABILITIES}),
        ("capabilities/resources.yaml", {Kind.RESOURCES}),
        ("capabilities/registry.psd1~", set()),
        ("agent_workflow.yaml", {Kind.CONTRACT}),
        ("4913", set()),
        ("README.md", set()),
    ],
)
def test_only_definition_files_count_OBS_007(rel: str, kinds: set[Kind]) -> None:
    assert definition_kinds(rel) == kinds


def test_folders_appearing_or_going_count_OBS_007() -> None:
    assert definition_kinds("tasks/ws-002", directory=True) == {Kind.TASKS}
    assert definition_kinds("capabilities", directory=True) == {Kind.CAPABILITIES, Kind.RESOURCES}
    assert definition_kinds("docs/state_machines", directory=True) == {Kind.LIFECYCLES}
    assert definition_kinds(".state", directory=True) == set()


def test_dropped_events_make_the_next_burst_compare_every_file(tmp_path: Path) -> None:
    """watchdog only logs that the kernel's queue overflowed: that warning starts a rescan."""
    (tmp_path / "tasks").mkdir()
    burst = Burst(Debouncer(0.01, 1.0))
    follower = Follower(tmp_path, burst)
    follower.start()
    try:
        logging.getLogger("watchdog.observers.inotify_c").warning(
            "Inotify queue overflowed; filesystem events were lost"
        )
        changes = burst.take(threading.Event())
    finally:
        follower.stop()
    assert changes is not None and changes.rescan and changes.kinds == set(Kind)
