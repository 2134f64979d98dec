"""Background curation jobs: embed + dedup + cluster in a process of their own, progress in a folder."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from workbench import ingest, jobs
from workbench.train.folder import write_json_atomic

from .conftest import chat

TEXTS = [
    "我要退款，订单 {n} 的外卖洒了",
    "Where is my order {n}? It is late.",
    "帮我取消订单 {n}",
    "I want a refund for order {n}, the soup was cold",
    "我的外卖到哪了？订单 {n}",
    "Cancel order {n} please",
]


def _wait(store, job_id, seconds=600):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = jobs.job_status(store, job_id)
        if not status.running:
            return status
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still running after {seconds} s: {status}")


def test_embed_dedup_cluster_job_runs_in_the_background_and_reports_each_step(store, write_jsonl):
    records = [chat(t.format(n=1000 + i), "ok", category="intent") for i in range(8) for t in TEXTS]
    records += [chat("我要退款，订单 1000 的外卖洒了", "ok", category="intent")]  # an exact copy
    ingest.import_file(store, write_jsonl(records))
    started = jobs.start_job(store)
    assert started.running and started.steps == ["embed", "dedup", "cluster"]
    with pytest.raises(jobs.JobRunning, match="still running"):
        jobs.start_job(store, ["dedup"])
    status = _wait(store, started.id)
    assert status.state == "done", status.error
    assert status.results["embed"]["records"] == len(records)
    assert status.results["dedup"]["marked"] >= 1
    assert status.results["cluster"]["clusters"] >= 2
    assert jobs.latest_job(store).id == started.id
    with store.connect() as con:  # the job's work is in the store
        assert con.execute("SELECT count(*) FROM records WHERE dup_of IS NOT NULL").fetchone()[0] >= 1


def test_a_job_whose_process_died_is_reported_failed(store):
    folder = jobs.jobs_dir(store) / "1"
    folder.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_json_atomic(folder / "status.json", {"state": "running", "steps": ["embed"], "pid": dead.pid})
    status = jobs.latest_job(store)
    assert status.state == "failed" and "ended without finishing" in status.error
    assert jobs.job_status(store, 1).state == "failed"  # written down, not only said once


def test_a_cancelled_job_stops_and_says_so(store, write_jsonl):
    ingest.import_file(store, write_jsonl([chat(t.format(n=i), "ok") for i in range(40) for t in TEXTS]))
    started = jobs.start_job(store, ["embed", "dedup"])
    deadline = time.monotonic() + 120
    while jobs.job_status(store, started.id).step is None and time.monotonic() < deadline:
        time.sleep(0.1)  # wait until the worker is at work (its signal handler is in place)
    assert jobs.cancel_job(store, started.id)
    status = _wait(store, started.id, 120)
    assert status.state in ("cancelled", "done")  # a very fast machine may finish first
    assert not jobs.cancel_job(store, started.id)


def test_unknown_steps_are_refused(store):
    with pytest.raises(jobs.WorkbenchError, match="choose from embed, dedup, cluster"):
        jobs.start_job(store, ["train"])
