"""Task definitions: the v2.0.0 model, loading, JSON Schema export, v1 migration (TASK-DEF).

Stability: stable. Import from the submodules: ``model``, ``loading``,
``schema``, ``migration``, ``screening`` (the fast check before the model).
"""

__all__: list[str] = []  # nothing at the package level: import from the submodules
