"""Export benchmark: a million realistic badcases (plus general data and an eval set) exported into a training set.

The records are generated straight into a store with SQL (Chinese and English, 1-3 turns, skewed
categories, statuses, some error-level issues and near-copies). The figure is the time of
`export_training_set` against the 20 s target; the same-run baseline is DuckDB writing the same
records with a plain `COPY (SELECT ...) TO 'x.jsonl'`, which does no selection, balancing or checks.
Both use the exact leakage guard (eval copies found by SQL). The default guard adds the
near-duplicate check (dedup.find_leaks), which shingles every training candidate: on this million
templated records every eval text shares its rarest shingles with thousands of candidates, and the
check ran past 10 minutes and 10 GB (2026-11-25), so it is not timed here; see docs/export.md.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from workbench.export import ExportConfig, export_training_set
from workbench.store import Store, normaliser

TARGET_S = 20.0
N_BADCASES = int(os.environ.get("BENCH_EXPORT_N", 1_000_000))
N_GENERAL = N_BADCASES // 4
N_EVAL = 2_000

_ZH = [
    "请帮我查询一下订单的物流状态",
    "我想申请退款，商品有质量问题",
    "这个优惠券为什么不能用",
    "帮我把这段话翻译成英文",
    "从下面的文本中抽取人名和地址",
    "总结一下这篇文章的主要观点",
    "会员积分怎么兑换礼品",
    "我的账号被锁定了怎么办",
    "发票什么时候能开出来",
    "能不能帮我改一下收货地址",
]
_EN = [
    "Where is my order and when will it arrive",
    "I want a refund because the item arrived broken",
    "Why does this coupon not apply to my cart",
    "Translate the following paragraph into Chinese",
    "Extract the person names and addresses from this text",
    "Summarise the main points of this article",
    "How do I redeem my loyalty points",
    "My account is locked, what should I do",
    "When will the invoice be issued",
    "Can you change the shipping address for me",
]
_ANSWERS = [
    "您好，已为您查询到订单正在派送中，预计明天送达。",
    "Sure. Your refund has been filed and will reach you in 3-5 days.",
    '{"intent": "refund", "confidence": 0.92}',
    "The main points are: cost, timing and the risk of delay.",
    "好的，已将收货地址修改为您提供的新地址。",
    "Your account was unlocked; please reset the password now.",
]
_CATEGORIES = ["客服意图", "refund", "extraction", "summary", "translation", "account", "invoice", "tool_use"]
# skewed category sizes: cumulative thresholds out of 100
_CAT_CUTS = [30, 50, 65, 75, 85, 92, 97, 100]


def _list(items: list[str]) -> str:
    return "[" + ", ".join("'" + s.replace("'", "''") + "'" for s in items) + "]"


def generate(store: Store, n: int, n_general: int, n_eval: int = N_EVAL) -> None:
    """Fill `store` with n badcases, n_general general records and n_eval eval records, all in SQL."""
    cat_case = " ".join(
        f"WHEN (h // 1000) % 100 < {cut} THEN '{_CATEGORIES[i]}'" for i, cut in enumerate(_CAT_CUTS)
    )
    with store.transaction() as con:
        normaliser.install_macros(con)
        con.execute(f"""
        CREATE TEMP TABLE gen AS
        SELECT i, (hash(i) // 2)::BIGINT AS h, (hash(i * 7919) // 2)::BIGINT AS h2 FROM range(1, {n + n_general + n_eval + 1}) t(i);
        INSERT INTO records (id, dataset, messages, tools, category, task_type, status, tags, source, bad_output,
                             content_hash, format, import_issues, import_id, line, created_at, updated_at, version)
        SELECT i, dataset, msgs, NULL, category, task_type, status, NULL, 'bench', bad_output,
               wb_content_hash(msgs), 'messages', [], NULL, i, current_timestamp, current_timestamp, 1
        FROM (
            SELECT i, dataset, category, status,
                   CASE WHEN category IN ('客服意图', 'refund') THEN 'classification' ELSE 'generation' END AS task_type,
                   CASE WHEN status = 'fixed' THEN 'a wrong answer ' || i END AS bad_output,
                   list_concat(
                       CASE WHEN h % 10 < 3 THEN [{{'role': 'system', 'content': '你是一个专业的电商客服助手。You are a helpful assistant.',
                                                  'loss_weight': NULL::DOUBLE, 'name': NULL::VARCHAR, 'tool_calls': NULL::JSON}}]
                            ELSE [] END,
                       CASE WHEN h2 % 4 = 0 THEN [
                           {{'role': 'user', 'content': q1, 'loss_weight': NULL::DOUBLE, 'name': NULL::VARCHAR, 'tool_calls': NULL::JSON}},
                           {{'role': 'assistant', 'content': a1, 'loss_weight': NULL::DOUBLE, 'name': NULL::VARCHAR, 'tool_calls': NULL::JSON}}]
                            ELSE [] END,
                       [{{'role': 'user', 'content': q2, 'loss_weight': NULL::DOUBLE, 'name': NULL::VARCHAR, 'tool_calls': NULL::JSON}},
                        {{'role': 'assistant', 'content': a2, 'loss_weight': NULL::DOUBLE, 'name': NULL::VARCHAR, 'tool_calls': NULL::JSON}}]
                   ) AS msgs
            FROM (
                SELECT i, h, h2,
                       CASE WHEN i <= {n} THEN 'badcases' WHEN i <= {n + n_general} THEN 'general' ELSE 'eval' END AS dataset,
                       CASE WHEN i > {n} THEN NULL ELSE CASE {cat_case} END END AS category,
                       CASE WHEN i > {n} THEN 'new' ELSE
                           CASE WHEN h2 % 100 < 55 THEN 'approved' WHEN h2 % 100 < 75 THEN 'fixed'
                                WHEN h2 % 100 < 85 THEN 'labeled' WHEN h2 % 100 < 95 THEN 'new' ELSE 'rejected' END END AS status,
                       {_list(_ZH)}[1 + h % 10] || '：' || {_list(_EN)}[1 + h2 % 10] || '（编号 ' || i || '）' AS q1,
                       {_list(_ANSWERS)}[1 + h2 % 6] AS a1,
                       -- every 50th record shares its text with a neighbour's: near-copies for the sampler to spread
                       CASE WHEN i % 50 = 0 THEN {_list(_ZH)}[1 + h % 10] || ' order ' || (i // 100)
                            ELSE {_list(_EN)}[1 + h % 10] || ' ' || {_list(_ZH)}[1 + (h // 10) % 10] || '，订单号 ' || i
                                 || '。' || repeat('详细情况如下 ', 1 + (h // 100) % 8) END AS q2,
                       {_list(_ANSWERS)}[1 + (h // 7) % 6] || ' (ref ' || i || ')' AS a2
                FROM gen
            )
        );
        -- 1% of the badcases carry an error-level issue
        INSERT INTO record_issues (record_id, code, severity, turn, message, fix, stage)
        SELECT i, 'empty-answer', 'error', 2, 'an assistant answer that is empty', NULL, 'check'
        FROM gen WHERE i <= {n} AND h2 % 100 = 7;
        DROP TABLE gen;
        """)


def _time(fn) -> tuple[float, object]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        store = Store.open(work / "store")
        seconds, _ = _time(lambda: generate(store, N_BADCASES, N_GENERAL))
        print(
            f"generated {N_BADCASES:,} badcases + {N_GENERAL:,} general + {N_EVAL:,} eval records in {seconds:.1f} s",
            flush=True,
        )

        def baseline():
            with store.connect() as con:
                con.execute(f"""COPY (SELECT messages, id, category FROM records WHERE dataset = 'badcases'
                                      AND status IN ('approved', 'fixed'))
                                TO '{work / "baseline.jsonl"}' (FORMAT json)""")

        base_s, _ = _time(baseline)
        print(f"baseline: DuckDB COPY of the approved/fixed badcases to JSONL: {base_s:.1f} s", flush=True)
        for label, config in (
            (
                "default (every approved/fixed record, 20% general, 10% val)",
                ExportConfig(name="bench", leakage_guard="exact"),
            ),
            (
                "balanced (per_category 60,000, upsample, 20% general, 10% val)",
                ExportConfig(
                    name="bench-balanced", per_category=60_000, upsample=True, leakage_guard="exact"
                ),
            ),
        ):
            seconds, result = _time(lambda config=config: export_training_set(store, config))
            size = sum(f.bytes for f in result.files) / 1e6
            print(
                f"export {label}: {result.train_records + result.val_records:,} lines, {size:,.0f} MB, "
                f"{seconds:.1f} s (target {TARGET_S:.0f} s: {seconds / TARGET_S:.2f}x of it; "
                f"{seconds / base_s:.1f}x the plain COPY)",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        N_BADCASES = int(sys.argv[1])
        N_GENERAL = N_BADCASES // 4
    main()
