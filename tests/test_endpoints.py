"""Models behind an OpenAI-compatible endpoint, against a REAL `transformers serve` on the embedded SmolLM2
(one server for the session, tests/conftest.py): the registry and its health probe, the bad inputs each get a
clear error, an endpoint evaluation gives the in-process verdicts, a server answering 429 for a while (a real
proxy in front of it) is waited for, and a server killed mid-evaluation is resumed."""

from __future__ import annotations

import http.server
import json
import threading

import pytest
from click.testing import CliRunner

from tests.data_train import INTENTS, classification_records
from tests.http_proxy import RateLimitingProxy
from tests.local_server import revive
from workbench import evaluate as E
from workbench import registry
from workbench.cli import main
from workbench.contracts import Contract
from workbench.curation import set_contract
from workbench.endpoint import EndpointError
from workbench.errors import WorkbenchError
from workbench.evaluate.remote import request_errors
from workbench.ingest import import_file
from workbench.serve import free_port
from workbench.store import Store
from workbench.store import evaluations as sql

pytestmark = pytest.mark.slow
SECRET = "sk-never-stored-4242"


@pytest.fixture(scope="module")
def eval_store(tmp_path_factory, server):
    """A store with an eval dataset: intent labels (English and Chinese) and sums under a regex contract."""
    store = Store.open(tmp_path_factory.mktemp("ep") / "store")
    records = classification_records(4, seed=1, chinese_share=0.5)
    for r in records:
        r["category"] = "intent"
    sums = [("What is 2+3? Answer with the number only.", "5"), ("3加4等于几？只回答数字。", "7")]
    records += [
        {"category": "sum", "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for q, a in sums
    ]
    path = store.root / "eval.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    import_file(store, path, dataset="eval")
    set_contract(store, Contract("intent", "labels", list(INTENTS)))
    set_contract(store, Contract("sum", "regex", r"\d+"))
    return store


def _cli(store, *args):
    return CliRunner().invoke(main, ["--store", str(store.root), *args], catch_exceptions=False)


def test_a_registered_endpoint_is_listed_with_what_it_can_do_and_answers_now_without_its_key_stored(
    eval_store, server, monkeypatch
):
    monkeypatch.setenv("WB_TEST_KEY", SECRET)
    result = _cli(eval_store, "models", "add", "本地", "--endpoint", server.url.removesuffix("/v1"),
                  "--model", server.model_id, "--api-key-env", "WB_TEST_KEY", "--max-concurrency", "2")  # fmt: skip
    assert result.exit_code == 0, result.output
    listed = {m.name: m for m in registry.list_models(eval_store)}
    assert listed["smollm2-135m-instruct"].kind == "embedded"  # the default, never registered
    local = listed["本地"]
    assert (local.where, local.api_key_env, local.max_concurrency) == (server.url, "WB_TEST_KEY", 2)
    assert local.capabilities == ("chat", "evaluate") and local.healthy, local.health
    shown = _cli(eval_store, "models", "--json")
    assert json.loads(shown.output)[1]["healthy"] is True and SECRET not in shown.output
    assert SECRET.encode() not in (eval_store.root / "workbench.duckdb").read_bytes()
    monkeypatch.delenv("WB_TEST_KEY")
    assert registry.list_models(eval_store)[1].health == "$WB_TEST_KEY is not set"
    registry.remove_model(eval_store, "本地")


def test_bad_endpoints_get_a_clear_error_and_nothing_is_registered(eval_store, server, tmp_path, monkeypatch):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(EndpointError, match="cannot be reached"):
        registry.add_endpoint(eval_store, "dead", dead, server.model_id)
    with pytest.raises(EndpointError, match=r"does not serve model 'gpt-9'.*lists: /"):
        registry.add_endpoint(eval_store, "wrong", server.url, "gpt-9")
    monkeypatch.delenv("WB_ABSENT_KEY", raising=False)
    with pytest.raises(EndpointError, match=r"\$WB_ABSENT_KEY, which is not set"):
        registry.add_endpoint(eval_store, "keyless", server.url, server.model_id, api_key_env="WB_ABSENT_KEY")
    with pytest.raises(WorkbenchError, match="NAME of an environment variable"):
        registry.add_endpoint(eval_store, "literal", server.url, server.model_id, api_key_env=SECRET)
    # a real web server that is not an OpenAI one: its /v1/models is an HTML page
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "models").write_text("<html><body>欢迎</body></html>", encoding="utf-8")
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path))  # noqa: E731
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        with pytest.raises(EndpointError, match="not a chat completion|not return a list of models"):
            registry.add_endpoint(eval_store, "html", f"http://127.0.0.1:{web.server_port}/v1", "m")
    finally:
        web.shutdown()
    assert [m.name for m in registry.list_models(eval_store, probe_health=False)] == ["smollm2-135m-instruct"]


def _verdicts(store, evaluation_id):
    with store.connect() as con:
        return [(r.record_key, r.output, r.verdict) for r in sql.results(con, evaluation_id)]


def test_endpoint_evaluation_gives_the_in_process_verdicts(eval_store, server):
    registry.add_endpoint(eval_store, "same", server.url, server.model_id, max_concurrency=4)
    result = _cli(eval_store, "evaluate", "endpoint:same", "--on", "eval", "--json")
    assert result.exit_code == 0, result.output
    remote = json.loads(result.output)
    base = E.evaluate(eval_store, "base", "dataset", dataset="eval")
    assert remote["evaluation"]["model"] == "endpoint:same" and remote["evaluation"]["status"] == "done"
    assert _verdicts(eval_store, remote["evaluation"]["id"]) == _verdicts(eval_store, base.evaluation.id)
    with eval_store.connect() as con:
        rows = sql.results(con, remote["evaluation"]["id"])
    assert all(r.output_tokens and r.prompt_tokens and r.latency_s > 0 for r in rows)
    assert {r.verdict for r in rows} <= {"right", "wrong"}
    compared = E.compare_evaluations(eval_store, base.evaluation.id, remote["evaluation"]["id"])
    assert compared.fixed == compared.regressed == [] and compared.only_before == compared.only_after == 0


def test_a_server_answering_429_for_a_while_is_waited_for_not_counted_wrong(eval_store, server):
    """More 429s in a row than the client's own retries (5 tries): each request waits as Retry-After says until
    the limit lifts, and the evaluation ends as it does without the proxy, with no failed request."""
    short = E.EvalOptions(max_new_tokens=4)  # the test is about the requests, not the answers' length
    registry.add_endpoint(eval_store, "direct", server.url, server.model_id, max_concurrency=2)
    direct = E.evaluate(eval_store, "endpoint:direct", "dataset", dataset="eval", options=short)
    with RateLimitingProxy(server.url, retry_after=1) as proxy:
        registry.add_endpoint(eval_store, "限流", proxy.url, server.model_id, max_concurrency=2)
        proxy.rate_limited = 12  # now, after the health probe: two requests in flight get six 429s each
        throttled = E.evaluate(eval_store, "endpoint:限流", "dataset", dataset="eval", options=short)
    assert proxy.answered_429 == 12 and proxy.forwarded >= direct.evaluation.records
    assert throttled.evaluation.status == "done" and throttled.evaluation.error is None
    assert request_errors(eval_store, throttled.evaluation.id) == []
    assert _verdicts(eval_store, throttled.evaluation.id) == _verdicts(eval_store, direct.evaluation.id)


def test_a_server_killed_mid_evaluation_is_recorded_and_resume_asks_only_for_the_rest(eval_store, server):
    registry.add_endpoint(eval_store, "fragile", server.url, server.model_id, max_concurrency=1)
    answered = []

    def kill_after_first(done, total, info):
        if info.get("phase", "").startswith("answered") and not answered:
            answered.append(done)
            server.process.kill()
            server.process.wait()

    try:
        with pytest.raises(EndpointError, match=r"requests failed.*--resume"):
            E.evaluate(eval_store, "endpoint:fragile", "dataset", dataset="eval", progress=kill_after_first)
    finally:
        # the session's server, on the same port again (the rest of this test and what follows)
        revive(server)
    evaluation = E.list_evaluations(eval_store)[0].evaluation
    assert evaluation.status == "failed" and "--resume" in evaluation.error
    first = [r for r in _verdicts(eval_store, evaluation.id) if r[1] is not None]
    assert len(first) == 1 and request_errors(eval_store, evaluation.id)  # what finished, and what failed
    with eval_store.connect() as con:
        kept = {r.seq: r.latency_s for r in sql.results(con, evaluation.id) if r.output is not None}

    report = E.resume_evaluation(eval_store, evaluation.id)
    assert report.evaluation.status == "done" and request_errors(eval_store, evaluation.id) == []
    with eval_store.connect() as con:
        after = {r.seq: r.latency_s for r in sql.results(con, evaluation.id)}
    assert all(after[s] == kept[s] for s in kept)  # never asked twice
    assert None not in after.values()


def test_the_playground_chats_with_an_endpoint_and_captures_its_bad_answer(eval_store, server):
    from workbench import playground
    from workbench.store.records import get_record

    registry.add_endpoint(eval_store, "聊天", server.url, server.model_id)
    assert "endpoint:聊天" in playground.model_choices(eval_store)
    model = playground.load_chat_model(eval_store, "endpoint:聊天")
    messages = playground.chat_messages("你是客服。", [], "我的订单什么时候到？")
    sampling = playground.Sampling(max_new_tokens=8)
    answer = "".join(playground.stream_answer(model, messages, sampling))
    assert answer.strip()
    record_id = playground.flag_answer(
        eval_store, messages, answer, "您的订单预计明天送达。", category="物流", model=model.label,
        base_model=model.base_model, adapter=None, sampling=sampling, author="tester",
    )  # fmt: skip
    with eval_store.connect() as con:
        record = get_record(con, record_id)
    assert record.bad_output == answer and record.source.startswith("playground: endpoint:聊天")
