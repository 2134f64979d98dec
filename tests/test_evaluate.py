"""Evaluation: verdicts per contract, base vs a run over the val split, compare (fixed / regressed / still wrong),
cancel and resume, a person's verdicts, failures back to badcases (and into the next export), the prompt trial,
the general-set loss, records the model cannot learn. Real store files, a real background run of a tiny llama."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from workbench import evaluate as E
from workbench.contracts import Contract
from workbench.curation import set_contract, set_status
from workbench.errors import WorkbenchError
from workbench.evaluate.run import _contract_budgets
from workbench.export import ExportConfig, export_training_set
from workbench.ingest import import_file
from workbench.store import Store
from workbench.store import evaluations as sql
from workbench.store.records import Selection, get_record, list_records
from workbench.train import TrainConfig
from workbench.train import runs as R

from .conftest import stored_evaluation
from .data_train import INTENTS, classification_records

GENERAL = [
    {
        "messages": [
            {"role": "user", "content": "Write a haiku about autumn."},
            {"role": "assistant", "content": "Red leaves drift and fall, the old pond holds the cold sky."},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "用一句话介绍长城。"},
            {"role": "assistant", "content": "长城是中国古代修建的军事防御工程，绵延数千公里。"},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "What is 12 times 12?"},
            {"role": "assistant", "content": "144"},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "推荐一本入门编程的书。"},
            {"role": "assistant", "content": "可以从《Python编程：从入门到实践》开始。"},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "Name three primary colours."},
            {"role": "assistant", "content": "Red, yellow and blue."},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "早上好用英语怎么说？"},
            {"role": "assistant", "content": "Good morning."},
        ]
    },
]


def quick(tiny: str, **changes) -> TrainConfig:
    values = {
        "base_model": tiny,
        "epochs": 3,
        "batch_size": 8,
        "lora_rank": 8,
        "learning_rate": 2e-2,
        "eval_max_records": 4,
        "eval_max_new_tokens": 4,
        "save_every_steps": 0,
    }
    return TrainConfig(**{**values, **changes})


def small(**changes) -> E.EvalOptions:
    return E.EvalOptions(**{"max_new_tokens": 6, "batch_size": 8, "chunk": 8, **changes})


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny):
    """The loop up to a trained run: import intents (English and Chinese) and general chats, a labels contract,
    approve, export with a val split, train in the background."""
    root = tmp_path_factory.mktemp("world")
    store = Store.open(root / "store")
    intents = root / "intents.jsonl"
    intents.write_text(
        "".join(
            json.dumps({k: v for k, v in r.items() if k not in ("id", "source")}, ensure_ascii=False) + "\n"
            for r in classification_records(60, seed=5)
        ),
        encoding="utf-8",
    )
    general = root / "general.jsonl"
    general.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in GENERAL), encoding="utf-8")
    report = import_file(store, intents)
    import_file(store, general, dataset="general")
    set_contract(store, Contract("intent", "labels", list(INTENTS)))
    set_status(store, Selection(import_id=report.import_id), "approved", "test")
    exported = export_training_set(
        store, ExportConfig(name="intents", leakage_guard="exact", general_share=0.05, val=0.2)
    )
    run_id = R.start_run(store, exported.folder, quick(tiny), author="test")
    final = R.wait_for_run(store, run_id, timeout_s=300)
    assert final.state == "done", final.row.error
    return store, exported.folder, run_id


@pytest.fixture(scope="module")
def base_and_tuned(world):
    store, _export, run_id = world
    base = E.evaluate(store, "base", "val", set_run=run_id, options=small(), author="test")
    tuned = E.evaluate(store, run_id, "val", options=small(), author="test")
    return base, tuned


# --- verdicts ------------------------------------------------------------------------------------------------


def test_labels_contract_needs_the_exact_label_and_the_reference():
    labels = Contract("intent", "labels", ["refund", "退款"])
    assert E.judge(labels, "refund", "refund")["verdict"] == "right"
    assert E.judge(labels, "退款", "退款")["verdict"] == "right"
    wrong = E.judge(labels, "refund", "退款")
    assert (wrong["verdict"], wrong["contract_ok"], wrong["exact_match"]) == ("wrong", True, False)
    outside = E.judge(labels, "Refund please", "refund")
    assert (outside["verdict"], outside["contract_ok"]) == (
        "wrong",
        False,
    ) and "not one of the labels" in outside["reason"]


def test_json_contract_parses_and_compares_values_not_spelling():
    contract = Contract("extract", "json")
    assert E.judge(contract, '{"a": 1, "城市": "上海"}', '{"城市":"上海","a":1}')["verdict"] == "right"
    broken = E.judge(contract, '{"a": 1', '{"a": 1}')
    assert (broken["verdict"], broken["contract_ok"]) == ("wrong", False) and "not valid JSON" in broken[
        "reason"
    ]
    assert E.judge(contract, '{"a": 2}', '{"a": 1}')["contract_ok"] is True


def test_json_schema_contract_validates_the_answer():
    schema = {"type": "object", "properties": {"amount": {"type": "number"}}, "required": ["amount"]}
    contract = Contract("extract", "json_schema", schema)
    assert E.judge(contract, '{"amount": 12.5}', '{"amount": 12.5}')["verdict"] == "right"
    invalid = E.judge(contract, '{"amount": "12.5"}', '{"amount": "12.5"}')
    assert (invalid["verdict"], invalid["contract_ok"], invalid["exact_match"]) == ("wrong", False, True)
    assert "breaks the schema" in invalid["reason"]


def test_regex_contract_matches_the_whole_answer():
    contract = Contract("order", "regex", r"#\d{5}")
    assert E.judge(contract, "#12345", "#12345")["verdict"] == "right"
    assert E.judge(contract, "订单 #12345", "#12345")["contract_ok"] is False
    assert E.judge(contract, "#54321", "#12345")["verdict"] == "wrong"


def test_without_a_contract_the_verdict_waits_for_a_person_with_a_similarity_hint():
    result = E.judge(None, "退款已经在处理中", "退款正在处理中")
    assert result["verdict"] == "pending" and result["contract_ok"] is None
    assert 0.6 < result["similarity"] < 1
    assert E.judge(None, "完全无关", "退款正在处理中")["similarity"] < 0.3


# --- evaluating and comparing ------------------------------------------------------------------------------------


def test_base_and_tuned_over_the_val_split_store_every_record(world, base_and_tuned):
    store, export, run_id = world
    base, tuned = base_and_tuned
    val = [json.loads(line) for line in (export / "val.jsonl").read_text(encoding="utf-8").splitlines()]
    for report, model in ((base, "base"), (tuned, f"run {run_id}")):
        row = report.evaluation
        assert (row.status, row.model, row.eval_set, row.records) == ("done", model, "val", len(val))
        assert report.total.done == report.total.n == len(val)
        assert report.total.right + report.total.wrong + report.total.pending == len(val)
        results = E.evaluation_results(store, row.id, limit=None)
        assert {r.record_key for r in results} == {str(r["id"]) for r in val}
        assert all(
            r.output is not None and r.loss > 0 and r.prompt_tokens > 40 and r.latency_s > 0 for r in results
        )
        intents = [r for r in results if r.category == "intent"]
        assert intents and all(r.verdict in ("right", "wrong") for r in intents)
    assert tuned.evaluation.run_id == run_id and base.evaluation.run_id is None
    assert tuned.evaluation.config["adapter"].endswith("/adapter")


def test_compare_counts_each_record_once_and_adds_up(world, base_and_tuned):
    store, _export, _run = world
    base, tuned = base_and_tuned
    comparison = E.compare_evaluations(store, base.evaluation.id, tuned.evaluation.id)
    total = comparison.total
    assert total.n == base.total.n
    assert total.right_after - total.right_before == total.fixed - total.regressed
    assert len(comparison.fixed) == total.fixed and len(comparison.regressed) == total.regressed
    assert sum(c.n for c in comparison.categories) == total.n
    assert comparison.loss_before > 0 and comparison.loss_after > 0


def fake_evaluation(
    store: Store, verdicts: list[str], categories: list[str], *, record_ids=None, outputs=None
) -> int:
    """An evaluation with chosen verdicts (for counting tests)."""
    return stored_evaluation(
        store,
        [
            {
                "record_key": str(i if record_ids is None else record_ids[i]),
                "record_id": None if record_ids is None else record_ids[i],
                "category": c,
                "messages": [
                    {"role": "user", "content": f"问题 {i}"},
                    {"role": "assistant", "content": "refund"},
                ],
                "reference": "refund",
                "output": (outputs or {}).get(i, "x"),
                "verdict": v,
                "loss": 1.0 + i,
            }
            for i, (c, v) in enumerate(zip(categories, verdicts, strict=True))
        ],
    )


def test_fixed_regressed_and_still_wrong_per_category(store):
    cats = ["a", "a", "a", "a", "b", "b", "b"]
    before = fake_evaluation(store, ["wrong", "wrong", "right", "right", "wrong", "right", "pending"], cats)
    after = fake_evaluation(store, ["right", "wrong", "right", "wrong", "right", "right", "pending"], cats)
    c = E.compare_evaluations(store, before, after)
    a, b = c.categories
    assert (a.name, a.n, a.fixed, a.regressed, a.still_wrong, a.right_before, a.right_after) == (
        "a",
        4,
        1,
        1,
        1,
        2,
        2,
    )
    assert (b.name, b.n, b.fixed, b.regressed, b.still_wrong, b.pending) == ("b", 3, 1, 0, 0, 1)
    assert (c.total.fixed, c.total.regressed, c.total.still_wrong) == (2, 1, 1)
    assert c.fixed == ["0", "4"] and c.regressed == ["3"] and c.still_wrong == ["1"]
    assert b.accuracy_before == 0.5 and b.accuracy_after == 1.0


def test_a_persons_verdict_decides_a_pending_answer(store):
    before = fake_evaluation(store, ["pending", "pending"], ["copy", "copy"])
    after = fake_evaluation(store, ["pending", "pending"], ["copy", "copy"])
    E.set_verdict(store, before, 0, "worse", author="reviewer")
    E.set_verdict(store, after, 0, "better", author="reviewer")
    c = E.compare_evaluations(store, before, after)
    assert (c.total.fixed, c.total.pending) == (1, 1)
    assert E.evaluation_report(store, after).total.right == 1
    with pytest.raises(WorkbenchError, match="better, same, worse, both_bad"):
        E.set_verdict(store, after, 1, "great", author="reviewer")


def test_comparing_evaluations_of_different_sets_says_what_to_do(store):
    a = fake_evaluation(store, ["right"], ["a"])
    with store.transaction() as con:
        con.execute("UPDATE evaluation_results SET record_key = 'other' WHERE evaluation_id = ?", [a])
    b = fake_evaluation(store, ["right"], ["a"])
    with pytest.raises(WorkbenchError, match="share no scored record"):
        E.compare_evaluations(store, a, b)


def test_compare_groups_by_the_newest_clustering(store):
    with store.transaction() as con:
        con.execute(
            "INSERT INTO cluster_runs (id, author, model, text_spec, method, k, k_chosen_by, records) "
            "VALUES (1, 't', 'm', 'user', 'kmeans', 2, 'given', 3)"
        )
        con.execute(
            "INSERT INTO clusters (run_id, cluster, name, keywords, size, representatives) VALUES "
            "(1, 0, '退款 · refund', ['退款'], 2, [11]), (1, 1, 'password', ['password'], 1, [13])"
        )
        con.execute(
            "INSERT INTO cluster_members (run_id, record_id, cluster, x, y) VALUES "
            "(1, 11, 0, 0, 0), (1, 12, 0, 0, 0), (1, 13, 1, 0, 0)"
        )
    ids = [11, 12, 13]
    before = fake_evaluation(store, ["wrong", "wrong", "right"], ["a", "a", "a"], record_ids=ids)
    after = fake_evaluation(store, ["right", "wrong", "wrong"], ["a", "a", "a"], record_ids=ids)
    clusters = {
        g.name: (g.n, g.fixed, g.regressed, g.still_wrong)
        for g in E.compare_evaluations(store, before, after).clusters
    }
    assert clusters == {"退款 · refund": (2, 1, 0, 1), "password": (1, 0, 1, 0)}


def test_compare_groups_eval_records_by_the_clusters_of_the_badcases_made_from_them(store):
    """The eval records are seldom clustered themselves; their failures sent to badcases are (issue 29 #9)."""
    ids = [11, 12, 13]
    before = fake_evaluation(store, ["wrong", "wrong", "wrong"], ["a", "a", "a"], record_ids=ids)
    with store.transaction() as con:
        # records 11-13 went to badcases 21-23 when the base model failed them; a later run clusters the badcases
        con.execute(
            "UPDATE evaluation_results SET badcase_id = record_id + 10 WHERE evaluation_id = ?", [before]
        )
        con.execute(
            "INSERT INTO cluster_runs (id, author, model, text_spec, method, k, k_chosen_by, records) VALUES "
            "(1, 't', 'm', 'user', 'kmeans', 1, 'given', 1), (2, 't', 'm', 'user', 'kmeans', 2, 'given', 3)"
        )
        con.execute(
            "INSERT INTO clusters (run_id, cluster, name, keywords, size, representatives) VALUES "
            "(1, 0, '旧 · old', ['旧'], 1, [13]), (2, 0, '退款 · refund', ['退款'], 2, [21]), "
            "(2, 1, '物流 · delivery', ['物流'], 1, [23])"
        )
        con.execute(
            "INSERT INTO cluster_members (run_id, record_id, cluster, x, y) VALUES "
            "(1, 13, 0, 0, 0), (2, 21, 0, 0, 0), (2, 22, 0, 0, 0), (2, 23, 1, 0, 0)"
        )
    after = fake_evaluation(store, ["right", "wrong", "right"], ["a", "a", "a"], record_ids=ids)
    clusters = {
        g.name: (g.n, g.fixed, g.still_wrong) for g in E.compare_evaluations(store, before, after).clusters
    }
    # 13's own cluster (an older run) comes first; 11 and 12 take their badcases' cluster from the newest run
    assert clusters == {"退款 · refund": (2, 1, 1), "旧 · old": (1, 1, 0)}


# --- long jobs: the store stays free, cancel and resume --------------------------------------------------------


def test_the_store_is_free_while_the_model_generates(world):
    store, _export, run_id = world
    opened, phases = [], []

    def probe(done, total, info):
        phases.append((info.get("phase"), done, total))
        if info.get("phase") == "generating" and not opened:
            code = (
                f"from workbench.store import Store; s = Store.open({str(store.root)!r})\n"
                "with s.transaction() as con: con.execute('SELECT count(*) FROM records').fetchall()"
            )
            opened.append(
                subprocess.run(
                    [sys.executable, "-c", code],
                    env={"WORKBENCH_STORE_WAIT": "1", "PYTHONPATH": ":".join(sys.path)},
                    capture_output=True,
                    text=True,
                )
            )

    # cache=False: the tuned model answered these before; this test is about the store while it generates
    E.evaluate(store, run_id, "val", options=small(limit=4, cache=False), progress=probe)
    assert opened and opened[0].returncode == 0, opened[0].stderr[-500:]
    # after the answers, the loss and verdict of each record and the save are stages with their own counts
    # (the bar sat at "4/4, ETA -" while they ran)
    after = phases[max(i for i, p in enumerate(phases) if p[0] == "generating") + 1 :]
    assert [d for p, d, _t in after if p.startswith("loss and verdict")] == [0, 1, 2, 3]
    assert ("saving the results", 4, 4) in after and after[-1] == ("saved", 4, 4)


def test_a_cancelled_evaluation_resumes_where_it_stopped(world):
    store, _export, run_id = world
    whole = E.evaluate(store, run_id, "trained", options=small(limit=20))
    asked = []

    def stop_after_one_chunk():
        asked.append(1)
        return len(asked) > 1

    with pytest.raises(E.EvaluationCancelled, match="--resume"):
        E.evaluate(store, run_id, "trained", options=small(limit=20), should_stop=stop_after_one_chunk)
    [cancelled] = [r for r in E.list_evaluations(store, limit=1)]
    eid = cancelled.evaluation.id
    assert cancelled.evaluation.status == "cancelled" and cancelled.total.done == 8  # one chunk written
    done_before = {
        r.seq: r.output for r in E.evaluation_results(store, eid, limit=None) if r.output is not None
    }
    seen = []
    resumed = E.resume_evaluation(store, eid, progress=lambda done, total, info: seen.append((done, total)))
    assert resumed.evaluation.status == "done" and resumed.total.done == 20
    # it started where it stopped (the counts of the whole set; a chunk's loss-and-verdict stage counts its own)
    assert min(done for done, total in seen if total == 20) >= 8
    after = {r.seq: r.output for r in E.evaluation_results(store, eid, limit=None)}
    assert all(after[s] == o for s, o in done_before.items())
    assert [r.output for r in E.evaluation_results(store, eid, limit=None)] == [
        r.output for r in E.evaluation_results(store, whole.evaluation.id, limit=None)
    ]
    with pytest.raises(WorkbenchError, match="is done"):
        E.resume_evaluation(store, eid)


# --- failures back into the queue --------------------------------------------------------------------------------


def test_failures_become_badcases_with_links_and_the_next_export_takes_them(world, base_and_tuned):
    store, _export, run_id = world
    base, tuned = base_and_tuned
    failed = E.evaluation_results(store, tuned.evaluation.id, verdict="wrong", limit=None)
    assert failed, "the tiny model gets some validation records wrong"
    sent = E.send_failures_to_badcases(store, tuned.evaluation.id, "retrain", author="test")
    assert len(sent.created) == len(failed) and not sent.updated
    with store.connect() as con:
        records = [get_record(con, i) for i in sent.created]
    by_output = {r.bad_output for r in records}
    assert by_output == {f.output for f in failed}
    for record in records:
        assert record.dataset == "retrain" and record.status == "fixed"
        assert record.source == f"evaluation {tuned.evaluation.id} (run {run_id})"
        assert {"eval-failure", f"evaluation-{tuned.evaluation.id}", f"run-{run_id}"} <= set(record.tags)
        assert record.messages[-1]["role"] == "assistant" and record.messages[-1]["content"] in INTENTS
    links = {
        r.badcase_id for r in E.evaluation_results(store, tuned.evaluation.id, verdict="wrong", limit=None)
    }
    assert links == set(sent.created)
    again = E.send_failures_to_badcases(store, tuned.evaluation.id, "retrain", author="test")
    assert (again.created, again.already_sent) == ([], len(failed))
    exported = export_training_set(
        store,
        ExportConfig(
            name="retrain", datasets=("retrain",), leakage_guard="exact", general_share=0.0, val=0.0
        ),
    )
    lines = [
        json.loads(line)
        for line in (exported.folder / "train.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert sorted(line["id"] for line in lines) == sorted(sent.created)


def test_a_failure_already_in_the_dataset_gets_its_bad_output_not_a_copy(store, write_jsonl):
    report = import_file(
        store,
        write_jsonl(
            [{"messages": [{"role": "user", "content": "退款"}, {"role": "assistant", "content": "refund"}]}]
        ),
    )
    with store.connect() as con:
        [record] = list_records(con, Selection(import_id=report.import_id))
    eid = fake_evaluation(store, ["wrong"], ["intent"], record_ids=[record.id], outputs={0: "cancel_order"})
    sent = E.send_failures_to_badcases(store, eid, "badcases", author="test")
    assert (sent.created, sent.updated) == ([], [record.id])
    with store.connect() as con:
        updated = get_record(con, record.id)
    assert updated.bad_output == "cancel_order" and "eval-failure" in updated.tags and updated.version == 2


# --- prompt trial, general loss, hard records ---------------------------------------------------------------------


def test_prompt_trial_compares_prompting_with_tuning_on_the_same_records(world):
    store, _export, run_id = world
    system = "只回答一个意图标签 / answer with one label only: " + ", ".join(INTENTS)
    trial = E.prompt_trial(
        store, run_id, system, examples=3, on="trained", options=small(limit=12), author="test"
    )
    assert trial.prompted.evaluation.system_prompt == system and trial.prompted.evaluation.examples == 3
    with store.connect() as con:
        [first] = sql.results(con, trial.prompted.evaluation.id, limit=1)
    assert first.messages[0] == {"role": "system", "content": system}
    assert [m["role"] for m in first.messages[1:7]] == [
        "user",
        "assistant",
    ] * 3  # the examples, then the record
    assert trial.prompt_vs_base.total.n > 0 and trial.tuned_vs_base.total.n > 0
    assert (
        trial.prompted.total.prompt_tokens > trial.tuned.total.prompt_tokens
    )  # examples make the prompt longer
    again = E.prompt_trial(
        store, run_id, system, examples=0, on="trained", options=small(limit=12), author="test"
    )
    assert again.base.evaluation.id == trial.base.evaluation.id  # the base and tuned evaluations are reused
    assert again.tuned.evaluation.id == trial.tuned.evaluation.id


def test_general_set_loss_before_and_after_shows_forgetting_as_a_number(world):
    store, export, run_id = world
    base = E.evaluate(store, "base", "general", set_run=run_id)
    tuned = E.evaluate(store, run_id, "general")
    trained = {
        json.loads(line).get("id")
        for line in (export / "train.jsonl").read_text(encoding="utf-8").splitlines()
    }
    rows = E.evaluation_results(store, tuned.evaluation.id, limit=None)
    assert rows and not {r.record_id for r in rows} & trained  # held out: never trained on
    assert all(
        r.output == "" and r.verdict == "pending" and r.loss > 0 for r in rows
    )  # loss only, no generation
    c = E.compare_evaluations(store, base.evaluation.id, tuned.evaluation.id)
    assert c.loss_before > 0 and c.loss_after > 0 and c.loss_before != c.loss_after


def test_hard_records_come_with_similar_records_that_answer_differently(store):
    questions = [
        "我要退款，订单12345",
        "我要退款，订单12346",
        "请帮我取消订单",
        "where is my parcel",
        "我要退款，订单12345",
    ]
    answers = ["refund", "cancel_order", "cancel_order", "track_order", "好的，马上为您处理"]
    categories = ["intent"] * 4 + ["short_reply"]  # the same question in another category answers otherwise
    results = [("cancel_order", "wrong", 2.0), ("cancel_order", "right", 3.0), ("cancel_order", "right", 0.1)]
    results += [("track_order", "right", 0.2), ("好的", "right", 0.0)]
    eid = stored_evaluation(
        store,
        [
            {
                "record_key": str(i),
                "record_id": None,
                "category": category,
                "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                "reference": a,
                "output": output,
                "verdict": verdict,
                "loss": loss,
            }
            for i, (q, a, category, (output, verdict, loss)) in enumerate(
                zip(questions, answers, categories, results, strict=True)
            )
        ],
        model="run 1",
        run_id=1,
        eval_set="trained",
    )
    hard = E.hard_records(store, eid, limit=2)
    assert [h.record_key for h in hard] == ["0", "1"]  # the wrong one first, then the highest loss
    assert hard[0].contradicting[0]["question"] == "我要退款，订单12346"  # the near-copy labelled differently
    assert hard[0].contradicting[0]["reference"] == "cancel_order"
    assert all(c["record_key"] != "4" for h in hard for c in h.contradicting)  # never across categories


def test_each_contract_category_gets_a_generation_budget_from_its_own_references():
    """A label category's answers stop a few tokens after the longest label, not after the longest JSON of the
    category beside it; categories without a contract get max_new_tokens."""
    from types import SimpleNamespace

    class Words:
        def tokens(self, text):
            return text.split()

    rows = [
        SimpleNamespace(category="intent", reference="refund"),
        SimpleNamespace(category="intent", reference="order status"),
        SimpleNamespace(category="slots", reference=" ".join(["tok"] * 30)),
        SimpleNamespace(category="chat", reference=" ".join(["w"] * 500)),
    ]
    contracts = {
        "intent": Contract("intent", "labels", ["refund", "order status"]),
        "slots": Contract("slots", "json"),
    }
    budgets = _contract_budgets(rows, contracts, Words(), max_new_tokens=64)
    assert budgets == {"intent": 2 * 2 + 8, "slots": 64}  # 2 * 30 + 8 = 68, capped at max_new_tokens


def test_the_pair_shown_first_is_a_run_beside_the_base_model_on_the_same_set(store):
    """Not simply the two newest (here the general set's loss-only pair): the newest run evaluation with
    verdicts, beside the base model's on the same set; prompt trials and other sets are passed over."""
    row = {"record_key": "1", "category": "intent", "messages": [], "reference": "refund"}
    scored = [{**row, "output": "refund", "verdict": "right", "loss": 0.1}]
    loss_only = [{**row, "output": "", "verdict": "pending", "loss": 0.5}]
    base_eval = stored_evaluation(store, scored)
    stored_evaluation(store, scored, system_prompt="Answer with one label.")  # a prompt trial
    stored_evaluation(store, scored, eval_set="val")  # the base model on another set
    run_eval = stored_evaluation(store, scored, model="run 1", run_id=1)
    base_general = stored_evaluation(store, loss_only, eval_set="general")
    run_general = stored_evaluation(store, loss_only, model="run 1", run_id=1, eval_set="general")
    reports = E.list_evaluations(store)
    assert E.default_pair(reports) == (base_eval, run_eval)
    only_loss = [r for r in reports if r.evaluation.eval_set == "general"]
    assert E.default_pair(only_loss) == (base_general, run_general)
    only_base = [r for r in reports if r.evaluation.run_id is None]  # no run: the two newest
    assert E.default_pair(only_base) == (only_base[1].evaluation.id, only_base[0].evaluation.id)
    assert E.default_pair(reports[-1:]) == (reports[-1].evaluation.id,) * 2
    assert E.default_pair([]) is None
    failed = stored_evaluation(store, scored, model="endpoint:prod", status="failed")  # newest, not finished
    only_base = [r for r in E.list_evaluations(store) if r.evaluation.run_id is None]
    assert failed == only_base[0].evaluation.id
    assert E.default_pair(only_base) == (only_base[2].evaluation.id, only_base[1].evaluation.id)


def test_a_finished_runs_export_splits_are_eval_sets_on_the_page_and_run_in_the_background(
    world, base_and_tuned, monkeypatch
):
    """The Evaluate page offers the store's datasets and, for each finished run, its export's validation split,
    the badcases it trained on and the general records it did not (issue 27): picked there, the set runs in the
    background and gives the answers the foreground evaluation of the same run and set gave."""
    import time

    from streamlit.testing.v1 import AppTest

    from .conftest import ROOT, shown

    store, export, run_id = world
    _base, tuned = base_and_tuned
    manifest = json.loads((export / "manifest.json").read_text(encoding="utf-8"))
    val, trained, general = (f"run {run_id} · {on}" for on in ("val", "trained", "general"))
    targets = {t.key: t for t in E.evaluation_targets(store)}
    assert list(targets)[-3:] == [val, trained, general]
    assert targets[val].records == manifest["files"]["val.jsonl"]["records"] == tuned.total.n
    assert targets[trained].records == manifest["counts"]["by_source"]["badcase"]["train"]
    assert (targets[general].on, targets[general].set_run, targets[general].records) == (
        "general",
        run_id,
        None,
    )
    with pytest.raises(
        WorkbenchError, match="there is no eval set 'run 99 · val': choose one of .*run 1 · val"
    ):
        E.start_evaluation(store, "base", "run 99 · val")

    monkeypatch.setenv("WORKBENCH_STORE", str(store.root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90).run()
    at.switch_page("pages/evaluate.py").run()
    assert not at.exception, at.exception
    assert f"run {run_id} · validation split, {tuned.total.n} records" in at.selectbox(key="ev_set").options
    at.selectbox(key="ev_model").set_value(f"run {run_id}")
    at.selectbox(key="ev_set").set_value(val)
    at.number_input(key="ev_max_new").set_value(small().max_new_tokens)
    at.button(key="ev_start").click().run()
    assert not at.exception, at.exception
    deadline = time.monotonic() + 180
    while (job := E.latest_eval_job(store)).running:
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    assert job.state == "done", job.error
    row = E.evaluation_report(store, job.evaluation_id).evaluation
    assert (row.model, row.run_id, row.eval_set, row.source) == (f"run {run_id}", run_id, "val", str(export))
    with store.connect() as con:
        now = [(r.record_key, r.output, r.verdict) for r in sql.results(con, row.id)]
        before = [(r.record_key, r.output, r.verdict) for r in sql.results(con, tuned.evaluation.id)]
    assert now == before
    at.run()
    assert any(f"on {val}: done, {tuned.total.n} records" in shown(s.value) for s in at.success)
