"""Deduplication: exact, lexical (MinHash LSH) and semantic matches, the keep rule, marks that are revisions,
restore, and the eval leak check; measured on hand-written English and Chinese labelled sets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tests.data_dedup_labels import (
    HELD_OUT_EN,
    HELD_OUT_NEVER_MERGE,
    HELD_OUT_ZH,
    NEAR_DUPLICATES_EN,
    NEAR_DUPLICATES_ZH,
    NEVER_MERGE,
)
from workbench import dedup, embed
from workbench.dedup import DedupConfig, Leak, find_leaks, lexical_text, minhash_signatures, semantic_pairs
from workbench.store import Store
from workbench.store import dedup as dedup_sql
from workbench.store import embeddings as emb_sql
from workbench.store.records import Record, get_record, insert_record, revisions_of, update_record

SETS = {
    "en": NEAR_DUPLICATES_EN,
    "zh": NEAR_DUPLICATES_ZH,
    "held-out en": HELD_OUT_EN,
    "held-out zh": HELD_OUT_ZH,
}


def add(con, text: str, dataset: str = "badcases", **fields) -> int:
    return insert_record(
        con,
        Record(
            0, dataset, [{"role": "user", "content": text}, {"role": "assistant", "content": "..."}], **fields
        ),
        "test",
    )


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """One store holding every labelled family, deduplicated once (dry run) at the default settings."""
    store = Store.open(tmp_path_factory.mktemp("labelled") / "store")
    family, text_of = {}, {}
    with store.transaction() as con:
        for name, families in SETS.items():
            for f, members in enumerate(families):
                for text in members:
                    rid = add(con, text)
                    family[rid], text_of[rid] = (name, f), text
    report = dedup.dedup(store, dry_run=True)
    group = {rid: g.kept_id for g in report.groups for rid in g.member_ids}
    return store, family, text_of, group, report


def pair_scores(labelled, set_name):
    _, family, _, group, _ = labelled
    ids = [rid for rid, (name, _) in family.items() if name == set_name]
    tp = fp = fn = 0
    for a, b in itertools.combinations(ids, 2):
        same = a in group and group.get(a) == group.get(b)
        truth = family[a] == family[b]
        tp += same and truth
        fp += same and not truth
        fn += truth and not same
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1)


@pytest.mark.parametrize("set_name", ["en", "zh"])
def test_near_duplicates_are_grouped_with_high_precision_and_recall(labelled, set_name):
    precision, recall = pair_scores(labelled, set_name)
    print(f"\n{set_name}: pair precision {precision:.3f}, recall {recall:.3f}")
    assert precision >= 0.95
    assert recall >= 0.9


def _violations(labelled, pairs):
    _, family, text_of, group, _ = labelled
    by_first = {}
    for rid, fam in family.items():
        by_first.setdefault(fam, []).append(rid)
    first_text = {fam: text_of[ids[0]] for fam, ids in by_first.items()}
    fam_of_text = {text: fam for fam, text in first_text.items()}
    bad = []
    for a, b in pairs:
        for x in by_first[fam_of_text[a]]:
            for y in by_first[fam_of_text[b]]:
                if x in group and group.get(x) == group.get(y):
                    bad.append((text_of[x], text_of[y]))
    return bad


def test_look_alike_requests_are_never_grouped(labelled):
    # cancel/confirm, refund/reorder, change address/change password, ... in English and Chinese
    assert _violations(labelled, NEVER_MERGE) == []


def test_defaults_carry_over_to_the_held_out_set_word_order_swaps_included(labelled):
    for set_name in ("held-out en", "held-out zh"):
        precision, recall = pair_scores(labelled, set_name)
        print(f"\n{set_name}: pair precision {precision:.3f}, recall {recall:.3f}")
        assert recall >= 0.9
        assert precision == 1.0
    # "72 F to C" and "72 C to F" have a cosine of 0.99 in both models; the look-alike check
    # (workbench/lookalike.py) sees the same words in another order and keeps them apart.
    assert _violations(labelled, HELD_OUT_NEVER_MERGE) == []


def test_chinese_is_never_judged_by_the_english_only_model(labelled):
    store, *_, report = labelled
    assert set(report.semantic) == {embed.MINILM_ID, embed.USE_ID}
    with store.connect() as con:
        scripts = dict(
            con.execute(f"""SELECT {emb_sql.script_sql("messages[1].content")} AS s, count(*)
                                       FROM records GROUP BY s""").fetchall()
        )
    assert report.semantic[embed.USE_ID] == scripts["han"]
    assert report.semantic[embed.MINILM_ID] == scripts["latin"]


def test_normalised_text_applies_nfkc_whitespace_and_case(store):
    with store.connect() as con:
        out = dedup_sql.normalise(con, ["  Ｃａｎｃｅｌ　my\tORDER  ", "帮我取消订单，谢谢", "ﬁle ①"])
    assert out == ["cancel my order", "帮我取消订单,谢谢", "file 1"]


def test_lexical_text_masks_numbers_and_reads_chinese_as_toneless_pinyin():
    assert lexical_text("cancel order #48213, please") == lexical_text("cancel order #55102 please")
    assert lexical_text("怎么修改收货地址？") == lexical_text("怎么修改收获地址")  # homophone typo
    assert lexical_text("帮我取消这个订单") != lexical_text("帮我确认这个订单")
    assert lexical_text("用三句话总结") == lexical_text("用3句话总结")
    texts = ["cancel my order #12, please!", "怎么修改收货地址？", "", "ab", "x_y 12"]
    assert dedup.lexical_texts(texts) == [lexical_text(t) for t in texts]


def test_minhash_signatures_are_datasketch_minhash_and_are_cached(store):
    from datasketch import MinHash

    config = DedupConfig()
    sig = minhash_signatures(["cancelmyorder0", "ab"], config)[0]
    reference = MinHash(num_perm=128, seed=1, hashfunc=dedup.shingle_hash)
    reference.update_batch(dedup.shingles("cancelmyorder0"))
    assert np.array_equal(sig, reference.hashvalues)
    with store.transaction() as con:
        ids = [add(con, "Please cancel my order 1"), add(con, "Please cancel my order 2")]
    assert dedup.prepare_signatures(store, ids) == 2  # one per distinct normalised text
    assert dedup.prepare_signatures(store, ids) == 0  # cached: nothing is computed again


def test_partitioned_semantic_search_finds_the_pairs_exact_search_finds():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(60, 64))
    points = np.repeat(centres, 20, axis=0) + rng.normal(scale=0.12, size=(1200, 64))
    points = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    exact = {(a, b) for a, b, _ in semantic_pairs(points, 0.93, exact_limit=10_000)}
    partitioned = {(a, b) for a, b, _ in semantic_pairs(points, 0.93, exact_limit=100, probes=3)}
    assert exact and partitioned <= exact
    assert len(partitioned) / len(exact) >= 0.98


# --- marks, keep rule, restore -------------------------------------------------------------------------


def test_dedup_marks_duplicates_as_revisions_and_deletes_nothing(store):
    with store.transaction() as con:
        ids = [
            add(con, t)
            for t in [
                "Please cancel my order #48213.",
                "please cancel my order #48213",
                "Please cancel my order #55102.",
                "What is the capital of Australia?",
            ]
        ]
    report = dedup.dedup(store, author="alice")
    assert [sorted(g.member_ids) for g in report.groups] == [ids[:3]]
    kept = report.groups[0].kept_id
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM records").fetchall()[0][0] == 4
        marks = dict(con.execute("SELECT id, dup_of FROM records").fetchall())
        assert {rid: marks[rid] for rid in ids} == {
            **{rid: kept for rid in ids[:3] if rid != kept},
            kept: None,
            ids[3]: None,
        }
        dup = next(rid for rid in ids[:3] if rid != kept)
        last = revisions_of(con, dup)[-1]
        assert (last.action, last.before, last.after, last.author) == (
            "mark-duplicate",
            {"dup_of": None},
            {"dup_of": kept},
            "alice",
        )
        assert get_record(con, dup).version == 2
    assert report.marked == 2
    again = dedup.dedup(store, author="alice")
    assert again.marked == 0 and again.restored == 0


def test_kept_record_is_the_approved_one_then_the_newest(store):
    with store.transaction() as con:
        old_approved = add(con, "I want a refund for the blender.", status="approved")
        newer = add(con, "I want a refund for the blender!")
        newest = add(con, "i want a refund for the blender")
    report = dedup.dedup(store)
    assert report.groups[0].kept_id == old_approved
    with store.transaction() as con:
        update_record(con, old_approved, 1, {"status": "rejected"}, "bob")
    with store.transaction() as con:
        con.execute("UPDATE records SET status = 'fixed' WHERE id = ?", [newer])
    report = dedup.dedup(store)
    assert report.groups[0].kept_id == newer
    with store.connect() as con:
        assert dedup_sql.dup_of(con, newest) == newer


def test_restore_clears_the_mark_and_later_runs_respect_it(store):
    with store.transaction() as con:
        a = add(con, "帮我取消这个订单")
        b = add(con, "帮我取消这个订单！")
    dedup.dedup(store)
    with store.connect() as con:
        marked = a if dedup_sql.dup_of(con, a) else b
    assert dedup.restore(store, marked, author="carol")
    with store.connect() as con:
        assert dedup_sql.dup_of(con, marked) is None
        assert revisions_of(con, marked)[-1].action == "restore-duplicate"
    report = dedup.dedup(store)
    assert report.kept_by_hand == 1
    with store.connect() as con:
        assert dedup_sql.dup_of(con, marked) is None


def test_restore_run_undoes_every_mark_of_that_run(store):
    with store.transaction() as con:
        ids = [
            add(con, t)
            for t in [
                "How do I change my delivery address?",
                "how do i change my delivery address",
                "How do I change my delivery address??",
            ]
        ]
    report = dedup.dedup(store)
    assert report.marked == 2
    assert dedup.restore_run(store, report.run_id) == 2
    with store.connect() as con:
        assert [dedup_sql.dup_of(con, i) for i in ids] == [None, None, None]
        assert con.execute("SELECT count(*) FROM records").fetchall()[0][0] == 3


def test_eval_records_are_never_marked(store):
    with store.transaction() as con:
        a = add(con, "Summarize this article in three bullet points.")
        b = add(con, "Summarize this article in three bullet points.", dataset="eval")
    report = dedup.dedup(store)
    assert report.groups == []
    with store.connect() as con:
        assert (dedup_sql.dup_of(con, a), dedup_sql.dup_of(con, b)) == (None, None)


# --- leaks -------------------------------------------------------------------------------------------


def test_find_leaks_reports_exact_lexical_and_semantic_copies_of_eval_records(store):
    with store.transaction() as con:
        train = [
            add(con, "Please cancel my order #48213, I no longer need it."),
            add(con, "我的快递到哪了？单号 SF1234567890"),
            add(con, "Write a Python function that reverses a linked list."),
            add(con, "What is the capital of Australia?"),
        ]
        evals = [
            add(con, "  please CANCEL my order #48213, i no longer need it.", dataset="eval"),  # exact
            add(con, "我的快递到那了 单号SF9876543210", dataset="eval"),  # lexical
            add(con, "Write a Python function which reverses a linked list", dataset="eval"),
            add(con, "Please confirm my order #48213, I still need it.", dataset="eval"),
        ]  # look-alike
    embed.embed_records(store, train + evals)
    with store.transaction() as con:
        leaks = find_leaks(con, train, evals)
    by_eval = {leak.eval_id: leak for leak in leaks}
    assert by_eval[evals[0]] == Leak(evals[0], train[0], "exact", 1.0)
    assert by_eval[evals[1]].kind == "lexical" and by_eval[evals[1]].train_id == train[1]
    assert by_eval[evals[2]].train_id == train[2] and by_eval[evals[2]].score >= 0.7
    assert evals[3] not in by_eval


def test_find_leaks_never_uses_an_english_only_model_on_chinese(store):
    with store.transaction() as con:
        train = add(con, "帮我取消这个订单")
        evaluation = add(con, "帮我确认这个订单", dataset="eval")
        texts = emb_sql.record_texts(con, [train, evaluation], embed.EmbedConfig().text)
        # Cache MiniLM vectors for the Chinese texts as if someone had embedded them with it: MiniLM
        # reads both as [UNK]s and gives them a cosine of 1.0.
        minilm = embed.load_embedder(embed.MINILM)
        vectors = minilm.encode(texts.column("text").to_pylist())
        assert float(vectors[0] @ vectors[1]) > 0.99
        emb_sql.register_model(con, minilm.model_id, minilm.dim, minilm.reads, minilm.source)
        emb_sql.store_vectors(con, minilm.model_id, texts.column("text_hash").to_pylist(), vectors)
        assert find_leaks(con, [train], [evaluation]) == []


def test_find_leaks_scales_to_many_train_candidates(store):
    import time

    with store.transaction() as con:
        con.execute("""INSERT INTO records (id, dataset, messages, content_hash, created_at, updated_at)
            SELECT i, 'general', [{'role': 'user', 'content': 'How do I bake bread number ' || i || ' with ' ||
                   (i % 97) || ' grams of flour?', 'loss_weight': NULL, 'name': NULL, 'tool_calls': NULL}],
                   md5(i::VARCHAR), now(), now() FROM range(1, 50001) t(i)""")
        evaluation = add(con, "How do I bake bread number 12345 with 26 grams of flour??", dataset="eval")
        started = time.perf_counter()
        leaks = find_leaks(con, list(range(1, 50001)), [evaluation], config=DedupConfig(semantic=False))
        seconds = time.perf_counter() - started
    print(f"\nleak check, 50,000 never-signed train records x 1 eval: {seconds:.1f} s")
    assert any(leak.train_id == 12345 for leak in leaks)


def test_find_leaks_on_templated_data_expands_in_bounded_slices_and_finds_the_same(store, monkeypatch):
    # Templated texts share every shingle: each probe hit expands into many (train, eval) entries. A
    # tiny expansion budget forces hundreds of slices; the leaks found must not change.
    with store.transaction() as con:
        con.execute("""INSERT INTO records (id, dataset, messages, content_hash, created_at, updated_at)
            SELECT i, 'general', [{'role': 'user', 'content': 'Where is my order #' || (10000 + i) || '? It is ' ||
                   (i % 9) || ' days late.', 'loss_weight': NULL, 'name': NULL, 'tool_calls': NULL}],
                   md5(i::VARCHAR), now(), now() FROM range(1, 3001) t(i)""")
        evals = [
            add(con, f"Where is my order #{10000 + i}? It is {i % 9} days late!", dataset="eval")
            for i in (5, 500, 2500)
        ] + [add(con, "订单 #10005 到哪了？", dataset="eval")]
        config = DedupConfig(semantic=False)
        whole = find_leaks(con, list(range(1, 3001)), evals, config=config)
        monkeypatch.setattr(dedup.leaks, "EXPAND_BUDGET", 50)
        sliced = find_leaks(con, list(range(1, 3001)), evals, config=config)
    assert len(whole) > 3 and set(whole) == set(sliced)
    assert {leak.train_id for leak in whole if leak.eval_id == evals[0]} >= {5}
    assert not any(leak.eval_id == evals[3] for leak in whole)


def test_cli_dedup_json_lists_groups_with_member_ids_and_kept_id_and_restore_works(tmp_path):
    import json

    from click.testing import CliRunner

    from workbench.cli import main

    data = tmp_path / "badcases.jsonl"
    texts = [
        "Can you cancel my order 771204?",
        "can you cancel my order 903311?",
        "Can you confirm my order 771204?",
        "怎么修改收货地址？",
        "怎么修改收获地址",
        "怎么修改登录密码？",
    ]
    data.write_text(
        "\n".join(
            json.dumps({"messages": [{"role": "user", "content": t}]}, ensure_ascii=False) for t in texts
        )
        + "\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    store_dir = str(tmp_path / "store")
    assert runner.invoke(main, ["--store", store_dir, "import", str(data)]).exit_code == 0
    result = runner.invoke(main, ["--store", store_dir, "dedup", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    groups = sorted((sorted(g["member_ids"]), g["kept_id"]) for g in report["groups"])
    assert groups == [([1, 2], 2), ([4, 5], 5)]  # newest kept; confirm and password stay apart
    assert report["marked"] == 2
    table = runner.invoke(main, ["--store", store_dir, "dedup", "--dry-run"])
    assert "duplicate groups" in table.output and "dry run" in table.output
    restored = runner.invoke(main, ["--store", store_dir, "dedup", "--restore", "1"])
    assert "restored" in restored.output
    store = Store.open(store_dir)
    with store.connect() as con:
        assert dedup_sql.dup_of(con, 1) is None and dedup_sql.dup_of(con, 4) == 5
