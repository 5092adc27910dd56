"""Execution: the scheduler, attempts, sandboxes and worker adapters behind ``orchestration run``.

Stability: provisional.

``run`` dispatches ready tasks to workers; each attempt runs in its own git
worktree (:mod:`.sandbox`) through the adapter its task type names
(:mod:`.adapters`), with its validation rules (:mod:`.rules`) around it. What
must outlive a crashed runner (leases, process ids, exit statuses) is recorded
by :mod:`orchestration.state`, never kept only in memory.
"""

from __future__ import annotations

__all__: list[str] = []
