"""Named crash points, for crash tests of the store (as Dagster's are reached).

Stability: internal.

When ``ORCHESTRATOR_CRASH_POINT`` names a point, the process kills itself
with SIGKILL on reaching it, exactly as a power cut or an OOM kill would stop
it there. Points:

- ``journal.partial_write``: half of a transaction's bytes are appended.
- ``journal.after_fsync``: the transaction is durable, not yet acknowledged.
- ``atomic.before_rename``: a replacement file is written, not yet renamed.
- ``atomic.before_dir_fsync``: renamed, the directory not yet fsynced.
- ``seal.before_new_journal``: journal segments sealed and in the manifest,
  the live journal still holding their lines.
- ``seal.before_snapshot``: the new, empty live journal in place, the
  snapshot still pointing into the old one.

Unset (always, outside tests), a point costs one comparison.
"""

from __future__ import annotations

import os
import signal

__all__ = ["CRASH_POINT", "crash_point"]

CRASH_POINT = os.environ.get("ORCHESTRATOR_CRASH_POINT", "")


def crash_point(name: str) -> None:
    """Die here, by SIGKILL, if the environment asks for this point."""
    if name == CRASH_POINT:
        os.kill(os.getpid(), signal.SIGKILL)
