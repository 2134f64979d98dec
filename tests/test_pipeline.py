"""The one-click export → train → evaluate pipeline as a background process: real store, real worker processes,
a tiny model; its folder says the stage, the export, the run and the evaluations; cancel and the error path."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.data_train import INTENTS, classification_records
from workbench import pipeline as P
from workbench.contracts import Contract
from workbench.curation import set_contract, set_status
from workbench.errors import WorkbenchError
from workbench.evaluate import compare_evaluations, list_evaluations
from workbench.export import ExportConfig
from workbench.ingest import import_file
from workbench.store import Store
from workbench.store.records import Selection
from workbench.train import runs as R

os.environ.setdefault("WORKBENCH_POLL_S", "0.2")  # the pipeline's wait on its run looks this often
QUICK = {
    "epochs": 2,
    "batch_size": 8,
    "lora_rank": 4,
    "learning_rate": 2e-2,
    "eval_max_records": 4,
    "eval_max_new_tokens": 4,
    "save_every_steps": 0,
}


def wait(store: Store, pipeline_id: int, timeout: float = 300) -> P.PipelineStatus:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = P.pipeline_status(store, pipeline_id)
        if not status.running:
            return status
        time.sleep(0.2)
    raise AssertionError(f"pipeline {pipeline_id} still running after {timeout} s")


def intents_store(root, n: int = 40) -> Store:
    store = Store.open(root / "store")
    rows = [
        {k: v for k, v in r.items() if k not in ("id", "source")} for r in classification_records(n, seed=3)
    ]
    path = root / "intents.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[:-8]), encoding="utf-8")
    held = root / "held.jsonl"
    held.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[-8:]), encoding="utf-8")
    report = import_file(store, path)
    import_file(store, held, dataset="eval")
    set_contract(store, Contract("intent", "labels", list(INTENTS)))
    set_status(store, Selection(import_id=report.import_id), "approved", "test")
    return store


def start_intents(store: Store, tiny: str, max_new_tokens: int) -> P.PipelineStatus:
    return P.start_pipeline(
        store,
        ExportConfig(name="intents", val=0.2, general_share=0.0, leakage_guard="exact"),
        train={"base_model": tiny, **QUICK},
        eval_options={"max_new_tokens": max_new_tokens},
        author="测试",
    )


@pytest.mark.slow
def test_export_train_evaluate_in_the_background(tmp_path, tiny):
    store = intents_store(tmp_path)
    started = start_intents(store, tiny, 6)
    assert started.running and P.latest_pipeline(store).id == started.id
    with pytest.raises(WorkbenchError, match="still running"):
        P.start_pipeline(store, ExportConfig(name="again"), author="test")
    final = wait(store, started.id)
    assert final.state == "done", (final.error, (P.pipelines_dir(store) / "1" / "log.txt").read_text())
    assert final.export_dir and final.export_hash and final.run_id is not None
    assert R.run_status(store, final.run_id).state == "done"
    live = P.live_run(final)
    assert live.state == "done" and live.step == live.total_steps > 0 and live.losses and live.checkpoints
    assert set(final.evaluations) == {"base/eval", "run/eval"}  # no general data: no general evaluations
    c = compare_evaluations(store, final.evaluations["base/eval"], final.evaluations["run/eval"])
    assert c.total.n == 8  # the held-out eval dataset, every record scored by both


def test_nothing_to_export_fails_with_the_reason_and_cancel_of_a_finished_one_is_a_no_op(tmp_path, tiny):
    store = Store.open(tmp_path / "store")
    started = P.start_pipeline(store, ExportConfig(name="empty"), train={"base_model": tiny}, author="test")
    final = wait(store, started.id, 120)
    assert final.state == "failed" and final.run_id is None and final.error
    assert P.live_run(final) is None
    assert not P.cancel_pipeline(store, started.id)
    with pytest.raises(WorkbenchError, match="before training started"):
        P.resume_pipeline(store, started.id)


@pytest.mark.slow
def test_cancel_during_the_evaluation_is_reported_cancelled_and_resume_finishes_it(tmp_path, tiny):
    store = intents_store(tmp_path)
    started = start_intents(store, tiny, 64)
    deadline = time.monotonic() + 300
    while P.pipeline_status(store, started.id).stage != "evaluate" and time.monotonic() < deadline:
        time.sleep(0.05)
    while not list_evaluations(store) and time.monotonic() < deadline:
        time.sleep(0.05)  # the evaluation is under way: a cancel now stops it mid-generation
    assert P.cancel_pipeline(store, started.id)
    final = wait(store, started.id, 120)
    assert final.state == "cancelled", (final.error, (P.pipelines_dir(store) / "1" / "log.txt").read_text())
    assert R.run_status(store, final.run_id).state == "done"  # the training it finished stays finished
    resumed = P.resume_pipeline(store, started.id)
    assert resumed.running
    assert wait(store, started.id).state == "done"
