"""Problem documents: every API error as ``application/problem+json`` (RFC 9457, AGENT-WF-015).

Stability: provisional (the members are stable; ``type`` URIs are stable per title).

Each error the API returns is a JSON object::

    {"type": "urn:orchestration:problem:gate-failed", "title": "Gate failed", "status": 409,
     "detail": "gate 'all_tests_pass' refuses leaving IMPL for REVIEW: ...",
     "instance": "/api/v1/tasks/transition", "requirement": "AGENT-WF-004"}

with, for a 422, ``errors``: one ``{"pointer", "message"}`` per invalid value
of the request body (an RFC 6901 pointer into it, ``""`` for the body as a
whole), or ``{"parameter", "in", "message"}`` for a query, path or header
parameter. A 401 carries ``WWW-Authenticate: Bearer``.

:func:`install` maps onto problems: :class:`~orchestration.enforcement.workflow.Refused`
(the workflow's refusals), request validation (422; a body that is not JSON:
400), unknown routes and methods (404, 405), and anything unexpected (500,
with one line of detail; the traceback goes to the server's log).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..enforcement.workflow import Refused

__all__ = [
    "GENERIC_REQUIREMENT",
    "MEDIA_TYPE",
    "FieldProblem",
    "ProblemDocument",
    "install",
    "problem_response",
    "request_errors",
]

MEDIA_TYPE = "application/problem+json"
"""The media type of every error response."""

GENERIC_REQUIREMENT = "AGENT-WF-015"
"""The requirement a request error cites when no more specific one applies."""

_LOG = logging.getLogger("orchestration.api")
_SLUG = re.compile(r"[^a-z0-9]+")
_TITLES = {
    400: "Malformed request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid request",
    500: "Internal server error",
}


class FieldProblem(BaseModel):
    """One invalid value of a request (422)."""

    model_config = ConfigDict(extra="allow")

    pointer: str | None = Field(
        default=None, description="RFC 6901 pointer into the request body; '' is the whole body."
    )
    parameter: str | None = Field(default=None, description="The query, path or header name.")
    message: str


class ProblemDocument(BaseModel):
    """An error: RFC 9457 problem details with the violated requirement ID."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="A URI naming the kind of problem; stable per title.")
    title: str = Field(description="A short, stable summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong in this request, and what to do.")
    instance: str = Field(description="The path of the request.")
    requirement: str = Field(description="The requirement ID of the spec that applies.")
    errors: list[FieldProblem] | None = Field(
        default=None, description="Each invalid value (422 only)."
    )


def problem_response(
    status: int,
    title: str,
    detail: str,
    requirement: str,
    *,
    instance: str,
    errors: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A ``problem+json`` response; a 401 always carries ``WWW-Authenticate: Bearer``."""
    document: dict[str, Any] = {
        "type": f"urn:orchestration:problem:{_SLUG.sub('-', title.lower()).strip('-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "requirement": requirement,
    }
    if errors is not None:
        document["errors"] = [dict(error) for error in errors]
    extra = dict(headers or {})
    if status == 401:
        extra.setdefault("WWW-Authenticate", "Bearer")
    return Response(orjson.dumps(document), status_code=status, media_type=MEDIA_TYPE,
                    headers=extra)  # fmt: skip


def _pointer(parts: Sequence[Any]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def request_errors(details: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """FastAPI's validation errors as problem ``errors``: body pointers, named parameters."""
    errors: list[dict[str, str]] = []
    for detail in details:
        loc = tuple(detail.get("loc", ()))
        message = str(detail.get("msg", "invalid value"))
        if detail.get("type") == "missing":
            message = "required, and missing"
        elif detail.get("type") == "extra_forbidden":
            message = "unknown field: remove it (see the request schema in /docs)"
        if loc and loc[0] == "body":
            errors.append({"pointer": _pointer(loc[1:]), "message": message})
        elif loc:
            name = ".".join(str(part) for part in loc[1:]) or str(loc[0])
            errors.append({"parameter": name, "in": str(loc[0]), "message": message})
        else:
            errors.append({"pointer": "", "message": message})
    return errors


def _validation_detail(errors: Sequence[Mapping[str, str]]) -> str:
    shown = "; ".join(
        f"{error.get('pointer') if 'pointer' in error else error.get('parameter')}: "
        f"{error['message']}"
        for error in errors[:5]
    )
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return f"the request is invalid: {shown}{more}; the schemas are at /docs"


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` with a problem document."""

    async def refused(request: Request, error: Exception) -> Response:
        assert isinstance(error, Refused)
        errors: list[Mapping[str, Any]] | None = None
        if error.status == 422:
            errors = error.problems or [{"pointer": error.pointer or "", "message": error.detail}]
        headers = {}
        if error.status == 401:
            headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return problem_response(
            error.status, error.title, error.detail, error.requirement,
            instance=request.url.path, errors=errors, headers=headers,
        )  # fmt: skip

    async def invalid(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        details = list(error.errors())
        malformed = [d for d in details if d.get("type") == "json_invalid"]
        if malformed:
            where = malformed[0].get("ctx", {}).get("error", "")
            detail = (
                f"the request body is not valid JSON ({where or 'cannot be parsed'}); send a "
                "JSON object with Content-Type: application/json"
            )
            return problem_response(400, "Malformed JSON", detail, GENERIC_REQUIREMENT,
                                    instance=request.url.path)  # fmt: skip
        if any(isinstance(d.get("input"), bytes) for d in details):  # not read as JSON
            kind = request.headers.get("content-type") or "none"
            detail = (
                f"the request body was not read as JSON (Content-Type: {kind}); send a JSON "
                "object with Content-Type: application/json"
            )
            return problem_response(400, "Malformed request", detail, GENERIC_REQUIREMENT,
                                    instance=request.url.path)  # fmt: skip
        errors = request_errors(details)
        return problem_response(422, "Invalid request", _validation_detail(errors),
                                GENERIC_REQUIREMENT, instance=request.url.path,
                                errors=errors)  # fmt: skip

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        status = error.status_code
        if status == 404:
            detail = f"there is no resource at {request.url.path}; the API is listed at /docs"
        elif status == 405:
            allowed = (error.headers or {}).get("Allow", "")
            detail = f"{request.method} is not allowed on {request.url.path}" + (
                f"; use {allowed}" if allowed else ""
            )
        else:
            detail = str(error.detail)
        title = _TITLES.get(status, "Request error")
        return problem_response(status, title, detail, GENERIC_REQUIREMENT,
                                instance=request.url.path,
                                headers=dict(error.headers or {}))  # fmt: skip

    app.add_exception_handler(Refused, refused)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_middleware(_Unexpected)


class _Unexpected:
    """Answer an exception no handler took with a 500 problem, and keep the connection.

    (Starlette's own last resort answers, then raises the exception again, and
    the server drops the client's keep-alive connection.) The traceback goes
    to the log of ``orchestration.api``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as error:
            if started:
                raise
            line = f"{type(error).__name__}: {error}".splitlines()[0][:300]
            path = str(scope.get("path", ""))
            _LOG.error("unexpected error on %s %s: %s", scope.get("method"), path, line,
                       exc_info=error)  # fmt: skip
            detail = f"unexpected error ({line}); a bug in orchestration: see the server's log"
            response = problem_response(500, _TITLES[500], detail, GENERIC_REQUIREMENT,
                                        instance=path)  # fmt: skip
            await response(scope, receive, send)
