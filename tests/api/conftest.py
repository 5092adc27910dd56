"""Fixtures of the API tests: served pipelines (see served.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.served import Serve, Served, agent_pipeline, serving


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """``serve(*tasks, mode=..., files=..., links=..., lease_ttl=...)``: a served pipeline."""
    with contextlib.ExitStack() as stack:
        count = iter(range(1000))

        def make(*tasks: dict[str, Any], lease_ttl: float = 20.0, **options: Any) -> Served:
            root = agent_pipeline(tmp_path / f"p{next(count)}", *tasks, **options)
            return stack.enter_context(serving(root, lease_ttl=lease_ttl))

        yield make
