"""Clusters: the badcases grouped into failure modes on a 2-D map, named by their keywords; duplicate groups."""

import altair as alt
import streamlit as st

import ui
from workbench import cluster, dedup, jobs
from workbench.errors import WorkbenchError
from workbench.markup import escape_markdown
from workbench.review import ReviewFilter

store, author = ui.page_frame(
    "Clusters",
    "Embed, dedup and cluster the badcases in the background; find failure modes on the map and in the list, "
    "open one in Review or give it a category; see the duplicate groups and keep another copy.",
)
state = st.session_state


# --- background jobs ------------------------------------------------------------------------------------------
# The panel polls the job folder only while a job runs (an idle page reruns nothing, so a click on a link is
# never raced by a refresh).
latest = jobs.latest_job(store)


@st.fragment(run_every=2 if latest and latest.running else None)
def job_panel() -> None:
    """Where the latest job stands (reads its folder only); reopening the page reattaches to a running one."""
    job = jobs.latest_job(store)
    if job is None:
        st.caption("No job has run yet.")
        return
    if job.running:
        where = f"{job.step}: {job.done:,}" + (f" / {job.total:,}" if job.total else "")
        st.progress(
            job.fraction or 0.0,
            text=f"Job {job.id} ({' + '.join(job.steps)}) running since {job.started_at} · {where}",
        )
        if st.button("Cancel the job", key="cl_cancel"):
            jobs.cancel_job(store, job.id)
            st.rerun(scope="fragment")
        state.cl_was_running = job.id
        return
    results = "; ".join(
        f"{step}: "
        + ", ".join(
            f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v:,}"
            for k, v in found.items()
            if isinstance(v, int | float)
            and not isinstance(v, bool)
            and k not in ("run_id", "encode_seconds")
        )
        for step, found in job.results.items()
    )
    text = f"Job {job.id} ({' + '.join(job.steps)}) {job.state} at {job.finished_at}" + (
        f". {results}" if results else ""
    )
    {"done": st.success, "failed": st.error, "cancelled": st.warning}.get(job.state, st.info)(
        text + (f"\n\n{escape_markdown(job.error)}" if job.error else "")
    )
    if state.get("cl_was_running") == job.id:  # it just finished: show what it made
        state.cl_was_running = None
        st.rerun(scope="app")


with st.container(border=True):
    j1, j2 = st.columns([3, 1], vertical_alignment="bottom")
    steps = j1.multiselect(
        "Steps",
        list(jobs.STEPS),
        default=list(jobs.STEPS),
        key="cl_steps",
        help=" · ".join(f"{s}: {h}" for s, h in jobs.STEP_HELP.items()),
    )
    if j2.button(
        "Run in the background", type="primary", disabled=not steps, key="cl_start", width="stretch"
    ):
        try:
            started = jobs.start_job(store, steps, author=author)
            state.cl_was_running = started.id
            ui.flash("info", f"Started job {started.id}: it keeps running if you close the browser.")
        except WorkbenchError as exc:
            ui.flash("error", str(exc))
        st.rerun()
    job_panel()

# --- the map ----------------------------------------------------------------------------------------------------
try:
    clusters = cluster.cluster_summaries(store)
    shown = cluster.cluster_map(store) if clusters else None
except WorkbenchError as exc:
    st.error(escape_markdown(exc))
    st.stop()

if not clusters:
    st.info(
        "No clustering run yet: run embed + cluster above (a few seconds for a few hundred records). "
        "Import badcases first on the Import page if the store has none."
    )
else:
    names = {c.cluster: f"{c.cluster}: {c.name}" for c in clusters}
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.subheader("Map")
        colour = st.radio("Colour by", ["cluster", "category"], horizontal=True, key="cl_colour")
        points = shown.points.to_pandas()
        points["cluster name"] = points["cluster"].map(names).fillna("noise")
        points["category"] = points["category"].replace("", "(none)")
        pick = alt.selection_point(fields=["cluster"], name="pick")
        chart = (
            alt.Chart(points)
            .mark_circle(size=36, opacity=0.75, cursor="pointer")
            .encode(
                x=alt.X("x", axis=None),
                y=alt.Y("y", axis=None),
                color=alt.Color(
                    "cluster name" if colour == "cluster" else "category",
                    title=colour,
                    legend=alt.Legend(labelLimit=220, symbolLimit=30),
                ),
                tooltip=[
                    alt.Tooltip("record_id", title="record"),
                    "cluster name",
                    "category",
                    "question",
                    "answer",
                ],
            )
            .add_params(pick)
            .properties(height=460)
        )
        ui.chart_to_review(chart, "cl_map", lambda picked: ReviewFilter(cluster=int(picked)))
        st.caption(
            f"Clustering run {shown.run_id}: "
            + (
                f"{shown.points.num_rows:,} of {shown.total:,} records drawn (a sample that keeps every "
                f"cluster, so the map stays quick); the list counts them all"
                if shown.sampled
                else f"all {shown.total:,} records"
            )
            + ". Click a point to open its cluster in Review."
        )
    with right:
        st.subheader(f"{len(clusters)} clusters")
        for c in clusters:
            with st.container(border=True):
                mix = ", ".join(f"{cat or '(none)'} {n:,}" for cat, n in c.category_mix[:4])
                st.markdown(
                    f"**{escape_markdown(names[c.cluster])}** · {c.size:,} records"
                    + (f" · category **{escape_markdown(c.category)}**" if c.category else "")
                )
                st.caption(escape_markdown(f"keywords: {', '.join(c.keywords)} · categories: {mix}"))
                for rid, question, answer in c.representatives:
                    st.text(f"#{rid} {question[:90]} → {answer[:60]}")
                ui.review_link("Open in Review", ReviewFilter(cluster=c.cluster))
                a2, a3 = st.columns([3, 2], vertical_alignment="bottom")
                new = a2.text_input(
                    "Category",
                    key=f"cl_cat_{shown.run_id}_{c.cluster}",
                    placeholder="give all a category",
                    label_visibility="collapsed",
                )
                if a3.button(
                    f"Set on {c.size:,}",
                    key=f"cl_set_{shown.run_id}_{c.cluster}",
                    disabled=not new.strip(),
                    help="One operation: undo it on the Review page (recent bulk actions).",
                ):
                    try:
                        result = cluster.assign_category(store, c.cluster, new, author)
                        ui.flash(
                            "success",
                            f"Operation #{result.operation_id}: {result.description} on "
                            f"{result.changed:,} records. Undo it on the Review page.",
                        )
                    except WorkbenchError as exc:
                        ui.flash("error", str(exc))
                    st.rerun()

# --- duplicate groups -----------------------------------------------------------------------------------------------
st.subheader("Duplicate groups")
groups, n_groups, n_copies = dedup.duplicate_groups(store, limit=10)
if not groups:
    st.info(
        "No duplicates marked: run dedup above (it groups exact, near and same-meaning copies and keeps one "
        "of each group)."
    )
else:
    st.caption(
        f"{n_groups:,} groups, {n_copies:,} copies left out of training; the biggest {len(groups)} below. "
        "Lines starting with - are the kept record's, + the copy's; ^ marks the characters that differ."
    )
    ui.review_link(f"Review all {n_copies:,} copies", ReviewFilter(duplicate="copy"))
    for g in groups:
        with st.expander(
            f"Record {g.kept.id} kept, {len(g.copies)} cop{'y' if len(g.copies) == 1 else 'ies'} · "
            + escape_markdown(f"{g.kept.category or '(no category)'} · {g.kept.question[:60]}")
        ):
            k, c = st.columns(2)
            k.caption(f"kept: record {g.kept.id} · {escape_markdown(g.kept.dataset)} · {g.kept.status}")
            k.code(g.kept.text, language=None, wrap_lines=True)
            for copy in g.copies:
                c.caption(
                    f"copy: record {copy.id} · {copy.status} · {copy.kind or 'match'}"
                    + (f" {copy.score:.2f}" if copy.score is not None else "")
                )
                c.code(copy.text, language=None, wrap_lines=True)
                if copy.diff:
                    c.code(copy.diff, language="diff")
                else:
                    c.caption("The same text as the kept record.")
                b1, b2 = c.columns(2)
                if b1.button("Keep this one instead", key=f"cl_keep_{copy.id}"):
                    try:
                        n = dedup.keep_instead(store, copy.id, author)
                        ui.flash("success", f"Record {copy.id} is kept now; {n} records changed.")
                    except WorkbenchError as exc:
                        ui.flash("error", str(exc))
                    st.rerun()
                if b2.button("Restore (not a copy)", key=f"cl_restore_{copy.id}"):
                    try:
                        dedup.restore(store, copy.id, author)
                        ui.flash(
                            "success",
                            f"Record {copy.id} is its own record again; later dedup runs leave it alone.",
                        )
                    except WorkbenchError as exc:
                        ui.flash("error", str(exc))
                    st.rerun()
