"""The observable state under ``.state/``: journal, snapshot, index, recovery.

Stability: provisional.

Only this package writes under ``.state/`` (STATE-OBS-001). Everything else
opens a :class:`Store` and commits through it; readers read the files.
"""

from __future__ import annotations

from .journal import Journal, JournalError
from .snapshot import SnapshotError, State, read_snapshot
from .store import StateError, Store, Transaction, replay

__all__ = [
    "Journal",
    "JournalError",
    "SnapshotError",
    "State",
    "StateError",
    "Store",
    "Transaction",
    "read_snapshot",
    "replay",
]
