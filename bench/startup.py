"""Start-up of the command line: `workbench --help` next to a bare `python -c pass` in the same run, as a ratio;
and the imports each background worker pays before it starts (`python -m <its module>`), the training worker's
beside the libraries it cannot train without (torch, transformers, peft).

Each is the best of ROUNDS fresh processes, taking turns, so a busy moment on a shared machine counts once.
The target is under 0.6 s for `workbench --help` on the 2-core development machine: commands import the
library they call when they run, so start-up loads no torch, scipy or transformers.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROUNDS = int(os.environ.get("BENCH_STARTUP_ROUNDS", "7"))


def _seconds(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run (the CPU time is what the wall time is on a quiet machine)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    script = Path(sys.executable).parent / "workbench"  # the console script `make install` puts there
    workbench = [str(script)] if script.exists() else [sys.executable, "-m", "workbench.cli"]
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "workbench --help": [*workbench, "--help"],
        **{
            f"{what} worker": [sys.executable, "-c", f"import {module}"]
            for what, module in (
                ("import/curation job", "workbench.jobs"),
                ("pipeline", "workbench.pipeline"),
                ("evaluation", "workbench.evaluate.worker"),
                ("training", "workbench.train.worker"),
            )
        },
        "torch+transformers+peft": [sys.executable, "-c", "import torch, transformers, peft"],
    }
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(ROUNDS):  # rounds take turns between the cases
        for name, argv in cases.items():
            runs[name].append(_seconds(argv))
    wall = {name: min(w for w, _ in r) for name, r in runs.items()}
    cpu = {name: min(c for _, c in r) for name, r in runs.items()}
    for name in cases:
        print(
            f"{name:27s} {wall[name]:6.3f} s wall ({wall[name] / wall['python -c pass']:5.1f}x python -c pass), "
            f"{cpu[name]:6.3f} s CPU ({cpu[name] / max(cpu['python -c pass'], 1e-3):5.1f}x)"
        )


if __name__ == "__main__":
    main()
