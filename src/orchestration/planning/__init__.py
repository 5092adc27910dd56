"""Planning: the dependency DAG, its stages, critical path and renderings (DAG-VIEW).

Stability: stable. Import from the submodules: ``plan`` (the planner),
``render`` (JSON, text, mermaid, dot), ``inputs`` (cached loading).
"""

__all__: list[str] = []  # nothing at the package level: import from the submodules
