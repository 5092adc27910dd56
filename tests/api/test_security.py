"""Phase tokens and sandbox paths: what the API refuses, and what it records (AGENT-WF-009, -011)."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from api.served import PLANNED, SECRET, Serve, agent_task, into_impl, into_review, problem_of
from orchestration.sdk import AgentClient, Forbidden, InvalidToken

PLAN = PLANNED


def token(
    secret: str, *, task_id: str = "t1", phase: str = "PLAN", exp: float | None = None
) -> str:
    now = int(time.time())
    payload = {"sub": "agent-1", "task_id": task_id, "phase": phase, "jti": uuid.uuid4().hex,
               "iat": now, "exp": int(exp if exp is not None else now + 600)}  # fmt: skip
    return jwt.encode(payload, secret, algorithm="HS256")


def test_forged_and_expired_tokens_are_refused_with_401_AGENT_WF_009(serve: Serve) -> None:
    served = serve(agent_task("t1"))
    with served.agent("agent-1") as agent, served.http() as http:
        agent.claim_task()
        body = {"task_id": "t1", "tool": "read_file", "args": {"path": "calc/core.py"}}
        forged = token("another-secret-of-32-bytes-or-more-000000")
        expired = token(SECRET, exp=time.time() - 5)
        for bad in (forged, expired, "not-a-jwt", agent.token + "x"):  # type: ignore[operator]
            answer = http.post("/api/v1/tools/execute", json=body,
                               headers={"Authorization": f"Bearer {bad}"})  # fmt: skip
            problem = problem_of(answer, 401)
            assert problem["requirement"] == "AGENT-WF-009"
            assert answer.headers["www-authenticate"].startswith("Bearer")
        assert (
            "expired"
            in problem_of(
                http.post(
                    "/api/v1/tasks/t1/heartbeat", headers={"Authorization": f"Bearer {expired}"}
                ),
                401,
            )["detail"]
        )
        assert agent.read_file("calc/core.py")  # the agent's own token still works


def test_replayed_tokens_are_refused_and_other_phases_forbidden_AGENT_WF_009(serve: Serve) -> None:
    """A token revoked by a transition: 403 once the task is in another phase
    (workflow.py checks the phase first), 401 when it is back in the token's phase."""
    served = serve(agent_task("t1"))
    with served.agent("agent-1") as agent:
        agent.claim_task()
        plan_token = agent.token
        into_impl(agent)
        impl_token = agent.token
        into_review(agent)
        agent.request_transition("IMPL", {"review": {"verdict": "request_changes"}})  # rework
        assert agent.phase == "IMPL" and agent.token not in (plan_token, impl_token)
        with served.http() as http:
            for stale, status, title in ((plan_token, 403, "Token for another phase"),
                                         (impl_token, 401, "Revoked phase token")):  # fmt: skip
                answer = http.post(
                    "/api/v1/tools/execute", headers={"Authorization": f"Bearer {stale}"},
                    json={"task_id": "t1", "tool": "read_file", "args": {"path": "calc/core.py"}},
                )  # fmt: skip
                problem = problem_of(answer, status)
                assert (problem["title"], problem["requirement"]) == (title, "AGENT-WF-009")
                replay = http.post("/api/v1/tasks/transition",
                                   headers={"Authorization": f"Bearer {stale}"},
                                   json={"target_phase": "REVIEW"})  # fmt: skip
                assert problem_of(replay, status)["title"] == title
        assert agent.read_file("calc/core.py")


def test_a_token_of_another_task_is_forbidden_AGENT_WF_009(serve: Serve) -> None:
    served = serve(agent_task("t1"), agent_task("t2"))
    with served.agent("agent-1") as one, served.agent("agent-2") as two, served.http() as http:
        mine, theirs = one.claim_task().task_id, two.claim_task().task_id
        assert {mine, theirs} == {"t1", "t2"}
        headers = {"Authorization": f"Bearer {one.token}"}
        answers = [
            http.post("/api/v1/tools/execute", headers=headers,
                      json={"task_id": theirs, "tool": "list_files", "args": {}}),
            http.post(f"/api/v1/tasks/{theirs}/heartbeat", headers=headers),
            http.post("/api/v1/tasks/transition", headers=headers,
                      json={"target_phase": "TDD", "task_id": theirs, "artifacts": PLAN}),
        ]  # fmt: skip
        for answer in answers:
            assert problem_of(answer, 403)["requirement"] == "AGENT-WF-009"
        assert one.phase == "PLAN" and two.list_files()


ESCAPES = ["../outside.txt", "/etc/passwd", "calc/../../outside.txt", "escape/passwd",
           "%2e%2e%2foutside.txt", "tests%2f..%2f..%2foutside.txt", "calc/%2E%2E/core.py"]  # fmt: skip


@pytest.mark.parametrize("tool", ["read_file", "write_file"])
def test_paths_leaving_the_sandbox_are_refused_and_audited_AGENT_WF_011(
    serve: Serve, tool: str
) -> None:
    served = serve(agent_task("t1"), links={"escape": "/etc"})
    (served.root.parent / "outside.txt").write_text("secret\n")
    with served.agent("agent-1") as agent:
        agent.claim_task()
        if tool == "write_file":  # allowed anywhere in IMPL: only the sandbox can refuse
            into_impl(agent)
        for path in ESCAPES:
            args = {"path": path} if tool == "read_file" else {"path": path, "content": "x"}
            with pytest.raises(Forbidden) as refused:
                agent.use_tool(tool, **args)
            assert refused.value.requirement == "AGENT-WF-011", (path, refused.value)
        denied = agent.audit_records(task_id="t1", decision="denied", limit=1000)
    assert [record["args"]["path"] for record in denied] == ESCAPES
    for record in denied:
        assert (record["tool"], record["requirement"]) == (tool, "AGENT-WF-011")
    assert (served.root.parent / "outside.txt").read_text() == "secret\n"


def test_a_missing_or_malformed_authorization_header_is_401_AGENT_WF_007(serve: Serve) -> None:
    served = serve(agent_task("t1"))
    with served.http() as http:
        body = {"task_id": "t1", "tool": "list_files", "args": {}}
        for headers in ({}, {"Authorization": "Basic YTpi"}, {"Authorization": "Bearer"}):
            answer = http.post("/api/v1/tools/execute", json=body, headers=headers)
            assert problem_of(answer, 401)["requirement"] in ("AGENT-WF-007", "AGENT-WF-009")
            assert answer.headers["www-authenticate"].startswith("Bearer")
    with AgentClient("agent-1", served.url) as agent:
        agent.claim_task()
        agent._token = "garbage"
        with pytest.raises(InvalidToken):
            agent.heartbeat()
