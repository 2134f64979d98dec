"""Evaluation cache: `workbench evaluate base --on eval` run twice on the same store, the second reading its
answers and losses from the evaluation cache, as seconds and a ratio in the same run.

SmolLM2-135M-Instruct (the embedded model, float32 on CPU), the generated intent records (English and Chinese,
a labels contract), greedy decoding. The first run loads the model, generates, computes each record's loss and
hashes the model's files once; the re-run hashes nothing new, loads no model and reads every answer and loss.

Environment: BENCH_CACHE_RECORDS (default 32).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

RECORDS = int(os.environ.get("BENCH_CACHE_RECORDS", "32"))


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from tests.data_train import INTENTS, classification_records
    from workbench.contracts import Contract
    from workbench.curation import set_contract
    from workbench.evaluate import EvalOptions, evaluate, evaluation_results
    from workbench.ingest import import_file
    from workbench.models import default_models_dir
    from workbench.store import Store

    os.environ.setdefault("WORKBENCH_MODELS", str(default_models_dir()))
    work = Path(tempfile.mkdtemp(prefix="bench-eval-cache-"))
    try:
        path = work / "eval.jsonl"
        path.write_text(
            "".join(
                json.dumps({"messages": r["messages"], "category": "intent"}, ensure_ascii=False) + "\n"
                for r in classification_records(RECORDS, seed=11)
            ),
            encoding="utf-8",
        )
        store = Store.open(work / "store")
        import_file(store, path, dataset="eval")
        set_contract(store, Contract("intent", "labels", list(INTENTS)))
        timings = []
        for label in ("first run", "re-run with the cache"):
            started = time.perf_counter()
            report = evaluate(store, "base", "dataset", dataset="eval", options=EvalOptions())
            timings.append((label, time.perf_counter() - started, report))
        first = timings[0][1]
        outputs = [
            [r.output for r in evaluation_results(store, t[2].evaluation.id, limit=None)] for t in timings
        ]
        print(
            f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {RECORDS} records)", flush=True
        )
        for label, seconds, report in timings:
            print(
                f"{'evaluate base --on eval, ' + label:45s} {seconds:6.2f} s  ({first / seconds:5.1f}x the first run; "
                f"{report.cache.describe()}; accuracy {report.total.accuracy:.1%})",
                flush=True,
            )
        print(
            f"answers identical: {sum(a == b for a, b in zip(*outputs, strict=True))}/{RECORDS}", flush=True
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
