"""What ``orchestration run`` is asked to do, and what it reports having done.

Stability: provisional (``run``'s flags, events and exit codes are stable).

:class:`RunOptions` gathers the flags and the configuration (EXEC-DOC-013);
:class:`RunSummary` is the run's last event and decides its exit code
(EXEC-DOC-011). Both are re-exported by :mod:`.runner`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["KILL_GRACE", "RunOptions", "RunSummary"]

KILL_GRACE = 10.0  # seconds between SIGTERM and SIGKILL of a timed-out attempt (ERR-FM-004)


@dataclass(frozen=True)
class RunOptions:
    """How ``run`` runs (defaults from the spec's configuration table)."""

    max_workers: int | None = None  # None: the declared workers, or one local per CPU
    workstream: str | None = None
    target: str | None = None
    fail_fast: bool = False
    ttl: float = 20.0  # leases.ttl_seconds
    sweep_interval: float = 5.0  # leases.sweep_interval_seconds
    retry_base: float = 1.0  # retry.base_seconds
    retry_max: float = 300.0  # retry.max_seconds
    kill_grace: float = KILL_GRACE

    @classmethod
    def configured(cls, config: Config, **given: Any) -> RunOptions:
        """Options from the resolved configuration (EXEC-DOC-013), then the flags ``given``.

        A flag given as ``None`` (not on the command line) leaves the configured value.
        """
        values: dict[str, Any] = {
            "max_workers": config.run.max_workers,
            "ttl": config.leases.ttl_seconds,
            "sweep_interval": config.leases.sweep_interval_seconds,
            "retry_base": config.retry.base_seconds,
            "retry_max": config.retry.max_seconds,
        }
        values.update({key: value for key, value in given.items() if value is not None})
        return cls(**values)


@dataclass
class RunSummary:
    """What a run did; ``exit_code`` is 0 only when nothing failed (EXEC-DOC-011)."""

    scope: int = 0
    succeeded: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # for good, in scope, at the end
    blocked: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # for a person or another worker
    retries: int = 0
    refused: int = 0  # late results fenced off
    adopted: int = 0
    stopped: str = ""  # why the run stopped early, "" when it did not

    @property
    def exit_code(self) -> int:
        """0 when every dispatched task succeeded or was skipped, else 1."""
        return 1 if self.failed or self.blocked or self.stopped else 0

    def document(self) -> dict[str, Any]:
        """The summary as the last event of ``run --format json``."""
        return {
            "scope": self.scope,
            "succeeded": len(self.succeeded),
            "failed": self.failed,
            "blocked": self.blocked,
            "waiting": self.waiting,
            "retries": self.retries,
            "refused": self.refused,
            "adopted": self.adopted,
            "stopped": self.stopped,
            "exit_code": self.exit_code,
        }
