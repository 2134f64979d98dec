"""The Coverage and Quality pages' first render at 1M records and the Clusters map at 100k, each next to the raw
DuckDB queries it runs, measured in the same run.

The store is bench/review.py's (1M generated records, about 2% with defects, kept in bench-out/). A clustering
run of 100k of its records with made-up map positions in 20 clusters is added once (the map's queries do not
care where the positions came from; clustering 100k records for real takes the embedding model hours on two
cores). Each figure is the best of 3 of the page's library calls for one render, opening the store as the page
does; the baseline is the bare SQL those calls build on, on an already open connection. Budget: under 1 s.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from bench.review import BUDGET_S, OUT, N, best, build_store

MAP_N = int(os.environ.get("BENCH_MAP_N", "100000"))


def add_cluster_run(store) -> int:
    from workbench.store import clusters as sql

    with store.connect() as con:
        found = con.execute("SELECT max(id) FROM cluster_runs WHERE records = ?", [MAP_N]).fetchall()[0][0]
        if found:
            return found
        ids = np.array(
            [r[0] for r in con.execute("SELECT id FROM records ORDER BY id LIMIT ?", [MAP_N]).fetchall()]
        )
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 20, len(ids))
    centres = rng.normal(scale=8, size=(20, 2))
    xy = centres[labels] + rng.normal(size=(len(ids), 2))
    with store.transaction() as con:
        run_id = sql.new_run_id(con)
        sql.save_run(
            con,
            run_id,
            author="bench",
            selection={},
            model="bench",
            text_spec="bench",
            method="kmeans",
            k=20,
            k_chosen_by="given",
            params={},
            seconds=0.0,
            clusters=[
                (
                    c,
                    f"cluster {c}",
                    ["退款", "refund"],
                    int((labels == c).sum()),
                    [int(i) for i in ids[labels == c][:3]],
                    float(centres[c, 0]),
                    float(centres[c, 1]),
                )
                for c in range(20)
            ],
            member_ids=ids,
            labels=labels,
            xy=xy,
            distance=np.zeros(len(ids)),
        )
    return run_id


def shape_store(store) -> None:
    """Give the generated records what the pages look at, once (bench setup, straight SQL, no revisions): 40
    categories (Chinese and English names, half of them classification), statuses spread over the review
    states, and a tenth of the records as general data."""
    marker = store.root / "pages-shaped"
    if marker.exists():
        return
    names = [f"退款-{n}" if n % 2 else f"intent-{n}" for n in range(40)]
    with store.transaction() as con:
        con.execute("INSERT INTO datasets (name, kind) VALUES ('general', 'general') ON CONFLICT DO NOTHING")
        con.execute(
            """UPDATE records SET
            category = list_extract(?, (id % 40 + 1)::INTEGER),
            task_type = CASE WHEN id % 40 < 20 THEN 'classification' ELSE 'qa' END,
            status = list_extract(['new', 'labeled', 'fixed', 'approved', 'approved', 'rejected'], (id % 6 + 1)::INTEGER),
            dataset = CASE WHEN id % 10 = 9 THEN 'general' ELSE dataset END""",
            [names],
        )
    marker.write_text("ok")


def main() -> None:
    from workbench import cluster, coverage, curation, review
    from workbench.export import ExportConfig, preview_export
    from workbench.review import BulkAction, ReviewFilter
    from workbench.store import Store
    from workbench.store.connection import open_duckdb

    OUT.mkdir(exist_ok=True)
    os.environ.setdefault("WORKBENCH_MODELS", str(OUT.parent / ".cache" / "models"))
    store = build_store(OUT / f"review-store-{N}")
    shape_store(store)
    run_id = add_cluster_run(store)
    print(f"{N:,} records; clustering run {run_id} with {MAP_N:,} members")

    def coverage_render():
        s = Store.open(store.root)
        coverage.coverage(s, ExportConfig())

    def preview():
        preview_export(Store.open(store.root), ExportConfig())

    def quality_render():
        s = Store.open(store.root)
        issues = curation.issues_by_code(s)
        curation.get_contracts(s)
        curation.get_settings(s)
        review.filter_choices(s)
        for issue in issues:
            if issue.fixable:
                review.preview_bulk(s, ReviewFilter(issue_codes=(issue.code,)), BulkAction("autofix"))

    def clusters_render():
        s = Store.open(store.root)
        cluster.cluster_summaries(s)
        cluster.cluster_map(s)

    ours = {
        "coverage: bars and verdicts": best(coverage_render),
        "coverage: export preview": best(preview),
        "quality: first render": best(quality_render),
        f"clusters: map of {MAP_N // 1000}k + list": best(clusters_render),
    }
    con = open_duckdb(store.db_path)
    try:

        def sql(*queries):
            return lambda: [con.execute(q, p).fetchall() for q, p in queries]

        base = {
            "coverage: bars and verdicts": best(
                sql(("SELECT category, status, count(*) FROM records GROUP BY ALL", []))
            ),
            "coverage: export preview": best(
                sql(
                    (
                        "SELECT category, count(*) FROM records WHERE status IN ('approved', 'fixed') AND dup_of IS NULL "
                        "AND id NOT IN (SELECT record_id FROM record_issues WHERE severity = 'error') GROUP BY ALL",
                        [],
                    )
                )
            ),
            "quality: first render": best(
                sql(
                    ("SELECT code, severity, count(DISTINCT record_id) FROM record_issues GROUP BY ALL", []),
                    ("SELECT DISTINCT record_id FROM record_issues WHERE fix IS NOT NULL", []),
                )
            ),
            f"clusters: map of {MAP_N // 1000}k + list": best(
                sql(
                    ("SELECT record_id, cluster, x, y FROM cluster_members WHERE run_id = ?", [run_id]),
                    ("SELECT * FROM clusters WHERE run_id = ?", [run_id]),
                )
            ),
        }
    finally:
        con.close()
    points = cluster.cluster_map(store)
    print(f"the map draws {points.points.num_rows:,} of {points.total:,} points (every cluster kept)")
    print(
        f"best of 3; the page's library calls (each opens the store) vs the bare SQL on an open connection; "
        f"budget {BUDGET_S:.1f} s"
    )
    for name, seconds in ours.items():
        print(
            f"{name:34s}: {seconds * 1000:7.0f} ms  ({'under' if seconds < BUDGET_S else 'OVER'} budget)  "
            f"raw DuckDB {base[name] * 1000:6.0f} ms  -> {seconds / max(base[name], 1e-6):5.1f}x"
        )
    whole_pages(store)


def whole_pages(store) -> None:
    """Each page's whole script (AppTest: the library calls plus Streamlit building the page), after a warm-up."""
    from streamlit.testing.v1 import AppTest

    os.environ["WORKBENCH_STORE"] = str(store.root)
    app = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=300)
    app.run()
    print("the whole page script, first render (AppTest, one run each):")
    for page in ("pages/coverage.py", "pages/quality.py", "pages/clusters.py", "pages/imports.py"):
        started = time.perf_counter()
        app.switch_page(page).run()
        seconds = time.perf_counter() - started
        if app.exception:
            raise SystemExit(f"{page} failed: {app.exception}")
        print(f"  {page:32s}: {seconds * 1000:7.0f} ms  ({'under' if seconds < BUDGET_S else 'OVER'} budget)")


if __name__ == "__main__":
    main()
