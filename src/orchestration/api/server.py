"""Running the API: bind, serve with uvicorn, stop gracefully (``orchestration serve``).

Stability: provisional.

:func:`serve` opens the pipeline's workflow (tasks synced, contract compiled:
an invalid ``agent_workflow.yaml`` raises ``DefinitionError`` before anything
listens), binds the socket itself (so a port in use is a usage error naming
the setting to change, and ``--port 0`` reports the port it got), then runs
uvicorn in the calling thread until SIGINT or SIGTERM. Waiting long polls
answer at once, other requests in flight get :data:`GRACE_SECONDS` to finish,
then the store is closed, writing the exact snapshot.
"""

from __future__ import annotations

import gc
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from ..errors import UsageError

__all__ = ["GRACE_SECONDS", "bind", "serve"]

GRACE_SECONDS = 3
"""How long requests in flight may take to finish once the server is asked to stop."""
BACKLOG = 2048  # connections waiting to be accepted (uvicorn's default)
SWITCH_INTERVAL = 0.0005  # seconds a thread may hold the GIL while another waits (5 ms by default)


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (port 0: any free port), ready for uvicorn.

    Raises:
        UsageError: the address cannot be bound (in use, not local, ...).
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as bad:
        msg = (
            f"cannot listen on {host}:{port}: {bad.strerror or bad}; pass --host, or set "
            "server.host in orchestration.yaml (ORCHESTRATOR_SERVER_HOST)"
        )
        raise UsageError(msg) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)  # connections wait from now on, not only once uvicorn runs
    except OSError as bad:
        sock.close()
        msg = (
            f"cannot listen on {host}:{port}: {bad.strerror or bad}; pass another --port, or "
            "set server.port in orchestration.yaml (ORCHESTRATOR_SERVER_PORT)"
        )
        raise UsageError(msg) from None
    return sock


def serve(
    root: Path,
    *,
    host: str,
    port: int,
    secret: str,
    lease_ttl: float,
    audit_max_bytes: int,
    announce: Callable[[str, int], None],
) -> None:
    """Serve the agent API of the pipeline at ``root`` until SIGINT or SIGTERM.

    Args:
        announce: called with the host and the bound port once the socket
            listens, before the first request is served.

    Raises:
        DefinitionError: invalid task files or ``agent_workflow.yaml`` (exit 1).
        UsageError: the address cannot be bound (exit 2).
    """
    import uvicorn

    from ..enforcement.workflow import Workflow
    from .app import create_app

    with Workflow.open(root, secret=secret, lease_ttl=lease_ttl,
                       audit_max_bytes=audit_max_bytes) as workflow:  # fmt: skip
        sock = bind(host, port)
        # A request's thread that returns from an fsync waits for the event
        # loop to give up the GIL: every 5 ms by default, which made the tail
        # of every tool check. And the state read at start-up is never freed:
        # collections need not go over it again.
        sys.setswitchinterval(SWITCH_INTERVAL)
        gc.freeze()
        app = create_app(workflow, stopping=lambda: server.should_exit)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=GRACE_SECONDS)  # fmt: skip
        server = uvicorn.Server(config)

        def stop(number: int, frame: FrameType | None) -> None:
            # uvicorn handles the signals while it serves, then raises them again
            # with the handlers it found: these, which only make sure it stops.
            server.should_exit = True

        signals = (signal.SIGINT, signal.SIGTERM)
        previous = {number: signal.signal(number, stop) for number in signals}
        try:
            announce(host, sock.getsockname()[1])
            server.run(sockets=[sock])
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
            sock.close()
