"""Checks of the required documents and of the engine's own modules (EXEC-DOC, MOD-IDX).

Stability: provisional.

The module checks read the engine's sources, so they apply in the engine's
own repository (where ``src/orchestration`` lives) and nowhere else.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from ..errors import Problem
from .check import check
from .repository import Repository

__all__ = [
    "execution_docs",
    "lazy_imports",
    "module_docstrings",
    "module_exports",
    "module_names",
    "state_ownership",
]

EXECUTION_DOCS = (
    "docs/execution_model/OVERVIEW.md",
    "docs/execution_model/STATE_MACHINE.md",
    "docs/execution_model/RECOVERY.md",
)
STABILITY = re.compile(r"^Stability: (stable|provisional|internal)\b", re.M)
FORBIDDEN_NAMES = ("utils", "helpers", "common", "misc", "manager")
HEAVY = ("fastapi", "uvicorn", "networkx", "transitions", "rich", "watchdog", "prometheus_client")
STATE_FILES = ("transitions.jsonl", "current.json", "index.json")


def _state_file(text: str) -> str | None:
    """The state file a string literal is a path to (prose that mentions one is not)."""
    for name in STATE_FILES:
        if text == name or (" " not in text and text.endswith("/" + name)):
            return name
    return None


@check("EXEC-DOC-001")
def execution_docs(repo: Repository) -> Iterator[Problem]:
    """The execution model is documented: overview, state machines, recovery."""
    for rel in EXECUTION_DOCS:
        path = repo.path(rel)
        if not path.is_file() or not path.read_text(encoding="utf-8").strip():
            fix = (
                "run `orchestration lifecycles` to generate it"
                if rel.endswith("STATE_MACHINE.md")
                else "write it, or copy it from a pipeline scaffolded by `orchestration init`"
            )
            yield Problem(rel, "the document is missing or empty", fix, "EXEC-DOC-001")


def _modules(repo: Repository) -> Iterator[tuple[Path, str, ast.Module]]:
    """Each public module of the engine: path, dotted name, syntax tree."""
    engine = repo.engine_dir
    for path in sorted(engine.rglob("*.py")):
        parts = path.relative_to(engine.parent).with_suffix("").parts
        if "scaffold" in parts[:-1] or any(part.startswith("_") for part in parts[1:-1]):
            continue
        if parts[-1].startswith("_") and parts[-1] not in ("__init__", "__main__"):
            continue
        name = ".".join(parts).removesuffix(".__init__")
        yield path, name, ast.parse(path.read_text(encoding="utf-8"), str(path))


@check("MOD-IDX-001")
def module_docstrings(repo: Repository) -> Iterator[Problem]:
    """Every public module starts with a docstring stating its stability."""
    for path, name, tree in _modules(repo):
        doc = ast.get_docstring(tree) or ""
        if not STABILITY.search(doc):
            yield Problem(
                repo.rel(path),
                f"module {name} has no docstring line `Stability: stable|provisional|internal`",
                "say what the module holds, then its stability, in its first docstring",
                "MOD-IDX-001",
                line=1,
                column=1,
            )


@check("MOD-IDX-010")
def module_exports(repo: Repository) -> Iterator[Problem]:
    """Every public module declares ``__all__``, and each name it lists has a docstring."""
    for path, name, tree in _modules(repo):
        if path.name == "__main__.py":
            continue
        exported = _all(tree)
        if exported is None:
            yield Problem(
                repo.rel(path),
                f"module {name} has no __all__",
                "declare it",
                "MOD-IDX-010",
                "",
                1,
                1,
            )
            continue
        documented = {
            node.name: (node.lineno, ast.get_docstring(node))
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        }
        for exported_name in exported:
            line, doc = documented.get(exported_name, (0, "constant or re-export"))
            if not doc:
                yield Problem(
                    repo.rel(path),
                    f"{name}.{exported_name} is exported without a docstring",
                    "give it a summary line",
                    "MOD-IDX-010",
                    line=line,
                    column=1,
                )


def _all(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                value = node.value
                if isinstance(value, ast.List | ast.Tuple):
                    return [
                        e.value
                        for e in value.elts
                        if isinstance(e, ast.Constant) and isinstance(e.value, str)
                    ]
    return None


@check("MOD-IDX-003")
def module_names(repo: Repository) -> Iterator[Problem]:
    """No module is named utils, helpers, common, misc or manager."""
    for path in sorted(repo.engine_dir.rglob("*.py")):
        if path.stem.strip("_") in FORBIDDEN_NAMES:
            yield Problem(
                repo.rel(path),
                f"module name {path.stem!r} says nothing of what it holds",
                "move each piece into a module named for its topic",
                "MOD-IDX-003",
            )


@check("MOD-IDX-004", "STATE-OBS-007")
def state_ownership(repo: Repository) -> Iterator[Problem]:
    """Only orchestration.state names the state files and takes the writer lock."""
    engine = repo.engine_dir
    for path in sorted(engine.rglob("*.py")):
        inside = path.relative_to(engine).parts
        if inside[0] in ("state", "scaffold", "validation"):
            continue  # validation reads state files through orchestration.state
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                names += [alias.name for alias in node.names]
                if "filelock" in names:
                    yield Problem(
                        repo.rel(path),
                        "imports filelock: only the store takes the one writer lock",
                        "commit through orchestration.state.Store instead",
                        "STATE-OBS-007",
                        line=node.lineno,
                        column=node.col_offset + 1,
                    )
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                named = _state_file(node.value)
                if named:
                    yield Problem(
                        repo.rel(path),
                        f"names the state file {named!r}: only orchestration.state may",
                        "use orchestration.state.layout and the Store",
                        "MOD-IDX-004",
                        line=node.lineno,
                        column=node.col_offset + 1,
                    )


@check("MOD-IDX-005")
def lazy_imports(repo: Repository) -> Iterator[Problem]:
    """``orchestration --help`` imports none of the heavy dependencies."""
    engine = repo.engine_dir
    probe = (
        "import sys\n"
        "from orchestration.cli import main\n"
        "main(['--help'])\n"
        f"print('LOADED=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=engine.parent,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(engine.parent), "PATH": ""},
    )
    marks = [line for line in done.stdout.splitlines() if line.startswith("LOADED=")]
    loaded = marks[-1].removeprefix("LOADED=") if marks else ""
    if done.returncode != 0 or not marks or loaded:
        reason = f"it imports {loaded}" if loaded else f"it failed: {done.stderr.strip()[-200:]}"
        yield Problem(
            repo.rel(engine / "cli.py"),
            f"`orchestration --help` is not lazy: {reason}",
            "import heavy modules inside the commands that use them",
            "MOD-IDX-005",
        )
