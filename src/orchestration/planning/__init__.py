"""Planning: the dependency DAG, its stages, critical path and renderings (DAG-VIEW).

Stability: stable. Import from the submodules: ``plan`` (the planner),
``render`` (JSON, text, mermaid, dot), ``inputs`` (cached loading).
"""
