"""Benchmark: sealing, verifying, archiving and restoring a journal of a million lines.

On a generated journal of N lines (default 1,000,000; 10k tasks created, then
claimed and released, as the store writes them), each step runs as the CLI a user would run,
in a fresh process, and is checked:

- ``audit rotate``: every line sealed, the segments decompress to the journal
  byte for byte, seq contiguous; floor: ``gzip.compress`` of the same bytes
  in-process (what sealing cannot avoid);
- ``audit verify``: intact; floor: the CLI's start-up (``--help``) plus the
  SHA-256 of the segments in-process;
- ``audit archive --older-than 0`` then ``audit restore --all``: the segments
  come back byte-identical;
- ``state verify`` and ``history`` across the segments: equal to before.

    python bench/audit.py                 # one million lines
    python bench/audit.py 200000
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent


def write_journal(root: Path, lines: int) -> bytes:
    """``lines`` journal lines as the store writes them: 10k creates, claims, releases."""
    state = root / ".state"
    state.mkdir(parents=True)
    (root / "tasks").mkdir()
    shutil.copytree(REPO / "docs" / "state_machines", root / "docs" / "state_machines")
    tasks = 10_000
    creates = [
        {"seq": n, "ts": "2026-11-28T00:00:00.000Z", "entity": "task", "id": f"task-{n:06d}",
         "from": None, "to": "ready", "trigger": "create", "actor": "bench", "reason": "",
         "severity": "info", "data": {"workstream_id": "ws-001"}}
        for n in range(1, tasks + 1)
    ]  # fmt: skip
    creates[-1]["commit"] = True
    changes = (
        {"seq": seq, "ts": "2026-11-28T00:00:00.000Z", "entity": "task",
         "id": f"task-{seq % tasks + 1:06d}", "from": "ready" if odd else "claimed",
         "to": "claimed" if odd else "ready", "trigger": "claim" if odd else "release",
         "actor": "bench", "reason": "", "severity": "info", "commit": True}
        for seq in range(tasks + 1, lines + 1)
        for odd in [(seq - 1) // tasks % 2 == 1]
    )  # fmt: skip
    data = b"".join(orjson.dumps(line) + b"\n" for line in [*creates, *changes])
    (state / "transitions.jsonl").write_bytes(data)
    return data


def cli(root: Path, *args: str) -> tuple[float, str]:
    """Seconds and stdout of ``orchestration --root ROOT ARGS`` (exit 0 required)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "orchestration", "--root", str(root), *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        msg = f"{' '.join(args)} failed ({done.returncode}): {done.stderr[-500:]}"
        raise SystemExit(msg)
    return seconds, done.stdout


def segments(root: Path, folder: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / ".state" / folder).glob("*.gz"))}


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        journal = write_journal(root, lines)
        cli(root, "state", "rebuild")  # the snapshot a running pipeline would have
        _, before = cli(root, "history", "task-000042", "--format", "json")

        start = time.perf_counter()
        gzip.compress(journal, compresslevel=6, mtime=0)
        floor_gzip = time.perf_counter() - start
        rotate, _ = cli(root, "audit", "rotate")
        sealed = segments(root, "audit")
        assert b"".join(gzip.decompress(data) for data in sealed.values()) == journal
        assert (root / ".state" / "transitions.jsonl").read_bytes() == b""

        start = time.perf_counter()
        for data in sealed.values():
            hashlib.sha256(data).hexdigest()
        floor_hash = time.perf_counter() - start + cli(root, "--help")[0]
        check, _ = cli(root, "audit", "verify")

        archive, _ = cli(root, "audit", "archive", "--older-than", "0")
        assert segments(root, "archive") == sealed and not segments(root, "audit")
        restore, _ = cli(root, "audit", "restore", "--all")
        assert segments(root, "audit") == sealed and not segments(root, "archive")

        state, _ = cli(root, "state", "verify")
        history, after = cli(root, "history", "task-000042", "--format", "json")
        assert orjson.loads(after)["history"] == orjson.loads(before)["history"]

    size = len(journal) / 2**20
    packed = sum(len(data) for data in sealed.values()) / 2**20
    print(f"journal: {lines:,} lines, {size:.0f} MiB -> {len(sealed)} segments, {packed:.1f} MiB")
    print(f"audit rotate   {rotate:6.2f} s   ({rotate / floor_gzip:.2f} x gzip alone, "
          f"{floor_gzip:.2f} s)")  # fmt: skip
    print(f"audit verify   {check:6.2f} s   ({check / floor_hash:.2f} x start-up + SHA-256 "
          f"alone, {floor_hash:.2f} s)")  # fmt: skip
    print(f"audit archive  {archive:6.2f} s   audit restore {restore:.2f} s (byte-identical)")
    print(f"state verify   {state:6.2f} s   history {history:.2f} s (across the segments)")


if __name__ == "__main__":
    main()
