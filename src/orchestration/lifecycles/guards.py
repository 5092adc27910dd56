"""The named guards a lifecycle transition may require (SM-DEF-001, SM-DEF-002).

Stability: stable. A guard may be added in a minor version; none is removed or
changes meaning without a new lifecycle ``schema_version``.

A guard is a fact about one entity that the caller of
:meth:`~orchestration.lifecycles.Lifecycle.apply` establishes (the store
knows the dependencies, retry counts and leases) and passes by name. The
lifecycle itself never looks anything up: it only checks that every guard of
the transition is true, so lifecycles stay pure data and cheap to apply.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["GUARDS", "GUARD_DESCRIPTIONS"]

GUARD_DESCRIPTIONS: Mapping[str, str] = {
    "attempts_remaining": "The task's retry count is below `execution.max_retries` (SM-DEF-007).",
    "dependencies_succeeded": "Every dependency of the task succeeded or was skipped (SM-DEF-005).",
    "lease_expired": "The entity's lease passed its expiry without a heartbeat.",
    "lease_valid": "The caller holds the entity's current lease (epoch and expiry).",
}

GUARDS: frozenset[str] = frozenset(GUARD_DESCRIPTIONS)
