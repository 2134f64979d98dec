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
    linked = review.filter_from_params(params)
    if S.get("rv_flash"):  # something was just changed here: new categories or tags may exist
        filter_choices.clear()
    choices = filter_choices(root)
except WorkbenchError as exc:
    fail(exc)

# --- filters ------------------------------------------------------------------------------------------------
# Filter state, in three places kept in step by the two functions below and nothing else:
# - the URL holds the filter, so a link from another page (or Back, Forward) opens the queue filtered;
# - S.rv_filter is its copy in the session, which survives other pages;
# - the widgets show it. Streamlit forgets the widgets of a run that did not draw them (another page, a stop),
#   so every run seeds them from S.rv_filter before they are drawn, or from the URL when the URL is new.
# After the widgets are drawn, what they say becomes S.rv_filter and the URL (publish_filter).
FILTER_WIDGETS = {  # widget key -> ReviewFilter field
    "rv_dataset": "datasets",
    "rv_status": "statuses",
    "rv_category": "categories",
    "rv_issue": "issue_codes",
    "rv_text": "text",
    "rv_text_in": "text_in",
    "rv_tag": "tags",
    "rv_task": "task_types",
    "rv_source": "sources",
    "rv_severity": "severity",
    "rv_duplicate": "duplicate",
    "rv_cluster": "cluster",
    "rv_hard": "hard_after_run",
}


def seed_filter_widgets(flt: ReviewFilter, overwrite: bool) -> None:
    for key, name in FILTER_WIDGETS.items():
        if overwrite or key not in S:
            value = getattr(flt, name)
            S[key] = list(value) if isinstance(value, tuple) else value
    if "rv_sort" not in S:
        S.rv_sort = S.get("rv_sort_kept", "newest")


def publish_filter(sort: str) -> ReviewFilter:
    """The filter the widgets say, kept in S.rv_filter and written to the URL; a new filter or sort starts
    from the first page."""
    values = {
        name: tuple(S[key]) if isinstance(S[key], list) else S[key] for key, name in FILTER_WIDGETS.items()
    }
    # the imports have no widget: a link from the Import page sets them, their chip clears them
    flt = S.rv_filter = ReviewFilter(**{**values, "text": S.rv_text.strip()}, imports=S.rv_filter.imports)
    wanted = review.filter_to_params(flt)
    if wanted != params:
        st.query_params.from_dict(wanted)
        S.rv_url, S.rv_pages = wanted, [None]
    if S.get("rv_sort_was") != sort:
        S.rv_sort_was, S.rv_pages = sort, [None]
    return flt


if S.get("rv_url") != params:  # a link, Back or Forward
    S.rv_url, S.rv_filter, S.rv_pages = params, linked, [None]
    seed_filter_widgets(linked, overwrite=True)
else:
    seed_filter_widgets(S.rv_filter, overwrite=False)


def keep(values: list, known: list) -> list:
    """The options: the store's values, plus any chosen one no record has any more (so the filter stays)."""
    return list(values) + [v for v in known if v not in values]


def count(n: int, thing: str) -> str:
    return f"{n:,} {thing if n == 1 else thing + 's'}"


any_value = lambda v: "any" if v is None else v  # noqa: E731
clusters = {n: f"{n}: {name}" for n, name in choices["clusters"]}
if S.rv_cluster is not None and S.rv_cluster not in clusters:  # a run newer than the cached choices
    clusters[S.rv_cluster] = f"cluster {S.rv_cluster}"
a, b, c, d, e, e2 = st.columns([2.0, 1.1, 1.7, 1.1, 1.2, 1.55])
a.multiselect("Dataset", keep(S.rv_dataset, choices["datasets"]), key="rv_dataset")
b.multiselect("Status", list(review.STATUSES), key="rv_status")
c.multiselect(
    "Category",
    keep(S.rv_category, choices["categories"]),
    key="rv_category",
    format_func=lambda v: v or "(none)",
)
d.multiselect("Issue", keep(S.rv_issue, choices["issue_codes"]), key="rv_issue")
e.text_input("Text", key="rv_text", placeholder="e.g. 退款 or refund")
e2.selectbox(
    "Text in",
    list(review.TEXT_FIELDS),
    key="rv_text_in",
    format_func=lambda v: review.TEXT_FIELDS[v][1],
    help="Which turns the text search reads: the system prompt is left out unless you pick it or any turn.",
)
more, sort_column = st.columns([6, 1])
sort = S.rv_sort_kept = sort_column.selectbox(
    "Sort",
    list(review.SORTS),
    key="rv_sort",
    label_visibility="collapsed",
    format_func=lambda v: f"sort: {v}",
)
with more.expander("More filters"):
    g, h, i, j, k, m, n = st.columns(7)
    g.multiselect("Tag", keep(S.rv_tag, choices["tags"]), key="rv_tag")
    h.multiselect("Task type", keep(S.rv_task, choices["task_types"]), key="rv_task")
    i.multiselect("Source", keep(S.rv_source, choices["sources"]), key="rv_source")
    j.selectbox("Severity", [None, "error", "warning"], key="rv_severity", format_func=any_value)
    k.selectbox(
        "Duplicates",
        [None, *review.DUPLICATE_STATES],
        key="rv_duplicate",
        format_func=lambda v: {None: "any", "kept": "kept (has copies)", "copy": "copy of another"}.get(v, v),
    )
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

flt = publish_filter(sort)


def clear_filter(key: str, value: object) -> None:
    if key == "imports":
        S.rv_filter = replace(S.rv_filter, imports=())
    elif isinstance(S[key], list):
        S[key] = [v for v in S[key] if v != value]
    else:
        S[key] = None


# The filters under "More filters" (often set by a link) as chips: seen at a glance, removed with one click.
chips = [(f"tag: {v}", "rv_tag", v) for v in flt.tags]
chips += [(f"task type: {v}", "rv_task", v) for v in flt.task_types]
chips += [(f"source: {v}", "rv_source", v) for v in flt.sources]
if flt.severity:
    chips.append((f"severity: {flt.severity}", "rv_severity", None))
if flt.duplicate:
    chips.append((f"duplicates: {flt.duplicate}", "rv_duplicate", None))
if flt.cluster is not None:
    chips.append((f"cluster {clusters[flt.cluster]}", "rv_cluster", None))
if flt.hard_after_run is not None:
    chips.append((f"hard after run {flt.hard_after_run}", "rv_hard", None))
if flt.imports:
    chips.append((f"import {', '.join(f'#{i}' for i in flt.imports)}", "imports", None))
if chips:
    with st.container(horizontal=True, vertical_alignment="center"):
        st.caption("Also filtered by", width="content")
        for n, (label, key, value) in enumerate(chips):
            st.button(
                f"{escape_markdown(label)} ✕",
                key=f"rv_chip_{n}",
                on_click=clear_filter,
                args=(key, value),
                help="Remove this filter",
            )
if flt.hard_after_run is not None:
    st.caption(
        f"Only records run {flt.hard_after_run} still answers wrong, or learned least: check each label before "
        "the next run"
    )

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
    f"**{count(page.total, 'record')} {'matches' if page.total == 1 else 'match'}**"
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
TABLE = f"rv_table_{abs(hash((str(flt), sort, str(S.rv_pages[-1])))) % 10**8}"


def picked() -> None:
    rows = S[TABLE].selection.rows
    if len(rows) == 1 and rows[0] < len(page.ids):
        S.rv_current = page.ids[rows[0]]


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
        open_row = page.ids.index(S.rv_current) if S.rv_current in page.ids else None
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
        p1.button("◀ Page", on_click=turn_page, args=(-1,), disabled=len(S.rv_pages) == 1, width="stretch")
        p2.button("Page ▶", on_click=turn_page, args=(1,), disabled=page.next_after is None, width="stretch")
        p3.caption(f"rows {1 + 50 * (len(S.rv_pages) - 1):,}–{50 * (len(S.rv_pages) - 1) + len(page.rows):,}")

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
                    result = review.apply_bulk(store, target, action, AUTHOR)
                S.rv_base = None  # the open record may be among those changed
                S.rv_flash = (
                    "success",
                    f"Operation #{result.operation_id}: {result.description} on "
                    f"{count(result.changed, 'record')}. Undo it below.",
                )
            except WorkbenchError as exc:
                S.rv_flash = ("error", str(exc))
            st.rerun()
        with st.expander("Recent bulk actions", expanded=bool(S.get("rv_flash"))):
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
                            done = review.undo_operation(store, op.id, AUTHOR)
                        S.rv_base = None
                        S.rv_flash = (
                            "success",
                            f"Undid #{op.id}: {count(done.reverted, 'record')} put back"
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

    def box_height(text: str) -> int:
        """Room for the text's lines at the editor's width (about 40 Latin or 20 Chinese characters a line)."""
        lines = sum(1 + len(line.encode("gbk", "replace")) // 44 for line in text.splitlines() or [""])
        return min(68 + 22 * (lines - 1), 320)

    def pick_label(n: int, label: str) -> None:
        turns = read_turns()
        turns[n]["content"] = label
        S.rv_turns, S.rv_serial = turns, S.rv_serial + 1  # new widget keys: the boxes start from the turns

    def flip_training_view() -> None:
        S.rv_training = not S.get("rv_training", False)

    # The editor is a form: a form's fields hand their text to the browser's form state as it is typed, so a
    # shortcut (Ctrl+S) pressed while the cursor is still in a box saves what was just typed. Every button
    # in it submits the fields with it; enter_to_submit is off, so Enter in a field does not press one.
    last_answer = max((n for n, t in enumerate(S.rv_turns) if t["role"] == "assistant"), default=None)
    with st.form(f"rv_edit_{serial}", border=False, enter_to_submit=False):
        for n, turn in enumerate(S.rv_turns):
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
                disabled=n == len(S.rv_turns) - 1, help="Move the turn down",
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
                            type="primary" if S.get(text_key, turn["content"]) == label else "secondary",
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
            "Hide training view" if S.get("rv_training") else "Training view",
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

    if S.get("rv_training"):

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
                    review.undo_revision(store, rev.id, AUTHOR)
                    S.rv_base = None
                    S.rv_flash = ("success", f"Undid v{rev.version} (as a new revision).")
                except WorkbenchError as exc:
                    S.rv_flash = ("error", str(exc))
                st.rerun()
            for change in review.revision_diff(rev):
                if change.diff:
                    st.code(change.diff, language="diff")
