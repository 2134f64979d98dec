"""Demo first start: seconds from an empty store to a usable Overview, the way `make app` gets there: the demo
build started in the background (its worker process), waited for, then the Overview's first read.

With the base model's answers shipped as data (workbench/demo_data/base_answers.json) the build loads no model.
BENCH_DEMO_LIVE=1 also times the build that asks the embedded model (minutes on a CPU), as the baseline in the
same run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path


def _first_start(root: Path, shipped: bool) -> tuple[float, str]:
    from workbench import demo
    from workbench.stats import store_summary
    from workbench.store import Store

    started = time.perf_counter()
    store = Store.open(root)
    if shipped:
        demo.start_demo_build(store)
        while (build := demo.demo_build(store)).running:
            time.sleep(0.1)
        assert build.state == "done", build.error
    else:
        demo.build_demo(store, shipped=False)
    store_summary(store)
    return (
        time.perf_counter() - started,
        "background build, shipped answers" if shipped else "asking the model",
    )


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("WORKBENCH_POLL_S", "0.1")
    work = Path(tempfile.mkdtemp(prefix="bench-demo-start-"))
    try:
        cases = [True] + ([False] if os.environ.get("BENCH_DEMO_LIVE") == "1" else [])
        timings = [_first_start(work / f"store-{i}", shipped) for i, shipped in enumerate(cases)]
        print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)", flush=True)
        for seconds, label in timings:
            ratio = (
                f" ({timings[-1][0] / seconds:5.1f}x faster than asking the model)"
                if len(timings) > 1
                else ""
            )
            print(f"demo first start to a usable Overview, {label:38s} {seconds:6.1f} s{ratio}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
