"""Agent workflow enforcement: contract, artifacts, gates, phase tokens and tools (AGENT-WF).

Stability: provisional.

Coding agents move a task through the phases of ``agent_workflow.yaml``
(by default PLAN → TDD → IMPL → REVIEW → COMPLETE). Leaving a phase takes the
artifacts the contract lists (:mod:`.artifacts`) and the gates that guard it
(:mod:`.gates`); each phase token is a signed JWT (:mod:`.tokens`); each tool
call is checked against the phase's permissions and confined to the task's
sandbox (:mod:`.tools`).
"""

from __future__ import annotations

__all__: list[str] = []
