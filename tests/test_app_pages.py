"""The Import, Quality, Coverage and Clusters pages, run headless with AppTest through the app's entry file on a
real store: each renders on an empty store and a full one, its main action works, its error path says what to do."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from streamlit.testing.v1 import AppTest

from workbench import coverage, dedup, ingest, jobs, review
from workbench.curation import set_status
from workbench.dedup import DedupConfig
from workbench.review import ReviewFilter
from workbench.store.records import Selection
from workbench.train.folder import write_json_atomic

from .conftest import ROOT, chat, shown
from .test_clusters_view import save_run

APP = str(ROOT / "app.py")
PAGES = ["pages/imports.py", "pages/quality.py", "pages/coverage.py", "pages/clusters.py"]


@pytest.fixture
def empty(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "store"))
    from workbench.store import Store

    return Store.open()


@pytest.fixture
def full(empty, write_jsonl):
    store = empty
    records = (
        [
            chat(f"我要退款，订单 {n}", "refund", category="退款", task_type="classification")
            for n in range(12)
        ]
        + [
            chat(f"Where is parcel {n}?", "delivery_status", category="delivery", task_type="classification")
            for n in range(6)
        ]
        + [
            chat("帮我取消这个订单，谢谢", "cancel", category="取消"),
            chat("帮我取消这个订单！谢谢", "cancel", category="取消"),
            {
                "messages": [
                    {"role": "user", "content": "我的外卖到哪了？"},
                    {"role": "asistant", "content": "refund"},
                ],
                "category": "delivery",
            },
        ]
    )
    ingest.import_file(store, write_jsonl(records, name="badcases.jsonl"))
    set_status(store, Selection(category="退款"), "approved", "test")
    ingest.import_file(
        store,
        write_jsonl(
            [chat(f"Write a poem about {w}", "...") for w in ("rain", "雪", "tea")], name="general.jsonl"
        ),
        dataset="general",
    )
    ids = review.load_queue(store, ReviewFilter(datasets=("badcases",)), "oldest", limit=100).ids
    save_run(store, {0: ids[:12], 1: ids[12:]})
    # dedup just the two cancel requests: the templated ones (numbers masked) would all be copies of each other
    dedup.dedup(store, ids[18:20], config=DedupConfig(semantic=False))
    return store


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("page", PAGES)
def test_each_page_renders_on_an_empty_store_and_says_what_to_do(empty, page):
    at = open_page(page)
    assert not at.error
    text = " ".join(i.value for i in at.info) + " ".join(s.value for s in at.success)
    assert "Import" in text or "import" in text or page == "pages/quality.py" and "No issues" in text


@pytest.mark.parametrize("page", PAGES)
def test_each_page_reports_a_busy_store_instead_of_crashing(empty, page, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STORE_WAIT", "0.3")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "print('holding', flush=True); time.sleep(60)",
            str(empty.db_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        at = open_page(page)
    finally:
        holder.kill()
        holder.wait()
    assert f"process {holder.pid}" in at.error[0].value


def test_import_page_imports_pasted_records_and_links_the_import_to_review(empty):
    at = open_page("pages/imports.py")
    at.text_area(key="im_paste_text").set_value(
        '{"messages": [{"role": "user", "content": "退款"}, '
        '{"role": "assistant", "content": "refund"}]}\noops'
    ).run()
    at.button(key="im_paste_go").click().run()
    assert not at.exception, at.exception
    assert [m.value for m in at.metric][:3] == ["1", "0", "1"]  # imported, repaired, rejected
    assert ingest.recent_imports(empty)[0].file_name == "pasted"
    assert "oops" in at.dataframe[0].value["raw text"].tolist()


def test_import_page_says_why_a_paste_imports_nothing(empty):
    at = open_page("pages/imports.py")
    at.text_area(key="im_paste_text").set_value("\n\n").run()
    assert at.button(key="im_paste_go").disabled
    at.text_area(key="im_paste_text").set_value("just some words").run()
    at.button(key="im_paste_go").click().run()
    assert not at.exception
    assert shown(at.error[0].value).startswith("pasted: the file has a header row and no rows under it")
    assert "Nothing was imported from it" in at.error[0].value and ingest.recent_imports(empty) == []
    at.text_area(key="im_paste_text").set_value("[1, 2").run()
    at.button(key="im_paste_go").click().run()
    assert "Nothing imported from pasted: all 3 of its records were rejected" in at.error[0].value


def test_quality_page_fixes_all_of_a_code_in_one_operation_and_undoes_it(full):
    at = open_page("pages/quality.py")
    assert at.subheader[0].value == "Issues by code"
    at.button(key="q_fix_role-typo").click().run()
    assert not at.exception, at.exception
    assert "fixed 1 records with role-typo" in shown(at.success[0].value)
    assert review.load_queue(full, ReviewFilter(issue_codes=("role-typo",))).total == 0
    at.button(key="q_undo").click().run()
    assert review.load_queue(full, ReviewFilter(issue_codes=("role-typo",))).total == 1


def test_quality_page_counts_a_contract_before_saving_and_reports_a_bad_pattern(full):
    at = open_page("pages/quality.py")
    at.selectbox(key="q_cat").set_value("退款").run()
    at.selectbox(key="q_kind_退款").set_value("labels").run()
    at.text_input(key="q_spec_退款_labels").set_value("退款申请").run()
    assert any("would flag **12 of 12**" in m.value for m in at.markdown)
    at.selectbox(key="q_kind_退款").set_value("regex").run()
    at.text_input(key="q_spec_退款_regex").set_value("(").run()
    assert "not a valid regex" in at.warning[0].value
    assert at.button(key="q_save_contract").disabled


def test_coverage_page_shows_each_category_against_its_band_and_the_export_preview(full):
    at = open_page("pages/coverage.py")
    table = at.dataframe[0].value.set_index("category")
    assert table.loc["退款", "ready"] == 12 and table.loc["退款", "verdict"].startswith("short by 988")
    preview = next(d.value for d in at.dataframe if "taken" in d.value.columns)
    assert preview.set_index("category").loc["退款", "taken"] == 12
    at.radio(key="cv_scale").set_value("records").run()  # the counts instead of shares of each band
    assert not at.exception and at.dataframe[0].value.set_index("category").loc["退款", "ready"] == 12
    coverage.set_target(full, "退款", 5, 10)
    at.run()
    assert at.dataframe[0].value.set_index("category").loc["退款", "verdict"].startswith("over-full by 2")


def test_coverage_page_sets_a_band_by_hand(full):
    at = open_page("pages/coverage.py")
    at.selectbox(key="cv_target_cat").set_value("退款").run()
    at.number_input(key="cv_low_退款").set_value(10).run()
    at.number_input(key="cv_high_退款").set_value(20).run()
    at.button(key="cv_set").click().run()
    assert not at.exception
    assert at.dataframe[0].value.set_index("category").loc["退款", "verdict"].startswith("in band")


def test_clusters_page_lists_clusters_assigns_a_category_and_keeps_another_copy(full):
    at = open_page("pages/clusters.py")
    assert "Clustering run 1: all 21 records" in " ".join(c.value for c in at.caption)
    at.text_input(key="cl_cat_1_0").set_value("退款意图").run()
    at.button(key="cl_set_1_0").click().run()
    assert "on 12 records" in at.success[0].value
    assert review.load_queue(full, ReviewFilter(categories=("退款意图",))).total == 12
    group = dedup.duplicate_groups(full)[0][0]
    at.button(key=f"cl_keep_{group.copies[0].id}").click().run()
    assert not at.exception
    assert dedup.duplicate_groups(full)[0][0].kept.id == group.copies[0].id


def test_clusters_page_refuses_a_second_job_while_one_runs(full):
    first = jobs.start_job(full, ["embed"], author="test")
    try:
        at = open_page("pages/clusters.py")
        at.button(key="cl_start").click().run()
        assert "still running" in at.error[0].value
    finally:
        jobs.cancel_job(full, first.id)
        for _ in range(50):
            if not jobs.job_status(full, first.id).running:
                break
            time.sleep(0.2)


def test_a_cluster_link_made_after_review_cached_its_choices_keeps_the_filter(empty, write_jsonl):
    ingest.import_file(
        empty,
        write_jsonl(
            [chat(f"我要退款 {n}", "refund") for n in range(5)]
            + [chat(f"Where is parcel {n}?", "delivery") for n in range(3)]
        ),
    )
    at = open_page("pages/review.py")  # the filter choices are cached now, without clusters
    ids = review.load_queue(empty, ReviewFilter(), "oldest").ids
    save_run(empty, {0: ids[:5], 1: ids[5:]})
    at.switch_page("pages/review.py")
    at.query_params["cluster"] = "1"
    at.run()
    assert not at.exception
    assert next(m.value for m in at.markdown if "records match" in m.value).startswith("**3 records match**")


def test_import_page_adds_one_badcase_from_the_form(empty):
    at = open_page("pages/imports.py")
    at.text_area(key="im_form_user").set_value("我的外卖到哪了？")
    at.text_area(key="im_form_bad").set_value("refund")
    at.text_area(key="im_form_answer").set_value("delivery_status")
    at.text_input(key="im_form_category").set_value("意图")
    at.button[[b.label for b in at.button].index("Add the badcase")].click().run()
    assert not at.exception, at.exception
    record = review.open_record(empty, review.load_queue(empty, ReviewFilter()).ids[0]).record
    assert (record.bad_output, record.messages[-1]["content"], record.category) == (
        "refund",
        "delivery_status",
        "意图",
    )
    at.text_area(key="im_form_user").set_value(" ")
    at.button[[b.label for b in at.button].index("Add the badcase")].click().run()
    assert "user's message" in shown(at.error[0].value)


def test_import_page_imports_uploads_in_the_background_and_shows_their_reports(empty):
    at = open_page("pages/imports.py")
    csv = "prompt,response,category\n我买的手机屏幕碎了要退款,refund,退款\n鞋子开胶了，退钱,refund,退款\n"
    at.file_uploader[0].set_value(
        [("退款.csv", csv.encode("gb18030"), "text/csv"), ("空.jsonl", b"", "application/jsonl")]
    ).run()
    at.button(key="im_up_go").click().run()
    assert not at.exception, at.exception
    job = jobs.latest_job(empty, "import")
    assert job is not None and job.steps == ["import"]
    deadline = time.monotonic() + 120
    while jobs.job_status(empty, job.id, "import").running and time.monotonic() < deadline:
        at.run()  # the panel shows where it is, then the report
        assert not at.exception, at.exception
        time.sleep(0.5)
    at.run()
    at.run()  # the panel's rerun of the whole page once the job is done
    assert not at.exception, at.exception
    assert [m.value for m in at.metric][:3] == ["2", "0", "0"]  # imported, repaired, rejected of the CSV
    assert any("csv, gb18030" in t.value for t in at.text)
    assert any(shown(e.value).startswith("空.jsonl: the file is empty") for e in at.error)
    assert [i.file_name for i in ingest.recent_imports(empty)] == ["退款.csv"]
    assert not at.file_uploader[0].value  # emptied once its files were on their way: no double import


def test_import_page_shows_a_running_import_and_refuses_a_second_one(empty):
    # a job folder that says running, held by a live process that looks like our worker
    folder = jobs.jobs_dir(empty, "import") / "1"
    folder.mkdir(parents=True)
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "workbench.jobs"])
    try:
        write_json_atomic(
            folder / "status.json",
            {
                "state": "running",
                "steps": ["import"],
                "pid": worker.pid,
                "started_at": "2026-12-01T10:00:00",
                "stage": "checking",
                "detail": "大文件.jsonl (2 of 3)",
                "done": 500,
                "total": 2000,
            },
        )
        at = open_page("pages/imports.py")
        at.file_uploader[0].set_value(("more.jsonl", b'{"prompt": "hi", "response": "x"}\n', "x")).run()
        assert at.button(key="im_up_go").disabled
        bar = at.get("progress")[0]
        assert "大文件.jsonl (2 of 3): checking 500 / 2,000" in shown(bar.proto.text) and bar.value == 25
        at.button(key="im_cancel").click().run()
        assert (folder / "cancel").exists()
    finally:
        worker.kill()
        worker.wait()
    at.run()
    assert any("cancelled" in w.value for w in at.warning)


def test_no_page_uses_use_container_width_which_streamlit_deprecates():
    """Streamlit warns on every run of a page that passes use_container_width (removed after 2025-12-31)."""
    sources = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "ui").glob("*.py"))]
    assert [p.name for p in sources if "use_container_width" in p.read_text(encoding="utf-8")] == []
