"""The Review page's calls at 1M records, each next to the same query run straight in DuckDB in the same run.

A store of 1M generated records (bench/ingest.py's generator, about 2% with defects) is imported once and
kept in bench-out/ between runs. Each figure is the best of 3 of what the page does for one interaction,
including opening the store for it: the first render (open the store, the filter choices, the first page
of the queue with its count, the first record with its issues and history), a filter change (an issue
code; a Chinese substring), the next page (keyset), and a save (a revision, re-checked). The baseline is
the bare SQL of the same queue query or update on an already open connection. Budget: under 1 s each.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

N = int(os.environ.get("BENCH_REVIEW_N", "1000000"))
OUT = Path(__file__).resolve().parent.parent / "bench-out"
BUDGET_S = 1.0


def best(fn, rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def build_store(folder: Path):
    from bench.ingest import generate
    from workbench.ingest import import_file
    from workbench.store import Store

    data = OUT / f"ingest-{N}.jsonl"
    if not data.exists():
        print(f"generating {N:,} two-turn records ...", flush=True)
        generate(data, N)
    marker = folder / "complete"
    if not marker.exists():
        shutil.rmtree(folder, ignore_errors=True)
        print(f"importing {N:,} records into {folder} (kept for later runs) ...", flush=True)
        started = time.perf_counter()
        import_file(Store.open(folder), data, keep_file=False)
        print(f"  imported in {time.perf_counter() - started:.0f} s", flush=True)
        marker.write_text("ok")
    return Store.open(folder)


def main() -> None:
    from workbench import review
    from workbench.review import ReviewFilter
    from workbench.store import Store
    from workbench.store.connection import open_duckdb

    OUT.mkdir(exist_ok=True)
    os.environ.setdefault("WORKBENCH_MODELS", str(OUT.parent / ".cache" / "models"))
    store = build_store(OUT / f"review-store-{N}")
    first_page = review.load_queue(store, ReviewFilter())
    print(f"{first_page.total:,} records in the store")

    def first_render():
        s = Store.open(store.root)
        review.filter_choices(s)
        page = review.load_queue(s, ReviewFilter())
        review.open_record(s, page.rows[0].id)

    typo = ReviewFilter(issue_codes=("role-typo",))
    chinese = ReviewFilter(text="退款")
    english = ReviewFilter(text="Refund")
    second = first_page.next_after
    record = first_page.rows[5]

    def save():
        view = review.open_record(store, record.id)
        status = "labeled" if view.record.status != "labeled" else "fixed"
        review.save_record(
            store, record.id, view.record.version, {"status": status, "tags": ["bench"]}, "bench"
        )

    ours = {
        "first render": best(first_render),
        "filter: issue role-typo": best(lambda: review.load_queue(store, typo)),
        "filter: text 退款 in any turn": best(lambda: review.load_queue(store, chinese)),
        "filter: text Refund (any case)": best(lambda: review.load_queue(store, english)),
        "next page (keyset)": best(lambda: review.load_queue(store, ReviewFilter(), after=second)),
        "save (revision + re-check)": best(save),
    }
    # The same queries straight in DuckDB on an open connection: the page's SQL floor.
    con = open_duckdb(store.db_path)
    try:

        def raw(where: str, params: list, tail: str = ""):
            def run():
                con.execute(
                    f"SELECT id, dataset, status, category, messages FROM records r WHERE {where} {tail} "
                    f"ORDER BY id DESC LIMIT 51",
                    params,
                ).fetchall()
                con.execute(f"SELECT count(*) FROM records r WHERE {where}", params).fetchall()

            return run

        where_typo, p_typo = typo.sql("r")
        where_text, p_text = chinese.sql("r")
        where_en, p_en = english.sql("r")

        def raw_save():
            return con.execute(
                "UPDATE records SET tags = ['bench'], version = version + 1 WHERE id = ?", [record.id]
            )

        base = {
            "first render": best(raw("true", [])),
            "filter: issue role-typo": best(raw(where_typo, p_typo)),
            "filter: text 退款 in any turn": best(raw(where_text, p_text)),
            "filter: text Refund (any case)": best(raw(where_en, p_en)),
            "next page (keyset)": best(raw("true", [], f"AND r.id < {second[1]}")),
            "save (revision + re-check)": best(raw_save),
        }
        lookup = best(lambda: con.execute("SELECT * FROM records WHERE id = ?", [N // 2]).fetchall(), 5)
    finally:
        con.close()
    print(
        f"best of 3; the page's library calls (each opens the store) vs the bare SQL on an open connection; "
        f"budget {BUDGET_S:.1f} s"
    )
    for name, seconds in ours.items():
        print(
            f"{name:34s}: {seconds * 1000:7.0f} ms  ({'under' if seconds < BUDGET_S else 'OVER'} budget)  "
            f"raw DuckDB {base[name] * 1000:6.0f} ms  -> {seconds / max(base[name], 1e-6):5.1f}x"
        )
    print(f"records(id) point lookup without an index (zone maps): {lookup * 1000:.1f} ms")
    whole_page(store)
    bulk(store)


def bulk(store) -> None:
    """A bulk action on every record (one revision each, one operation) and its undo, once each, next to
    a bare UPDATE of the same column on an open connection (rolled back)."""
    from workbench import review
    from workbench.review import BulkAction, ReviewFilter
    from workbench.store.connection import open_duckdb

    everything = ReviewFilter(categories=("intent",))
    started = time.perf_counter()
    result = review.apply_bulk(store, everything, BulkAction("add_tags", ["bench-bulk"]), "bench")
    applied = time.perf_counter() - started
    started = time.perf_counter()
    undone = review.undo_operation(store, result.operation_id, "bench")
    undo = time.perf_counter() - started
    con = open_duckdb(store.db_path)
    try:
        con.execute("BEGIN TRANSACTION")
        started = time.perf_counter()
        con.execute(
            "UPDATE records SET tags = list_append(coalesce(tags, []), 'bench-bulk'), version = version + 1 "
            "WHERE category = 'intent'"
        )
        raw = time.perf_counter() - started
        con.execute("ROLLBACK")
    finally:
        con.close()
    # The bench store is kept between runs: its history drops this run's two million bulk revisions again.
    con = open_duckdb(store.db_path)
    try:
        ops = [result.operation_id, undone.operation_id]
        con.execute("DELETE FROM revisions WHERE list_contains(?, operation_id)", [ops])
        con.execute("DELETE FROM operations WHERE list_contains(?, id)", [ops])
    finally:
        con.close()
    print(
        f"bulk: add a tag to {result.changed:,} records {applied:6.1f} s, one undo of it {undo:6.1f} s "
        f"({undone.reverted:,} put back); a bare UPDATE {raw:5.1f} s (no revisions, no operation)"
    )


def whole_page(store) -> None:
    """The Review page's whole script per interaction (streamlit.testing AppTest: the page's calls plus
    Streamlit building the page), one run each after a warm-up render."""
    from streamlit.testing.v1 import AppTest

    os.environ["WORKBENCH_STORE"] = str(store.root)
    app = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=120)
    app.run()
    app.switch_page("pages/review.py").run()  # warm-up: imports, the first script run of the process

    def timed(action) -> float:
        started = time.perf_counter()
        action()
        if app.exception:
            raise SystemExit(f"the Review page failed: {app.exception}")
        return time.perf_counter() - started

    figures = {
        "render again": timed(lambda: app.run()),
        "filter: status new": timed(lambda: app.multiselect(key="rv_status").set_value(["new"]).run()),
        "filter: text 退款": timed(lambda: app.text_input(key="rv_text").set_value("退款").run()),
        "next record (text filter on)": timed(lambda: app.button(key="rv_next").click().run()),
        "next page (text filter on)": timed(
            lambda: next(b for b in app.button if b.label == "Page ▶").click().run()
        ),
    }
    rid = app.session_state.rv_current
    app.text_input(key=f"rv_tags_{rid}_{app.session_state.rv_base[1]}").set_value("bench-page").run()
    figures["save"] = timed(lambda: app.button(key="rv_save").click().run())
    print("the whole Review page script per interaction (AppTest, one run each):")
    for name, seconds in figures.items():
        print(f"  {name:32s}: {seconds * 1000:7.0f} ms  ({'under' if seconds < BUDGET_S else 'OVER'} budget)")


if __name__ == "__main__":
    main()
