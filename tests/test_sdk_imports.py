"""The SDK stands alone: an agent's environment needs httpx, not the engine's server stack."""

from __future__ import annotations

import subprocess
import sys

BLOCK = """
import sys
from importlib.abc import MetaPathFinder

class NotInstalled(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"fastapi", "uvicorn", "pydantic", "starlette", "yaml",
                                  "networkx", "transitions", "jwt"}:
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, NotInstalled())
from orchestration.sdk import AgentClient
with AgentClient("agent-1", "http://127.0.0.1:9") as client:
    print(type(client).__name__)
"""


def test_sdk_imports_without_fastapi_uvicorn_or_pydantic_MOD_IDX_007() -> None:
    done = subprocess.run([sys.executable, "-c", BLOCK], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "AgentClient"
