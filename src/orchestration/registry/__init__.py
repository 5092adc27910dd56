"""Capability and resource registries, read from PowerShell data files or YAML.

Stability: provisional. The names in ``__all__`` are the public API.

:func:`load_capabilities` reads what workers offer and tasks require
(CAP-REG); :func:`load_resources` reads capacity-limited resources and path
locks (CONC-REG). Both accept ``capabilities/<name>.psd1`` (read by
:mod:`orchestration.registry.psd1`, never executed) or its YAML equivalent,
and report every problem with file, line, column and JSON pointer.
:func:`globs_overlap` decides whether two path locks can conflict.
"""

from __future__ import annotations

from .capabilities import Capability, load_capabilities
from .globs import glob_matches, globs_overlap
from .resources import Resource, ResourceKind, load_resources

__all__ = [
    "Capability",
    "Resource",
    "ResourceKind",
    "glob_matches",
    "globs_overlap",
    "load_capabilities",
    "load_resources",
]
