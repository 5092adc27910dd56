"""orchestration: run AI development pipelines from plain files.

Stability: stable. The names in ``__all__`` are the public API; everything
else may change between minor versions.
"""

from __future__ import annotations

from .errors import DefinitionError, OrchestrationError, Problem, UsageError

__all__ = ["DefinitionError", "OrchestrationError", "Problem", "UsageError", "__version__"]

__version__ = "0.1.0"
