"""Endpoint evaluation throughput: `workbench evaluate endpoint:NAME` against a real local `transformers serve`
on the embedded SmolLM2-135M-Instruct (float32, CPU) at concurrency 1, 4 and 8, beside the in-process batched
`workbench evaluate base` on the same records, in the same run; and the verdicts of each against in-process.

The generated intent records (English and Chinese) under the labels contract, greedy, the same token budget.
The server is started once and warmed with one request before the figures. The load average is printed:
other processes on the machine slow every method.

Environment: BENCH_ENDPOINT_RECORDS (default 24).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

RECORDS = int(os.environ.get("BENCH_ENDPOINT_RECORDS", "24"))


def intent_eval_store(work: Path, records: int, seed: int):
    """A store in `work` with `records` generated intents (40% Chinese) as dataset eval, under a labels contract."""
    from tests.data_train import INTENTS, classification_records
    from workbench.contracts import Contract
    from workbench.curation import set_contract
    from workbench.ingest import import_file
    from workbench.store import Store

    store = Store.open(work / "store")
    path = work / "eval.jsonl"
    path.write_text(
        "".join(
            json.dumps({**r, "category": "intent"}, ensure_ascii=False) + "\n"
            for r in classification_records(records, seed=seed, chinese_share=0.4)
        ),
        encoding="utf-8",
    )
    import_file(store, path, dataset="eval")
    set_contract(store, Contract("intent", "labels", list(INTENTS)))
    return store


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from workbench import registry
    from workbench.endpoint import chat
    from workbench.evaluate import EvalOptions, evaluate
    from workbench.models import default_models_dir, ensure_embedded_model
    from workbench.serve import start_server
    from workbench.store import evaluations as sql

    work = Path(tempfile.mkdtemp(prefix="bench-endpoints-"))
    server = None
    try:
        store = intent_eval_store(work, RECORDS, seed=3)
        started = time.perf_counter()
        server = start_server(
            ensure_embedded_model(default_models_dir()), log=work / "serve.log", device="cpu"
        )
        print(
            f"transformers serve up in {time.perf_counter() - started:.1f} s (load {os.getloadavg()[0]:.1f})"
        )
        endpoint = registry.add_endpoint(store, "local", server.url, server.model_id)
        chat(registry.endpoint_of(store, "local"), [{"role": "user", "content": "hi"}], max_tokens=2)  # warm

        def verdicts(evaluation_id: int) -> list:
            with store.connect() as con:
                return [(r.record_key, r.verdict, r.output) for r in sql.results(con, evaluation_id)]

        started = time.perf_counter()
        base = evaluate(store, "base", "dataset", dataset="eval", options=EvalOptions(batch_size=16))
        in_process = time.perf_counter() - started
        reference = verdicts(base.evaluation.id)
        print(
            f"{'in-process evaluate base (batched, 16)':42s} {RECORDS / in_process:6.2f} records/s "
            f"({in_process:5.1f} s, model load and each record's loss included; load {os.getloadavg()[0]:.1f})"
        )
        for width in (1, 4, 8):
            started = time.perf_counter()
            report = evaluate(
                store, f"endpoint:{endpoint.name}", "dataset", dataset="eval",
                options=EvalOptions(max_concurrency=width),
            )  # fmt: skip
            seconds = time.perf_counter() - started
            same = sum(a == b for a, b in zip(verdicts(report.evaluation.id), reference, strict=True))
            print(
                f"{f'endpoint evaluate, concurrency {width}':42s} {RECORDS / seconds:6.2f} records/s "
                f"({seconds:5.1f} s, {in_process / seconds:4.2f}x in-process; verdicts and answers identical to "
                f"in-process: {same}/{RECORDS}; load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
