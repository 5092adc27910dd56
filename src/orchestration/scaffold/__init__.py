"""``orchestration init``: scaffold a pipeline in any repository.

Stability: stable.

The files under ``scaffold/files/`` are copied into the target folder with
their relative paths: the normative spec, the lifecycles, the registries and
an example workstream, the execution-model documents and the failure-mode
catalog, plus the published JSON Schemas. The spec, lifecycles
and registries are the same files this repository uses (a test keeps them
identical). An existing file is never overwritten; ``.state/`` is added to
``.gitignore`` if it is not there.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from ..tasks.schema import published_schemas

__all__ = ["scaffold", "template_files"]

IGNORE_LINE = ".state/"


def template_files() -> dict[str, bytes]:
    """Relative path → content of every file ``init`` creates (but ``.gitignore``)."""
    found: dict[str, bytes] = {}

    def walk(node: Traversable, prefix: str) -> None:
        for child in node.iterdir():
            if child.is_dir():
                walk(child, f"{prefix}{child.name}/")
            elif not child.name.endswith((".pyc", ".pyo")):
                found[prefix + child.name] = child.read_bytes()

    walk(files(__name__) / "files", "")
    for name, text in published_schemas().items():
        found[f"schemas/{name}"] = text.encode("utf-8")
    return dict(sorted(found.items()))


def scaffold(directory: Path) -> tuple[list[str], list[str]]:
    """Create a pipeline in ``directory`` without touching existing files.

    Returns:
        The relative paths created and those kept because they existed.
    """
    created, kept = [], []
    for rel, content in template_files().items():
        path = directory / rel
        if path.exists():
            kept.append(rel)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("xb") as handle:  # "x": never replace a file created meanwhile
            handle.write(content)
        created.append(rel)
    ignore = directory / ".gitignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.exists() else []
    if IGNORE_LINE in lines or "/.state/" in lines:
        kept.append(".gitignore")
    else:
        existed = ignore.exists()
        with ignore.open("a", encoding="utf-8") as handle:
            if lines and not ignore.read_text(encoding="utf-8").endswith("\n"):
                handle.write("\n")
            handle.write(f"# orchestration runtime state (machine-written)\n{IGNORE_LINE}\n")
        created.append(".gitignore (appended .state/)" if existed else ".gitignore")
    return created, kept
