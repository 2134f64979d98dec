"""A labeller's queue on the Review page: done / assigned, and the blind answer for a record given to several
labellers (the record itself is not changed; a reviewer settles the answers on the Agreement page)."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from workbench import queues
from workbench.errors import WorkbenchError
from workbench.markup import escape_markdown
from workbench.store import Store

from .frame import flash


def queue_progress(store: Store, labeller: str) -> None:
    """The queue's progress bar: how many of its records the labeller has done."""
    progress = next(iter(queues.queue_progress(store, [labeller])), None)
    if progress is None or not progress.assigned:
        st.info(f"The queue of {escape_markdown(labeller)} is empty: nothing assigned now.")
        return
    st.progress(
        progress.done / progress.assigned,
        text=f"Queue of {escape_markdown(labeller)}: {progress.done:,} done of {progress.assigned:,} assigned",
    )


def answer_box(store: Store, labeller: str, record_id: int, go: Callable[[int], None]) -> None:
    """For a record given to several labellers: this labeller's own answer, kept apart from the record."""
    if not queues.answer_mode(store, record_id, labeller):
        return
    with st.form(f"answer_{record_id}", border=True):
        st.markdown(
            "**Your answer** · given blind: the others' answers stay hidden until a reviewer settles them"
        )
        answer = st.text_area(
            "Your answer",
            value=queues.my_answer(store, record_id, labeller) or "",
            label_visibility="collapsed",
        )
        if st.form_submit_button("Save my answer and go to the next", type="primary"):
            try:
                queues.submit_answer(store, record_id, labeller, answer)
                flash("success", f"Your answer to record {record_id} is saved.")
                go(1)
            except WorkbenchError as exc:
                flash("error", str(exc))
            st.rerun()
