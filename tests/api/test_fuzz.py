"""schemathesis against the served app's own OpenAPI: no request makes it fail (AGENT-WF-015)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api.served import agent_pipeline, agent_task, serving
from orchestration.sdk import AgentClient


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A served pipeline, the schema it publishes, and a valid phase token for task t1."""
    folder: Path = tmp_path_factory.mktemp("fuzz")
    root = agent_pipeline(folder / "p", agent_task("t1"), agent_task("t2"))
    with serving(root) as served, AgentClient("fuzzer", served.url) as agent:
        agent.claim_task()
        schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
        yield {"schema": schema, "url": served.url, "token": agent.token}


@pytest.fixture(scope="module")
def api_schema(fuzzed: dict[str, Any]) -> Any:
    return fuzzed["schema"]


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_server_fail_AGENT_WF_015(case: Any, fuzzed: dict[str, Any]) -> None:
    if case.operation.path == "/api/v1/events":  # a valid wait (30 s by default) only slows
        query = case.query if case.query is not None else {}
        try:
            valid = 0 < float(query.get("wait", 30)) <= 60
        except (TypeError, ValueError):
            valid = False
        if valid:
            query["wait"] = "0"
            case.query = query
    response = case.call(headers={"Authorization": f"Bearer {fuzzed['token']}"})
    assert response.status_code < 500, (case.operation.label, response.text)
    if response.status_code >= 400:  # every client error is a problem document naming its ID
        [content_type] = response.headers["content-type"]  # schemathesis keeps every value
        assert content_type.startswith("application/problem+json"), content_type
        assert response.json()["requirement"], response.text
