"""Clustering badcases into failure modes: automatic k, c-TF-IDF names, representatives, the 2-D map,
and giving a cluster a category; on hand-written English and Chinese paraphrase sets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tests.data_dedup_labels import PARAPHRASES_EN, PARAPHRASES_ZH
from workbench import cluster, dedup, embed
from workbench.cluster import ClusterConfig, ctfidf_keywords, tokens
from workbench.errors import NotFoundError
from workbench.store import Store
from workbench.store import clusters as cluster_sql
from workbench.store.records import Record, get_record, insert_record, revisions_of


def add(con, text: str, **fields) -> int:
    return insert_record(
        con,
        Record(
            0,
            "badcases",
            [{"role": "user", "content": text}, {"role": "assistant", "content": "..."}],
            **fields,
        ),
        "test",
    )


@pytest.fixture(scope="module")
def paraphrases(tmp_path_factory):
    """Eight requests, each said four ways in English and four in Chinese (the same eight requests)."""
    store = Store.open(tmp_path_factory.mktemp("paraphrases") / "store")
    request = {}
    with store.transaction() as con:
        for lang, sets in (("en", PARAPHRASES_EN), ("zh", PARAPHRASES_ZH)):
            for i, family in enumerate(sets):
                for text in family:
                    request[add(con, text)] = (lang, i)
    return store, request


def same_cluster_rates(run, request, ids):
    label = {rid: c.id for c in run.clusters for rid in c.member_ids}
    same = [label[a] == label[b] for a, b in itertools.combinations(ids, 2) if request[a][1] == request[b][1]]
    different = [
        label[a] == label[b] for a, b in itertools.combinations(ids, 2) if request[a][1] != request[b][1]
    ]
    return sum(same) / len(same), sum(different) / len(different)


@pytest.mark.parametrize("languages", [("en",), ("zh",), ("en", "zh")])
def test_paraphrases_share_a_cluster_far_more_often_than_different_requests(paraphrases, languages):
    store, request = paraphrases
    ids = [rid for rid, (lang, _) in request.items() if lang in languages]
    run = cluster.cluster_records(store, ids, save=False)
    same, different = same_cluster_rates(run, request, ids)
    print(
        f"\n{'+'.join(languages)} on {run.model}: k={run.k} ({run.k_chosen_by}); paraphrase pairs in one cluster "
        f"{same:.2f}, different-request pairs {different:.2f}"
    )
    assert same >= 0.8
    assert different <= 0.1
    assert same >= 8 * max(different, 0.01)


def test_chinese_is_clustered_on_the_multilingual_model_and_english_alone_on_minilm(paraphrases):
    store, request = paraphrases
    english = [rid for rid, (lang, _) in request.items() if lang == "en"]
    assert (
        cluster.cluster_records(store, english, config=ClusterConfig(k=2), save=False).model
        == embed.MINILM_ID
    )
    assert (
        cluster.cluster_records(store, list(request), config=ClusterConfig(k=2), save=False).model
        == embed.USE_ID
    )


def test_clusters_are_named_by_keywords_and_show_three_nearest_records(paraphrases):
    store, request = paraphrases
    ids = [rid for rid, (lang, _) in request.items() if lang == "en"]
    run = cluster.cluster_records(store, ids, config=ClusterConfig(k=8))
    assert run.k == 8 and run.k_chosen_by == "set by hand"
    for c in run.clusters:
        assert len(c.representative_ids) == 3 and set(c.representative_ids) <= set(c.member_ids)
        assert c.name == " · ".join(c.keywords[:3])
    names = " | ".join(c.name for c in run.clusters)
    assert "haiku" in names and "password" in names and "spanish" in names


def test_a_run_is_stored_with_its_clusters_and_2d_map(paraphrases):
    store, request = paraphrases
    run = cluster.cluster_records(store, list(request), config=ClusterConfig(k=8), author="dana")
    stored, clusters = cluster.load_run(store, run.run_id)
    assert (stored.author, stored.k, stored.records) == ("dana", 8, len(request))
    assert sorted(c.size for c in clusters) == sorted(c.size for c in run.clusters)
    with store.connect() as con:
        members = cluster_sql.members_of(con, run.run_id)
    assert members.num_rows == len(request)
    xy = np.stack([members.column("x").to_numpy(), members.column("y").to_numpy()], axis=1)
    assert np.isfinite(xy).all() and xy.std(axis=0).min() > 0


def test_giving_a_cluster_a_category_changes_every_record_as_a_revision(store):
    with store.transaction() as con:
        ids = [
            add(con, t)
            for t in [
                "I want my money back for this order.",
                "Can I get a refund on my purchase?",
                "Please refund the amount I paid.",
                "Write a haiku about autumn leaves.",
                "Compose a short haiku on falling leaves in autumn.",
                "Can you write me an autumn haiku about leaves?",
            ]
        ]
        copy = add(con, "Please refund the amount I paid!")
    dedup.dedup(store)  # ids[2] is marked dup_of `copy`, the newer of the two
    run = cluster.cluster_records(store, config=ClusterConfig(k=2))
    refund = next(c for c in run.clusters if ids[0] in c.member_ids)
    assert ids[2] not in refund.member_ids and copy in refund.member_ids
    changed = cluster.set_cluster_category(store, run.run_id, refund.id, "refund", author="erin")
    assert changed == 4  # three members and the duplicate left out of clustering
    with store.connect() as con:
        assert {get_record(con, i).category for i in ids[:3] + [copy]} == {"refund"}
        assert {get_record(con, i).category for i in ids[3:]} == {None}
        last = revisions_of(con, ids[0])[-1]
        assert (last.action, last.before, last.after, last.author) == (
            "cluster-category",
            {"category": None},
            {"category": "refund"},
            "erin",
        )
        assert (
            next(c for c in cluster_sql.clusters_of(con, run.run_id) if c.cluster == refund.id).category
            == "refund"
        )
    assert cluster.set_cluster_category(store, run.run_id, refund.id, "refund") == 0
    with pytest.raises(NotFoundError):
        cluster.set_cluster_category(store, run.run_id, 99, "x")


def test_hdbscan_finds_clusters_without_k(paraphrases):
    store, request = paraphrases
    run = cluster.cluster_records(store, list(request), config=ClusterConfig(method="hdbscan"), save=False)
    assert run.k_chosen_by == "hdbscan" and run.k >= 2
    assert sum(c.size for c in run.clusters) == len(request)


def test_keywords_tokenise_english_words_and_chinese_with_jieba():
    assert tokens("How do I reset my login password?") == ["reset", "login", "password"]
    assert "密码" in tokens("我忘记密码了，登录不上") and "我" not in tokens("我忘记密码了")
    words = ctfidf_keywords(
        {0: ["refund my order", "refund blender"], 1: ["track my order", "track parcel"]}, 2
    )
    assert words == {0: ["refund", "blender"], 1: ["track", "parcel"]}  # 'order' is in both: it sinks


def test_cli_cluster_json_gives_names_sizes_and_member_ids_and_sets_a_category(tmp_path):
    import json

    from click.testing import CliRunner

    from workbench.cli import main

    data = tmp_path / "badcases.jsonl"
    texts = PARAPHRASES_EN[0] + PARAPHRASES_EN[4]  # refunds and autumn haiku
    data.write_text(
        "\n".join(json.dumps({"messages": [{"role": "user", "content": t}]}) for t in texts) + "\n"
    )
    runner = CliRunner()
    store_dir = str(tmp_path / "store")
    assert runner.invoke(main, ["--store", store_dir, "import", str(data)]).exit_code == 0
    result = runner.invoke(main, ["--store", store_dir, "cluster", "--k", "2", "--json"])
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert run["k"] == 2 and sorted(c["size"] for c in run["clusters"]) == [4, 4]
    assert sorted(sorted(c["member_ids"]) for c in run["clusters"]) == [[1, 2, 3, 4], [5, 6, 7, 8]]
    haiku = next(c for c in run["clusters"] if 5 in c["member_ids"])
    assert "haiku" in haiku["name"]
    shown = runner.invoke(main, ["--store", store_dir, "cluster", "--category", f"{haiku['id']}=poetry"])
    assert "given to 4 records" in shown.output
    listing = runner.invoke(main, ["--store", store_dir, "cluster", "--show", str(run["run_id"])])
    assert "category: poetry" in listing.output
