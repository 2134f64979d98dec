"""Agreement: how often labellers give the same answer to the same record, the disagreements to settle, and
who changed what per day."""

import pandas as pd
import streamlit as st

import ui
from workbench import agreement, audit, queues
from workbench.errors import ForbiddenError, WorkbenchError
from workbench.markup import escape_markdown

store, author = ui.page_frame(
    "Agreement",
    "Records given to several labellers: agreement per category, the answers that differ, and the one that trains.",
)

with ui.stop_on_error():
    report = agreement.agreement(store)
    progress = queues.queue_progress(store)

if progress:
    st.subheader("Queues")
    st.dataframe(
        pd.DataFrame(
            [{"labeller": p.assignee, "done": p.done, "assigned": p.assigned} for p in progress]
        ).assign(progress=lambda f: f["done"] / f["assigned"]),
        hide_index=True,
        column_config={
            "progress": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1)
        },
    )

st.subheader("Agreement per category")
if not report.categories:
    st.info(
        "No record has answers from two labellers yet. An owner hands records to several labellers with "
        "`workbench queue assign --to NAME --to NAME --overlap 2`; each answers blind in Review."
    )
else:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "category": row.category or "(none)",
                    "compared": row.kind,
                    "records": row.records,
                    "exact match": row.exact_match,
                    "Cohen's kappa": row.kappa,
                    "Fleiss' kappa": row.fleiss_kappa,
                    "Fleiss: records × labellers": (
                        f"{row.fleiss_records:,} × {row.fleiss_raters}" if row.fleiss_raters else ""
                    ),
                }
                for row in report.categories
            ]
        ),
        hide_index=True,
        column_config={
            "exact match": st.column_config.NumberColumn(format="percent"),
            "Cohen's kappa": st.column_config.NumberColumn(
                format="%.2f",
                help="Over every pair of answers to a record. 1: full agreement, 0: what chance gives. "
                "Empty for JSON (exact match only).",
            ),
            "Fleiss' kappa": st.column_config.NumberColumn(
                format="%.2f",
                help="Over the records three or more labellers answered (the most common number of them: Fleiss "
                "needs the same number per record). 1: full agreement, 0: what chance gives. Empty for JSON, or "
                "when no record has three answers.",
            ),
        },
    )

open_ones = [d for d in report.disagreements if not d.settled]
st.subheader(f"Disagreements to settle ({len(open_ones):,})")
if not open_ones:
    st.caption("Nothing to settle.")
asked = agreement.questions(store, [d.record_id for d in open_ones[:20]])
for item in open_ones[:20]:
    with st.container(border=True):
        st.markdown(f"**Record {item.record_id}** · {escape_markdown(item.category or '(no category)')}")
        st.caption("Asked")
        st.text(asked.get(item.record_id, ""))
        st.caption("Answers")
        answers = {answer: labeller for labeller, answer in item.answers}
        for labeller, answer in item.answers:
            st.text(f"{labeller}: {answer}")
        choice = st.radio(
            "The answer that trains",
            list(answers),
            key=f"ag_pick_{item.record_id}",
            format_func=lambda a, answers=answers: f"{answers[a]}'s: {a}",
            horizontal=True,
        )
        if st.button("Settle", key=f"ag_settle_{item.record_id}", type="primary"):
            try:
                agreement.settle(store, item.record_id, choice, author)
                ui.flash("success", f"Record {item.record_id} settled: its answer is now {choice}")
            except WorkbenchError as exc:
                ui.flash("error", str(exc))
            st.rerun()
if len(open_ones) > 20:
    st.caption(f"The first 20 of {len(open_ones):,} are shown: settle these and the next ones come up.")

st.subheader("Who changed what, per day")
try:
    rows = audit.audit(store)
except ForbiddenError:
    st.caption("Owners see who changed what, per person and per day.")
else:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "day": row.day,
                    "person": row.author,
                    "revisions": row.revisions,
                    "records": row.records,
                    "what": row.actions,
                    "first": f"{row.first_at:%H:%M}",
                    "last": f"{row.last_at:%H:%M}",
                }
                for row in rows
            ]
        ),
        hide_index=True,
    )
