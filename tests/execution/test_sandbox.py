"""Sandboxes are real git worktrees; changes() reads what an attempt did there."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from orchestration.errors import UsageError
from orchestration.execution.sandbox import (
    Changes,
    Sandbox,
    SandboxError,
    changes,
    create_sandbox,
    keep_sandbox,
    remove_sandbox,
    repository_of,
    reuse_sandbox,
)

Git = Callable[..., str]


def test_sandbox_is_worktree_on_task_branch_CONC_REG_012(
    repo: Path, tmp_path: Path, git: Git
) -> None:
    made = create_sandbox(repo, tmp_path / "deep" / "er" / "t-1", "build-x", 3)
    assert made == Sandbox(made.path, "task/build-x/3", git(repo, "rev-parse", "HEAD"))
    assert made.path.is_absolute() and (made.path / "src" / "app.py").is_file()
    assert git(made.path, "rev-parse", "--abbrev-ref", "HEAD") == "task/build-x/3"
    assert git(made.path, "rev-parse", "--show-toplevel") == str(made.path)
    assert str(made.path) in git(repo, "worktree", "list")


def test_sandbox_starts_from_the_given_base_CONC_REG_012(
    repo: Path, tmp_path: Path, git: Git
) -> None:
    first = git(repo, "rev-parse", "HEAD")
    (repo / "README.md").write_text("# changed\n")
    git(repo, "commit", "--quiet", "-am", "second")
    made = create_sandbox(repo, tmp_path / "s", "t", 1, base=first)
    assert made.base == first == git(made.path, "rev-parse", "HEAD")
    assert (made.path / "README.md").read_text() == "# demo\n"


def test_two_attempts_of_a_task_coexist_CONC_REG_012(repo: Path, tmp_path: Path, git: Git) -> None:
    one = create_sandbox(repo, tmp_path / "t" / "1", "t", 1)
    two = create_sandbox(repo, tmp_path / "t" / "2", "t", 2)
    (one.path / "README.md").write_text("only in attempt 1\n")
    assert (two.path / "README.md").read_text() == "# demo\n"
    assert git(two.path, "rev-parse", "--abbrev-ref", "HEAD") == "task/t/2"
    assert changes(one).files_changed == ("README.md",)
    assert changes(two).files_changed == ()


def _crashed(sandbox: Sandbox, repo: Path, git: Git) -> None:
    """The worktree is left as it was, with a commit on its branch."""
    (sandbox.path / "left.txt").write_text("stale\n")
    git(sandbox.path, "add", "left.txt")
    git(sandbox.path, "commit", "--quiet", "-m", "stale work")


def _folder_deleted(sandbox: Sandbox, repo: Path, git: Git) -> None:
    """Someone deleted the folder; git still lists the worktree and the branch exists."""
    _crashed(sandbox, repo, git)
    shutil.rmtree(sandbox.path)


def _plain_folder(sandbox: Sandbox, repo: Path, git: Git) -> None:
    """The worktree is gone (the branch stays) and a plain folder took its place."""
    _crashed(sandbox, repo, git)
    remove_sandbox(repo, sandbox)
    sandbox.path.mkdir()
    (sandbox.path / "left.txt").write_text("stale\n")


@pytest.mark.parametrize("leftover", [_crashed, _folder_deleted, _plain_folder])
def test_stale_branch_and_path_are_recreated_CONC_REG_012(
    repo: Path, tmp_path: Path, git: Git, leftover: Callable[[Sandbox, Path, Git], None]
) -> None:
    stale = create_sandbox(repo, tmp_path / "t" / "1", "t", 1)
    leftover(stale, repo, git)
    fresh = create_sandbox(repo, tmp_path / "t" / "1", "t", 1)
    assert fresh == stale
    assert not (fresh.path / "left.txt").exists()
    assert git(repo, "rev-parse", "task/t/1") == fresh.base
    assert changes(fresh) == Changes((), 0, 0, (), pristine=True)


def test_stale_branch_elsewhere_is_recreated_CONC_REG_012(
    repo: Path, tmp_path: Path, git: Git
) -> None:
    """The branch is still checked out in a worktree at another folder (a changed layout)."""
    create_sandbox(repo, tmp_path / "old" / "t-1", "t", 1)
    fresh = create_sandbox(repo, tmp_path / "new" / "t-1", "t", 1)
    assert git(fresh.path, "rev-parse", "--abbrev-ref", "HEAD") == "task/t/1"
    assert not (tmp_path / "old" / "t-1").exists()


def test_concurrent_sandboxes_in_one_repo_CONC_REG_012(
    repo: Path, tmp_path: Path, git: Git
) -> None:
    def make(number: int) -> Sandbox:
        return create_sandbox(repo, tmp_path / "many" / f"task-{number}", f"task-{number}", 1)

    with ThreadPoolExecutor(max_workers=12) as pool:
        made = list(pool.map(make, range(12)))
    assert all((sandbox.path / "README.md").is_file() for sandbox in made)
    listed = git(repo, "worktree", "list", "--porcelain")
    assert all(f"branch refs/heads/task/task-{n}/1" in listed for n in range(12))


def test_removal_keeps_the_branch_CONC_REG_012(sandbox: Sandbox, repo: Path, git: Git) -> None:
    (sandbox.path / "README.md").write_text("work\n")
    git(sandbox.path, "commit", "--quiet", "-am", "work")
    (sandbox.path / "untracked.txt").write_text("gone with the worktree\n")
    head = git(sandbox.path, "rev-parse", "HEAD")
    remove_sandbox(repo, sandbox)
    assert not sandbox.path.exists()
    assert str(sandbox.path) not in git(repo, "worktree", "list")
    assert git(repo, "rev-parse", sandbox.branch) == head
    remove_sandbox(repo, sandbox)  # already gone: fine


def test_changes_see_committed_uncommitted_and_untracked(sandbox: Sandbox, git: Git) -> None:
    root = sandbox.path
    (root / "README.md").write_text("# demo\nmore\n")
    (root / "docs").mkdir()
    (root / "docs" / "a b.md").write_text("one\ntwo\n")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "-m", "first")
    first = git(root, "rev-parse", "HEAD")
    (root / "src" / "app.py").write_text("def answer():\n    return 43\n")
    git(root, "commit", "--quiet", "-am", "second")
    second = git(root, "rev-parse", "HEAD")
    (root / "secrets" / "key.txt").unlink()  # uncommitted deletion
    (root / "staged.txt").write_text("s\n")
    git(root, "add", "staged.txt")  # staged, not committed
    (root / "new").mkdir()
    (root / "new" / "file.txt").write_text("x\ny")  # untracked, no final newline
    (root / "debug.log").write_text("ignored\n")
    assert changes(sandbox) == Changes(
        files_changed=(
            "README.md", "docs/a b.md", "new/file.txt", "secrets/key.txt", "src/app.py",
            "staged.txt",
        ),
        insertions=1 + 2 + 1 + 1 + 2,
        deletions=1 + 1,
        commits=(first, second),
    )  # fmt: skip


def test_changes_count_files_touched_by_commits_even_if_reverted(
    sandbox: Sandbox, git: Git
) -> None:
    root = sandbox.path
    (root / "secrets" / "key.txt").write_text("leaked\n")
    git(root, "commit", "--quiet", "-am", "touch")
    git(root, "revert", "--no-edit", "HEAD")
    found = changes(sandbox)
    assert found.files_changed == ("secrets/key.txt",)
    assert (found.insertions, found.deletions, len(found.commits)) == (0, 0, 2)


def test_changes_of_a_removed_sandbox_is_a_sandbox_error(sandbox: Sandbox, repo: Path) -> None:
    remove_sandbox(repo, sandbox)
    with pytest.raises(SandboxError, match="check that the worktree still exists"):
        changes(sandbox)


def test_unknown_base_is_a_sandbox_error(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match=r"'no-such-ref' is not a commit"):
        create_sandbox(repo, tmp_path / "s", "t", 1, base="no-such-ref")
    assert not (tmp_path / "s").exists()


def test_repository_of_finds_the_top_level(repo: Path) -> None:
    assert repository_of(repo / "src") == repo
    assert repository_of(repo) == repo


def test_repository_of_a_plain_folder_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not in a git repository") as caught:
        repository_of(tmp_path)
    assert "git init && git add -A && git commit -m init" in str(caught.value)


def test_repository_of_a_repo_without_commits_says_how_to_commit(tmp_path: Path, git: Git) -> None:
    git(tmp_path, "init", "--quiet")
    with pytest.raises(UsageError, match="has no commit yet") as caught:
        repository_of(tmp_path)
    assert "git commit -m init" in str(caught.value)


def test_a_reused_worktree_starts_clean_on_the_new_attempts_branch_CONC_REG_012(
    repo: Path, tmp_path: Path, git: Git
) -> None:
    first = create_sandbox(repo, tmp_path / "a.1", "a", 1)
    (first.path / "junk.txt").write_text("left by attempt 1\n")
    (first.path / "README.md").write_text("changed, not committed\n")
    git(first.path, "checkout", "-q", "-b", "side")  # even on another branch
    reused = reuse_sandbox(repo, first, "b", 1, first.base)
    assert reused == Sandbox(first.path, "task/b/1", first.base)
    assert git(reused.path, "rev-parse", "--abbrev-ref", "HEAD") == "task/b/1"
    assert changes(reused) == Changes((), 0, 0, (), pristine=True)
    assert git(repo, "rev-parse", "task/a/1") == first.base  # the old branch stays


def test_a_failed_attempts_worktree_is_kept_under_its_own_name_CONC_REG_013(
    repo: Path, tmp_path: Path, git: Git
) -> None:
    sandbox = create_sandbox(repo, tmp_path / "a.1", "a", 1)
    reused = reuse_sandbox(repo, sandbox, "b", 3, sandbox.base)
    (reused.path / "evidence.txt").write_text("what went wrong\n")
    kept = keep_sandbox(repo, reused, tmp_path / "b.3")
    assert kept == Sandbox(tmp_path / "b.3", "task/b/3", sandbox.base)
    assert (kept.path / "evidence.txt").exists() and not sandbox.path.exists()
    assert str(kept.path) in git(repo, "worktree", "list")


# --- the watch: an unchanged worktree is known without git (CONC-REG-013) ---------------


def _edit(path: Path, name: str) -> None:
    (path / name).write_text("changed\n")


CHANGES: dict[str, Callable[[Path, Git], object]] = {
    "a tracked file written": lambda p, git: _edit(p, "README.md"),
    "a file created in a subfolder": lambda p, git: _edit(p, "src/new.py"),
    "an ignored file": lambda p, git: _edit(p, "debug.log"),
    "a tracked file deleted": lambda p, git: (p / "src" / "app.py").unlink(),
    "a file renamed": lambda p, git: (p / "README.md").rename(p / "READ.md"),
    "a mode changed": lambda p, git: (p / "README.md").chmod(0o755),
    "a folder created": lambda p, git: (p / "new" / "deeper").mkdir(parents=True),
    "an empty commit": lambda p, git: git(p, "commit", "-q", "--allow-empty", "-m", "nothing"),
    "the index alone": lambda p, git: git(p, "rm", "-q", "--cached", "README.md"),
    "another branch": lambda p, git: git(p, "checkout", "-q", "-b", "side"),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_watched_worktree_sees_every_kind_of_change_CONC_REG_013(
    sandbox: Sandbox, git: Git, change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sandbox.watch is not None  # Linux: the kernel tells
    CHANGES[change](sandbox.path, git)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SandboxError, match="git status"):
        changes(sandbox)  # the watch saw it: only git can say what changed


def test_an_attempt_that_only_read_is_pristine_without_git_CONC_REG_013(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (sandbox.path / "README.md").read_text() == "# demo\n"
    assert len(list(sandbox.path.rglob("*"))) >= 5
    monkeypatch.setenv("PATH", "/nonexistent")  # git cannot run: the watch answers
    assert changes(sandbox) == Changes((), 0, 0, (), pristine=True)


def test_a_folder_an_attempt_left_is_watched_for_the_next_CONC_REG_013(
    repo: Path, tmp_path: Path
) -> None:
    first = create_sandbox(repo, tmp_path / "a.1", "a", 1)
    (first.path / "empty").mkdir()
    assert changes(first).pristine  # git does not see an empty folder
    reused = reuse_sandbox(repo, first, "b", 1, first.base, pristine=True)
    (reused.path / "empty" / "new.txt").write_text("written in the folder\n")
    assert changes(reused).files_changed == ("empty/new.txt",)


def test_a_pristine_worktree_gets_the_branch_git_would_make_without_git_CONC_REG_012(
    repo: Path, tmp_path: Path, git: Git
) -> None:
    first = create_sandbox(repo, tmp_path / "a.1", "a", 1)
    assert changes(first).pristine
    reused = reuse_sandbox(repo, first, "b", 2, first.base, pristine=True)  # not cleaned
    assert git(reused.path, "rev-parse", "--abbrev-ref", "HEAD") == "task/b/2"
    assert git(reused.path, "symbolic-ref", "HEAD") == "refs/heads/task/b/2"
    assert git(repo, "rev-parse", "task/b/2") == first.base
    assert git(reused.path, "status", "--porcelain") == ""
    assert "[task/b/2]" in git(repo, "worktree", "list")
    (reused.path / "README.md").write_text("# committed on the branch\n")
    git(reused.path, "commit", "-q", "-am", "work")
    assert changes(reused).commits == (git(repo, "rev-parse", "task/b/2"),)
    assert git(repo, "rev-parse", "task/a/1") == first.base


def test_a_branch_that_exists_is_reset_to_the_base_CONC_REG_012(
    repo: Path, tmp_path: Path, git: Git
) -> None:
    first = create_sandbox(repo, tmp_path / "a.1", "a", 1)
    (repo / "README.md").write_text("# later\n")
    git(repo, "commit", "-q", "-am", "later")
    git(repo, "branch", "task/b/1")  # left by an earlier run, elsewhere
    assert changes(first).pristine
    reused = reuse_sandbox(repo, first, "b", 1, first.base, pristine=True)
    assert git(reused.path, "rev-parse", "HEAD") == first.base
    assert git(repo, "rev-parse", "task/b/1") == first.base
    assert (reused.path / "README.md").read_text() == "# demo\n"
