"""Copies of this repository for the validators to inspect (and for tests to break)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IGNORED = shutil.ignore_patterns(
    ".git", ".state", "__pycache__", ".*_cache", ".hypothesis", "*.egg-info", ".venv"
)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of this repository (sources, tests, docs, pipeline), made once per module."""
    target = tmp_path_factory.mktemp("pristine") / "repo"
    shutil.copytree(REPO, target, ignore=IGNORED)
    return target


@pytest.fixture
def repo(pristine: Path, tmp_path: Path) -> Path:
    """A fresh copy of this repository for one test to change."""
    target = tmp_path / "repo"
    shutil.copytree(pristine, target, symlinks=True)
    return target
