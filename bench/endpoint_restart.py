"""What one server restart costs an endpoint evaluation: `workbench evaluate endpoint:NAME` of BENCH_RESTART_RECORDS
records (default 1,000) against a real local `transformers serve` (the embedded SmolLM2-135M-Instruct, float32,
CPU), once undisturbed and once with the server killed (SIGKILL) halfway and started again at once on the same
port, as a supervisor (systemd, Docker's restart policy, Kubernetes) would. The second arm's time runs from the
start of the evaluation to the end of its `--resume`, which is started as soon as the server answers its health
probe again: the interrupted evaluation ends on its own (requests in flight retry with backoff; after
twice the concurrency failures in a row it sends no more), stores what finished and asks for nothing twice.

Printed: both arms' seconds, the extra time as a share of the undisturbed run (target: under 10%), and where it
went (the restart itself, the requests that failed while the server was down, the wait for the give-up). Both arms
use the generated intent records (English and Chinese) under the labels contract, greedy, the same budget, the
answer cache off, concurrency BENCH_RESTART_CONCURRENCY (default 8). The two arms run one after the other, so
the load of anything else on the machine shifts their difference: read it beside the load printed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

RECORDS = int(os.environ.get("BENCH_RESTART_RECORDS", "1000"))
CONCURRENCY = int(os.environ.get("BENCH_RESTART_CONCURRENCY", "8"))


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from bench.endpoints import intent_eval_store
    from workbench import registry
    from workbench.endpoint import EndpointError, chat, probe
    from workbench.evaluate import EvalOptions, evaluate, list_evaluations, resume_evaluation
    from workbench.evaluate.remote import request_errors
    from workbench.models import default_models_dir, ensure_embedded_model
    from workbench.serve import free_port, start_server
    from workbench.store import evaluations as sql

    work = Path(tempfile.mkdtemp(prefix="bench-restart-"))
    servers = []
    try:
        store = intent_eval_store(work, RECORDS, seed=5)
        model_dir = ensure_embedded_model(default_models_dir())
        port = free_port()

        def serve():
            started = time.perf_counter()
            server = start_server(model_dir, port=port, log=work / "serve.log", device="cpu")
            servers.append(server)
            return time.perf_counter() - started

        up = serve()
        print(f"transformers serve up in {up:.1f} s (load {os.getloadavg()[0]:.1f})", flush=True)
        endpoint = registry.add_endpoint(store, "local", servers[-1].url, servers[-1].model_id)
        chat(registry.endpoint_of(store, "local"), [{"role": "user", "content": "hi"}], max_tokens=2)  # warm
        options = EvalOptions(cache=False, max_concurrency=CONCURRENCY)

        def answers(evaluation_id: int) -> list:
            with store.connect() as con:
                return [(r.record_key, r.output) for r in sql.results(con, evaluation_id)]

        started = time.perf_counter()
        calm = evaluate(store, f"endpoint:{endpoint.name}", "dataset", dataset="eval", options=options)
        undisturbed = time.perf_counter() - started
        print(
            f"undisturbed: {RECORDS} records in {undisturbed:6.1f} s ({RECORDS / undisturbed:.2f} records/s, "
            f"concurrency {CONCURRENCY}; load {os.getloadavg()[0]:.1f})",
            flush=True,
        )

        restart: dict = {}

        def kill_halfway(done: int, total: int, info: dict) -> None:
            if restart or not info.get("phase", "").startswith("answered") or done < total // 2:
                return
            restart["killed_at"] = time.perf_counter()
            restart["answered"] = done
            servers[-1].process.kill()
            servers[-1].process.wait()

            def supervisor() -> None:
                restart["seconds"] = serve()
                restart["up_at"] = time.perf_counter()

            restart["thread"] = threading.Thread(target=supervisor, daemon=True)
            restart["thread"].start()

        started = time.perf_counter()
        try:
            evaluate(
                store, f"endpoint:{endpoint.name}", "dataset", dataset="eval", options=options, progress=kill_halfway
            )  # fmt: skip
            raise SystemExit("the evaluation did not notice the server was killed: the bench is wrong")
        except EndpointError:
            # it says what failed and how to resume (tests/test_endpoints.py checks the words)
            gave_up = time.perf_counter()
        evaluation_id = max(e.evaluation.id for e in list_evaluations(store))
        failed = len(request_errors(store, evaluation_id))
        with store.connect() as con:
            kept = {r.seq: r.latency_s for r in sql.results(con, evaluation_id) if r.output is not None}
        restart["thread"].join()
        while not probe(registry.endpoint_of(store, "local")).ok:  # the supervisor's server, answering
            time.sleep(0.2)
        back = time.perf_counter()
        report = resume_evaluation(store, evaluation_id)
        interrupted = time.perf_counter() - started
        with store.connect() as con:
            after = {r.seq: r.latency_s for r in sql.results(con, evaluation_id)}
        asked_twice = sum(after[s] != kept[s] for s in kept)
        same = sum(
            a == b for a, b in zip(answers(report.evaluation.id), answers(calm.evaluation.id), strict=True)
        )
        extra = interrupted - undisturbed
        print(
            f"one restart:  {RECORDS} records in {interrupted:6.1f} s: {extra:+.1f} s, {extra / undisturbed:+.1%} "
            f"of the undisturbed run (target: under +10%; load {os.getloadavg()[0]:.1f})\n"
            f"  killed after {restart['answered']} answers; the supervisor's server answered again "
            f"{restart['up_at'] - restart['killed_at']:.1f} s later (its start: {restart['seconds']:.1f} s); the evaluation "
            f"went on (requests in flight retried with backoff) and ended {gave_up - restart['killed_at']:.1f} s after "
            f"the kill with {len(kept)} answers stored and {failed} requests recorded as failed; `--resume` asked for "
            f"the {RECORDS - len(kept)} records left in {interrupted - (back - started):.1f} s\n"
            f"  answers asked twice: {asked_twice}; status {report.evaluation.status}; answers identical to the "
            f"undisturbed run: {same}/{RECORDS}",
            flush=True,
        )
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
