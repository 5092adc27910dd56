"""Phase tokens: HS256 JWTs that only this server can issue (AGENT-WF-007..009)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest

from orchestration.enforcement.tokens import (
    MIN_SECRET_BYTES,
    PhaseClaims,
    PhaseTokens,
    TokenRejected,
    dev_secret,
    secret_problem,
)
from orchestration.errors import OrchestrationError

SECRET = "a-test-secret-that-is-long-enough-for-hs256-000"
OTHER = "another-secret-that-is-also-long-enough-000000000"


@pytest.fixture
def tokens() -> PhaseTokens:
    return PhaseTokens(SECRET, ttl_seconds=600)


def _b64(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


def _payload(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    payload = {
        "sub": "agent-1",
        "task_id": "task-001",
        "phase": "TDD",
        "jti": "0" * 32,
        "iat": now,
        "exp": now + 60,
    }
    payload.update(changes)
    return {name: value for name, value in payload.items() if value is not None}


def test_issued_tokens_carry_the_claims_of_the_spec_AGENT_WF_007(tokens: PhaseTokens) -> None:
    before = time.time()
    token, claims = tokens.issue("agent-1", "task-001", "PLAN")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    payload = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert set(payload) == {"sub", "task_id", "phase", "jti", "iat", "exp"}
    assert (payload["sub"], payload["task_id"], payload["phase"]) == ("agent-1", "task-001", "PLAN")
    assert payload["jti"] == claims.jti and len(claims.jti) == 32
    assert claims == PhaseClaims("agent-1", "task-001", "PLAN", claims.jti, float(payload["exp"]))
    assert before + 598 <= claims.expires_at <= time.time() + 600
    assert tokens.decode(token) == claims


def test_every_token_has_a_unique_jti_AGENT_WF_007(tokens: PhaseTokens) -> None:
    jtis = {tokens.issue("agent-1", "task-001", "PLAN")[1].jti for _ in range(50)}
    assert len(jtis) == 50


def test_forged_token_is_rejected_AGENT_WF_009(tokens: PhaseTokens) -> None:
    forged, _ = PhaseTokens(OTHER).issue("agent-1", "task-001", "IMPL")
    with pytest.raises(TokenRejected, match="signature does not match") as raised:
        tokens.decode(forged)
    assert isinstance(raised.value, OrchestrationError)
    assert raised.value.requirement == "AGENT-WF-009"


def test_expired_token_is_rejected_AGENT_WF_009(tokens: PhaseTokens) -> None:
    now = int(time.time())
    expired = jwt.encode(_payload(iat=now - 120, exp=now - 60), SECRET, algorithm="HS256")
    with pytest.raises(TokenRejected, match="expired"):
        tokens.decode(expired)


def test_alg_none_is_rejected_AGENT_WF_009(tokens: PhaseTokens) -> None:
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_payload())}."
    with pytest.raises(TokenRejected, match="not signed with HS256 \\(alg 'none'\\)"):
        tokens.decode(unsigned)
    for alg in ("NONE", "None"):
        with pytest.raises(TokenRejected):
            tokens.decode(f"{_b64({'alg': alg})}.{_b64(_payload())}.")


def test_other_algorithms_are_rejected_AGENT_WF_009(tokens: PhaseTokens) -> None:
    hs512 = jwt.encode(_payload(), SECRET + SECRET, algorithm="HS512")
    with pytest.raises(TokenRejected, match="alg 'HS512'"):
        PhaseTokens(SECRET + SECRET).decode(hs512)


def test_tampered_payload_is_rejected_AGENT_WF_009(tokens: PhaseTokens) -> None:
    token, _ = tokens.issue("agent-1", "task-001", "PLAN")
    header, _, signature = token.split(".")
    promoted = _b64(_payload(phase="COMPLETE"))
    with pytest.raises(TokenRejected, match="signature does not match"):
        tokens.decode(f"{header}.{promoted}.{signature}")


@pytest.mark.parametrize(
    "token", ["", "garbage", "a.b.c", "a.b", "....", "eyJhbGciOiJIUzI1NiJ9.e30", "ü.ü.ü"]
)
def test_malformed_tokens_are_rejected_AGENT_WF_009(tokens: PhaseTokens, token: str) -> None:
    with pytest.raises(TokenRejected):
        tokens.decode(token)


@pytest.mark.parametrize("claim", ["sub", "task_id", "phase", "jti", "exp", "iat"])
def test_a_token_missing_a_claim_is_rejected_AGENT_WF_009(tokens: PhaseTokens, claim: str) -> None:
    token = jwt.encode(_payload(**{claim: None}), SECRET, algorithm="HS256")
    with pytest.raises(TokenRejected, match=claim):
        tokens.decode(token)


@pytest.mark.parametrize(("claim", "value"), [("task_id", 7), ("phase", ""), ("task_id", None)])
def test_claims_must_be_non_empty_strings_AGENT_WF_009(
    tokens: PhaseTokens, claim: str, value: object
) -> None:
    payload = _payload()
    payload[claim] = value
    with pytest.raises(TokenRejected, match=claim):
        tokens.decode(jwt.encode(payload, SECRET, algorithm="HS256"))


def test_secret_must_be_set_and_at_least_32_bytes_AGENT_WF_008() -> None:
    assert MIN_SECRET_BYTES == 32
    for unset in (None, ""):
        problem = secret_problem(unset)
        assert problem is not None and "ORCHESTRATOR_JWT_SECRET is not set" in problem
        assert "secrets.token_urlsafe(48)" in problem
    problem = secret_problem("x" * 31)
    assert problem is not None and "31 bytes long" in problem and "export " in problem
    assert secret_problem("é" * 16) is None  # 32 bytes in UTF-8
    assert secret_problem("x" * 32) is None
    with pytest.raises(ValueError, match="shorter than the 32 bytes"):
        PhaseTokens("short")
    with pytest.raises(ValueError, match="at least 1 second"):
        PhaseTokens(SECRET, ttl_seconds=0)


def test_dev_secrets_are_random_and_long_enough_AGENT_WF_008() -> None:
    first, second = dev_secret(), dev_secret()
    assert first != second
    assert secret_problem(first) is None
    token, claims = PhaseTokens(first).issue("a", "t", "PLAN")
    assert PhaseTokens(first).decode(token) == claims
    with pytest.raises(TokenRejected):
        PhaseTokens(second).decode(token)


def test_the_secret_never_shows_in_repr(tokens: PhaseTokens) -> None:
    assert SECRET not in repr(tokens)
