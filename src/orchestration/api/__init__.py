"""The REST API agents work through: FastAPI over the one store (AGENT-WF-013..016).

Stability: provisional. The paths, the request and response shapes and the
problem documents are documented by the app's OpenAPI (``GET /openapi.json``,
``GET /docs``); fields may be added, none removed without a new API version
(``/api/v2``).

:func:`orchestration.api.app.create_app` builds the application around an open
:class:`orchestration.enforcement.workflow.Workflow`; ``orchestration serve``
runs it under uvicorn (:mod:`orchestration.api.server`). Agents call it with
:mod:`orchestration.sdk`, which needs only httpx. Every error is an RFC 9457
``application/problem+json`` document naming the requirement it enforces
(:mod:`orchestration.api.problems`).

This package imports FastAPI: the CLI imports it only inside ``serve``.
"""

from __future__ import annotations

__all__: list[str] = []
