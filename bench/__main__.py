"""`python -m bench [area ...]`: run every benchmark module (or the named ones) and print their figures.

Each module in this folder has `main()`; it prints each figure beside its baseline measured in the
same run, as a ratio. Benchmarks never fail the test suite: they report.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path

ORDER = [
    "startup",
    "demo_start",
    "ingest",
    "dedup",
    "export",
    "train",
    "train_shared",
    "evaluate",
    "eval_cache",
    "endpoints",
    "endpoint_restart",
]


def main(argv: list[str]) -> None:
    found = {m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_")}
    wanted = argv or [name for name in ORDER if name in found] + sorted(found - set(ORDER))
    for name in wanted:
        if name not in found:
            sys.exit(f"no benchmark named {name!r}; there are: {', '.join(sorted(found))}")
        print(f"\n=== bench {name} ===", flush=True)
        started = time.perf_counter()
        importlib.import_module(f"bench.{name}").main()
        print(f"({name}: {time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
