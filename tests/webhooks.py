"""A real webhook for the notification tests: ``http.server`` on 127.0.0.1, in a thread."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any


class Receiver(http.server.ThreadingHTTPServer):
    """Answers 503 to the first ``failures`` POSTs, then 204; records every JSON document."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.failures = failures
        self.requests: list[dict[str, Any]] = []  # every POST
        self.delivered: list[dict[str, Any]] = []  # those answered 204

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        document = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(document)
        failing = len(self.server.requests) <= self.server.failures
        if not failing:
            self.server.delivered.append(document)
        self.send_response(503 if failing else 204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass  # quiet


@contextlib.contextmanager
def receiving(failures: int = 0) -> Iterator[Receiver]:
    """A :class:`Receiver` serving until the block ends."""
    server = Receiver(failures)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
