"""Overview: what is in the store, by dataset, status, category and issue."""

import altair as alt
import pandas as pd
import streamlit as st

from workbench.errors import WorkbenchError
from workbench.stats import store_summary
from workbench.store import Store

st.title("Overview")
try:
    store = Store.open()
    summary = store_summary(store)
except WorkbenchError as exc:
    st.error(str(exc))
    st.stop()

st.caption(f"Store: `{store.root}`")
a, b, c, d = st.columns(4)
a.metric("Records", f"{summary.records:,}")
b.metric("Imports", f"{summary.imports:,}")
c.metric("Categories", f"{sum(1 for cat, _ in summary.categories if cat):,}")
d.metric("Records with errors", f"{summary.records_with_errors:,}",
         help="Records with at least one error-level issue; they are left out of training exports until fixed.")

if not summary.records:
    st.info("The store is empty. Import a file from the command line: `workbench import data.jsonl`.")
    st.stop()


def bar(frame: pd.DataFrame, x: str, y: str, color: str | None = None) -> alt.Chart:
    enc = {"x": alt.X(x, sort="-y", title=None, axis=alt.Axis(labelAngle=0, labelLimit=160)),
           "y": alt.Y(y, title="records", axis=alt.Axis(tickMinStep=1, format="d")), "tooltip": list(frame.columns)}
    if color:
        enc["color"] = color
    return alt.Chart(frame).mark_bar().encode(**enc).properties(height=260)


left, right = st.columns(2)
with left:
    st.subheader("By dataset")
    frame = pd.DataFrame(summary.datasets, columns=["dataset", "kind", "records"])
    st.altair_chart(bar(frame, "dataset", "records", "kind"), use_container_width=True)
with right:
    st.subheader("By status")
    frame = pd.DataFrame(summary.statuses, columns=["status", "records"])
    st.altair_chart(bar(frame, "status", "records"), use_container_width=True)

st.subheader("By category")
frame = pd.DataFrame(summary.categories, columns=["category", "records"]).fillna({"category": "(none)"})
st.altair_chart(bar(frame.head(40), "category", "records"), use_container_width=True)

st.subheader("Issues by code")
if summary.issues:
    frame = pd.DataFrame(summary.issues, columns=["code", "severity", "records"])
    st.altair_chart(bar(frame, "code", "records", alt.Color("severity", scale=alt.Scale(
        domain=["error", "warning"], range=["#d62728", "#ff9f0e"]))), use_container_width=True)
else:
    st.success("No issues found.")

if summary.recent:
    st.subheader("Recent activity")
    st.dataframe(pd.DataFrame(summary.recent, columns=["when", "who", "action", "record", "version"]),
                 hide_index=True, use_container_width=True)
