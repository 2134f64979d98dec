"""Overview: what is in the store, by dataset, status, category and issue."""

import altair as alt
import pandas as pd
import streamlit as st

import ui
from workbench.review import ReviewFilter
from workbench.stats import store_summary

store, author = ui.page_frame(
    "Overview", "What is in the store: click a bar or a link to open those records in Review."
)
with ui.stop_on_error():
    summary = store_summary(store)

st.caption(f"Store: `{store.root}`")
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


def links(label: str, items: list[tuple[str, int, ReviewFilter]]) -> None:
    """A line of links into Review, one per item (the keyboard- and test-friendly way in)."""
    cols = st.columns(min(len(items), 6) + 1)
    cols[0].caption(label)
    for n, (text, count, flt) in enumerate(items[:6], 1):
        ui.review_link(f"{text} ({count:,})", flt, where=cols[n])


left, right = st.columns(2)
with left:
    st.subheader("By dataset")
    frame = pd.DataFrame(summary.datasets, columns=["dataset", "kind", "records"])
    ui.chart_to_review(
        bar(frame, "dataset", "records", "kind"), "ov_dataset", lambda v: ReviewFilter(datasets=(v,))
    )
with right:
    st.subheader("By status")
    frame = pd.DataFrame(summary.statuses, columns=["status", "records"])
    ui.chart_to_review(bar(frame, "status", "records"), "ov_status", lambda v: ReviewFilter(statuses=(v,)))

links("Review by status", [(status, n, ReviewFilter(statuses=(status,))) for status, n in summary.statuses])

st.subheader("By category")
frame = pd.DataFrame(summary.categories, columns=["category", "records"]).fillna({"category": "(none)"})
ui.chart_to_review(
    bar(frame.head(40), "category", "records"),
    "ov_category",
    lambda v: ReviewFilter(categories=("" if v == "(none)" else v,)),
)

st.subheader("Issues by code")
if summary.issues:
    frame = pd.DataFrame(summary.issues, columns=["code", "severity", "records"])
    ui.chart_to_review(
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
