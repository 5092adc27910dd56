"""The public API is exactly what __all__ says."""

from __future__ import annotations

import orchestration


def test_exported_members_are_pinned_MOD_IDX_002() -> None:
    assert orchestration.__all__ == sorted(orchestration.__all__)
    assert orchestration.__all__ == [
        "DefinitionError",
        "OrchestrationError",
        "Problem",
        "UsageError",
        "__version__",
    ]
    for name in orchestration.__all__:
        assert hasattr(orchestration, name)
