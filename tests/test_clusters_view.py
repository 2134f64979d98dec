"""What the Clusters page shows: the map (sampled for big runs, every cluster kept), the cluster list with its
category mix and representatives, assigning a category as one undoable operation, and duplicate groups with
what differs, keep-another and restore."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import cluster, dedup, review
from workbench.errors import WorkbenchError
from workbench.review import ReviewFilter
from workbench.store import clusters as cluster_sql
from workbench.store import dedup as dedup_sql
from workbench.store.records import Record, get_record, insert_record


def add(con, user: str, answer: str = "...", **fields) -> int:
    return insert_record(
        con,
        Record(
            0,
            "badcases",
            [{"role": "user", "content": user}, {"role": "assistant", "content": answer}],
            **fields,
        ),
        "test",
    )


def save_run(store, members: dict[int, list[int]], names: dict[int, str] | None = None, keywords=None) -> int:
    """A stored clustering run with the given members per cluster (the map positions made up): the page's
    views are about our SQL, not the embedding model (tests/test_cluster.py runs the real thing). Clusters are
    named `cluster N` with keywords 退款, refund unless `names` and `keywords` say otherwise."""
    names = names or {}
    ids = np.array([i for c in members for i in members[c]])
    labels = np.array([c for c in members for _ in members[c]])
    rng = np.random.default_rng(0)
    with store.transaction() as con:
        run_id = cluster_sql.new_run_id(con)
        cluster_sql.save_run(
            con,
            run_id,
            author="test",
            selection={},
            model="m",
            text_spec="s",
            method="kmeans",
            k=len(members),
            k_chosen_by="given",
            params={},
            seconds=0.1,
            clusters=[
                (c, names.get(c, f"cluster {c}"), keywords or ["退款", "refund"], len(m), m[:3], 0.0, 0.0)
                for c, m in members.items()
            ],
            member_ids=ids,
            labels=labels,
            xy=rng.normal(size=(len(ids), 2)),
            distance=np.zeros(len(ids)),
        )
    return run_id


@pytest.fixture
def clustered(store):
    with store.transaction() as con:
        refunds = [
            add(con, f"我要退款，订单 {n}", "refund", category="退款" if n % 3 else None) for n in range(30)
        ]
        parcels = [add(con, f"Where is parcel {n}? " + "x" * 300, "delivery_status") for n in range(5)]
    save_run(store, {0: refunds, 1: parcels})
    return store, refunds, parcels


def test_the_map_samples_a_big_run_but_keeps_every_cluster(clustered):
    store, refunds, parcels = clustered
    whole = cluster.cluster_map(store)
    assert (whole.total, whole.points.num_rows, whole.sampled) == (35, 35, False)
    small = cluster.cluster_map(store, limit=10, chars=40)
    assert small.sampled and small.total == 35
    clusters = small.points.column("cluster").to_pylist()
    assert clusters.count(0) == 20 and clusters.count(1) == 5  # at least 20 of each (or all it has)
    assert max(len(q) for q in small.points.column("question").to_pylist()) == 40
    assert cluster.cluster_map(store, limit=10, chars=40).points.equals(
        small.points
    )  # the same sample each time


def test_the_cluster_list_shows_the_category_mix_and_representatives(clustered):
    store, refunds, _ = clustered
    first = cluster.cluster_summaries(store)[0]
    assert (first.cluster, first.size) == (0, 30)
    assert dict(first.category_mix) == {"退款": 20, None: 10}
    assert first.representatives[0] == (refunds[0], "我要退款，订单 0", "refund")


def test_assigning_a_category_to_a_cluster_is_one_operation_that_one_undo_reverts(clustered):
    store, refunds, parcels = clustered
    result = cluster.assign_category(store, 0, "退款意图", author="ann")
    assert result.changed == 30
    with store.connect() as con:
        assert {get_record(con, i).category for i in refunds} == {"退款意图"}
        assert get_record(con, parcels[0]).category is None
    assert cluster.cluster_summaries(store)[0].category == "退款意图"
    review.undo_operation(store, result.operation_id, "ann")
    assert review.load_queue(store, ReviewFilter(categories=("退款",))).total == 20
    with pytest.raises(WorkbenchError, match="no cluster 9"):
        cluster.assign_category(store, 9, "x")
    with pytest.raises(WorkbenchError, match="category name"):
        cluster.assign_category(store, 0, " ")


def test_no_run_yet_says_what_to_do(store):
    with pytest.raises(WorkbenchError, match="no clustering run yet"):
        cluster.cluster_map(store)
    assert cluster.cluster_summaries(store) == []


@pytest.fixture
def duplicated(store):
    with store.transaction() as con:
        ids = [
            add(con, t)
            for t in [
                "帮我取消这个订单，谢谢",
                "帮我取消这个订单！谢谢",
                "帮我取消这个订单。谢谢",
                "What is the capital of Australia?",
            ]
        ]
    dedup.dedup(store, author="test")
    return store, ids


def test_duplicate_groups_show_the_kept_record_its_copies_and_what_differs(duplicated):
    store, ids = duplicated
    groups, n_groups, copies = dedup.duplicate_groups(store)
    assert (n_groups, copies, len(groups)) == (1, 2, 1)
    group = groups[0]
    assert {group.kept.id, *(c.id for c in group.copies)} == set(ids[:3])
    copy = group.copies[0]
    assert copy.kind in ("exact", "lexical", "semantic") and copy.score is not None
    assert copy.diff.startswith("- user: 帮我取消这个订单") and "\n+ user: " in copy.diff and "^" in copy.diff


def test_keep_another_makes_the_copy_the_kept_record_of_the_whole_group(duplicated):
    store, ids = duplicated
    group = dedup.duplicate_groups(store)[0][0]
    chosen = group.copies[0].id
    assert dedup.keep_instead(store, chosen, author="bo") == 3
    with store.connect() as con:
        assert dedup_sql.dup_of(con, chosen) is None
        assert {dedup_sql.dup_of(con, i) for i in ids[:3] if i != chosen} == {chosen}
    assert dedup.duplicate_groups(store)[0][0].kept.id == chosen
    dedup.dedup(store)
    with (
        store.connect() as con
    ):  # a later run leaves the person's choice unmarked, like a record restored by hand
        assert dedup_sql.dup_of(con, chosen) is None
    with pytest.raises(WorkbenchError, match="kept already"):
        dedup.keep_instead(store, chosen)
    group = dedup.duplicate_groups(store)[0][0]
    before = dedup.duplicate_groups(store)[2]
    assert dedup.restore(store, group.copies[0].id, author="bo")  # restore a copy: it is its own record again
    assert dedup.duplicate_groups(store)[2] == before - 1


def test_a_duplicate_group_is_named_by_its_question_not_the_shared_system_prompt(store):
    """Every record of a task starts with the same system prompt, so a group's header showed that prompt's
    first line for every group; it shows the user turn that tells the groups apart."""
    system = {
        "role": "system",
        "content": "你是外卖平台的客服。Labels: refund, delivery_status, other.\n只回答标签。",
    }
    with store.transaction() as con:
        for user in [
            "我要退款，饭菜洒了",
            "我要退款，饭菜洒了！",
            "Where is my order #123?",
            "Where is my order #123??",
        ]:
            insert_record(
                con,
                Record(
                    0,
                    "badcases",
                    [system, {"role": "user", "content": user}, {"role": "assistant", "content": "x"}],
                ),
                "test",
            )
    dedup.dedup(store, author="test")
    groups = dedup.duplicate_groups(store)[0]
    assert len(groups) == 2
    questions = sorted(g.kept.question for g in groups)  # the kept copy of each group, whichever it is
    assert questions[0].startswith("Where is my order #123") and questions[1].startswith("我要退款，饭菜洒了")
    assert all("客服" not in g.kept.question for g in groups)
