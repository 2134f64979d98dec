"""Overview: what is in the store, by dataset, status, category and issue."""

import runpy
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from workbench.errors import WorkbenchError
from workbench.markup import escape_markdown
from workbench.review import ReviewFilter, filter_to_params
from workbench.stats import store_summary
from workbench.store import Store

if not st.session_state.get(
    "in_frame"
):  # opened before the app's entry ran: run the entry, which runs this page
    runpy.run_path(str(Path(__file__).resolve().parent.parent / "app.py"))
    st.stop()

st.title("Overview")
try:
    store = Store.open()
    summary = store_summary(store)
except WorkbenchError as exc:
    st.error(escape_markdown(exc))
    st.button("Retry")
    st.stop()

st.caption(f"Store: `{store.root}` · click a bar or a link to open those records in Review")
a, b, c, d = st.columns(4)
a.metric("Records", f"{summary.records:,}")
b.metric("Imports", f"{summary.imports:,}")
c.metric("Categories", f"{sum(1 for cat, _ in summary.categories if cat):,}")
d.metric(
    "Records with errors",
    f"{summary.records_with_errors:,}",
    help="Records with at least one error-level issue; they are left out of training exports until fixed.",
)

if not summary.records:
    st.info("The store is empty. Import a file from the command line: `workbench import data.jsonl`.")
    st.stop()


REVIEW = "pages/review.py"


def bar(frame: pd.DataFrame, x: str, y: str, color: str | None = None) -> alt.Chart:
    enc = {
        "x": alt.X(x, sort="-y", title=None, axis=alt.Axis(labelAngle=0, labelLimit=160)),
        "y": alt.Y(y, title="records", axis=alt.Axis(tickMinStep=1, format="d")),
        "tooltip": list(frame.columns),
    }
    if color:
        enc["color"] = color
    pick = alt.selection_point(fields=[x], name="pick")
    return alt.Chart(frame).mark_bar(cursor="pointer").encode(**enc).add_params(pick).properties(height=260)


def show(chart: alt.Chart, key: str, to_filter) -> None:
    """Draw a bar chart; clicking a bar opens Review filtered to it."""
    event = st.altair_chart(chart, width="stretch", on_select="rerun", key=key)
    picked = (event.selection.get("pick") or [{}])[0] if event and event.selection else {}
    if picked:
        value = next(iter(picked.values()))
        st.switch_page(REVIEW, query_params=filter_to_params(to_filter(value)))


def links(label: str, items: list[tuple[str, int, ReviewFilter]]) -> None:
    """A line of links into Review, one per item (the keyboard- and test-friendly way in)."""
    cols = st.columns(min(len(items), 6) + 1)
    cols[0].caption(label)
    for n, (text, count, flt) in enumerate(items[:6], 1):
        cols[n].page_link(
            REVIEW, label=f"{escape_markdown(text)} ({count:,})", query_params=filter_to_params(flt)
        )


left, right = st.columns(2)
with left:
    st.subheader("By dataset")
    frame = pd.DataFrame(summary.datasets, columns=["dataset", "kind", "records"])
    show(bar(frame, "dataset", "records", "kind"), "ov_dataset", lambda v: ReviewFilter(datasets=(v,)))
with right:
    st.subheader("By status")
    frame = pd.DataFrame(summary.statuses, columns=["status", "records"])
    show(bar(frame, "status", "records"), "ov_status", lambda v: ReviewFilter(statuses=(v,)))

links("Review by status", [(status, n, ReviewFilter(statuses=(status,))) for status, n in summary.statuses])

st.subheader("By category")
frame = pd.DataFrame(summary.categories, columns=["category", "records"]).fillna({"category": "(none)"})
show(
    bar(frame.head(40), "category", "records"),
    "ov_category",
    lambda v: ReviewFilter(categories=("" if v == "(none)" else v,)),
)

st.subheader("Issues by code")
if summary.issues:
    frame = pd.DataFrame(summary.issues, columns=["code", "severity", "records"])
    show(
        bar(
            frame,
            "code",
            "records",
            alt.Color("severity", scale=alt.Scale(domain=["error", "warning"], range=["#d62728", "#ff9f0e"])),
        ),
        "ov_issues",
        lambda v: ReviewFilter(issue_codes=(v,)),
    )
    links(
        "Review records with",
        [(code, n, ReviewFilter(issue_codes=(code,))) for code, _sev, n in summary.issues],
    )
else:
    st.success("No issues found.")

if summary.recent:
    st.subheader("Recent activity")
    st.dataframe(
        pd.DataFrame(summary.recent, columns=["when", "who", "action", "record", "version"]),
        hide_index=True,
        width="stretch",
    )
