"""Phase tokens: the JWTs that let an agent act in one phase of one task (AGENT-WF-007..009).

Stability: stable (the claims are a public contract).

A phase token is a JWT signed with HS256 and the secret
``ORCHESTRATOR_JWT_SECRET`` (at least 32 bytes), carrying::

    {"sub": agent_id, "task_id": ..., "phase": ..., "jti": uuid4 hex, "iat": ..., "exp": ...}

It travels as ``Authorization: Bearer <token>``. :meth:`PhaseTokens.decode`
refuses anything this server did not sign with HS256 (``alg: none`` and other
algorithms included), anything expired, malformed or missing a claim.
Revocation is not decided here: a successful transition issues a new token,
and the workflow compares a token's ``jti`` with the one it recorded last, so
a replayed older token is refused there (AGENT-WF-009).
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

import jwt

from ..errors import OrchestrationError

__all__ = [
    "ALGORITHM",
    "MIN_SECRET_BYTES",
    "SECRET_ENV",
    "PhaseClaims",
    "PhaseTokens",
    "TokenRejected",
    "dev_secret",
    "secret_problem",
]

ALGORITHM = "HS256"
"""The only algorithm tokens are signed and accepted with."""

MIN_SECRET_BYTES = 32
"""The shortest secret, in UTF-8 bytes, that ``serve`` accepts (AGENT-WF-008)."""

SECRET_ENV = "ORCHESTRATOR_JWT_SECRET"
"""The environment variable holding the secret (read only from the environment)."""

_CLAIMS = ("sub", "task_id", "phase", "jti", "iat", "exp")
_HOW_TO_SET = f'export {SECRET_ENV}=$(python -c "import secrets; print(secrets.token_urlsafe(48))")'


class TokenRejected(OrchestrationError):
    """A phase token is not one this server issued and still honours.

    Attributes:
        reason: why, in a few words (malformed, bad signature, expired, ...).
    """

    requirement: ClassVar[str] = "AGENT-WF-009"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"phase token rejected: {reason}")


def secret_problem(secret: str | None) -> str | None:
    """Why ``secret`` cannot sign phase tokens (unset, too short), or None when it can."""
    if not secret:
        return f"{SECRET_ENV} is not set; set it to a random secret: {_HOW_TO_SET}"
    size = len(secret.encode("utf-8"))
    if size < MIN_SECRET_BYTES:
        return (
            f"{SECRET_ENV} is {size} bytes long, shorter than the {MIN_SECRET_BYTES} bytes "
            f"required; set it to a longer random secret: {_HOW_TO_SET}"
        )
    return None


def dev_secret() -> str:
    """A fresh random secret for ``serve --dev`` (tokens die with the process)."""
    return secrets.token_urlsafe(48)


@dataclass(frozen=True, slots=True)
class PhaseClaims:
    """What a valid phase token says.

    Args:
        agent_id: the agent it was issued to (the ``sub`` claim).
        task_id: the task it acts on.
        phase: the phase it acts in.
        jti: its unique id; the workflow honours only the latest per task.
        expires_at: when it expires, seconds since the epoch (``exp``).
    """

    agent_id: str
    task_id: str
    phase: str
    jti: str
    expires_at: float


class PhaseTokens:
    """Issues and checks phase tokens with one secret.

    Args:
        secret: at least :data:`MIN_SECRET_BYTES` bytes (see :func:`secret_problem`).
        ttl_seconds: how long a token lives, at least 1 second.

    Raises:
        ValueError: the secret is too short or the lifetime not positive.
    """

    def __init__(self, secret: str, ttl_seconds: float = 3600) -> None:
        problem = secret_problem(secret)
        if problem is not None:
            raise ValueError(problem)
        if not ttl_seconds >= 1:
            msg = f"a phase token must live at least 1 second, not {ttl_seconds!r}"
            raise ValueError(msg)
        self._secret = secret
        self.ttl_seconds = ttl_seconds

    def __repr__(self) -> str:  # never the secret
        return f"PhaseTokens(ttl_seconds={self.ttl_seconds!r})"

    def issue(self, agent_id: str, task_id: str, phase: str) -> tuple[str, PhaseClaims]:
        """A new token for ``agent_id`` acting on ``task_id`` in ``phase``, and its claims."""
        now = int(time.time())
        expires = int(now + self.ttl_seconds)
        claims = PhaseClaims(agent_id, task_id, phase, uuid.uuid4().hex, float(expires))
        payload = {
            "sub": agent_id,
            "task_id": task_id,
            "phase": phase,
            "jti": claims.jti,
            "iat": now,
            "exp": expires,
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM), claims

    def decode(self, token: str) -> PhaseClaims:
        """The claims of ``token`` once its signature, algorithm and expiry check out.

        Raises:
            TokenRejected: the token is malformed, signed with another secret
                or algorithm (``none`` included), expired, or lacks a claim.
        """
        if not isinstance(token, str) or not token:
            msg = "no token given: send Authorization: Bearer <phase_token>"
            raise TokenRejected(msg)
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": list(_CLAIMS)},
            )
        except jwt.InvalidAlgorithmError:
            msg = f"it is not signed with {ALGORITHM} (alg {_algorithm(token)!r})"
            raise TokenRejected(msg) from None
        except jwt.ExpiredSignatureError:
            msg = "it expired: request a new one by claiming the task again"
            raise TokenRejected(msg) from None
        except jwt.InvalidSignatureError:
            msg = "its signature does not match: it was not issued by this server"
            raise TokenRejected(msg) from None
        except jwt.MissingRequiredClaimError as error:
            msg = f"it lacks the claim {error.claim!r}"
            raise TokenRejected(msg) from None
        except jwt.DecodeError:
            msg = "it is not a well-formed JWT"
            raise TokenRejected(msg) from None
        except jwt.InvalidTokenError as error:
            msg = f"it is invalid: {error}"
            raise TokenRejected(msg) from None
        for claim in ("sub", "task_id", "phase", "jti"):
            if not isinstance(payload[claim], str) or not payload[claim]:
                msg = f"its claim {claim!r} is not a non-empty string"
                raise TokenRejected(msg)
        expires = payload["exp"]
        if isinstance(expires, bool) or not isinstance(expires, int | float):
            msg = "its claim 'exp' is not a number"
            raise TokenRejected(msg)
        return PhaseClaims(
            payload["sub"], payload["task_id"], payload["phase"], payload["jti"], float(expires)
        )


def _algorithm(token: str) -> str:
    try:
        return str(jwt.get_unverified_header(token).get("alg"))
    except jwt.InvalidTokenError:
        return "unknown"
