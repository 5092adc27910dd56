"""The cache of derived data: found only under its signature, never needed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestration import cache

CODE = ("cache.py",)


def stats(*paths: Path) -> list[tuple[str, os.stat_result]]:
    return [(path.name, os.stat(path)) for path in paths]


def test_lives_under_xdg_cache_home_one_file_per_kind_and_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    plan = cache.cache_file("plan", tmp_path / "a")
    assert plan.parent == tmp_path / "xdg" / "orchestration"
    assert plan.name.startswith("plan-") and plan.suffix == ".json"
    assert cache.cache_file("lifecycles", tmp_path / "a").parent == plan.parent
    assert cache.cache_file("lifecycles", tmp_path / "a") != plan
    assert cache.cache_file("plan", tmp_path / "b") != plan
    (tmp_path / "a").mkdir()
    assert cache.cache_file("plan", tmp_path / "x" / ".." / "a") == plan  # the resolved root


def test_defaults_to_dot_cache_in_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache.cache_file("plan", tmp_path).parent == tmp_path / ".cache" / "orchestration"


def test_read_returns_what_was_written_under_the_same_signature(tmp_path: Path) -> None:
    stored = tmp_path / "nested" / "plan.json"
    data = {"tasks": [["a", 1, None, ["b"], [], 2.5]], "files": {"a": "tasks/a.json"}}
    cache.write(stored, "one", data)
    assert cache.read(stored, "one") == data
    assert cache.read(stored, "two") is None
    assert os.listdir(stored.parent) == ["plan.json"]  # no temporary file left behind


@pytest.mark.parametrize(
    "text",
    [b"", b'{"signature": ', b"[]", b'"one"', b"{}", b'{"data": 1}', b'{"signature": "one"}'],
)
def test_a_corrupt_document_is_a_miss(tmp_path: Path, text: bytes) -> None:
    stored = tmp_path / "plan.json"
    stored.write_bytes(text)
    assert cache.read(stored, "one") is None


def test_a_missing_or_unreadable_document_is_a_miss(tmp_path: Path) -> None:
    assert cache.read(tmp_path / "absent.json", "one") is None
    assert cache.read(tmp_path, "one") is None  # a folder


def test_a_failed_write_only_costs_speed(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache.write(blocker / "orchestration" / "plan.json", "one", {"tasks": []})
    assert blocker.read_text() == "not a folder"


def test_signature_changes_with_each_file_name_size_and_time(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text("{}")
    b.write_text("[]")
    first = cache.signature(CODE, stats(a, b))
    assert cache.signature(CODE, stats(a, b)) == first
    assert cache.signature(CODE, stats(a)) != first
    assert cache.signature(CODE, [("c.json", a.stat()), ("b.json", b.stat())]) != first
    time = b.stat().st_mtime_ns
    b.write_text("[1]")
    os.utime(b, ns=(time, time))
    assert cache.signature(CODE, stats(a, b)) != first  # the size
    b.write_text("[]")
    os.utime(b, ns=(1, 1))
    assert cache.signature(CODE, stats(a, b)) != first  # the time, even an older one
    os.utime(b, ns=(time, time))
    assert cache.signature(CODE, stats(a, b)) == first


def test_signature_depends_on_the_engine_code(tmp_path: Path) -> None:
    assert cache.signature(CODE, []) != cache.signature((), [])
    with pytest.raises(OSError):
        cache.signature(("no_such_module.py",), [])
