"""Curating records in the store: edits re-check, autofixes and undo leave revisions, contracts, settings."""

from __future__ import annotations

import pytest

from workbench import curation, ingest
from workbench.contracts import Contract
from workbench.errors import EditConflictError, WorkbenchError
from workbench.store.issues import issues_of
from workbench.store.records import Selection, get_record, list_records, revisions_of

from .conftest import chat


@pytest.fixture
def loaded(store, write_jsonl):
    ingest.import_file(
        store,
        write_jsonl(
            [
                {
                    "messages": [
                        {"role": "USER", "content": "退款"},
                        {"role": "asistant", "content": "refund "},
                    ],
                    "category": "intent",
                },
                chat("where is my food", "delivery_status", category="intent"),
                chat("cancel please", "I will cancel it", category="intent"),
                chat("hi", "", category="chitchat"),
            ]
        ),
    )
    return store


def codes(store, record_id):
    with store.connect() as con:
        return sorted(c for c, *_ in issues_of(con, record_id))


def ids(store):
    with store.connect() as con:
        return [r.id for r in list_records(con)]


def test_autofix_repairs_and_records_a_revision(loaded):
    first = ids(loaded)[0]
    assert codes(loaded, first) == ["no-assistant", "role-case", "role-typo"]
    report = curation.apply_autofixes(loaded, Selection(), "alice")
    assert report.fixed == {first: ["role-case", "role-typo"]}
    assert codes(loaded, first) == []
    with loaded.connect() as con:
        revs = revisions_of(con, first)
    assert revs[-1].action == "autofix" and revs[-1].author == "alice"
    assert [m["role"] for m in revs[-1].before["messages"]] == ["USER", "asistant"]


def test_undo_puts_the_old_value_back_as_a_new_revision(loaded):
    first = ids(loaded)[0]
    curation.apply_autofixes(loaded, Selection(), "alice")
    with loaded.connect() as con:
        fix_rev = revisions_of(con, first)[-1]
    record = curation.undo_revision(loaded, fix_rev.id, "bob")
    assert [m["role"] for m in record.messages] == ["USER", "asistant"] and record.version == 3
    assert codes(loaded, first) == ["no-assistant", "role-case", "role-typo"]
    with loaded.connect() as con:
        assert [r.action for r in revisions_of(con, first)] == ["autofix", "undo"]


def test_edit_rechecks_the_record_and_refuses_stale_versions(loaded):
    empty = ids(loaded)[3]
    assert codes(loaded, empty) == ["empty-answer"]
    record = curation.edit_record(
        loaded,
        empty,
        1,
        {
            "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "你好！"}],
            "status": "fixed",
        },
        "carol",
    )
    assert codes(loaded, empty) == [] and record.status == "fixed"
    with pytest.raises(EditConflictError):
        curation.edit_record(loaded, empty, 1, {"status": "approved"}, "dave")
    with loaded.connect() as con:
        assert get_record(con, empty).status == "fixed"


def test_contract_flags_the_category_and_removal_clears_it(loaded):
    first, _, third, _ = ids(loaded)
    counts = curation.set_contract(
        loaded, Contract("intent", "labels", ["refund", "delivery_status", "cancel"])
    )
    assert (
        "contract-label",
        "error",
        1,
    ) in counts  # the sentence; the first record has no assistant turn yet
    assert "contract-label" in codes(loaded, third)
    report = curation.apply_autofixes(loaded, Selection(), "alice")
    # fixing the roles reveals "refund " with a stray space, which is fixed too; the sentence is not fixable
    assert report.fixed[first] == ["contract-label", "role-case", "role-typo"]
    assert codes(loaded, first) == [] and "contract-label" in codes(loaded, third)
    curation.remove_contract(loaded, "intent")
    assert "contract-label" not in codes(loaded, third)


def test_recheck_after_lowering_max_tokens_flags_long_records(loaded):
    curation.set_setting(loaded, "max_tokens", 20)
    counts = dict(((c, s), n) for c, s, n in curation.recheck(loaded))
    assert counts[("too-long", "warning")] == 4
    with pytest.raises(WorkbenchError, match="unknown setting"):
        curation.set_setting(loaded, "temperature", 1)


def test_recheck_of_the_records_with_an_issue_keeps_their_issues(loaded):
    first = ids(loaded)[0]
    counts = dict(((c, s), n) for c, s, n in curation.recheck(loaded, Selection(issue_code="role-typo")))
    assert counts[("role-typo", "error")] == 1
    assert codes(loaded, first) == ["no-assistant", "role-case", "role-typo"]


def test_set_status_approves_a_selection(loaded):
    assert curation.set_status(loaded, Selection(category="intent"), "approved", "erin") == 3
    with loaded.connect() as con:
        statuses = [r.status for r in list_records(con)]
    assert statuses == ["approved", "approved", "approved", "new"]


def test_a_setting_emptied_on_the_quality_page_goes_back_to_its_default(store):
    curation.set_setting(store, "target_model", "我的模型")
    assert curation.get_settings(store)["target_model"] == "我的模型"
    curation.set_setting(store, "target_model", curation.default_setting("target_model"))
    assert (
        curation.get_settings(store)["target_model"] == curation.default_setting("target_model") != "我的模型"
    )
