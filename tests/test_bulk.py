"""Pausing the cyclic collector: nothing leaks, and resuming costs nothing."""

from __future__ import annotations

import gc

from orchestration.bulk import gc_paused


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_the_collector_is_paused_inside_and_restored_after() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_resuming_does_not_start_a_collection_over_what_was_built() -> None:
    with gc_paused():
        built = [[number] for number in range(200_000)]
    young, _, _ = gc.get_count()
    assert young < 700  # the first threshold: no collection is due
    assert len(built) == 200_000


def test_cycles_made_while_paused_are_still_collected() -> None:
    collected_before = sum(stat["collected"] for stat in gc.get_stats())
    with gc_paused():
        first, second = Node(), Node()
        first.other, second.other = second, first
    del first, second
    gc.collect()
    assert sum(stat["collected"] for stat in gc.get_stats()) >= collected_before + 2
