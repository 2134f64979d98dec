"""Review: the queue of records, one record at a time to label and fix, bulk actions that one undo reverts."""

import pandas as pd
import streamlit as st

import ui
from ui.queue import answer_box, queue_progress
from ui.record_editor import count, record_editor
from ui.review_filter import clear_link, review_filter
from workbench import review
from workbench.errors import WorkbenchError
from workbench.markup import escape_markdown
from workbench.review import BulkAction, ReviewFilter

store, author = ui.page_frame(
    "Review",
    "Label and fix records one at a time, or many at once. Every change is a revision you can undo.",
    show_message=False,
)
state = st.session_state
flt, sort, clusters = review_filter(store)

try:
    page = review.load_queue(store, flt, sort, state.rv_pages[-1])
except WorkbenchError as exc:
    ui.fail(exc, more=clear_link)
if (
    state.get("rv_go_last") and page.rows
):  # "previous" from the first row of a page lands on the last row of this one
    state.rv_current = page.rows[-1].id
state.rv_go_last = False
if state.get("rv_current") not in page.ids:
    state.rv_current = page.ids[0] if page.ids else None
st.markdown(
    f"**{count(page.total, 'record')} {'matches' if page.total == 1 else 'match'}**"
    + (f" · page {len(state.rv_pages)}" if page.total else "")
)
if flt.assigned_to:
    queue_progress(store, flt.assigned_to)


# --- moving through the queue ----------------------------------------------------------------------------
def go(step: int) -> None:
    ids = page.ids
    if state.rv_current not in ids:
        return
    at = ids.index(state.rv_current) + step
    if 0 <= at < len(ids):
        state.rv_current = ids[at]
    elif at >= len(ids) and page.next_after is not None:
        state.rv_pages = [*state.rv_pages, page.next_after]
        state.rv_current = None
    elif at < 0 and len(state.rv_pages) > 1:
        state.rv_pages = state.rv_pages[:-1]
        state.rv_go_last = True


def turn_page(step: int) -> None:
    state.rv_pages = [*state.rv_pages, page.next_after] if step > 0 else state.rv_pages[:-1]
    state.rv_current = None


# The table's key names the page it shows, so a new page or filter starts with nothing selected.
TABLE = f"rv_table_{abs(hash((str(flt), sort, str(state.rv_pages[-1])))) % 10**8}"


def picked() -> None:
    rows = state[TABLE].selection.rows
    if len(rows) == 1 and rows[0] < len(page.ids):
        state.rv_current = page.ids[rows[0]]


queue, detail = st.columns([3, 2], gap="medium")
with queue:
    if not page.rows:
        if flt.is_empty():
            st.info("The store holds no record yet: import a file of chats, prompts or badcases.")
            st.page_link("pages/imports.py", label="Import data", icon=":material/upload_file:")
        else:
            st.info("No record matches these filters: remove a filter above.")
    else:
        # a column the filter holds to one value says nothing: its room goes to the question and the answer
        same = {"status": len(flt.statuses) == 1, "category": len(flt.categories) == 1}
        frame = pd.DataFrame(
            [
                {
                    "id": r.id,
                    "status": r.status,
                    "category": r.category or "",
                    "question": r.first_user,
                    "answer": r.answer,
                    "issues": (f"✖{r.errors}" if r.errors else "")
                    + (f" ▲{r.warnings}" if r.warnings else ""),
                }
                for r in page.rows
            ]
        ).drop(columns=[name for name, one in same.items() if one])
        open_row = page.ids.index(state.rv_current) if state.rv_current in page.ids else None
        wider = 40 * same["category"] + 30 * same["status"]
        table = st.dataframe(
            frame.style.apply(  # the open record's row is highlighted
                lambda row: (
                    ["background-color: rgba(255, 75, 75, 0.12)" if row.name == open_row else ""] * len(row)
                ),
                axis=1,
            ),
            key=TABLE,
            on_select=picked,
            selection_mode="multi-row",
            hide_index=True,
            height=min(38 + 35 * len(frame), 560),
            width="stretch",
            column_config={
                "id": st.column_config.NumberColumn(width=44, format="%d"),
                "status": st.column_config.TextColumn(width=56),
                "category": st.column_config.TextColumn(width=76),
                "question": st.column_config.TextColumn(width=140 + wider),
                "answer": st.column_config.TextColumn(width=130 + wider),
                "issues": st.column_config.TextColumn(width=40, help="✖ errors ▲ warnings"),
            },
        )
        p1, p2, p3 = st.columns(3)
        p1.button(
            "◀ Page", on_click=turn_page, args=(-1,), disabled=len(state.rv_pages) == 1, width="stretch"
        )
        p2.button("Page ▶", on_click=turn_page, args=(1,), disabled=page.next_after is None, width="stretch")
        p3.caption(
            f"rows {1 + 50 * (len(state.rv_pages) - 1):,}–{50 * (len(state.rv_pages) - 1) + len(page.rows):,}"
        )

        # --- bulk actions ---------------------------------------------------------------------------------
        # The scope is what the user sees and chose: the ticked rows when there are any, else every record
        # that matches; the button names the number of records that will change.
        st.subheader("Bulk action")
        chosen = [page.ids[n] for n in table.selection.rows if n < len(page.ids)]
        if chosen:
            target = ReviewFilter(ids=tuple(chosen))
            st.caption(
                f"Applies to the {count(len(chosen), 'ticked row')}. Untick {'it' if len(chosen) == 1 else 'them'} "
                "to act on every match."
            )
        else:
            target = flt
            st.caption(
                f"Applies to {'the' if page.total == 1 else 'all'} {count(page.total, 'matching record')}. "
                "Tick rows in the table to act on those only."
            )
        kind = st.selectbox(
            "Action", list(review.BULK_KINDS), format_func=review.BULK_KINDS.get, key="rv_bulk_kind"
        )
        value = None
        if kind == "status":
            value = st.selectbox("Status", list(review.STATUSES), key="rv_bulk_status")
        elif kind == "category":
            value = st.text_input("Category", key="rv_bulk_category", placeholder="empty clears it")
        elif kind in ("tags", "add_tags"):
            value = [
                t for t in st.text_input("Tags", key="rv_bulk_tags", placeholder="comma-separated").split(",")
            ]
        action = BulkAction(kind, value)
        try:
            n = review.preview_bulk(store, target, action)
        except WorkbenchError as exc:  # no tag named yet
            st.caption(escape_markdown(str(exc).capitalize() + "."))
            n = None
        if n is not None and st.button(
            f"{escape_markdown(action.describe().capitalize())}: change {count(n, 'record')}",
            disabled=not n,
            key="rv_bulk_go",
            type="primary",
        ):
            try:
                with st.spinner(f"Changing {count(n, 'record')} ..."):
                    result = review.apply_bulk(store, target, action, author)
                state.rv_base = None  # the open record may be among those changed
                ui.flash(
                    "success",
                    f"Operation #{result.operation_id}: {result.description} on "
                    f"{count(result.changed, 'record')}. Undo it below.",
                )
            except WorkbenchError as exc:
                ui.flash("error", str(exc))
            st.rerun()
        with st.expander("Recent bulk actions", expanded=ui.has_flash()):
            for op in review.recent_operations(store, 8):
                o1, o2 = st.columns([4, 1])
                o1.text(
                    f"#{op.id} {op.description} · {count(op.records, 'record')} · {op.author} · "
                    f"{op.created_at:%m-%d %H:%M}" + (f" · undone by #{op.undone_by}" if op.undone_by else "")
                )
                if (
                    op.undo_of is None
                    and op.undone_by is None
                    and o2.button("Undo", key=f"rv_undo_op_{op.id}")
                ):
                    try:
                        with st.spinner(f"Undoing #{op.id} ..."):
                            done = review.undo_operation(store, op.id, author)
                        state.rv_base = None
                        ui.flash(
                            "success",
                            f"Undid #{op.id}: {count(done.reverted, 'record')} put back"
                            + (
                                f", {done.left_alone:,} changed since and left as they are"
                                if done.left_alone
                                else ""
                            ),
                        )
                    except WorkbenchError as exc:
                        ui.flash("error", str(exc))
                    st.rerun()

# --- one record ------------------------------------------------------------------------------------------
with detail:
    ui.show_flash()
    if state.rv_current is None:
        st.stop()
    try:
        view = review.open_record(store, state.rv_current)
    except WorkbenchError as exc:
        ui.fail(exc, more=clear_link)
    answer_box(store, author, view.record.id, go)
    record_editor(store, author, view, flt, go)
