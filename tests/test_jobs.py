"""Background curation jobs: embed + dedup + cluster in a process of their own, progress in a folder."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from workbench import ingest, jobs
from workbench.background.folder import write_json_atomic

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


def _wait_import(store, job_id, seconds=300):
    deadline = time.monotonic() + seconds
    while (status := jobs.job_status(store, job_id, "import")).running:
        if time.monotonic() > deadline:
            raise AssertionError(f"import job {job_id} still running after {seconds} s: {status}")
        time.sleep(0.2)
    return status


GB_CSV = (
    "prompt,response,category\n我买的手机屏幕碎了要退款,refund,退款\n鞋子开胶了，退钱,refund,退款\n"
).encode("gb18030")
BROKEN_JSONL = (json.dumps(chat("Where is order 12?", "delivery_status")) + "\n{oops\n").encode()


def test_an_import_job_imports_each_upload_and_keeps_its_report(store):
    started = jobs.start_import_job(
        store,
        [("退款.csv", GB_CSV), ("mixed.jsonl", BROKEN_JSONL), ("empty.jsonl", b""), ("退款.csv", GB_CSV)],
        dataset="badcases",
        category="默认",
        author="李雷",
    )
    assert started.running and started.kind == "import"
    status = _wait_import(store, started.id)
    assert status.state == "done", status.error
    names = [o["name"] for o in status.imports]
    assert names == ["退款.csv", "mixed.jsonl", "empty.jsonl", "退款.csv"]  # same names stay apart
    first, mixed, empty, again = status.imports
    report = ingest.ImportReport.from_dict(first["report"])
    assert (report.file, report.encoding, report.imported, report.dataset) == (
        "退款.csv",
        "gb18030",
        2,
        "badcases",
    )
    mixed = ingest.ImportReport.from_dict(mixed["report"])
    assert (mixed.imported, mixed.rejected) == (1, 1)
    assert [(r.line, r.code, r.raw) for r in mixed.rejects] == [(2, "invalid-json", "{oops")]
    # the unreadable file is named as uploaded (not by the folder it waited in) and stops nothing else
    assert empty["error"].startswith("empty.jsonl: the file is empty") and "import-jobs" not in empty["error"]
    assert ingest.ImportReport.from_dict(again["report"]).earlier_import[0] == report.import_id
    rows = {i.id: i for i in ingest.recent_imports(store)}
    assert rows[report.import_id].file_name == "退款.csv" and rows[report.import_id].author == "李雷"
    assert not (jobs.jobs_dir(store, "import") / str(started.id) / "files").exists()  # no bytes left behind
    assert jobs.latest_job(store, "import").id == started.id and jobs.latest_job(store) is None  # kinds apart
    # what the Import page shows: each file's report or why it imported nothing, and the records in all
    outcomes = status.import_outcomes()
    assert [o if isinstance(o, str) else o.imported for o in outcomes] == [2, 1, empty["error"], 2]
    assert status.imported == 5


def test_a_second_import_waits_for_the_first_and_a_cancelled_one_imports_nothing(store, tmp_path):
    lines = "".join(
        json.dumps(chat(f"我要退款，订单 {n}", "refund"), ensure_ascii=False) + "\n" for n in range(60_000)
    )
    started = jobs.start_import_job(store, [("big.jsonl", lines.encode())], dataset="general")
    with pytest.raises(jobs.JobRunning, match="still running"):
        jobs.start_import_job(store, [("more.jsonl", BROKEN_JSONL)])
    deadline = time.monotonic() + 120
    while jobs.job_status(store, started.id, "import").detail is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the worker is at work: its signal handler is in place
    assert jobs.cancel_job(store, started.id, "import")
    status = _wait_import(store, started.id)
    if status.state == "cancelled":  # a fast machine may have finished first
        assert ingest.recent_imports(store) == [] and status.imports == []
        with store.connect() as con:
            assert con.execute("SELECT count(*) FROM records").fetchone()[0] == 0
    assert not (jobs.jobs_dir(store, "import") / str(started.id) / "files").exists()


def test_an_import_job_needs_files_and_a_dataset(store):
    with pytest.raises(jobs.WorkbenchError, match="no files to import"):
        jobs.start_import_job(store, [])
    with pytest.raises(jobs.WorkbenchError, match="name the dataset"):
        jobs.start_import_job(store, [("a.jsonl", BROKEN_JSONL)], dataset=" ")
    assert jobs.latest_job(store, "import") is None


def test_a_job_folder_still_being_filled_is_not_the_latest_job(store):
    assert jobs.latest_job(store, "import") is None
    filling = jobs.jobs_dir(store, "import") / "1" / "files" / "1"
    filling.mkdir(parents=True)  # an upload's bytes being written, no status yet
    (filling / "big.jsonl").write_bytes(b"{}\n")
    assert jobs.latest_job(store, "import") is None  # a page that looks now sees no job, not an error
