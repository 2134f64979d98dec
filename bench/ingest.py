"""Import + check throughput on 1M generated two-turn records, next to DuckDB's own read_json in the same run.

Each measurement runs in a fresh subprocess (so its memory peak is its own) into a fresh on-disk store;
the three take turns for three rounds and each figure is its best round.
The target (>= 0.7x) is measured against DuckDB's `read_json` filling the same kind of store: the
store's own `records` table (made by the same migrations), with what read_json can fill by itself:
ids, dataset, the messages, category, content hash, status, timestamps. It does not normalise other
formats, number lines, keep rejects or run checks; the workbench does all of that in the time shown.
A bare `CREATE TABLE AS SELECT * FROM read_json(...)` (two message fields and the category, no ids,
no hash) is printed as well: the floor of what reading the file costs.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

N = int(os.environ.get("BENCH_INGEST_N", "1000000"))
ROUNDS = int(os.environ.get("BENCH_INGEST_ROUNDS", "3"))  # alternating rounds; each figure is its best round
OUT = Path(__file__).resolve().parent.parent / "bench-out"

EN = [
    "Where is my order #{n}? It was due {d} days ago.",
    "I want a refund for order {n}, the {item} arrived broken.",
    "Please cancel order {n} before it ships.",
    "Can you change the delivery address for order {n}?",
    "The {item} in order {n} is missing.",
    "How do I reset my password?",
    "Why was I charged twice for {n}?",
    "My {item} came cold, this is the {d}th time.",
    "Do you deliver to {city}?",
    "I'd like to add a {item} to {n}.",
]
ZH = [
    "我的订单{n}到哪了？已经晚了{d}天。",
    "订单{n}的{item}坏了，我要退款。",
    "请在发货前取消订单{n}。",
    "订单{n}能改收货地址吗？",
    "订单{n}里少了{item}。",
    "怎么重置密码？",
    "为什么订单{n}扣了我两次钱？",
    "{item}送到都凉了，已经第{d}次了。",
    "你们送{city}吗？",
    "订单{n}再加一个{item}。",
]
LABELS = [
    "delivery_status",
    "refund",
    "cancel",
    "change_address",
    "missing_item",
    "account",
    "payment",
    "complaint",
    "coverage",
    "modify_order",
]
ITEMS = ["pizza", "burger", "noodles", "salad", "饺子", "奶茶", "炒饭", "sushi"]
CITIES = ["Shanghai", "Berlin", "Austin", "北京", "深圳", "Lyon"]


def generate(path: Path, n: int) -> None:
    """n records, two turns each; about 2% carry a realistic defect (typo role, empty answer, mojibake, ...)."""
    rng = random.Random(7)
    with path.open("w", encoding="utf-8") as f:
        for _ in range(n):
            k = rng.randrange(len(LABELS))
            template = (ZH if rng.random() < 0.4 else EN)[k]
            text = template.format(
                n=rng.randrange(10_000, 99_999),
                d=rng.randrange(2, 9),
                item=rng.choice(ITEMS),
                city=rng.choice(CITIES),
            )
            record = {
                "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": LABELS[k]}],
                "category": "intent",
            }
            defect = rng.random()
            if defect < 0.005:
                record["messages"][1]["role"] = "asistant"
            elif defect < 0.01:
                record["messages"][1]["content"] = ""
            elif defect < 0.013:
                record["messages"][0]["content"] = text.encode("utf-8").decode("latin-1", errors="replace")
            elif defect < 0.016:
                record["messages"][1]["content"] = "Hello {{name}}"
            elif defect < 0.018:
                record["messages"][1]["content"] = "ok! " * 60
            line = json.dumps(record, ensure_ascii=False)
            if defect > 0.9995:
                line = line[: len(line) // 2]  # a cut-off line
            f.write(line + "\n")


RUNNER = r"""
import json, os, resource, sys, time
kind, data, folder = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = time.perf_counter()
if kind == "workbench":
    from workbench.store import Store
    from workbench.ingest import import_file
    store = Store.open(folder)
    t0 = time.perf_counter()
    report = import_file(store, data, keep_file=False)
    extra = {"imported": report.imported, "rejected": report.rejected,
             "issues": sum(n for _c, _s, n in report.issue_counts)}
else:
    import duckdb
    if kind == "read_json":
        con = duckdb.connect(os.path.join(folder, "baseline.duckdb"))
        t0 = time.perf_counter()
        con.execute(f"CREATE TABLE records AS SELECT * FROM read_json('{data}', format='newline_delimited', ignore_errors=true)")
    else:  # read_json into the store's records table
        from workbench.store.normaliser import MESSAGE_TYPE, install_macros
        from workbench.store import Store
        con = duckdb.connect(str(Store.open(folder).db_path))
        install_macros(con)  # the store's content hash, wb_content_hash()
        t0 = time.perf_counter()
        con.execute(f'''INSERT INTO records (id, dataset, messages, category, status, content_hash, format, import_issues,
                                             created_at, updated_at, version)
            SELECT row_number() OVER (), 'badcases', messages, category, 'new', wb_content_hash(messages), 'messages', [],
                   current_timestamp, current_timestamp, 1
            FROM read_json('{data}', format='newline_delimited', ignore_errors=true,
                           columns={{'messages': '{MESSAGE_TYPE}[]', 'category': 'VARCHAR'}})
            WHERE messages IS NOT NULL''')
    con.close()
    extra = {}
seconds = time.perf_counter() - t0
print("RESULT " + json.dumps({"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **extra}))
"""


def measure(kind: str, data: Path) -> dict:
    with tempfile.TemporaryDirectory(dir=OUT) as folder:
        result = subprocess.run(
            [sys.executable, "-c", RUNNER, kind, str(data), folder],
            capture_output=True,
            text=True,
            env={**os.environ, "WORKBENCH_MODELS": str(OUT.parent / ".cache" / "models")},
        )
    if result.returncode:
        raise SystemExit(f"{kind} failed:\n{result.stderr[-3000:]}")
    return json.loads(next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))[7:])


def main() -> None:
    OUT.mkdir(exist_ok=True)
    data = OUT / f"ingest-{N}.jsonl"
    if not data.exists():
        print(f"generating {N:,} two-turn records ...", flush=True)
        generate(data, N)
    print(f"{data.name}: {data.stat().st_size / 1e6:.0f} MB, {N:,} records (about 2% with defects)")
    runs: dict[str, list[dict]] = {"workbench": [], "read_json_store": [], "read_json": []}
    for _ in range(ROUNDS):
        for kind, results in runs.items():
            results.append(measure(kind, data))
    ours, same, bare = (min(results, key=lambda r: r["seconds"]) for results in runs.values())
    print(f"best of {ROUNDS} alternating rounds each")
    rate = N / ours["seconds"]
    print(
        f"{'workbench import+check':41s}: {ours['seconds']:6.2f} s  {rate:>10,.0f} records/s  peak {ours['peak_mb']:,.0f} MB"
        f"  (imported {ours['imported']:,}, rejected {ours['rejected']:,}, issues {ours['issues']:,})"
    )
    for name, base in (
        ("DuckDB read_json into the store's records", same),
        ("DuckDB read_json, bare CREATE TABLE AS", bare),
    ):
        print(
            f"{name:41s}: {base['seconds']:6.2f} s  {N / base['seconds']:>10,.0f} records/s  peak "
            f"{base['peak_mb']:,.0f} MB  -> workbench at {base['seconds'] / ours['seconds']:.2f}x its throughput"
        )
    ratio = same["seconds"] / ours["seconds"]
    print(
        f"targets: >= 100,000 records/s ({'met' if rate >= 100_000 else 'NOT met'}); >= 0.7x DuckDB's read_json into the "
        f"same kind of store ({ratio:.2f}x, {'met' if ratio >= 0.7 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
