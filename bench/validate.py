"""Benchmark: `validate` end to end against reading the same task files.

Generates pipelines of 10k and 100k task files (as bench/plan.py does),
scaffolds the rest of a pipeline around them with ``init`` and creates its
state with ``sync``, then times, in fresh processes:

- floor:    read every task file and parse it with orjson (no validation);
- validate: ``python -m orchestration --root DIR validate --format json``,
            every check: task files, graph, registries, lifecycles, catalog,
            and the state (snapshot, journal replay, definitions vs state).

The ratio validate ÷ floor is what to compare across machines. Targets on
2 cores (COMPLIANCE-009): ≤ 3 s at 10k tasks, ≤ 20 s at 100k.

    python bench/validate.py                 # 10k, 100k
    python bench/validate.py 1000            # chosen sizes
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from plan import FLOOR, generate, timed


def main(argv: list[str]) -> None:
    sizes = [int(arg) for arg in argv] or [10_000, 100_000]
    python = sys.executable
    header = ("tasks", "floor s", "validate s", "ratio", "MB")
    print("".join(f"{name:>11}" for name in header))
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-validate-") as folder:
            generate(Path(folder), size)
            cli = [python, "-m", "orchestration", "--root", folder]
            for command in (["init", folder], ["sync"]):
                subprocess.run([*cli, *command], check=True, stdout=subprocess.DEVNULL)
            floor, _ = timed([python, "-c", FLOOR, folder])
            seconds, memory = timed([*cli, "validate", "--format", "json"])
        row = (size, f"{floor:.2f}", f"{seconds:.2f}", f"{seconds / floor:.2f}", f"{memory:.0f}")
        print("".join(f"{cell:>11}" for cell in row))


if __name__ == "__main__":
    main(sys.argv[1:])
