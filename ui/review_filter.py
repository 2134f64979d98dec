"""The Review filter, kept in step in three places: the URL, the session and the widgets. Only this module
moves it between them (`review_filter` is the whole of it, called once at the top of the Review page)."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from workbench import queues, review
from workbench.errors import WorkbenchError
from workbench.markup import escape_markdown
from workbench.review import ReviewFilter
from workbench.store import Store

from .frame import fail, has_flash, open_store

state = st.session_state

# --- filters ------------------------------------------------------------------------------------------------
# Filter state, in three places kept in step by the two functions below and nothing else:
# - the URL holds the filter, so a link from another page (or Back, Forward) opens the queue filtered;
# - state.rv_filter is its copy in the session, which survives other pages;
# - the widgets show it. Streamlit forgets the widgets of a run that did not draw them (another page, a stop),
#   so every run seeds them from state.rv_filter before they are drawn, or from the URL when the URL is new.
# After the widgets are drawn, what they say becomes state.rv_filter and the URL (publish_filter).
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
    "rv_feedback": "feedback",
    "rv_score_min": "score_min",
    "rv_score_max": "score_max",
}


def seed_filter_widgets(flt: ReviewFilter, overwrite: bool) -> None:
    for key, name in FILTER_WIDGETS.items():
        if overwrite or key not in state:
            value = getattr(flt, name)
            state[key] = list(value) if isinstance(value, tuple) else value
    if "rv_sort" not in state:
        state.rv_sort = state.get("rv_sort_kept", "newest")


def publish_filter(params: dict, sort: str) -> ReviewFilter:
    """The filter the widgets say, kept in state.rv_filter and written to the URL; a new filter or sort starts
    from the first page."""
    values = {
        name: tuple(state[key]) if isinstance(state[key], list) else state[key]
        for key, name in FILTER_WIDGETS.items()
    }
    # the imports have no widget: a link from the Import page sets them, their chip clears them
    flt = state.rv_filter = ReviewFilter(
        **{**values, "text": state.rv_text.strip()},
        imports=state.rv_filter.imports,
        assigned_to=state.rv_filter.assigned_to,
    )
    wanted = review.filter_to_params(flt)
    if wanted != params:
        st.query_params.from_dict(wanted)
        state.rv_url, state.rv_pages = wanted, [None]
    if state.get("rv_sort_was") != sort:
        state.rv_sort_was, state.rv_pages = sort, [None]
    return flt


def keep(values: list, known: list) -> list:
    """The options: the store's values, plus any chosen one no record has any more (so the filter stays)."""
    return list(values) + [v for v in known if v not in values]


def clear_filter(key: str, value: object) -> None:
    if key == "imports":
        state.rv_filter = replace(state.rv_filter, imports=())
    elif key == "queue":
        state.rv_filter = replace(state.rv_filter, assigned_to=None)
    elif isinstance(state[key], list):
        state[key] = [v for v in state[key] if v != value]
    else:
        state[key] = None


@st.cache_data(ttl=60, show_spinner=False)
def filter_choices(root: str) -> dict:
    """The filter widgets' options (values a chosen filter has lost stay in its widget; see keep())."""
    return review.filter_choices(open_store(root))


def clear_link() -> None:
    """The way out of a bad link: a button that clears the URL's filter."""
    st.button("Clear the filters", key="clear_filters", on_click=st.query_params.clear)


def review_filter(store: Store) -> tuple[ReviewFilter, str, dict[int, str]]:
    """The filter and sort the Review page shows: from the URL when it is new (a link, Back or Forward), else
    from the session; drawn as widgets, and what they say written back to the session and the URL. Also the
    cluster names the filter may show."""
    params = {k: st.query_params.get_all(k) for k in st.query_params}
    me = state.get("account")
    if not params and "rv_url" not in state and me and queues.has_queue(store, me):
        params = {"queue": [me]}  # a labeller's Review opens on their queue
        st.query_params.from_dict(params)
    try:
        linked = review.filter_from_params(params)
        if has_flash():  # something was just changed here: new categories or tags may exist
            filter_choices.clear()
        choices = filter_choices(str(store.root))
    except WorkbenchError as exc:
        fail(exc, more=clear_link)
    if state.get("rv_url") != params:  # a link, Back or Forward
        state.rv_url, state.rv_filter, state.rv_pages = params, linked, [None]
        seed_filter_widgets(linked, overwrite=True)
    else:
        seed_filter_widgets(state.rv_filter, overwrite=False)

    any_value = lambda v: "any" if v is None else v  # noqa: E731
    clusters = {n: f"{n}: {name}" for n, name in choices["clusters"]}
    if (
        state.rv_cluster is not None and state.rv_cluster not in clusters
    ):  # a run newer than the cached choices
        clusters[state.rv_cluster] = f"cluster {state.rv_cluster}"
    a, b, c, d, e, e2 = st.columns([2.0, 1.1, 1.7, 1.1, 1.2, 1.55])
    a.multiselect("Dataset", keep(state.rv_dataset, choices["datasets"]), key="rv_dataset")
    b.multiselect("Status", list(review.STATUSES), key="rv_status")
    c.multiselect(
        "Category",
        keep(state.rv_category, choices["categories"]),
        key="rv_category",
        format_func=lambda v: v or "(none)",
    )
    d.multiselect("Issue", keep(state.rv_issue, choices["issue_codes"]), key="rv_issue")
    e.text_input("Text", key="rv_text", placeholder="e.g. 退款 or refund")
    e2.selectbox(
        "Text in",
        list(review.TEXT_FIELDS),
        key="rv_text_in",
        format_func=lambda v: review.TEXT_FIELDS[v][1],
        help="Which turns the text search reads: the system prompt is left out unless you pick it or any turn.",
    )
    more, sort_column = st.columns([6, 1])
    sort = state.rv_sort_kept = sort_column.selectbox(
        "Sort",
        list(review.SORTS),
        key="rv_sort",
        label_visibility="collapsed",
        format_func=lambda v: f"sort: {v}",
    )
    with more.expander("More filters"):
        g, h, i, j, k, m, n = st.columns(7)
        g.multiselect("Tag", keep(state.rv_tag, choices["tags"]), key="rv_tag")
        h.multiselect("Task type", keep(state.rv_task, choices["task_types"]), key="rv_task")
        i.multiselect("Source", keep(state.rv_source, choices["sources"]), key="rv_source")
        j.selectbox("Severity", [None, "error", "warning"], key="rv_severity", format_func=any_value)
        k.selectbox(
            "Duplicates",
            [None, *review.DUPLICATE_STATES],
            key="rv_duplicate",
            format_func=lambda v: {None: "any", "kept": "kept (has copies)", "copy": "copy of another"}.get(
                v, v
            ),
        )
        m.selectbox(
            "Cluster",
            [None, *clusters],
            key="rv_cluster",
            format_func=lambda v: "any" if v is None else clusters[v],
            disabled=not clusters,
            help=None if clusters else "No clustering run yet (`workbench cluster`).",
        )
        hard_runs = keep([state.rv_hard] if state.rv_hard is not None else [], choices["hard_runs"])
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
        fb, lo, hi, _ = st.columns([1.7, 1, 1, 3.3])
        fb.selectbox(
            "Feedback",
            [None, *review.FEEDBACK_STATES],
            key="rv_feedback",
            format_func=lambda v: "any" if v is None else review.FEEDBACK_STATES[v][1],
            help="What users of the served model said, imported with its logs (thumbs, score, comment).",
        )
        lo.number_input("Score from", key="rv_score_min", value=None, step=0.1, placeholder="any")
        hi.number_input("Score to", key="rv_score_max", value=None, step=0.1, placeholder="any")

    flt = publish_filter(params, sort)

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
    if flt.feedback:
        chips.append((f"feedback: {review.FEEDBACK_STATES[flt.feedback][1]}", "rv_feedback", None))
    for key, bound, word in (("rv_score_min", flt.score_min, "≥"), ("rv_score_max", flt.score_max, "≤")):
        if bound is not None:
            chips.append((f"score {word} {bound:g}", key, None))
    if flt.hard_after_run is not None:
        chips.append((f"hard after run {flt.hard_after_run}", "rv_hard", None))
    if flt.assigned_to:
        chips.append((f"queue of {flt.assigned_to}", "queue", None))
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

    return flt, sort, clusters
