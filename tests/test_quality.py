"""What the Quality page shows and does: issues by code with the rule's explanation, fix-all per code as one
undoable operation, and a contract's effect counted before it is saved."""

from __future__ import annotations

import pytest

from workbench import curation, ingest, review
from workbench.contracts import Contract
from workbench.errors import WorkbenchError
from workbench.review import BulkAction, ReviewFilter

from .conftest import chat


@pytest.fixture
def filled(store, write_jsonl):
    ingest.import_file(
        store,
        write_jsonl(
            [
                {
                    "messages": [
                        {"role": "user", "content": "我要退款"},
                        {"role": "asistant", "content": "refund"},
                    ],
                    "category": "意图",
                },
                {
                    "messages": [
                        {"role": "user", "content": "where is it"},
                        {"role": "asistant", "content": "delivery"},
                    ],
                    "category": "意图",
                },
                chat("Cancel order 7", " cancel ", category="意图"),
                chat("提取订单号：订单 7781", '{"order": 7781}', category="slots"),
                chat("提取订单号：没有", "none", category="slots"),
                chat("hi"),
            ]
        ),
    )
    return store


def test_issues_by_code_carry_the_rules_explanation_and_whether_it_fixes_safely(filled):
    issues = {i.code: i for i in curation.issues_by_code(filled)}
    typo = issues["role-typo"]
    assert (typo.severity, typo.records, typo.fixable) == ("error", 2, True)
    assert typo.title == "a misspelled role (asistant, usr)"
    assert issues["no-assistant"].fixable is False


def test_fix_all_of_a_code_is_counted_first_and_one_undo_reverts_it(filled):
    target, action = ReviewFilter(issue_codes=("role-typo",)), BulkAction("autofix")
    assert review.preview_bulk(filled, target, action) == 2
    result = review.apply_bulk(filled, target, action, "ann")
    assert result.changed == 2 and "role-typo" not in {i.code for i in curation.issues_by_code(filled)}
    review.undo_operation(filled, result.operation_id, "ann")
    assert {i.code: i.records for i in curation.issues_by_code(filled)}["role-typo"] == 2


def test_a_contract_is_counted_before_it_is_saved(filled):
    preview = curation.preview_contract(filled, Contract("slots", "json"))
    assert (preview.records, preview.flagged) == (2, 1)
    assert preview.examples[0][0] == "none" and "not valid JSON" in preview.examples[0][1]
    labels = curation.preview_contract(filled, Contract("意图", "labels", ["refund", "delivery", "cancel"]))
    assert (labels.records, labels.flagged) == (1, 1)  # the two role typos have no assistant turn yet
    assert "contract-json" not in {i.code for i in curation.issues_by_code(filled)}  # nothing was saved
    curation.set_contract(filled, Contract("slots", "json"))
    assert {i.code: i.records for i in curation.issues_by_code(filled)}["contract-json"] == preview.flagged
    assert curation.get_contracts(filled)["slots"].kind == "json"
    with pytest.raises(WorkbenchError, match="not a valid regex"):
        Contract("slots", "regex", "(")


def test_settings_are_read_with_their_defaults(filled):
    assert curation.get_settings(filled) == {"target_model": "smollm2-135m-instruct", "max_tokens": 2048}
