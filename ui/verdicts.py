"""A person's verdicts on answers no contract judges: the row of buttons (better, same, worse, both bad) under each
such answer on the Evaluate page, when two evaluations are compared and when one is looked at alone."""

from __future__ import annotations

import streamlit as st

from workbench import evaluate
from workbench.evaluate.sets import prompt_text

from . import frame as ui

VERDICTS = {"better": "Better", "same": "Same", "worse": "Worse", "both_bad": "Both bad"}
SHOWN = 20  # answers waiting for a person shown at once; each verdict makes room for the next


def verdict_buttons(store, evaluation_id: int, seq: int, record_key: str, chosen: str | None, author) -> None:
    """The four verdicts on answer `seq` of `evaluation_id`, the chosen one highlighted; a click stores it."""
    cols = st.columns(len(VERDICTS) + 3)
    for n, (value, text) in enumerate(VERDICTS.items()):
        if cols[n].button(
            text,
            key=f"ev_v_{evaluation_id}_{seq}_{value}",
            type="primary" if chosen == value else "secondary",
        ):
            with ui.stop_on_error():
                evaluate.set_verdict(store, evaluation_id, seq, value, author=author)
            ui.flash("success", f"Saved: {text.lower()} for record {record_key}.")
            st.rerun()


def judged_caption(chosen: str | None) -> str:
    return (
        "No contract judges this category: is the answer better than the reference, the same, worse, or are both "
        "bad?" + (f" Judged: **{VERDICTS[chosen]}**." if chosen else "")
    )


def single_evaluation_verdicts(store, report: evaluate.EvaluationReport, author) -> None:
    """One evaluation's answers that wait for a person (their category has no contract), each with its question,
    the answer and the reference, and the verdict buttons; better and same count as right. `report` is the one
    the page listed: its count of pending answers is the caption's."""
    evaluation_id, count = report.evaluation.id, report.total.pending
    with ui.stop_on_error():
        waiting = evaluate.evaluation_results(
            store, evaluation_id, verdict="pending", answered=True, limit=SHOWN
        )
    if not waiting:
        return
    st.subheader("Answers waiting for a person")
    st.caption(
        f"{count:,} answers of evaluation #{evaluation_id} have no contract to judge them. Better and same "
        "count as right, worse and both bad as wrong; a judged answer leaves this list"
        + (f" (the first {SHOWN} are shown)." if count > SHOWN else ".")
    )
    for row in waiting:
        with st.container(border=True):
            st.caption(f"{row.category or '(no category)'} · record {row.record_key}")
            st.text(prompt_text(row.messages))
            a, b = st.columns(2)
            a.caption("Answer")
            a.text(row.output or "")
            b.caption("Reference")
            b.text(row.reference or "")
            st.caption(judged_caption(row.human_verdict))
            verdict_buttons(store, evaluation_id, row.seq, row.record_key, row.human_verdict, author)
