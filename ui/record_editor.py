"""One record in the Review page: its editor (turns, labels, fields), the conflict of a concurrent edit, why a
hard record is here, the training view and the history with undo."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import pandas as pd
import streamlit as st

from workbench import review
from workbench.errors import EditConflictError, WorkbenchError
from workbench.formats import KNOWN_ROLES
from workbench.markup import escape_markdown
from workbench.review import ReviewFilter
from workbench.store import Store

from .frame import flash

state = st.session_state
ROLES = list(KNOWN_ROLES)


def count(n: int, thing: str) -> str:
    return f"{n:,} {thing if n == 1 else thing + 's'}"


def record_editor(
    store: Store, author: str, view: review.RecordView, flt: ReviewFilter, go: Callable[[int], None]
) -> None:
    """The open record, editable; `go(step)` moves through the queue (after Approve or Reject)."""
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
            flash("info", "Nothing to save: the record is as you opened it.")
            if then:
                go(then)
            return
        try:
            saved = review.save_record(
                store, rec.id, base_version, changes, author, state.get(f"rv_note_{tag}")
            )
            state.rv_base = (rec.id, saved.version)
            flash("success", f"Saved record {rec.id}" + (f" as {status}" if status else "") + ".")
            state.pop("rv_conflict", None)
            if then:
                go(then)
        except EditConflictError:
            state.rv_conflict = {"id": rec.id, "mine": changes}
        except WorkbenchError as exc:
            flash("error", str(exc))

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
                flash("success", "Saved your version; theirs stays in the history.")
            except WorkbenchError as exc:
                flash("error", str(exc))

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

    feedback = review.feedback_line(rec)
    if feedback:
        st.text(feedback)
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
                    flash("success", f"Fixed {issue.code}: {issue.fix}.")
                except WorkbenchError as exc:
                    flash("error", str(exc))
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
        if last_answer is None and rec.bad_output:
            # a production log without a correction: what the model said, to be answered in a new turn
            st.caption("The model said (bad output): add an assistant turn with the right answer")
            st.code(rec.bad_output, language=None, wrap_lines=True)
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
                    flash("success", f"Undid v{rev.version} (as a new revision).")
                except WorkbenchError as exc:
                    flash("error", str(exc))
                st.rerun()
            for change in review.revision_diff(rev):
                if change.diff:
                    st.code(change.diff, language="diff")
