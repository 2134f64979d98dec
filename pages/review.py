"""Review: the queue of records, one record at a time to label and fix, bulk actions that one undo reverts."""

import json
from dataclasses import replace

import pandas as pd
import streamlit as st

import ui
from ui.review_filter import clear_link, review_filter
from workbench import review
from workbench.errors import EditConflictError, WorkbenchError
from workbench.markup import escape_markdown
from workbench.review import BulkAction, ReviewFilter

store, author = ui.page_frame(
    "Review",
    "Label and fix records one at a time, or many at once. Every change is a revision you can undo.",
    show_message=False,
)
state = st.session_state
ROLES = ["system", "user", "assistant", "tool"]


def count(n: int, thing: str) -> str:
    return f"{n:,} {thing if n == 1 else thing + 's'}"


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
    rec = view.record
    # The draft stays on the version it started from, even when another process changes the record meanwhile:
    # saving it then shows the conflict instead of silently dropping what was typed.
    if state.get("rv_base") is None or state.rv_base[0] != rec.id:
        state.rv_base = (rec.id, rec.version)
    base_version = state.rv_base[1]
    tag = f"{rec.id}_{base_version}"
    if (
        state.get("rv_draft_for") != tag
    ):  # a new record (or a new version of it): start the draft from the store
        state.rv_draft_for, state.rv_start = tag, review.editable_fields(rec)
        state.rv_turns = [{**m, "content": m["content"] or ""} for m in rec.messages]
        state.rv_serial = state.get("rv_serial", 0) + 1
    serial = f"{tag}_{state.rv_serial}"

    def read_turns() -> list[dict]:
        return [
            {
                **t,
                "role": state.get(f"rv_role_{serial}_{n}", t["role"]),
                "content": state.get(f"rv_text_{serial}_{n}", t["content"]),
            }
            for n, t in enumerate(state.rv_turns)
        ]

    def change_turns(op: str, n: int = 0) -> None:
        turns = read_turns()
        if op == "add":
            turns.append(
                {"role": "assistant" if turns and turns[-1]["role"] != "assistant" else "user", "content": ""}
            )
        elif op == "delete":
            turns.pop(n)
        elif op in ("up", "down"):
            other = n - 1 if op == "up" else n + 1
            turns[n], turns[other] = turns[other], turns[n]
        state.rv_turns, state.rv_serial = turns, state.rv_serial + 1

    def draft(status: str | None = None) -> dict:
        tags = [t.strip() for t in state.get(f"rv_tags_{tag}", "").split(",") if t.strip()]
        return {
            "messages": read_turns(),
            "category": state.get(f"rv_cat_{tag}") or None,
            "task_type": state.get(f"rv_task_{tag}") or None,
            "tags": tags,
            "status": status or state.get(f"rv_status_{tag}", rec.status),
        }

    def save(status: str | None = None, then: int = 0) -> None:
        changes = review.draft_changes(state.rv_start, draft(status))
        if not changes:
            ui.flash("info", "Nothing to save: the record is as you opened it.")
            if then:
                go(then)
            return
        try:
            saved = review.save_record(
                store, rec.id, base_version, changes, author, state.get(f"rv_note_{tag}")
            )
            state.rv_base = (rec.id, saved.version)
            ui.flash("success", f"Saved record {rec.id}" + (f" as {status}" if status else "") + ".")
            state.pop("rv_conflict", None)
            if then:
                go(then)
        except EditConflictError:
            state.rv_conflict = {"id": rec.id, "mine": changes}
        except WorkbenchError as exc:
            ui.flash("error", str(exc))

    def resolve(keep_mine: bool) -> None:
        conflict = state.pop("rv_conflict")
        state.rv_base = None  # reload the draft from the store
        if keep_mine:
            current = review.open_record(store, conflict["id"]).record
            try:
                review.save_record(
                    store,
                    conflict["id"],
                    current.version,
                    conflict["mine"],
                    author,
                    "kept my version over a concurrent edit",
                )
                ui.flash("success", "Saved your version; theirs stays in the history.")
            except WorkbenchError as exc:
                ui.flash("error", str(exc))

    st.subheader(f"Record {rec.id}")
    st.text(
        f"{rec.dataset} · version {rec.version} · {rec.status}"
        + (f" · import #{rec.import_id} line {rec.line}" if rec.import_id else "")
    )
    if flt.hard_after_run is not None:
        why = review.why_hard(store, flt.hard_after_run, rec.id)
        if why is not None:
            with st.container(border=True):
                loss = f" · loss {why.loss:.3f}" if why.loss is not None else ""
                st.markdown(
                    f"**Why it is here:** run {flt.hard_after_run} answers it {why.verdict or 'unjudged'}{loss}"
                )
                st.caption("Run " + str(flt.hard_after_run) + " said")
                st.code(why.output or "", language=None, wrap_lines=True)
                if why.contradicting:
                    st.caption(
                        "The most similar records of the set give a different answer: is one label wrong?"
                    )
                    st.dataframe(
                        pd.DataFrame(why.contradicting)[["record_id", "question", "reference", "similarity"]],
                        hide_index=True,
                        width="stretch",
                        column_config={
                            "record_id": st.column_config.NumberColumn("id", width="small"),
                            "question": st.column_config.TextColumn(width="medium"),
                            "reference": st.column_config.TextColumn("answer", width="medium"),
                            "similarity": st.column_config.NumberColumn(format="%.2f", width="small"),
                        },
                    )

    conflict = state.get("rv_conflict")
    if rec.version != base_version and not conflict:
        st.warning(
            f"This record changed since you opened it (now version {rec.version}). Your edits are kept; "
            f"saving shows both versions side by side."
        )
        st.button("Reload it (drop my edits)", key="rv_reload", on_click=lambda: state.update(rv_base=None))
    if conflict and conflict["id"] == rec.id:
        st.error(
            "Someone else changed this record while you edited it. Nothing was overwritten: "
            "compare the two versions and keep one (the other stays in the history)."
        )
        mine, theirs = st.columns(2)
        mine.markdown("**Your version**")
        mine.code(json.dumps(conflict["mine"], ensure_ascii=False, indent=1), language=None)
        theirs.markdown(f"**Theirs (version {rec.version})**")
        theirs.code(
            json.dumps(
                {k: getattr(rec, k) for k in conflict["mine"]}, ensure_ascii=False, indent=1, default=str
            ),
            language=None,
        )
        k1, k2 = st.columns(2)
        k1.button("Keep mine", on_click=resolve, args=(True,), key="rv_keep_mine")
        k2.button("Take theirs", on_click=resolve, args=(False,), key="rv_take_theirs")

    if view.issues:
        st.markdown("**Issues**")
        for n, issue in enumerate(view.issues):
            i1, i2 = st.columns([6, 1], vertical_alignment="center")
            i1.text(
                f"{'✖ error' if issue.severity == 'error' else '▲ warning'} · {issue.code}"
                + (f" · turn {issue.turn}" if issue.turn else "")
                + f": {issue.message}"
            )
            if issue.fix and i2.button("Fix", key=f"rv_fix_{tag}_{n}", help=issue.fix):
                try:
                    review.fix_issue(store, rec.id, rec.version, issue.code, issue.turn, author)
                    state.rv_base = None
                    ui.flash("success", f"Fixed {issue.code}: {issue.fix}.")
                except WorkbenchError as exc:
                    ui.flash("error", str(exc))
                st.rerun()

    def box_height(text: str) -> int:
        """Room for the text's lines at the editor's width (about 40 Latin or 20 Chinese characters a line)."""
        lines = sum(1 + len(line.encode("gbk", "replace")) // 44 for line in text.splitlines() or [""])
        return min(68 + 22 * (lines - 1), 320)

    def pick_label(n: int, label: str) -> None:
        turns = read_turns()
        turns[n]["content"] = label
        state.rv_turns, state.rv_serial = (
            turns,
            state.rv_serial + 1,
        )  # new widget keys: the boxes start from the turns

    def flip_training_view() -> None:
        state.rv_training = not state.get("rv_training", False)

    # The editor is a form: a form's fields hand their text to the browser's form state as it is typed, so a
    # shortcut (Ctrl+S) pressed while the cursor is still in a box saves what was just typed. Every button
    # in it submits the fields with it; enter_to_submit is off, so Enter in a field does not press one.
    last_answer = max((n for n, t in enumerate(state.rv_turns) if t["role"] == "assistant"), default=None)
    with st.form(f"rv_edit_{serial}", border=False, enter_to_submit=False):
        for n, turn in enumerate(state.rv_turns):
            text_key = f"rv_text_{serial}_{n}"
            r1, r2, r3, r4 = st.columns([3.4, 1, 1, 1], vertical_alignment="bottom")
            role = turn["role"]
            roles = ROLES if role in ROLES else [role, *ROLES]
            r1.selectbox(f"Turn {n + 1}", roles, index=roles.index(role), key=f"rv_role_{serial}_{n}")
            r2.form_submit_button(
                "↑", key=f"rv_up_{serial}_{n}", on_click=change_turns, args=("up", n), disabled=n == 0,
                help="Move the turn up",
            )  # fmt: skip
            r3.form_submit_button(
                "↓", key=f"rv_down_{serial}_{n}", on_click=change_turns, args=("down", n),
                disabled=n == len(state.rv_turns) - 1, help="Move the turn down",
            )  # fmt: skip
            r4.form_submit_button(
                "✕",
                key=f"rv_del_{serial}_{n}",
                on_click=change_turns,
                args=("delete", n),
                help="Delete the turn",
            )
            if n == last_answer and view.labels:
                # a labels contract: the answer is one of its labels, picked with a click or the keys 1-9
                st.caption(f"The right answer: pick a label (keys 1–{min(len(view.labels), 9)})")
                with st.container(horizontal=True):
                    for i, label in enumerate(view.labels):
                        st.form_submit_button(
                            escape_markdown(label),
                            key=f"rv_label_{serial}_{i}",
                            on_click=pick_label,
                            args=(n, label),
                            shortcut=str(i + 1) if i < 9 else None,
                            type="primary" if state.get(text_key, turn["content"]) == label else "secondary",
                        )
            if n == last_answer and rec.bad_output:
                said, right = st.columns(2)
                said.caption("The model said (bad output)")
                said.code(rec.bad_output, language=None, wrap_lines=True)
                right.text_area("The right answer", turn["content"], key=text_key, height=120)
            else:
                st.text_area(
                    f"Turn {n + 1} content",
                    turn["content"],
                    key=text_key,
                    label_visibility="collapsed",
                    height=box_height(turn["content"]),
                )
        t1, t2 = st.columns(2)
        t1.form_submit_button("＋ Add turn", on_click=change_turns, args=("add",), key=f"rv_add_{serial}")
        t2.form_submit_button(
            "Hide training view" if state.get("rv_training") else "Training view",
            on_click=flip_training_view,
            key="rv_training_view",
        )

        f1, f2 = st.columns(2)
        f1.text_input("Category", rec.category or "", key=f"rv_cat_{tag}")
        f2.text_input("Tags", ", ".join(rec.tags), key=f"rv_tags_{tag}", placeholder="comma-separated")
        f3, f4 = st.columns(2)
        f3.text_input("Task type", rec.task_type or "", key=f"rv_task_{tag}")
        f4.selectbox(
            "Status", list(review.STATUSES), index=review.STATUSES.index(rec.status), key=f"rv_status_{tag}"
        )
        st.text_input("Note", key=f"rv_note_{tag}", placeholder="why you changed it (kept in the history)")

        with st.container(horizontal=True):
            st.form_submit_button("Save", on_click=save, shortcut="Ctrl+S", type="primary", key="rv_save")
            st.form_submit_button(
                "Approve", on_click=save, args=("approved", 1), shortcut="Alt+A", key="rv_approve"
            )
            st.form_submit_button(
                "Reject", on_click=save, args=("rejected", 1), shortcut="Alt+X", key="rv_reject"
            )
    b5, b6 = st.columns(2)
    b5.button("◀ Previous", on_click=go, args=(-1,), shortcut="Alt+K", width="stretch", key="rv_prev")
    b6.button("Next ▶", on_click=go, args=(1,), shortcut="Alt+J", width="stretch", key="rv_next")
    st.caption(
        "Keys: Alt+J next · Alt+K previous · Ctrl+S save · Alt+A approve and next · Alt+X reject and next"
        + (" · 1–9 pick a label" if view.labels else "")
    )

    if state.get("rv_training"):

        @st.cache_resource(show_spinner="Loading the target model's tokenizer ...")
        def encoder(model: str, models_dir: str) -> review.TrainingEncoder:
            return review.load_training_encoder(model, models_dir)

        st.caption(
            "Your draft as the trainer will see it: the target model's chat template, trained tokens in ⟦ ⟧."
        )
        try:
            # the draft as it stands, so a newly written answer shows how it will be trained
            shown = review.training_view(
                replace(rec, messages=read_turns()),
                encoder(view.target_model, str(store.models_dir)),
                view.max_tokens,
            )
            st.text(
                f"{shown.model}: {shown.tokens:,} / {shown.max_tokens:,} tokens, {shown.trained:,} trained"
                + (" · TOO LONG: the trainer cuts it" if shown.too_long else "")
                + (f" · left out of training: {shown.skipped}" if shown.skipped else "")
            )
            st.code(shown.marked_text, language=None, wrap_lines=True)
        except WorkbenchError as exc:
            st.error(escape_markdown(exc))

    with st.expander(f"History ({count(len(view.history), 'revision')})"):
        if not view.history:
            st.caption("No changes since import.")
        for rev in reversed(view.history):
            h1, h2 = st.columns([3, 1])
            h1.text(
                f"v{rev.version} · {rev.action} · {rev.author} · {rev.created_at:%Y-%m-%d %H:%M:%S}"
                + (f" · {rev.note}" if rev.note else "")
            )
            if rev.before is not None and h2.button(
                "Undo",
                key=f"rv_undo_{rev.id}",
                help=f"Put back what v{rev.version} changed, as a new revision",
            ):
                try:
                    review.undo_revision(store, rev.id, author)
                    state.rv_base = None
                    ui.flash("success", f"Undid v{rev.version} (as a new revision).")
                except WorkbenchError as exc:
                    ui.flash("error", str(exc))
                st.rerun()
            for change in review.revision_diff(rev):
                if change.diff:
                    st.code(change.diff, language="diff")
