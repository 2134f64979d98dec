"""Background work under a hostile hand: a run folder edited to run a command, job starts racing each other,
an import killed with SIGKILL right after its commit, upload names no file system takes. Real stores, real
worker processes, real signals."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench import ingest, jobs
from workbench.background.folder import write_json_atomic
from workbench.background.process import children
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.store import Store
from workbench.store import evaluations as evaluations_sql
from workbench.store import runs as runs_sql
from workbench.train import runs

from .conftest import chat

os.environ.setdefault("WORKBENCH_POLL_S", "0.1")
PAUSE = "WORKBENCH_IMPORT_PAUSE_AFTER_COMMIT"


@pytest.fixture(autouse=True)
def no_worker_outlives_its_test():
    yield
    for child in children():
        if child.poll() is None:
            child.kill()
            child.wait()


def jsonl(n: int, tag: str = "") -> bytes:
    rows = [chat(f"我要退款，订单 {tag}{i} 的外卖洒了", f"refund {i}", category="intent") for i in range(n)]
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def wait_job(store: Store, job_id: int, kind: str = "curate", seconds: float = 120) -> jobs.JobStatus:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = jobs.job_status(store, job_id, kind)
        if not status.running:
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still running after {seconds} s")


# --- 24.2: a run folder cannot make --resume run a command -------------------------------------------------------


def failed_run_with_a_checkpoint(store: Store, **spec_changes) -> int:
    """A failed run as a killed worker leaves it: its row, run.json and a complete checkpoint."""
    store.runs_dir.mkdir(parents=True, exist_ok=True)
    with store.transaction() as con:
        row = runs_sql.insert_run(
            con,
            export_dir=str(store.root / "exports" / "intents-0"),
            export_name="intents",
            export_hash="0",
            base_model="smollm2",
            parent_run=None,
            init="fresh",
            config={},
            runs_dir=str(store.runs_dir),
        )
        runs_sql.update_run(con, row.id, status="failed", error="killed")
    folder = Path(row.run_dir)
    (folder / "checkpoints" / "step-000001").mkdir(parents=True)
    write_json_atomic(folder / "checkpoints" / "step-000001" / "checkpoint.json", {"step": 1})
    write_json_atomic(folder / "status.json", {"state": "failed"})
    spec = {"run_id": row.id, "export_dir": str(store.root / "exports" / "intents-0"), "config": {}}
    write_json_atomic(folder / "run.json", {**spec, **spec_changes})
    return row.id


@pytest.mark.parametrize(
    "edit",
    [
        {"launcher": "/bin/sh -c 'touch {pwned}'"},
        {"launch": {"num_processes": 1, "config_file": "{pwned}"}},
        {"launch": {"main_process_ip": "x; touch {pwned}"}},
        {"launch": "/bin/sh -c 'touch {pwned}'"},
    ],
)
def test_resume_refuses_a_run_json_edited_to_run_a_command(store, tmp_path, edit):
    pwned = tmp_path / "PWNED"
    run_id = failed_run_with_a_checkpoint(
        store, **json.loads(json.dumps(edit).replace("{pwned}", str(pwned)))
    )
    with pytest.raises(WorkbenchError, match=f"run {run_id} was not started: the launch"):
        runs.resume_run(store, run_id)
    time.sleep(0.5)
    assert not pwned.exists()
    assert runs.run_status(store, run_id).state == "failed"  # said so, nothing left queued
    result = CliRunner().invoke(main, ["--store", str(store.root), "train", "--resume", str(run_id)])
    assert result.exit_code != 0 and "was not started" in result.output and "Traceback" not in result.output
    assert not pwned.exists()


def test_resume_runs_only_our_worker_whatever_else_run_json_says(store, tmp_path):
    """A launcher line left beside valid options is never read; the worker runs (and fails on the missing
    export, as it should), and nothing else does."""
    pwned = tmp_path / "PWNED"
    run_id = failed_run_with_a_checkpoint(store, launch=None, launcher=f"/bin/sh -c 'touch {pwned}'")
    runs.resume_run(store, run_id)
    final = runs.wait_for_run(store, run_id, timeout_s=120)
    assert final.state == "failed"
    assert not pwned.exists()


def test_a_launcher_is_kept_as_checked_options_and_anything_else_is_refused():
    assert runs.launch_options("accelerate launch --num_processes 4 --mixed_precision=bf16 --cpu") == {
        "num_processes": 4,
        "mixed_precision": "bf16",
        "cpu": True,
    }
    for bad in (
        "/bin/sh -c 'id'",
        "accelerate launch --config_file /tmp/x.yaml",
        "accelerate launch --num_processes 'two'",
        "accelerate launch --main_process_ip 'a b'",
        "accelerate launch --num_processes 4 -m os",
    ):
        with pytest.raises(WorkbenchError, match="launch"):
            runs.launch_options(bad)


# --- 24.3: job starts race --------------------------------------------------------------------------------------


def _start(store: Store, kind: str, n: int):
    if kind == "import":
        return jobs.start_import_job(store, [(f"并发{n}.jsonl", jsonl(3, f"{n}-"))], author="并发")
    return jobs.start_job(store, ["embed"], author="并发")


@pytest.mark.parametrize("kind", ["import", "curate"])
def test_job_starts_at_once_from_threads_one_wins_the_rest_are_refused_clearly(store, kind, monkeypatch):
    monkeypatch.setenv(PAUSE, "30")  # the winner's import stays alive while the others look
    n = 12
    barrier = threading.Barrier(n)
    outcomes: list[object] = [None] * n

    def start(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = _start(store, kind, i)
        except BaseException as exc:  # noqa: BLE001 - every outcome is looked at below
            outcomes[i] = exc

    threads = [threading.Thread(target=start, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [o for o in outcomes if isinstance(o, jobs.JobStatus)]
    refused = [o for o in outcomes if isinstance(o, jobs.JobRunning)]
    assert len(won) == 1 and len(refused) == n - 1, outcomes
    assert all("is still running" in str(r) and "cancel it first" in str(r) for r in refused)
    assert jobs.latest_job(store, kind).id == won[0].id == 1
    assert sorted(p.name for p in jobs.jobs_dir(store, kind).iterdir() if p.name.isdigit()) == ["1"]
    assert jobs.cancel_job(store, 1, kind)
    assert wait_job(store, 1, kind).state in ("cancelled", "done")


def _start_in_process(root: str, barrier, results, i: int) -> None:
    barrier.wait()
    try:
        _start(Store.open(root), "import", i)
        results.put("started")
    except jobs.JobRunning:
        results.put("refused")
    except BaseException as exc:  # noqa: BLE001
        results.put(f"{type(exc).__name__}: {exc}")


def test_import_starts_at_once_from_processes_one_wins(store, monkeypatch):
    monkeypatch.setenv(PAUSE, "30")
    n = 6
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(n), context.Queue()
    procs = [
        context.Process(target=_start_in_process, args=(str(store.root), barrier, results, i))
        for i in range(n)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    said = sorted(results.get(timeout=5) for _ in range(n))
    assert said == ["refused"] * (n - 1) + ["started"], said
    job = jobs.latest_job(store, "import")
    assert (
        job.id == 1 and job.running
    )  # seen alive from this process too (not our child: by its command line)
    assert jobs.cancel_job(store, 1, "import")
    assert wait_job(store, 1, "import").state in ("cancelled", "done")


# --- 24.4: an import killed with SIGKILL right after its commit ---------------------------------------------------


def _wait_for_imports(store: Store, n: int, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if len(ingest.recent_imports(store)) >= n:
                return
        except WorkbenchError:  # the worker holds the store: look again
            pass
        time.sleep(0.1)
    raise AssertionError(f"no {n} committed import(s) after {seconds} s")


def test_an_import_killed_right_after_its_commit_is_done_with_every_record_and_no_staged_bytes(
    store, monkeypatch
):
    monkeypatch.setenv(PAUSE, "60")
    started = jobs.start_import_job(store, [("退款.jsonl", jsonl(200))], dataset="badcases", author="测试")
    _wait_for_imports(store, 1)  # committed; the worker now waits before it says so
    os.kill(started.pid, signal.SIGKILL)
    job = wait_job(store, started.id, "import")
    assert job.state == "done", job
    assert [o["name"] for o in job.imports] == ["退款.jsonl"]
    assert job.imports[0]["report"]["imported"] == 200
    assert (
        ingest.ImportReport.from_dict(job.imports[0]["report"]).import_id
        == ingest.recent_imports(store)[0].id
    )
    assert not (jobs.jobs_dir(store, "import") / "1" / "files").exists()
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM records").fetchone()[0] == 200


def test_an_import_killed_between_two_files_fails_with_the_first_one_in_and_no_staged_bytes(
    store, monkeypatch
):
    monkeypatch.setenv(PAUSE, "60")
    started = jobs.start_import_job(store, [("一.jsonl", jsonl(20, "a")), ("二.jsonl", jsonl(30, "b"))])
    _wait_for_imports(store, 1)
    os.kill(started.pid, signal.SIGKILL)
    job = wait_job(store, started.id, "import")
    assert job.state == "failed" and "ended without finishing" in job.error
    assert [(o["name"], o["report"]["imported"]) for o in job.imports] == [("一.jsonl", 20)]
    assert not (jobs.jobs_dir(store, "import") / "1" / "files").exists()


def test_an_import_killed_before_its_commit_fails_and_its_staged_bytes_go(store):
    started = jobs.start_import_job(store, [("大.jsonl", jsonl(2000))])
    os.kill(started.pid, signal.SIGKILL)
    job = wait_job(store, started.id, "import")
    assert job.state == "failed" and job.imports == []
    assert not (jobs.jobs_dir(store, "import") / "1" / "files").exists()
    assert ingest.recent_imports(store) == []


# --- 24.6: upload names no file system takes ------------------------------------------------------------------------

LONG = "退款" * 48 + ".jsonl"  # 96 Chinese characters: 288 bytes, over a file system's 255


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        (LONG, LONG),
        ("坏\x00名字.jsonl", "坏 名字.jsonl"),
        ("two\nlines\r\n名字.jsonl", "two lines 名字.jsonl"),
        ("../" + "长" * 200 + ".csv.jsonl", "长" * 200 + ".csv.jsonl"),
    ],
)
def test_an_upload_with_a_long_nul_or_newline_name_imports_under_a_safe_file_name(store, name, shown):
    started = jobs.start_import_job(store, [(name, jsonl(3))], author="测试")
    job = wait_job(store, started.id, "import")
    assert job.state == "done", job
    assert [o["name"] for o in job.imports] == [shown]
    report = ingest.ImportReport.from_dict(job.imports[0]["report"])
    assert report.file == shown and report.imported == 3
    kept = store.root / report.stored_file
    assert (
        kept.is_file()
        and len(kept.name.encode()) <= 255
        and "\n" not in kept.name
        and "\x00" not in kept.name
    )
    assert kept.suffix == ".jsonl"
    assert ingest.recent_imports(store)[0].file_name == shown  # the store shows the upload's own name


def test_two_long_names_that_start_alike_stay_apart_and_keep_their_extension():
    a, b = ingest.upload_name("报告" * 60 + "甲.csv"), ingest.upload_name("报告" * 60 + "乙.csv")
    assert a != b and a.endswith(".csv") and b.endswith(".csv")
    assert max(len(a.encode()), len(b.encode())) <= 150
    assert ingest.upload_name("a\nb.jsonl") == "a b.jsonl"


def test_a_direct_upload_with_a_long_name_imports(store):
    report = ingest.import_upload(store, LONG, jsonl(2))
    assert report.file == LONG and report.imported == 2


def test_the_import_page_imports_hostile_upload_names_without_a_traceback(tmp_path, monkeypatch):
    """(A name with NUL never reaches the page: Streamlit's uploader refuses it itself, and no file system
    lets a browser pick such a file. The library takes it, above.)"""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "store"))
    store = Store.open()
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=90).run()
    at.switch_page("pages/imports.py").run()
    names = [LONG, "two\nlines.jsonl"]
    at.file_uploader[0].set_value(
        [(n, jsonl(2, str(i)), "application/jsonl") for i, n in enumerate(names)]
    ).run()
    at.button(key="im_up_go").click().run()
    assert not at.exception, at.exception
    job = wait_job(store, jobs.latest_job(store, "import").id, "import")
    assert job.state == "done", job
    at.run()
    at.run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    assert sorted(i.file_name for i in ingest.recent_imports(store)) == sorted([LONG, "two lines.jsonl"])


# --- an evaluation job killed after its evaluation finished, before it said so ------------------------------------


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("evaluation_status", ["done", "running"])
def test_an_evaluation_job_whose_worker_died_says_what_its_evaluation_says(store, evaluation_status):
    """The worker stores the finished evaluation, then writes its status: killed in between, the job is done (with
    the evaluation's figures), not failed; killed before the evaluation finished, it fails and the evaluation is
    failed in the store, for Resume."""
    from workbench import evaluate
    from workbench.evaluate.background import KIND

    from .conftest import stored_evaluation

    rows = [
        {"record_key": f"k{i}", "category": "意图", "messages": [{"role": "user", "content": f"退款 {i}"}],
         "reference": "refund", "output": "refund" if i else "cancel", "verdict": "right" if i else "wrong"}
        for i in range(4)
    ]  # fmt: skip
    eid = stored_evaluation(store, rows, status=evaluation_status)
    pid = _dead_pid()
    with store.transaction() as con:
        evaluations_sql.update_evaluation(con, eid, pid=pid)
    folder = KIND.path(store.root, 1)
    folder.mkdir(parents=True)
    write_json_atomic(folder / "job.json", {"model": "base", "dataset": "eval", "store": str(store.root)})
    write_json_atomic(
        folder / "status.json",
        {"state": "running", "model": "base", "dataset": "eval", "pid": pid, "evaluation_id": eid, "done": 2},
    )
    job = evaluate.latest_eval_job(store)
    stored = evaluate.evaluation_report(store, eid).evaluation
    if evaluation_status == "done":
        assert (job.state, job.error, job.done, job.total, job.accuracy) == ("done", None, 4, 4, 0.75)
        assert stored.status == "done"
    else:
        assert job.state == "failed" and f"--resume {eid}" in job.error
        assert stored.status == "failed" and stored.error == job.error
