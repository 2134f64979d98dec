"""Assigned queues, agreement between labellers and the audit, on a real store with Chinese and English records."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from workbench import accounts, agreement, audit, curation, ingest, queues, review, roles
from workbench.cli import main
from workbench.contracts import Contract
from workbench.errors import ForbiddenError, WorkbenchError
from workbench.review import ReviewFilter

from .conftest import ROOT, chat

LABELS = ["退款", "物流", "优惠", "取消"]


@pytest.fixture(autouse=True)
def fast_argon2(monkeypatch):
    monkeypatch.setenv(accounts.FAST_HASH_ENV, "1")


@pytest.fixture
def team(store, write_jsonl):
    """20 intent records (意图) and 4 JSON records (订单), an owner, a reviewer and three labellers."""
    rows = [chat(f"问题 {i}: where is order {i}?", LABELS[i % 4], category="意图") for i in range(20)]
    rows += [chat(f"订单 {i}", json.dumps({"id": i, "ok": True}), category="订单") for i in range(4)]
    ingest.import_file(store, write_jsonl(rows))
    curation.set_contract(store, Contract("订单", "json"))
    accounts.add_account(store, "王老板", "owner", "owner-password")
    with roles.acting_as("王老板"):
        for name, role in (
            ("rev", "reviewer"),
            ("小李", "labeller"),
            ("小张", "labeller"),
            ("amy", "labeller"),
        ):
            accounts.add_account(store, name, role, f"{name}-password", created_by="王老板")
    return store


def test_round_robin_with_overlap_gives_each_record_to_two_labellers_and_skips_queued_ones(team):
    with roles.acting_as("王老板"):
        report = queues.assign(team, ReviewFilter(categories=("意图",)), ["小李", "小张", "amy"], overlap=2)
        assert (report.records, report.overlap, sum(report.per_labeller.values())) == (20, 2, 40)
        assert sorted(report.per_labeller.values()) == [13, 13, 14]
        again = queues.assign(team, ReviewFilter(categories=("意图",)), ["小李"])
        assert (again.records, again.skipped) == (0, 20)
    mine = review.load_queue(team, ReviewFilter(assigned_to="小李"), limit=100)
    assert mine.total == report.per_labeller["小李"]


def test_by_share_and_a_labeller_cannot_assign(team):
    with roles.acting_as("小李"), pytest.raises(ForbiddenError, match="assign needs an owner"):
        queues.assign(team, ReviewFilter(), ["小李"])
    with roles.acting_as("王老板"):
        report = queues.assign(team, ReviewFilter(categories=("意图",)), {"小李": 3, "小张": 1})
        assert report.per_labeller == {"小李": 15, "小张": 5}
        with pytest.raises(WorkbenchError, match="overlap 3 needs at least 3 labellers"):
            queues.assign(team, ReviewFilter(), ["小李", "小张"], overlap=3)


def test_a_labeller_changes_only_their_queue_and_progress_counts_it(team):
    with roles.acting_as("王老板"):
        queues.assign(team, ReviewFilter(categories=("意图",)), ["小李", "小张"])
    mine = review.load_queue(team, ReviewFilter(assigned_to="小李"), limit=100).rows
    theirs = review.load_queue(team, ReviewFilter(assigned_to="小张"), limit=100).rows
    with roles.acting_as("小李"):
        record = review.open_record(team, mine[0].id).record
        curation.edit_record(team, record.id, record.version, {"tags": ["已看"]}, "小李")
        other = review.open_record(team, theirs[0].id).record
        with pytest.raises(ForbiddenError, match=f"record {other.id} is not in '小李'"):
            curation.edit_record(team, other.id, other.version, {"tags": ["x"]}, "小李")
    assert {p.assignee: (p.done, p.assigned) for p in queues.queue_progress(team)} == {
        "小李": (1, 10),
        "小张": (0, 10),
    }


def test_reassign_moves_what_is_not_done_and_keeps_the_history(team):
    with roles.acting_as("王老板"):
        queues.assign(team, ReviewFilter(categories=("意图",)), ["小李", "小张"])
    first = review.load_queue(team, ReviewFilter(assigned_to="小张"), limit=100).rows[0].id
    with roles.acting_as("小张"):
        record = review.open_record(team, first).record
        curation.edit_record(team, first, record.version, {"tags": ["done"]}, "小张")
    with roles.acting_as("王老板"):
        assert queues.reassign(team, "小张", "amy") == 9
    assert {p.assignee: (p.done, p.assigned) for p in queues.queue_progress(team)} == {
        "amy": (0, 9),
        "小张": (1, 1),
        "小李": (0, 10),
    }
    with roles.acting_as("王老板"):
        assert queues.release(team, "amy") == 9
    with team.connect() as con:  # released rows stay: the history
        assert (
            con.execute("SELECT count(*) FROM assignments WHERE released_at IS NOT NULL").fetchone()[0] == 18
        )


def test_agreement_finds_planted_disagreements_and_the_settled_answer_trains(team):
    with roles.acting_as("王老板"):
        queues.assign(team, ReviewFilter(), ["小李", "小张"], overlap=2)
    ids = [
        r.id
        for r in review.load_queue(team, ReviewFilter(categories=("意图",)), sort="oldest", limit=100).rows
    ]
    planted = set(ids[:5])
    for n, record_id in enumerate(ids):
        label = LABELS[n % 4]
        queues.submit_answer(team, record_id, "小李", label)
        queues.submit_answer(team, record_id, "小张", LABELS[(n + 1) % 4] if record_id in planted else label)
    json_ids = [r.id for r in review.load_queue(team, ReviewFilter(categories=("订单",)), limit=10).rows]
    for record_id in json_ids:  # key order and spacing differ, the JSON is the same
        queues.submit_answer(team, record_id, "小李", '{"ok": true, "id": 1}')
        queues.submit_answer(team, record_id, "小张", '{"id":1,"ok":true}')
    report = agreement.agreement(team)
    by = {row.category: row for row in report.categories}
    assert by["意图"].records == 20 and by["意图"].exact_match == pytest.approx(15 / 20)
    assert 0.5 < by["意图"].kappa < 0.75
    assert (by["意图"].fleiss_kappa, by["意图"].fleiss_records) == (None, 0)  # two labellers: pairs only
    assert (by["订单"].kind, by["订单"].exact_match, by["订单"].kappa) == ("json", 1.0, None)
    assert {d.record_id for d in report.disagreements} == planted
    with pytest.raises(ForbiddenError, match="approve needs a reviewer"), roles.acting_as("小李"):
        agreement.settle(team, ids[0], "退款", "小李")
    with roles.acting_as("rev"):
        settled = agreement.settle(team, ids[0], "物流", "rev")  # 小张's answer, not the record's 退款
    assert settled.messages[-1]["content"] == "物流"
    last = review.open_record(team, ids[0]).history[-1]
    assert (last.author, last.action) == ("rev", "settle")
    after = agreement.agreement(team)
    assert [d.record_id for d in after.disagreements if d.settled] == [ids[0]]


def test_three_labellers_give_fleiss_kappa_beside_cohens_in_the_library_the_cli_and_the_page(
    team, monkeypatch
):
    with roles.acting_as("王老板"):
        queues.assign(team, ReviewFilter(categories=("意图",)), ["小李", "小张", "amy"], overlap=3)
    ids = [
        r.id for r in review.load_queue(team, ReviewFilter(assigned_to="amy"), sort="oldest", limit=100).rows
    ]
    assert len(ids) == 20
    for n, record_id in enumerate(ids):
        label = LABELS[n % 4]
        queues.submit_answer(team, record_id, "小李", label)
        # planted: amy differs on the first four records, 小张 on the next two (each a 2-1 split of three)
        queues.submit_answer(team, record_id, "amy", LABELS[(n + 1) % 4] if n < 4 else label)
        queues.submit_answer(team, record_id, "小张", LABELS[(n + 2) % 4] if n in (4, 5) else label)
    row = next(r for r in agreement.agreement(team).categories if r.category == "意图")
    # Fleiss by hand: 14 records agree (P_i = 1), 6 split 2-1 (P_i = 2·1/(3·2) = 1/3), so P = (14 + 2) / 20 = 0.8.
    # amy's four moves shift no label's total; 小张's two take one 退款 and one 物流 to 优惠 and 取消: of the 60
    # answers 14, 14, 16, 16, so P_e = (2·14² + 2·16²) / 60².
    chance = (2 * 14**2 + 2 * 16**2) / 60**2
    assert row.fleiss_kappa == pytest.approx((0.8 - chance) / (1 - chance))
    assert (row.fleiss_records, row.fleiss_raters, row.records, row.pairs) == (20, 3, 20, 60)
    assert row.exact_match == pytest.approx(48 / 60)  # a 2-1 split has one agreeing pair of its three
    # Cohen's over both orders of every pair pools the answers' marginals as Fleiss does: with three answers to
    # every record the two agree (scikit-learn and statsmodels checking each other)
    assert row.kappa == pytest.approx(row.fleiss_kappa)
    shown = CliRunner().invoke(main, ["--store", str(team.root), "agreement", "--json"])
    assert shown.exit_code == 0, shown.output
    [listed] = [c for c in json.loads(shown.output)["categories"] if c["category"] == row.category]
    assert listed["fleiss_kappa"] == pytest.approx(row.fleiss_kappa) and listed["fleiss_raters"] == 3

    monkeypatch.setenv("WORKBENCH_STORE", str(team.root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["account_token"] = accounts.sign_in(team, "rev", "rev-password").token
    at.run().switch_page("pages/agreement.py").run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "Fleiss' kappa" in d.value.columns)
    shown_row = table[table["category"] == "意图"].iloc[0]
    assert shown_row["Fleiss' kappa"] == pytest.approx(row.fleiss_kappa)
    assert shown_row["Cohen's kappa"] == pytest.approx(row.kappa)
    assert shown_row["Fleiss: records × labellers"] == "20 × 3"


def test_fleiss_counts_the_most_common_number_of_labellers_and_needs_two_labels():
    sets = [["a", "a", "b"], ["b", "b", "b"], ["a", "a", "a", "b"], ["a", "b"]]
    kappa, records, raters = agreement.fleiss(sets)
    assert (records, raters) == (2, 3)  # the four-answer and the two-answer records are left out
    # P = (1/3 + 1) / 2; the six answers are 2 a and 4 b: P_e = (2² + 4²) / 6²
    assert kappa == pytest.approx((2 / 3 - 20 / 36) / (1 - 20 / 36))
    assert agreement.fleiss([["a", "a", "a"], ["a", "a", "a"]]) == (None, 2, 3)
    assert agreement.fleiss([["a", "b"]]) == (None, 0, None)


def test_audit_counts_revisions_per_person_per_day_for_owners(team):
    with roles.acting_as("王老板"):
        queues.assign(team, ReviewFilter(categories=("意图",)), ["小李"])
    rows = review.load_queue(team, ReviewFilter(assigned_to="小李"), limit=3).rows
    with roles.acting_as("小李"):
        for row in rows:
            record = review.open_record(team, row.id).record
            curation.edit_record(team, row.id, record.version, {"tags": ["看过"]}, "小李")
    with roles.acting_as("小李"), pytest.raises(ForbiddenError):
        audit.audit(team)
    with roles.acting_as("王老板"):
        found = [r for r in audit.audit(team) if r.author == "小李"]
    assert len(found) == 1 and (found[0].revisions, found[0].records, found[0].actions) == (3, 3, "edit 3")


def test_cli_queue_assign_show_and_audit(team):
    runner = CliRunner()
    env = {"WORKBENCH_USER": "王老板"}
    root = str(team.root)
    assigned = runner.invoke(
        main,
        ["--store", root, "queue", "assign", "--to", "小李", "--to", "小张", "--category", "意图"],
        env=env,
    )
    assert assigned.exit_code == 0, assigned.output
    assert "assigned 20 records (overlap 1): 小李 10, 小张 10" in assigned.output
    shown = runner.invoke(main, ["--store", root, "queue"], env=env)
    assert "小李" in shown.output and "10" in shown.output
    refused = runner.invoke(main, ["--store", root, "--user", "小李", "queue", "release", "小张"])
    assert refused.exit_code == 1 and "assign needs an owner" in refused.output
    assert runner.invoke(main, ["--store", root, "audit"], env=env).exit_code == 0
