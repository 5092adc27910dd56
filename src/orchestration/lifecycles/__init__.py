"""Lifecycles: YAML state machines compiled into ``transitions`` machines (SM-DEF).

Stability: stable. The names in ``__all__`` are the public API.

Tasks, workstreams and workers move through lifecycles declared under
``docs/state_machines/``. :func:`load_lifecycles` checks the files (every
problem, located) and compiles each into one machine shared by all entities
of its kind; :meth:`Lifecycle.apply` is what the store calls to move one
entity, and raises :class:`TransitionRejected` when the lifecycle forbids it.

Importing this package does not import ``transitions``: the first lifecycle
compiled does (MOD-IDX-005). Nor does it import pydantic or PyYAML: only a
lifecycle file not found valid in the cache is read and checked with them.
"""

from __future__ import annotations

from .diagram import state_machine_doc, write_state_machine_doc
from .guards import GUARDS
from .loading import load_lifecycle, load_lifecycles
from .machine import (
    DeriveRule,
    Lifecycle,
    LifecycleState,
    LifecycleTransition,
    TransitionRejected,
)

__all__ = [
    "DeriveRule",
    "GUARDS",
    "Lifecycle",
    "LifecycleState",
    "LifecycleTransition",
    "TransitionRejected",
    "load_lifecycle",
    "load_lifecycles",
    "state_machine_doc",
    "write_state_machine_doc",
]
