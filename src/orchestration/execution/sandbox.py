"""Sandboxes: a git worktree per attempt, on branch ``task/<task_id>/<attempt>`` (CONC-REG-012).

Stability: provisional.

:func:`create_sandbox` checks a worktree of the pipeline's repository out at a
base commit, on a branch of its own, so that parallel attempts never share a
working tree; :func:`changes` says what an attempt did there (files, diff
statistics, commits); :func:`reuse_sandbox` gives the clean worktree of a
successful attempt to the next one on a new branch (a checkout of the whole
tree per attempt costs far more than the attempt, for short tasks). A
sandbox carries a :class:`~.inotify.TreeWatch` when the system has one, set
while its files are the base's: an attempt after which the kernel saw no
change needs no git process to be found pristine, and the next attempt's
branch is then written as git's own files, without a process either;
:func:`keep_sandbox` moves a failed attempt's worktree where it is kept for
inspection; :func:`remove_sandbox` removes a worktree and keeps its branch.
The engine itself never commits.

Creation is cheap in the common case (two git processes) and safe when
several processes create sandboxes in one repository at once: git's lock
files make one of them fail now and then, and the call then retries.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OrchestrationError, UsageError
from .inotify import TreeWatch

__all__ = [
    "Changes",
    "Sandbox",
    "SandboxError",
    "changes",
    "create_sandbox",
    "keep_sandbox",
    "remove_sandbox",
    "repository_of",
    "resolve_commit",
    "reuse_sandbox",
]

# How often a git command that lost a race for one of git's lock files is run again.
_ATTEMPTS = 8
# First pause (seconds) before such a retry; it doubles each time, with jitter.
_PAUSE = 0.02
# How often create_sandbox clears what is at its path and branch and tries again.
_STALE_TRIES = 3
_NEEDS_COMMIT = (
    "run needs the pipeline in a git repository with at least one commit: "
    "git init && git add -A && git commit -m init"
)


class SandboxError(OrchestrationError):
    """An attempt's worktree cannot be created or removed (FM-SANDBOX)."""


@dataclass(frozen=True)
class Sandbox:
    """The git worktree one attempt runs in.

    Args:
        path: the worktree folder (absolute).
        branch: ``task/<task_id>/<attempt>``, checked out in ``path``.
        base: full sha of the commit the worktree started from.
        watch: told of every change in the worktree since it held exactly
            ``base`` (see :mod:`.inotify`); ``None`` when there is none.
    """

    path: Path
    branch: str
    base: str
    watch: TreeWatch | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Changes:
    """What an attempt changed in its sandbox, relative to the sandbox's base.

    Args:
        files_changed: repository-relative ``/``-separated paths, sorted:
            those touched by the sandbox's commits, modified or deleted since
            the base without a commit, and untracked (not ignored) files.
        insertions: lines added from the base to the working tree, untracked
            files included (binary files count 0).
        deletions: lines removed from the base to the working tree.
        commits: shas of the commits made in the sandbox, oldest first.
        pristine: the worktree holds exactly the base commit's files, not
            even an ignored one more: it can be reused without cleaning.
    """

    files_changed: tuple[str, ...]
    insertions: int
    deletions: int
    commits: tuple[str, ...]
    pristine: bool = False


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run git in ``cwd``, again after a pause while it fails on one of git's lock files."""
    pause = _PAUSE
    for _ in range(_ATTEMPTS - 1):
        done = _run_git(cwd, args)
        if done.returncode == 0 or not _contended(done.stderr):
            return done
        time.sleep(pause * (1 + random.random()))
        pause *= 2
    return _run_git(cwd, args)


def _run_git(cwd: Path, args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="surrogateescape",
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except OSError as error:  # no git on PATH, or cwd is gone
        return subprocess.CompletedProcess(["git", *args], 127, "", str(error))


def _contended(stderr: str) -> bool:
    """Whether git failed because another git process held a lock (index.lock, a ref, ...).

    Also when two ``worktree add`` raced for the same administrative folder
    under ``.git/worktrees/`` (it is named after the path's last component).
    """
    return (
        ".lock" in stderr
        or "cannot lock" in stderr
        or "could not lock" in stderr
        or ("/worktrees/" in stderr and "No such file or directory" in stderr)
    )


def _said(done: subprocess.CompletedProcess[str]) -> str:
    return done.stderr.strip().replace("\n", " ") or f"exit status {done.returncode}"


def repository_of(root: Path) -> Path:
    """The top-level folder of the git repository that contains ``root``.

    Raises:
        UsageError: ``root`` is not in a git repository, or the repository
            has no commit yet (worktrees start from a commit).
    """
    done = _run_git(root, ("rev-parse", "--show-toplevel", "--verify", "--quiet", "HEAD"))
    lines = done.stdout.splitlines()
    if done.returncode == 128 or not lines:
        msg = f"{root} is not in a git repository ({_said(done)}); {_NEEDS_COMMIT}"
        raise UsageError(msg)
    if done.returncode != 0:
        msg = f"the git repository {lines[0]} has no commit yet; {_NEEDS_COMMIT}"
        raise UsageError(msg)
    return Path(lines[0])


def resolve_commit(repo: Path, base: str = "HEAD") -> str:
    """The full sha of the commit ``base`` names in ``repo``.

    Raises:
        SandboxError: ``base`` is not a commit of the repository.
    """
    found = _git(repo, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
    if found.returncode != 0:
        msg = f"{base!r} is not a commit of the repository {repo}; start from an existing commit"
        raise SandboxError(msg)
    return found.stdout.strip()


def create_sandbox(
    repo: Path, path: Path, task_id: str, attempt: int, base: str = "HEAD"
) -> Sandbox:
    """Check out a new worktree of ``repo`` at ``path`` on the branch ``task/<task_id>/<attempt>``.

    The parents of ``path`` are created. A branch or a folder left at the
    same place by an earlier run (a crash) is removed first, with its
    worktree: ``path`` belongs to the sandbox.

    Args:
        repo: the repository (see :func:`repository_of`).
        path: where the worktree goes; it must not be inside another worktree's files.
        task_id: the task the attempt runs.
        attempt: the attempt's number.
        base: the commit (or anything git resolves to one) to start from.

    Raises:
        SandboxError: ``base`` is not a commit, or git cannot create the worktree.
    """
    branch = f"task/{task_id}/{attempt}"
    try:
        sha = resolve_commit(repo, base)
    except SandboxError as error:
        msg = f"cannot create the sandbox of task {task_id!r} attempt {attempt}: {error}"
        raise SandboxError(msg) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    path = path.parent.resolve() / path.name
    for _ in range(_STALE_TRIES):
        done = _git(repo, "worktree", "add", "--quiet", "-b", branch, str(path), sha)
        if done.returncode == 0:
            return Sandbox(path, branch, sha, _watch(path))
        # Only a stale worktree or branch is expected here; _git already retried contention.
        _clear(repo, path, branch)
    msg = (
        f"cannot create the sandbox of task {task_id!r} attempt {attempt} at {path} "
        f"on branch {branch!r}: git says {_said(done)}; fix the cause in {repo} "
        f"(`git worktree list`, `git branch -D {branch}`) and run again"
    )
    raise SandboxError(msg)


def _clear(repo: Path, path: Path, branch: str) -> None:
    """Remove the worktrees at ``path`` or on ``branch``, what is left at ``path``, the branch."""
    listing = _git(repo, "worktree", "list", "--porcelain")
    records = listing.stdout.split("\n\n")
    target = os.path.realpath(path)
    for record in records[1:]:  # the first is the main worktree, never removed
        fields = dict(line.partition(" ")[::2] for line in record.splitlines())
        where = fields.get("worktree", "")
        if where and (
            os.path.realpath(where) == target or fields.get("branch") == f"refs/heads/{branch}"
        ):
            _git(repo, "worktree", "remove", "--force", "--force", where)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
    _git(repo, "branch", "-D", branch)


def reuse_sandbox(
    repo: Path, previous: Sandbox, task_id: str, attempt: int, base: str, *, pristine: bool = False
) -> Sandbox:
    """Turn the clean worktree of a finished, successful attempt into a new attempt's sandbox.

    The worktree of ``previous`` is forced onto a new branch
    ``task/<task_id>/<attempt>`` at ``base`` (a full sha) and every file git
    does not track is removed, so the attempt starts from exactly what
    :func:`create_sandbox` would give it, for two cheap git processes
    instead of a checkout of the whole tree. When the worktree is
    ``pristine`` at ``base`` (see :class:`Changes`), only the branch is
    created, without a process when git's files layout allows it. The
    previous attempt's branch and commits stay.

    Raises:
        SandboxError: git cannot switch or clean the worktree (the caller
            creates a fresh one instead).
    """
    path, watch = previous.path, previous.watch
    branch = f"task/{task_id}/{attempt}"
    switch = ("switch", "--quiet", "--create", branch)
    if pristine and (_branch_here(path, branch, base) or _git(path, *switch).returncode == 0):
        if watch is not None and watch.open:
            watch.drain()  # the branch's own HEAD write
        else:
            watch = _watch(path)
        return Sandbox(path, branch, base, watch)
    if watch is not None:
        watch.close()
    for args in (("checkout", "--quiet", "--force", "-B", branch, base),
                 ("clean", "--quiet", "-fdx")):  # fmt: skip
        done = _git(path, *args)
        if done.returncode != 0:
            msg = (
                f"cannot reuse the worktree {path} for task {task_id!r} attempt {attempt}: "
                f"`git {args[0]}` says {_said(done)}"
            )
            raise SandboxError(msg)
    return Sandbox(path, branch, base, _watch(path))


def _admin(path: Path) -> Path:
    """The administrative folder of the linked worktree at ``path`` (``.git/worktrees/<name>``).

    Raises:
        OSError, ValueError: ``path`` is not a linked worktree.
    """
    pointer = (path / ".git").read_text()
    if not pointer.startswith("gitdir: "):
        raise ValueError(pointer)
    return path / pointer.removeprefix("gitdir: ").strip()  # absolute, or relative to path


def _heads(admin: Path) -> Path:
    """The folder of loose branch refs of the repository of the worktree at ``admin``."""
    return admin / (admin / "commondir").read_text().strip() / "refs" / "heads"


def _watch(path: Path) -> TreeWatch | None:
    """A watch on the worktree at ``path`` and its administrative folder (see :mod:`.inotify`)."""
    try:
        return TreeWatch.of(path, _admin(path))
    except (OSError, ValueError):
        return None


def _branch_here(path: Path, branch: str, base: str) -> bool:
    """Create ``branch`` at ``base`` and check it out in the worktree at ``path``; False if not.

    What ``git switch --create`` does for a worktree already at ``base``,
    written as git's own files instead (git's files layout is documented in
    gitrepository-layout(5)): the loose ref, created exclusively so that an
    existing branch of that name makes it fail, then the worktree's
    ``HEAD``, rewritten in place. Neither lock files nor a reflog: on a file
    system that scans recently deleted inodes at each creation (ext4
    without a journal), git's lock files cost more than a short task. False
    when the repository does not keep loose refs (a reftable repository),
    the branch exists or a write fails: the caller then asks git, which
    resets a branch left half made.
    """
    try:
        admin = _admin(path)
        heads = _heads(admin)
        config = (heads.parent.parent / "config").read_text().lower()
        if not heads.is_dir() or "refstorage" in config:  # not git's files layout
            return False
        ref = heads / branch
        ref.parent.mkdir(parents=True, exist_ok=True)
        with open(ref, "x") as handle:
            handle.write(base + "\n")
        with open(admin / "HEAD", "r+") as handle:
            handle.write(f"ref: refs/heads/{branch}\n")
            handle.truncate()
    except (OSError, ValueError):
        return False
    return True


def keep_sandbox(repo: Path, sandbox: Sandbox, path: Path) -> Sandbox:
    """Move the worktree of a failed attempt to ``path``, where it is kept for inspection.

    A worktree that cannot be moved stays where it is (the returned sandbox says where).
    """
    if sandbox.watch is not None:
        sandbox.watch.close()  # kept, not reused: nobody asks what changed any more
    if path == sandbox.path:
        return sandbox
    path.parent.mkdir(parents=True, exist_ok=True)
    done = _git(repo, "worktree", "move", str(sandbox.path), str(path))
    return Sandbox(path, sandbox.branch, sandbox.base) if done.returncode == 0 else sandbox


def remove_sandbox(repo: Path, sandbox: Sandbox) -> None:
    """Remove the worktree of ``sandbox`` with its changes; its branch and commits stay.

    A worktree whose folder is already gone is fine.

    Raises:
        SandboxError: git cannot remove the worktree.
    """
    if sandbox.watch is not None:
        sandbox.watch.close()
    done = _git(repo, "worktree", "remove", "--force", str(sandbox.path))
    if done.returncode == 0 or not sandbox.path.exists():
        return
    msg = (
        f"cannot remove the sandbox {sandbox.path} (branch {sandbox.branch!r}): "
        f"git says {_said(done)}; remove it with `git worktree remove --force {sandbox.path}`"
    )
    raise SandboxError(msg)


def changes(sandbox: Sandbox) -> Changes:
    """What was changed in ``sandbox`` since its base: committed, uncommitted and untracked.

    Raises:
        SandboxError: git cannot read the worktree (it was removed, or is broken).
    """
    if _unchanged(sandbox):
        return Changes((), 0, 0, (), pristine=True)
    # One git process in the common case of an attempt that changed nothing.
    status = _read(
        sandbox,
        "status",
        "--porcelain=v2",
        "-z",
        "--branch",
        "--untracked-files=all",
        "--ignored=matching",
    )
    records = [r for r in status.split("\0") if r]
    head = next((r.split()[2] for r in records if r.startswith("# branch.oid ")), "")
    if head == sandbox.base and not any(not r.startswith("# ") for r in records):
        return Changes((), 0, 0, (), pristine=True)
    log = _read(
        sandbox,
        "log",
        "-z",
        "--reverse",
        "--no-renames",
        "--format=%x01%H",
        "--name-only",
        f"{sandbox.base}..HEAD",
    )
    stats = _read(sandbox, "diff", "--numstat", "-z", "--no-renames", sandbox.base)
    untracked = _read(sandbox, "ls-files", "--others", "--exclude-standard", "-z")
    commits: list[str] = []
    files: set[str] = set()
    for chunk in log.split("\x01")[1:]:
        sha, *names = chunk.split("\0")
        commits.append(sha)
        files.update(name.removeprefix("\n") for name in names if name.strip("\n"))
    insertions = deletions = 0
    for record in filter(None, stats.split("\0")):
        added, removed, name = record.split("\t", 2)
        files.add(name)
        # "-" for binary files, as git counts them
        insertions += int(added) if added.isdigit() else 0
        deletions += int(removed) if removed.isdigit() else 0
    for name in filter(None, untracked.split("\0")):
        files.add(name)
        insertions += _lines(sandbox.path / name)
    return Changes(tuple(sorted(files)), insertions, deletions, tuple(commits))


def _unchanged(sandbox: Sandbox) -> bool:
    """Whether the sandbox's watch saw no change and its branch is still at its base.

    A watch that saw a change is closed: it cannot vouch for the worktree
    any more (a folder created since is not watched).
    """
    watch = sandbox.watch
    if watch is None or not watch.open:
        return False
    if watch.changed():
        watch.close()
        return False
    try:
        ref = _heads(_admin(sandbox.path)) / sandbox.branch
        return ref.read_text() == sandbox.base + "\n"
    except (OSError, ValueError):  # packed, or not git's files layout: ask git
        return False


def _read(sandbox: Sandbox, *args: str) -> str:
    done = _git(sandbox.path, *args)
    if done.returncode != 0:
        msg = (
            f"cannot read the changes of the sandbox {sandbox.path} (branch {sandbox.branch!r}): "
            f"`git {args[0]}` says {_said(done)}; check that the worktree still exists"
        )
        raise SandboxError(msg)
    return done.stdout


def _lines(path: Path) -> int:
    """Lines of an untracked file as ``git diff --numstat`` would count them."""
    if path.is_symlink():
        return 1
    try:
        content = path.read_bytes()
    except OSError:
        return 0
    if b"\0" in content[:8000]:  # git's binary heuristic
        return 0
    return content.count(b"\n") + (not content.endswith(b"\n") and bool(content))
