"""The Review queue's library: filters, keyset pages and counts, saves and conflicts, history and diffs,
one-click fixes, bulk actions as one undoable operation, and the training view."""

from __future__ import annotations

import pytest

from workbench import ingest, review
from workbench.errors import EditConflictError, WorkbenchError
from workbench.review import BulkAction, ReviewFilter
from workbench.store.records import get_record

from .conftest import chat, stored_evaluation


@pytest.fixture
def loaded(store, write_jsonl):
    ingest.import_file(
        store,
        write_jsonl(
            [
                {
                    "messages": [
                        {"role": "user", "content": "我要退款，订单 7781"},
                        {"role": "asistant", "content": "refund"},
                    ],
                    "category": "退款",
                    "tags": ["vip"],
                    "source": "app",
                },
                {
                    "prompt": "我的外卖到哪了？",
                    "bad_output": "refund",
                    "expected": "delivery_status",
                    "category": "物流",
                    "task_type": "classification",
                },
                chat("Where is my order?", "delivery_status", category="物流", source="web"),
                chat("<script>alert(1)</script> **bold**", "<img src=x onerror=alert(1)>", category="intent"),
                chat("hi", "", category="chitchat"),
            ]
        ),
    )
    return store


def all_ids(store, flt=ReviewFilter(), sort="oldest"):
    return review.load_queue(store, flt, sort, limit=1000).ids


def test_filters_narrow_the_queue_and_count_in_sql(loaded):
    ids = all_ids(loaded)
    assert len(ids) == 5
    count = lambda **kw: review.load_queue(loaded, ReviewFilter(**kw)).total  # noqa: E731
    assert count(categories=("物流",)) == 2
    assert count(categories=("物流", "退款")) == 3
    assert count(tags=("vip",)) == 1
    assert count(task_types=("classification",)) == 1
    assert count(sources=("web",)) == 1
    assert count(issue_codes=("role-typo",)) == 1
    assert count(severity="error") >= 2
    assert count(issue_codes=("empty-answer",), severity="warning") == 0
    assert count(text="退款") == 1  # Chinese matches inside a sentence, no word boundary
    assert count(text="WHERE IS") == 1  # case-insensitive
    assert count(text="外卖") == 1
    assert count(statuses=("approved",)) == 0
    assert count(duplicate="copy") == 0 and count(duplicate="unique") == 5


def test_keyset_pages_cover_every_record_once_in_each_sort(loaded):
    for sort in review.SORTS:
        seen, after = [], None
        while True:
            page = review.load_queue(loaded, ReviewFilter(), sort, after, limit=2)
            assert page.total == 5 and len(page.rows) <= 2
            seen += page.ids
            if page.next_after is None:
                break
            after = page.next_after
        assert sorted(seen) == sorted(all_ids(loaded)), sort
        assert len(seen) == 5
    newest = review.load_queue(loaded, ReviewFilter(), "newest").ids
    assert newest == sorted(newest, reverse=True)
    most = review.load_queue(loaded, ReviewFilter(), "most issues").rows
    assert [r.errors + r.warnings for r in most] == sorted(
        (r.errors + r.warnings for r in most), reverse=True
    )


def test_queue_rows_show_the_first_question_and_the_answer(loaded):
    rows = {r.id: r for r in review.load_queue(loaded, ReviewFilter(categories=("物流",)), "oldest").rows}
    first = rows[min(rows)]
    assert (
        first.first_user == "我的外卖到哪了？"
        and first.answer == "delivery_status"
        and first.category == "物流"
    )


def test_filter_round_trips_through_url_params():
    flt = ReviewFilter(
        statuses=("new", "fixed"),
        categories=("退款",),
        issue_codes=("role-typo",),
        severity="error",
        duplicate="kept",
        cluster=3,
        text="订单",
        tags=("vip",),
        hard_after_run=7,
        text_in="system",
    )
    params = review.filter_to_params(flt)
    assert params["category"] == ["退款"] and params["cluster"] == ["3"] and params["hard"] == ["7"]
    assert params["in"] == ["system"]
    assert review.filter_from_params(params) == flt
    assert "in" not in review.filter_to_params(ReviewFilter(text="订单"))  # the default stays out of links
    with pytest.raises(WorkbenchError, match="cannot search text in 'prompt'"):
        review.filter_from_params({"text": ["x"], "in": ["prompt"]})
    assert review.filter_from_params({}) == ReviewFilter()
    with pytest.raises(WorkbenchError, match="unknown status 'done'"):
        review.filter_from_params({"status": ["done"]})
    with pytest.raises(WorkbenchError, match="duplicate state"):
        review.filter_from_params({"duplicate": ["maybe"]})
    with pytest.raises(WorkbenchError, match="'x' in the link is not a run number"):
        review.filter_from_params({"hard": ["x"]})


def test_open_record_lists_issues_and_bad_output(loaded):
    badcase = all_ids(loaded, ReviewFilter(task_types=("classification",)))[0]
    view = review.open_record(loaded, badcase)
    assert view.record.bad_output == "refund"
    assert view.record.messages[-1]["content"] == "delivery_status"
    typo = all_ids(loaded, ReviewFilter(issue_codes=("role-typo",)))[0]
    issues = review.open_record(loaded, typo).issues
    assert any(i.code == "role-typo" and i.turn == 2 and i.fix for i in issues)


def test_save_writes_a_revision_and_a_stale_save_conflicts_without_writing(loaded):
    rid = all_ids(loaded, ReviewFilter(text="外卖"))[0]
    view = review.open_record(loaded, rid)
    messages = [dict(m) for m in view.record.messages]
    messages[-1]["content"] = "物流查询"
    saved = review.save_record(
        loaded,
        rid,
        view.record.version,
        {"messages": messages, "status": "fixed", "tags": ["复核", " "]},
        "alice",
        "写了正确答案",
    )
    assert saved.version == view.record.version + 1 and saved.status == "fixed" and saved.tags == ["复核"]
    with pytest.raises(EditConflictError, match="version 1"):
        review.save_record(loaded, rid, view.record.version, {"status": "approved"}, "bob")
    after = review.open_record(loaded, rid)
    assert after.record.status == "fixed" and after.record.messages[-1]["content"] == "物流查询"
    last = after.history[-1]
    assert last.author == "alice" and last.note == "写了正确答案"
    diffs = {d.field: d for d in review.revision_diff(last)}
    assert "-    delivery_status" in diffs["messages"].diff and "+    物流查询" in diffs["messages"].diff
    assert diffs["status"].before == "new" and diffs["status"].after == "fixed"


def test_undo_of_a_revision_is_a_new_revision(loaded):
    rid = all_ids(loaded, ReviewFilter(text="外卖"))[0]
    rec = review.open_record(loaded, rid).record
    review.save_record(loaded, rid, rec.version, {"category": "售后"}, "alice")
    rev = review.open_record(loaded, rid).history[-1]
    undone = review.undo_revision(loaded, rev.id, "bob")
    assert undone.category == "物流" and undone.version == rec.version + 2
    assert review.open_record(loaded, rid).history[-1].action == "undo"


def test_one_click_fix_repairs_one_issue(loaded):
    rid = all_ids(loaded, ReviewFilter(issue_codes=("role-typo",)))[0]
    view = review.open_record(loaded, rid)
    fixed = review.fix_issue(loaded, rid, view.record.version, "role-typo", 2, "alice")
    assert fixed.messages[1]["role"] == "assistant"
    assert not [i for i in review.open_record(loaded, rid).issues if i.code == "role-typo"]
    with pytest.raises(EditConflictError):
        review.fix_issue(loaded, rid, view.record.version, "role-typo", 2, "alice")


def test_bulk_status_says_how_many_first_and_one_undo_reverts_all(loaded, store):
    target = ReviewFilter(categories=("物流", "退款"))
    assert review.preview_bulk(loaded, target, BulkAction("status", "approved")) == 3
    result = review.apply_bulk(loaded, target, BulkAction("status", "approved"), "alice")
    assert result.changed == 3
    assert (
        review.preview_bulk(loaded, target, BulkAction("status", "approved")) == 0
    )  # nothing left to change
    assert review.load_queue(loaded, ReviewFilter(statuses=("approved",))).total == 3
    # someone edits one of them afterwards: the undo keeps that newer value
    one = all_ids(loaded, ReviewFilter(categories=("退款",)))[0]
    rec = review.open_record(loaded, one).record
    review.save_record(loaded, one, rec.version, {"status": "rejected"}, "bob")
    report = review.undo_operation(loaded, result.operation_id, "carol")
    assert (report.reverted, report.left_alone) == (2, 1)
    assert review.load_queue(loaded, ReviewFilter(statuses=("new",))).total == 4
    assert review.open_record(loaded, one).record.status == "rejected"
    with pytest.raises(WorkbenchError, match="already undone"):
        review.undo_operation(loaded, result.operation_id, "carol")
    ops = review.recent_operations(loaded)
    assert ops[0].undo_of == result.operation_id and ops[1].undone_by == ops[0].id


def test_bulk_tags_category_and_reject_on_selected_rows(loaded):
    ids = all_ids(loaded)[:2]
    target = ReviewFilter(ids=tuple(ids))
    add = review.apply_bulk(loaded, target, BulkAction("add_tags", ["复核", "vip"]), "alice")
    assert add.changed == 2
    tags = [review.open_record(loaded, i).record.tags for i in ids]
    assert tags == [["vip", "复核"], ["复核", "vip"]]
    cat = review.apply_bulk(loaded, target, BulkAction("category", "售后"), "alice")
    rej = review.apply_bulk(loaded, target, BulkAction("reject"), "alice")
    assert cat.changed == 2 and rej.changed == 2
    assert review.load_queue(loaded, ReviewFilter(statuses=("rejected",))).total == 2
    assert review.load_queue(loaded, ReviewFilter()).total == 5  # rejected, never deleted
    for op in (rej, cat, add):
        review.undo_operation(loaded, op.operation_id, "alice")
    assert [review.open_record(loaded, i).record.tags for i in ids] == [["vip"], []]
    assert [review.open_record(loaded, i).record.category for i in ids] == ["退款", "物流"]
    assert review.load_queue(loaded, ReviewFilter(statuses=("rejected",))).total == 0


def test_bulk_autofix_is_one_operation_and_its_undo_puts_the_typo_back(loaded):
    target = ReviewFilter()
    assert review.preview_bulk(loaded, target, BulkAction("autofix")) == 1
    result = review.apply_bulk(loaded, target, BulkAction("autofix"), "alice")
    assert result.changed == 1
    assert review.load_queue(loaded, ReviewFilter(issue_codes=("role-typo",))).total == 0
    report = review.undo_operation(loaded, result.operation_id, "alice")
    assert report.reverted == 1
    assert review.load_queue(loaded, ReviewFilter(issue_codes=("role-typo",))).total == 1
    rid = all_ids(loaded, ReviewFilter(issue_codes=("role-typo",)))[0]
    assert [r.action for r in review.open_record(loaded, rid).history] == ["autofix", "undo"]


def test_bulk_actions_refuse_bad_values(loaded):
    with pytest.raises(WorkbenchError, match="unknown status"):
        review.preview_bulk(loaded, ReviewFilter(), BulkAction("status", "done"))
    with pytest.raises(WorkbenchError, match="at least one tag"):
        review.preview_bulk(loaded, ReviewFilter(), BulkAction("add_tags", [" "]))


def test_the_html_record_is_stored_as_plain_text(loaded):
    rid = all_ids(loaded, ReviewFilter(categories=("intent",)))[0]
    rec = review.open_record(loaded, rid).record
    assert rec.messages[0]["content"] == "<script>alert(1)</script> **bold**"
    with loaded.connect() as con:
        assert get_record(con, rid).messages[1]["content"] == "<img src=x onerror=alert(1)>"


def test_training_view_marks_the_trained_answer_like_show_mask(loaded):
    rid = all_ids(loaded, ReviewFilter(text="外卖"))[0]
    view = review.open_record(loaded, rid)
    encoder = review.load_training_encoder(view.target_model, loaded.models_dir)
    shown = review.training_view(view.record, encoder, view.max_tokens)
    assert shown.skipped is None and shown.max_tokens == 2048 and not shown.too_long
    assert "我的外卖到哪了？" in shown.marked_text and "⟦delivery_status" in shown.marked_text
    assert 0 < shown.trained < shown.tokens
    empty = review.open_record(loaded, all_ids(loaded, ReviewFilter(categories=("chitchat",)))[0])
    assert review.training_view(empty.record, encoder, 8).too_long


def test_text_search_takes_percent_and_underscore_literally(store, write_jsonl):
    ingest.import_file(
        store,
        write_jsonl(
            [chat("打折 100% off_now", "ok"), chat("100 percent offXnow", "ok"), chat("ÉCOLE fermée", "ok")]
        ),
    )
    count = lambda text: review.load_queue(store, ReviewFilter(text=text)).total  # noqa: E731
    assert count("100%") == 1 and count("off_now") == 1 and count("100") == 2
    assert count("école") == 1 and count("打折") == 1 and count("OFF_NOW") == 1


def test_text_search_reads_questions_and_answers_unless_told_another_field(store, write_jsonl):
    """A system prompt that lists the labels would make every record match a label: by default a search
    reads the questions and answers only; the user can pick the question, the answer, the system prompt or
    any turn."""
    system = "把用户的话归类为 refund、delivery 或 other 之一 (classify as refund, delivery or other)"
    records = [
        {"messages": [{"role": "system", "content": system}, {"role": "user", "content": q},
                      {"role": "assistant", "content": a}]}
        for q, a in (("我要退款 refund please", "refund"), ("外卖到哪了", "delivery"), ("你好", "other"),
                     ("Where is my refund?", "delivery"))
    ]  # fmt: skip
    ingest.import_file(store, write_jsonl(records))
    count = lambda text, where="qa": review.load_queue(store, ReviewFilter(text=text, text_in=where)).total  # noqa: E731
    assert count("refund") == 2  # the answer "refund", and the question about a refund; not the prompt
    assert count("refund", "question") == 2 and count("refund", "answer") == 1
    assert count("refund", "system") == 4 and count("refund", "any") == 4
    assert count("退款") == 1 and count("归类") == 0 and count("归类", "system") == 4
    assert count("外卖", "answer") == 0 and count("外卖", "question") == 1


def test_open_record_names_the_labels_of_its_categorys_contract(loaded):
    from workbench.contracts import Contract
    from workbench.curation import set_contract

    set_contract(loaded, Contract("物流", "labels", ["delivery_status", "refund", "其他"]))
    badcase = review.open_record(loaded, all_ids(loaded, ReviewFilter(text="外卖"))[0])
    assert badcase.labels == ("delivery_status", "refund", "其他")
    assert review.open_record(loaded, all_ids(loaded, ReviewFilter(text="hi"))[0]).labels == ()


def test_a_revision_diff_names_the_field_it_changed(loaded):
    rid = all_ids(loaded, ReviewFilter(text="外卖"))[0]
    review.save_record(loaded, rid, 1, {"category": "售后", "tags": ["复核"]}, "alice")
    rev = review.open_record(loaded, rid).history[-1]
    diffs = {d.field: d.diff for d in review.revision_diff(rev)}
    assert diffs["category"].startswith("--- category before\n+++ category after")
    assert "-物流" in diffs["category"] and "+售后" in diffs["category"]
    assert diffs["tags"].startswith("--- tags before")
    undone = review.undo_revision(loaded, rev.id, "bob")
    assert review.open_record(loaded, rid).history[-1].note == f"undo of v{undone.version - 1}"


def test_draft_changes_name_only_what_the_person_changed(loaded):
    rec = review.open_record(loaded, all_ids(loaded, ReviewFilter(text="退款"))[0]).record
    start = review.editable_fields(rec)
    draft = {**start, "messages": [dict(m) for m in rec.messages], "tags": ["vip"], "category": "退款"}
    assert review.draft_changes(start, draft) == {}
    draft["messages"][1] = {"role": "assistant", "content": "refund"}
    draft["tags"] = ["vip", "复核"]
    changed = review.draft_changes(start, draft)
    assert set(changed) == {"messages", "tags"}
    assert review.draft_changes(start, {**start, "category": ""}) == {"category": ""}


def test_a_read_while_another_tab_writes_shares_the_store_and_a_write_waits_for_a_reader(loaded):
    import threading

    holding, release = threading.Event(), threading.Event()

    def hold(read_only: bool):
        with loaded.connect(read_only=read_only):
            holding.set()
            release.wait(5)

    writer = threading.Thread(target=hold, args=(False,))
    writer.start()
    holding.wait(5)
    try:
        assert (
            review.load_queue(loaded, ReviewFilter()).total == 5
        )  # reads through the writer's open database
    finally:
        release.set()
        writer.join()
    holding.clear()
    release.clear()
    reader = threading.Thread(target=hold, args=(True,))
    reader.start()
    holding.wait(5)
    threading.Timer(0.3, release.set).start()
    rid = all_ids(loaded)[0]
    saved = review.save_record(loaded, rid, 1, {"status": "labeled"}, "alice")  # waits for the reader
    reader.join()
    assert saved.status == "labeled"


def _evaluation(store, run_id, eval_set, results, system_prompt=None, status="done"):
    """An evaluation of run `run_id` with results (record_id, verdict, loss)."""
    rows = [
        {
            "record_key": str(rid),
            "record_id": rid,
            "category": "物流",
            "messages": [{"role": "user", "content": f"订单 {rid} 到哪了？"}],
            "reference": "delivery_status" if rid != 4 else "refund",
            "output": "x",
            "verdict": verdict,
            "loss": loss,
        }
        for rid, verdict, loss in results
    ]
    return stored_evaluation(
        store,
        rows,
        model=f"run {run_id}",
        run_id=run_id,
        eval_set=eval_set,
        system_prompt=system_prompt,
        status=status,
    )


def test_hard_after_run_reads_the_runs_latest_evaluation_on_what_it_trained_on(store, write_jsonl):
    """Wrong answers, plus the tenth with the highest loss; from the run's evaluation on its training records
    (not a prompt trial, not an unfinished one, not another run's), and nothing for a run never evaluated."""
    records = [chat(f"订单 {n} 到哪了？", "delivery_status", category="物流") for n in range(20)]
    ingest.import_file(store, write_jsonl(records))
    ids = all_ids(store)
    assert ids == list(range(1, 21))
    hard = lambda run: set(review.load_queue(store, ReviewFilter(hard_after_run=run), limit=100).ids)  # noqa: E731
    trained = [(i, "wrong" if i in (3, 4) else "right", 0.1 * i) for i in ids]  # 19, 20: highest loss
    _evaluation(store, 1, "trained", trained)
    _evaluation(store, 1, "val", [(i, "wrong", 0.0) for i in ids])  # newer, but not on what it trained on
    _evaluation(store, 1, "trained", [(i, "wrong", 9.0) for i in ids], system_prompt="be brief")  # a trial
    _evaluation(store, 1, "trained", [(i, "wrong", 9.0) for i in ids], status="cancelled")
    _evaluation(store, 2, "val", [(5, "wrong", 1.0), (6, "right", 0.5)])
    assert hard(1) == {3, 4, 19, 20}
    assert hard(2) == {
        5
    }  # only a val evaluation: that one is read; the top tenth of two losses is the higher
    assert hard(3) == set()
    assert review.filter_choices(store)["hard_runs"] == [2, 1]
    why = review.why_hard(store, 1, 3)
    assert why.verdict == "wrong" and why.output == "x" and why.loss == pytest.approx(0.3)
    assert why.contradicting[0]["record_id"] == 4  # the near-copy with another answer
    assert review.why_hard(store, 3, 3) is None
