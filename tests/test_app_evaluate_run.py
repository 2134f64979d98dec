"""The Evaluate page's action, run headless with AppTest on a real store against a REAL `transformers serve`
(tests/conftest.py) behind a real proxy (tests/http_proxy.py): a registered endpoint is evaluated in the
background with progress; a rate limit that outlasts a request's patience fails it, the page shows the recorded
error with its --resume hint and offers Resume, which asks only for the rest once the limit is lifted; a job
waiting out 429s says so, and killed with SIGKILL leaves its evaluation failed in the store, offered for Resume."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from streamlit.testing.v1 import AppTest

from tests.data_train import INTENTS, classification_records
from tests.http_proxy import RateLimitingProxy
from workbench import evaluate as E
from workbench import registry
from workbench.contracts import Contract
from workbench.curation import set_contract
from workbench.evaluate.remote import request_errors
from workbench.ingest import import_file
from workbench.store import evaluations as sql

from .conftest import ROOT, shown

pytestmark = pytest.mark.slow
APP = str(ROOT / "app.py")
PAGE = "pages/evaluate.py"


@pytest.fixture
def store(tmp_path, monkeypatch):
    """Four intent records, two in English and two in Chinese, as the eval dataset, under a labels contract."""
    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "store"))
    from workbench.store import Store

    store = Store.open()
    records = classification_records(4, seed=1, chinese_share=0.5)
    for r in records:
        r["category"] = "意图 intent"
    path = tmp_path / "eval.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    import_file(store, path, dataset="eval")
    set_contract(store, Contract("意图 intent", "labels", list(INTENTS)))
    return store


def open_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def watch(at: AppTest, store, timeout_s: float = 180) -> None:
    """Rerun the page (as its live panel does every second) until the evaluation job has ended."""
    deadline = time.monotonic() + timeout_s
    while E.latest_eval_job(store).running:
        assert time.monotonic() < deadline, f"the evaluation job did not end: {E.latest_eval_job(store)}"
        time.sleep(0.5)
        at.run()
        assert not at.exception, at.exception
    at.run()  # the run after it ended: the list, and Resume
    assert not at.exception, at.exception


def answers(store, evaluation_id: int) -> list[tuple]:
    with store.connect() as con:
        return [(r.record_key, r.output, r.verdict) for r in sql.results(con, evaluation_id)]


def test_evaluate_an_endpoint_in_the_background_then_resume_it_after_a_rate_limit(store, server):
    with RateLimitingProxy(server.url, retry_after=3600) as proxy:
        registry.add_endpoint(store, "本地-serve", proxy.url, server.model_id)
        at = open_page()
        assert any("No evaluation yet" in i.value for i in at.info)
        assert at.selectbox(key="ev_model").options == ["base (smollm2-135m-instruct)", "endpoint:本地-serve"]
        at.selectbox(key="ev_model").set_value("endpoint:本地-serve")
        at.selectbox(key="ev_set").set_value("eval")
        at.number_input(key="ev_max_new").set_value(
            4
        )  # a few tokens: the test is about the page, not the answers
        at.button(key="ev_start").click().run()
        assert not at.exception, at.exception
        job = E.latest_eval_job(store)
        assert job.model == "endpoint:本地-serve" and job.dataset == "eval"
        if job.running:  # the live panel: a progress bar naming the model
            assert "本地-serve" in shown(at.progress[0].text)
        watch(at, store)
        first = E.list_evaluations(store)[0]
        assert (first.evaluation.model, first.evaluation.status, first.total.done) == (
            "endpoint:本地-serve",
            "done",
            4,
        )
        assert any("done, 4 records" in shown(s.value) for s in at.success)
        assert at.dataframe[0].value["model"].tolist() == ["endpoint:本地-serve"]

        # a provider's quota: every request answered 429 with an hour to wait, more than a request waits
        proxy.rate_limited = proxy.answered_429 + 100
        at.button(key="ev_start").click().run()
        watch(at, store)
        failed = E.list_evaluations(store)[0].evaluation
        assert failed.status == "failed" and "--resume" in failed.error and "HTTP 429" in failed.error
        assert len(request_errors(store, failed.id)) == 4
        assert shown(at.error[0].value) == failed.error  # the recorded error, as text, with its --resume hint
        assert at.selectbox(key="ev_unfinished").options == [
            f"#{failed.id} endpoint:本地-serve on eval · failed"
        ]

        proxy.rate_limited = 0  # the quota is back
        at.button(key="ev_resume").click().run()
        assert not at.exception, at.exception
        assert E.latest_eval_job(store).resumes == failed.id
        watch(at, store)
    resumed = E.evaluation_report(store, failed.id).evaluation
    assert resumed.status == "done" and request_errors(store, failed.id) == []
    assert answers(store, failed.id) == answers(store, first.evaluation.id)
    assert not at.error and not [s for s in at.selectbox if s.key == "ev_unfinished"]
    assert any(
        f"Evaluation #{failed.id} of endpoint:本地-serve on eval: done" in shown(s.value) for s in at.success
    )


def test_a_killed_evaluation_job_leaves_its_evaluation_failed_and_offered_for_resume(store, server):
    with RateLimitingProxy(server.url, retry_after=1) as proxy:
        registry.add_endpoint(store, "慢", proxy.url, server.model_id)
        proxy.rate_limited = 10_000  # every request waits: the job is still at work when it is killed
        at = open_page()
        at.selectbox(key="ev_model").set_value("endpoint:慢")
        at.button(key="ev_start").click().run()
        deadline = time.monotonic() + 60
        while "429" not in ((job := E.latest_eval_job(store)).phase or ""):  # after the client's own 5 tries
            assert job.running and time.monotonic() < deadline, job
            time.sleep(0.2)
        at.run()  # the live panel says why nothing is answered
        assert "answers 429 (too many requests): waiting 1 s as it asks" in shown(at.progress[0].text)
        os.kill(job.pid, signal.SIGKILL)
        watch(at, store, timeout_s=30)
    assert E.latest_eval_job(store).state == "failed"
    evaluation = E.evaluation_report(store, job.evaluation_id).evaluation
    assert evaluation.status == "failed" and "killed?" in evaluation.error and "--resume" in evaluation.error
    assert at.selectbox(key="ev_unfinished").options == [f"#{job.evaluation_id} endpoint:慢 on eval · failed"]
    assert shown(at.error[0].value) == evaluation.error
