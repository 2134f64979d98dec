"""Review: the queue of records, one record at a time to label and fix, bulk actions that one undo reverts."""

import json
import runpy
from dataclasses import replace
from pathlib import Path

import pandas as pd
import streamlit as st

from workbench import review
from workbench.errors import EditConflictError, WorkbenchError
from workbench.markup import escape_markdown
from workbench.review import BulkAction, ReviewFilter
from workbench.store import Store, default_root

S = st.session_state
if not S.get("in_frame"):  # opened by a link before the app's entry ran: run the entry, which runs this page
    runpy.run_path(str(Path(__file__).resolve().parent.parent / "app.py"))
    st.stop()
AUTHOR = S.get("author") or "app"
ROLES = ["system", "user", "assistant", "tool"]

st.title("Review")
st.caption("Label and fix records one at a time, or many at once. Every change is a revision you can undo.")


def fail(exc: Exception) -> None:
    """A busy store or a bad link: say what is wrong and offer a retry, never a traceback."""
    st.error(escape_markdown(exc))
    r1, r2, _ = st.columns([1, 2, 5])
    r1.button("Retry", key="retry")
    r2.button("Clear the filters", key="clear_filters", on_click=st.query_params.clear)
    st.stop()


@st.cache_resource(show_spinner=False)
def open_store(root: str) -> Store:
    return Store.open(root)  # folders and schema checked once per process; the file is opened per call


@st.cache_data(ttl=60, show_spinner=False)
def filter_choices(root: str) -> dict:
    """The filter widgets' options (values a chosen filter has lost stay in its widget; see keep())."""
    return review.filter_choices(open_store(root))


try:
    root = str(default_root())
    store = open_store(root)
    params = {k: st.query_params.get_all(k) for k in st.query_params}
    flt = review.filter_from_params(params)
    if S.get("rv_flash"):  # something was just changed here: new categories or tags may exist
        filter_choices.clear()
    choices = filter_choices(root)
except WorkbenchError as exc:
    fail(exc)

# --- filters: the URL holds them, so a link from another page opens the queue filtered ---------------------
if S.get("rv_url") != params:  # a link (or the back button) brought a new filter: show it in the widgets
    S.rv_url = params
    S.rv_dataset, S.rv_status, S.rv_category = list(flt.datasets), list(flt.statuses), list(flt.categories)
    S.rv_issue, S.rv_tag, S.rv_task, S.rv_source = (
        list(flt.issue_codes),
        list(flt.tags),
        list(flt.task_types),
        list(flt.sources),
    )
    S.rv_severity, S.rv_duplicate, S.rv_text = flt.severity or "any", flt.duplicate or "any", flt.text
    S.rv_cluster = flt.cluster
    S.rv_hard = flt.hard_after_run
    S.rv_import = list(flt.imports)  # no widget: set by the Import page's links, cleared below
    S.rv_pages = [None]


def keep(values: list, known: list) -> list:
    """The options: the store's values, plus any chosen one no record has any more (so the filter stays)."""
    return list(values) + [v for v in known if v not in values]


a, b, c, d, e, f = st.columns([1, 1, 1.2, 1.2, 1.6, 0.9])
a.multiselect("Dataset", keep(S.rv_dataset, choices["datasets"]), key="rv_dataset")
b.multiselect("Status", list(review.STATUSES), key="rv_status")
c.multiselect(
    "Category",
    keep(S.rv_category, choices["categories"]),
    key="rv_category",
    format_func=lambda v: v or "(none)",
)
d.multiselect("Issue", keep(S.rv_issue, choices["issue_codes"]), key="rv_issue")
e.text_input("Text", key="rv_text", placeholder="in any turn, e.g. 退款 or refund")
sort = f.selectbox("Sort", list(review.SORTS), key="rv_sort")
with st.expander("More filters"):
    g, h, i, j, k, m, n = st.columns(7)
    g.multiselect("Tag", keep(S.rv_tag, choices["tags"]), key="rv_tag")
    h.multiselect("Task type", keep(S.rv_task, choices["task_types"]), key="rv_task")
    i.multiselect("Source", keep(S.rv_source, choices["sources"]), key="rv_source")
    j.selectbox("Severity", ["any", "error", "warning"], key="rv_severity")
    k.selectbox(
        "Duplicates",
        ["any", *review.DUPLICATE_STATES],
        key="rv_duplicate",
        format_func=lambda v: {"kept": "kept (has copies)", "copy": "copy of another"}.get(v, v),
    )
    clusters = {n: f"{n}: {name}" for n, name in choices["clusters"]}
    if S.rv_cluster is not None and S.rv_cluster not in clusters:  # a run newer than the cached choices
        clusters[S.rv_cluster] = f"cluster {S.rv_cluster}"
    m.selectbox(
        "Cluster",
        [None, *clusters],
        key="rv_cluster",
        format_func=lambda v: "any" if v is None else clusters[v],
        disabled=not clusters,
        help=None if clusters else "No clustering run yet (`workbench cluster`).",
    )
    hard_runs = keep([S.rv_hard] if S.rv_hard is not None else [], choices["hard_runs"])
    n.selectbox(
        "Hard after run",
        [None, *hard_runs],
        key="rv_hard",
        format_func=lambda v: "any" if v is None else f"run {v}",
        disabled=not hard_runs,
        help="Records the run still answers wrong, or learned least (highest loss, top tenth), in its latest "
        "evaluation on the records it trained on: often a wrong label or a contradiction. Check the label "
        "before the next run."
        if hard_runs
        else "No evaluated run yet: `workbench evaluate RUN --on trained` (or the Evaluate page).",
    )

flt = ReviewFilter(
    datasets=tuple(S.rv_dataset),
    statuses=tuple(S.rv_status),
    categories=tuple(S.rv_category),
    tags=tuple(S.rv_tag),
    task_types=tuple(S.rv_task),
    issue_codes=tuple(S.rv_issue),
    severity=None if S.rv_severity == "any" else S.rv_severity,
    duplicate=None if S.rv_duplicate == "any" else S.rv_duplicate,
    cluster=S.rv_cluster,
    sources=tuple(S.rv_source),
    text=S.rv_text.strip(),
    imports=tuple(S.get("rv_import", [])),
    hard_after_run=S.rv_hard,
)
if flt.hard_after_run is not None:
    h1, h2 = st.columns([4, 1])
    h1.caption(
        f"Only records run {flt.hard_after_run} still answers wrong, or learned least: check each label before "
        "the next run"
    )
    h2.button("Show every record", key="rv_clear_hard", on_click=lambda: S.update(rv_hard=None))
if flt.imports:
    n1, n2 = st.columns([4, 1])
    n1.caption(f"Only records of import {', '.join(f'#{i}' for i in flt.imports)}")
    n2.button("Show every import", key="rv_clear_import", on_click=lambda: S.update(rv_import=[]))
wanted = review.filter_to_params(flt)
if wanted != params or S.get("rv_sort_was") != sort:
    if wanted != params:
        st.query_params.from_dict(wanted)
        S.rv_url = wanted
    S.rv_sort_was, S.rv_pages = sort, [None]

try:
    page = review.load_queue(store, flt, sort, S.rv_pages[-1])
except WorkbenchError as exc:
    fail(exc)
if (
    S.get("rv_go_last") and page.rows
):  # "previous" from the first row of a page lands on the last row of this one
    S.rv_current = page.rows[-1].id
S.rv_go_last = False
if S.get("rv_current") not in page.ids:
    S.rv_current = page.ids[0] if page.ids else None
st.markdown(
    f"**{page.total:,} {'record matches' if page.total == 1 else 'records match'}**"
    + (f" · page {len(S.rv_pages)}" if page.total else "")
)


# --- moving through the queue ----------------------------------------------------------------------------
def go(step: int) -> None:
    ids = page.ids
    if S.rv_current not in ids:
        return
    at = ids.index(S.rv_current) + step
    if 0 <= at < len(ids):
        S.rv_current = ids[at]
    elif at >= len(ids) and page.next_after is not None:
        S.rv_pages = [*S.rv_pages, page.next_after]
        S.rv_current = None
    elif at < 0 and len(S.rv_pages) > 1:
        S.rv_pages = S.rv_pages[:-1]
        S.rv_go_last = True


def turn_page(step: int) -> None:
    S.rv_pages = [*S.rv_pages, page.next_after] if step > 0 else S.rv_pages[:-1]
    S.rv_current = None


# The table's key names the page it shows, so a new page or filter starts with nothing selected.
TABLE = f"rv_table_{abs(hash((str(wanted), sort, str(S.rv_pages[-1])))) % 10**8}"


def picked() -> None:
    rows = S[TABLE].selection.rows
    if len(rows) == 1 and rows[0] < len(page.ids):
        S.rv_current = page.ids[rows[0]]


queue, detail = st.columns([5, 6], gap="large")
with queue:
    if not page.rows:
        st.info(
            "No record matches these filters. Clear a filter, or import data from the command line: "
            "`workbench import data.jsonl`."
        )
    else:
        frame = pd.DataFrame(
            [
                {
                    "": "▶" if r.id == S.rv_current else "",
                    "id": r.id,
                    "status": r.status,
                    "category": r.category or "",
                    "question": r.first_user,
                    "answer": r.answer,
                    "errors": r.errors or None,
                    "warnings": r.warnings or None,
                }
                for r in page.rows
            ]
        )
        table = st.dataframe(
            frame,
            key=TABLE,
            on_select=picked,
            selection_mode="multi-row",
            hide_index=True,
            height=min(38 + 35 * len(frame), 560),
            width="stretch",
            column_config={
                "": st.column_config.TextColumn(width=24),
                "id": st.column_config.NumberColumn(width="small", format="%d"),
                "question": st.column_config.TextColumn(width="large"),
            },
        )
        p1, p2, p3 = st.columns(3)
        p1.button("◀ Page", on_click=turn_page, args=(-1,), disabled=len(S.rv_pages) == 1, width="stretch")
        p2.button("Page ▶", on_click=turn_page, args=(1,), disabled=page.next_after is None, width="stretch")
        p3.caption(f"rows {1 + 50 * (len(S.rv_pages) - 1):,}–{50 * (len(S.rv_pages) - 1) + len(page.rows):,}")

        # --- bulk actions ---------------------------------------------------------------------------------
        st.subheader("Bulk action")
        chosen = [page.ids[n] for n in table.selection.rows if n < len(page.ids)]
        scope = st.radio(
            "Apply to",
            ["selected", "matching"],
            horizontal=True,
            key="rv_scope",
            format_func=lambda v: (
                f"{len(chosen)} selected rows" if v == "selected" else f"all {page.total:,} matching records"
            ),
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
        target = ReviewFilter(ids=tuple(chosen)) if scope == "selected" else flt
        action = BulkAction(kind, value)
        if scope == "selected" and not chosen:
            st.caption("Tick rows in the table to select them.")
        else:
            try:
                n = review.preview_bulk(store, target, action)
            except WorkbenchError as exc:
                st.warning(escape_markdown(exc))
                n = 0
            if st.button(
                f"{escape_markdown(action.describe().capitalize())}: change {n:,} records",
                disabled=not n,
                key="rv_bulk_go",
                type="primary",
            ):
                try:
                    with st.spinner(f"Changing {n:,} records ..."):
                        result = review.apply_bulk(store, target, action, AUTHOR)
                    S.rv_base = None  # the open record may be among those changed
                    S.rv_flash = (
                        "success",
                        f"Operation #{result.operation_id}: {result.description} on "
                        f"{result.changed:,} records. Undo it below.",
                    )
                except WorkbenchError as exc:
                    S.rv_flash = ("error", str(exc))
                st.rerun()
        with st.expander("Recent bulk actions", expanded=bool(S.get("rv_flash"))):
            for op in review.recent_operations(store, 8):
                o1, o2 = st.columns([4, 1])
                o1.text(
                    f"#{op.id} {op.description} · {op.records:,} records · {op.author} · "
                    f"{op.created_at:%m-%d %H:%M}" + (f" · undone by #{op.undone_by}" if op.undone_by else "")
                )
                if (
                    op.undo_of is None
                    and op.undone_by is None
                    and o2.button("Undo", key=f"rv_undo_op_{op.id}")
                ):
                    try:
                        with st.spinner(f"Undoing #{op.id} ..."):
                            done = review.undo_operation(store, op.id, AUTHOR)
                        S.rv_base = None
                        S.rv_flash = (
                            "success",
                            f"Undid #{op.id}: {done.reverted:,} records put back"
                            + (
                                f", {done.left_alone:,} changed since and left as they are"
                                if done.left_alone
                                else ""
                            ),
                        )
                    except WorkbenchError as exc:
                        S.rv_flash = ("error", str(exc))
                    st.rerun()

# --- one record ------------------------------------------------------------------------------------------
with detail:
    flash = S.pop("rv_flash", None)
    if flash:
        getattr(st, flash[0])(escape_markdown(flash[1]))  # it names categories and errors: text
    if S.rv_current is None:
        st.stop()
    try:
        view = review.open_record(store, S.rv_current)
    except WorkbenchError as exc:
        fail(exc)
    rec = view.record
    # The draft stays on the version it started from, even when another process changes the record meanwhile:
    # saving it then shows the conflict instead of silently dropping what was typed.
    if S.get("rv_base") is None or S.rv_base[0] != rec.id:
        S.rv_base = (rec.id, rec.version)
    base_version = S.rv_base[1]
    tag = f"{rec.id}_{base_version}"
    if S.get("rv_draft_for") != tag:  # a new record (or a new version of it): start the draft from the store
        S.rv_draft_for, S.rv_start = tag, review.editable_fields(rec)
        S.rv_turns = [{**m, "content": m["content"] or ""} for m in rec.messages]
        S.rv_serial = S.get("rv_serial", 0) + 1
    serial = f"{tag}_{S.rv_serial}"

    def read_turns() -> list[dict]:
        return [
            {
                **t,
                "role": S.get(f"rv_role_{serial}_{n}", t["role"]),
                "content": S.get(f"rv_text_{serial}_{n}", t["content"]),
            }
            for n, t in enumerate(S.rv_turns)
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
        S.rv_turns, S.rv_serial = turns, S.rv_serial + 1

    def draft(status: str | None = None) -> dict:
        tags = [t.strip() for t in S.get(f"rv_tags_{tag}", "").split(",") if t.strip()]
        return {
            "messages": read_turns(),
            "category": S.get(f"rv_cat_{tag}") or None,
            "task_type": S.get(f"rv_task_{tag}") or None,
            "tags": tags,
            "status": status or S.get(f"rv_status_{tag}", rec.status),
        }

    def save(status: str | None = None, then: int = 0) -> None:
        changes = review.draft_changes(S.rv_start, draft(status))
        if not changes:
            S.rv_flash = ("info", "Nothing to save: the record is as you opened it.")
            if then:
                go(then)
            return
        try:
            saved = review.save_record(store, rec.id, base_version, changes, AUTHOR, S.get(f"rv_note_{tag}"))
            S.rv_base = (rec.id, saved.version)
            S.rv_flash = ("success", f"Saved record {rec.id}" + (f" as {status}" if status else "") + ".")
            S.pop("rv_conflict", None)
            if then:
                go(then)
        except EditConflictError:
            S.rv_conflict = {"id": rec.id, "mine": changes}
        except WorkbenchError as exc:
            S.rv_flash = ("error", str(exc))

    def resolve(keep_mine: bool) -> None:
        conflict = S.pop("rv_conflict")
        S.rv_base = None  # reload the draft from the store
        if keep_mine:
            current = review.open_record(store, conflict["id"]).record
            try:
                review.save_record(
                    store,
                    conflict["id"],
                    current.version,
                    conflict["mine"],
                    AUTHOR,
                    "kept my version over a concurrent edit",
                )
                S.rv_flash = ("success", "Saved your version; theirs stays in the history.")
            except WorkbenchError as exc:
                S.rv_flash = ("error", str(exc))

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

    conflict = S.get("rv_conflict")
    if rec.version != base_version and not conflict:
        st.warning(
            f"This record changed since you opened it (now version {rec.version}). Your edits are kept; "
            f"saving shows both versions side by side."
        )
        st.button("Reload it (drop my edits)", key="rv_reload", on_click=lambda: S.update(rv_base=None))
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

    last_answer = max((n for n, t in enumerate(S.rv_turns) if t["role"] == "assistant"), default=None)
    for n, turn in enumerate(S.rv_turns):
        r1, r2, r3, r4 = st.columns([5, 1, 1, 1], vertical_alignment="bottom")
        role = turn["role"] if turn["role"] in ROLES else turn["role"]
        r1.selectbox(
            f"Turn {n + 1}",
            ROLES if role in ROLES else [role, *ROLES],
            index=(ROLES if role in ROLES else [role, *ROLES]).index(role),
            key=f"rv_role_{serial}_{n}",
        )
        r2.button(
            "↑",
            key=f"rv_up_{serial}_{n}",
            on_click=change_turns,
            args=("up", n),
            disabled=n == 0,
            help="Move the turn up",
        )
        r3.button(
            "↓",
            key=f"rv_down_{serial}_{n}",
            on_click=change_turns,
            args=("down", n),
            disabled=n == len(S.rv_turns) - 1,
            help="Move the turn down",
        )
        r4.button(
            "✕", key=f"rv_del_{serial}_{n}", on_click=change_turns, args=("delete", n), help="Delete the turn"
        )
        if n == last_answer and rec.bad_output:
            said, right = st.columns(2)
            said.caption("The model said (bad output)")
            said.code(rec.bad_output, language=None, wrap_lines=True)
            right.text_area("The right answer", turn["content"], key=f"rv_text_{serial}_{n}", height=120)
        else:
            st.text_area(
                f"Turn {n + 1} content",
                turn["content"],
                key=f"rv_text_{serial}_{n}",
                label_visibility="collapsed",
                height=68 if len(turn["content"]) < 200 else 160,
            )
    st.button("＋ Add turn", on_click=change_turns, args=("add",), key=f"rv_add_{serial}")

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
                    review.fix_issue(store, rec.id, rec.version, issue.code, issue.turn, AUTHOR)
                    S.rv_base = None
                    S.rv_flash = ("success", f"Fixed {issue.code}: {issue.fix}.")
                except WorkbenchError as exc:
                    S.rv_flash = ("error", str(exc))
                st.rerun()

    f1, f2, f3, f4 = st.columns(4)
    f1.text_input("Category", rec.category or "", key=f"rv_cat_{tag}")
    f2.text_input("Tags", ", ".join(rec.tags), key=f"rv_tags_{tag}", placeholder="comma-separated")
    f3.text_input("Task type", rec.task_type or "", key=f"rv_task_{tag}")
    f4.selectbox(
        "Status", list(review.STATUSES), index=review.STATUSES.index(rec.status), key=f"rv_status_{tag}"
    )
    st.text_input("Note", key=f"rv_note_{tag}", placeholder="why you changed it (kept in the history)")

    b1, b2, b3 = st.columns(3)
    b1.button("Save", on_click=save, shortcut="Ctrl+S", type="primary", width="stretch", key="rv_save")
    b2.button(
        "Approve", on_click=save, args=("approved", 1), shortcut="Alt+A", width="stretch", key="rv_approve"
    )
    b3.button(
        "Reject", on_click=save, args=("rejected", 1), shortcut="Alt+X", width="stretch", key="rv_reject"
    )
    b4, b5 = st.columns(2)
    b4.button("◀ Previous", on_click=go, args=(-1,), shortcut="Alt+K", width="stretch", key="rv_prev")
    b5.button("Next ▶", on_click=go, args=(1,), shortcut="Alt+J", width="stretch", key="rv_next")
    st.caption(
        "Keys: Alt+J next · Alt+K previous · Ctrl+S save · Alt+A approve and next · Alt+X reject and next"
    )

    if st.toggle(
        "Training view",
        key="rv_training",
        help="Your draft as the trainer will see it: the target model's chat template, trained tokens in ⟦ ⟧.",
    ):

        @st.cache_resource(show_spinner="Loading the target model's tokenizer ...")
        def encoder(model: str, models_dir: str) -> review.TrainingEncoder:
            return review.load_training_encoder(model, models_dir)

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

    with st.expander(f"History ({len(view.history)} revisions)"):
        if not view.history:
            st.caption("No changes since import.")
        for rev in reversed(view.history):
            h1, h2 = st.columns([5, 1])
            h1.text(
                f"v{rev.version} · {rev.action} · {rev.author} · {rev.created_at:%Y-%m-%d %H:%M:%S}"
                + (f" · {rev.note}" if rev.note else "")
            )
            if rev.before is not None and h2.button("Undo", key=f"rv_undo_{rev.id}"):
                try:
                    review.undo_revision(store, rev.id, AUTHOR)
                    S.rv_base = None
                    S.rv_flash = ("success", f"Undid version {rev.version} (as a new revision).")
                except WorkbenchError as exc:
                    S.rv_flash = ("error", str(exc))
                st.rerun()
            for change in review.revision_diff(rev):
                if change.diff:
                    st.code(change.diff, language="diff")
