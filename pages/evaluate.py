"""Evaluate: run an evaluation in the background (the base model, a finished run, or a registered endpoint, on a
dataset), resume one that stopped; then two evaluations side by side (base vs a run, or two runs): accuracy per
category and cluster, what was fixed, what regressed, each record's answers, a person's verdicts, and failures sent
back to the badcase queue."""

import altair as alt
import pandas as pd
import streamlit as st

import ui
from ui import verdicts
from ui.evaluation_run import eval_set_name, run_panel
from ui.judge import judge_panel
from workbench import evaluate
from workbench.evaluate import CHANGES, side_by_side
from workbench.markup import escape_markdown
from workbench.review import ReviewFilter

store, author = ui.page_frame(
    "Evaluate",
    "Evaluate a model on an eval set, then compare two evaluations of the same records: what the tuning "
    "fixed, what it broke, and why.",
)
run_panel(store, author)

# --- compare two evaluations ------------------------------------------------------------------------------------
with ui.stop_on_error():
    reports = evaluate.list_evaluations(store)

if not reports:
    st.info(
        "No evaluation yet. Evaluate a model above, train a run on the **Train** page (it evaluates the base "
        "model and the run when it finishes), or from the command line: `workbench evaluate base --on eval` and "
        "`workbench evaluate RUN --on eval`."
    )
    st.stop()


def label(r: evaluate.EvaluationReport) -> str:
    e, t = r.evaluation, r.total
    acc = f"{t.accuracy:.0%}" if t.accuracy is not None else "no verdicts"
    trial = " · prompt trial" if e.system_prompt is not None or e.examples else ""
    return f"#{e.id} {e.model} on {eval_set_name(e)}{trial} · {e.records:,} records · {acc} · {e.status}"


st.subheader("Evaluations")


st.dataframe(
    pd.DataFrame(
        [
            {
                "id": r.evaluation.id,
                "when": str(r.evaluation.created_at)[:16],
                "model": r.evaluation.model,
                "status": r.evaluation.status,
                "set": eval_set_name(r.evaluation),
                "records": r.evaluation.records,
                "right": r.total.right,
                "wrong": r.total.wrong,
                "pending": r.total.pending,
                "accuracy": r.total.accuracy,
                "mean loss": r.total.mean_loss,
                "prompt trial": bool(r.evaluation.system_prompt or r.evaluation.examples),
            }
            for r in reports
        ]
    ),
    hide_index=True,
    width="stretch",
    column_config={  # narrow numbers, so every column (the time second) fits 1400 px beside an endpoint's name
        "id": st.column_config.NumberColumn("id", width=40, format="%d"),
        "when": st.column_config.TextColumn("when", width=120),
        "status": st.column_config.TextColumn(width=72),
        **{k: st.column_config.NumberColumn(k, width=60) for k in ("records", "right", "wrong", "pending")},
        "accuracy": st.column_config.ProgressColumn(
            "accuracy", format="percent", min_value=0, max_value=1, width=96
        ),
        "mean loss": st.column_config.NumberColumn(format="%.3f", width=72),
        "prompt trial": st.column_config.CheckboxColumn("trial", width=48, help="a prompt trial"),
    },
)

by_id = {r.evaluation.id: r for r in reports}
ids = list(by_id)
pair = evaluate.default_pair(reports)
c1, c2 = st.columns(2)
before = c1.selectbox(
    "Before",
    ids,
    index=ids.index(pair[0]),
    format_func=lambda i: label(by_id[i]),
    key="ev_before",
    help="Usually the base model's evaluation.",
)
after = c2.selectbox(
    "After",
    ids,
    index=ids.index(pair[1]),
    format_func=lambda i: label(by_id[i]),
    key="ev_after",
    help="Usually the tuned run's evaluation of the same set.",
)
if before == after:
    st.info("Pick two different evaluations of the same set to compare them.")
    verdicts.single_evaluation_verdicts(store, by_id[after], author)
    judge_panel(store, after, author)
    st.stop()
with ui.stop_on_error():
    cmp = evaluate.compare_evaluations(store, before, after)

t = cmp.total
m = st.columns(6)
m[0].metric("Accuracy before", f"{t.accuracy_before:.0%}" if t.accuracy_before is not None else "–")
m[1].metric(
    "Accuracy after",
    f"{t.accuracy_after:.0%}" if t.accuracy_after is not None else "–",
    delta=(
        f"{(t.accuracy_after - t.accuracy_before) * 100:+.0f} points"
        if t.accuracy_after is not None
        and t.accuracy_before is not None
        and t.accuracy_after != t.accuracy_before
        else None
    ),
)
m[2].metric("Fixed", f"{t.fixed:,}")
m[3].metric("Regressed", f"{t.regressed:,}", delta=-t.regressed if t.regressed else None)
m[4].metric("Still wrong", f"{t.still_wrong:,}")
if cmp.loss_before is not None and cmp.loss_after is not None:
    change = (cmp.loss_after - cmp.loss_before) / cmp.loss_before if cmp.loss_before else 0.0
    m[5].metric(
        "Mean loss after",
        f"{cmp.loss_after:.3f}",
        delta=f"{change:+.1%} (was {cmp.loss_before:.3f})",
        delta_color="inverse",
        help="On the general set this is forgetting: it should rise by 5% at most.",
    )
else:
    m[5].metric(
        "Waiting for a person", f"{t.pending:,}", help="Answers no contract can judge; judge them below."
    )
if cmp.only_before or cmp.only_after:
    st.caption(
        f"Compared on the {t.n:,} records both scored ({cmp.only_before:,} only before, "
        f"{cmp.only_after:,} only after)."
    )


def accuracy_chart(groups, title: str) -> alt.Chart:
    rows = [
        {"group": g.name, "when": when, "accuracy": acc, "records": g.n}
        for g in groups
        for when, acc in (("before", g.accuracy_before), ("after", g.accuracy_after))
        if acc is not None
    ]
    frame = pd.DataFrame(rows, columns=["group", "when", "accuracy", "records"])
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("group:N", title=title, axis=alt.Axis(labelAngle=0, labelLimit=140)),
            xOffset=alt.XOffset("when:N", sort=["before", "after"]),
            y=alt.Y("accuracy:Q", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
            color=alt.Color(
                "when:N", sort=["before", "after"], scale=alt.Scale(range=["#9aa5b1", "#2e7d32"])
            ),
            tooltip=["group", "when", alt.Tooltip("accuracy:Q", format=".0%"), "records"],
        )
        .properties(height=260)
    )


left, right = st.columns(2)
with left:
    st.subheader("Per category")
    if any(g.accuracy_before is not None or g.accuracy_after is not None for g in cmp.categories):
        st.altair_chart(accuracy_chart(cmp.categories, "category"), width="stretch")
    else:
        st.caption(
            "No verdicts in these evaluations (a loss-only set, or answers waiting for a person): the mean "
            "loss above is the comparison."
        )
with right:
    st.subheader("Per cluster")
    if cmp.clusters:
        st.altair_chart(accuracy_chart(cmp.clusters[:20], "cluster"), width="stretch")
    else:
        st.caption(
            "None of these records, nor a badcase sent from their failures, is in a clustering yet: cluster "
            "the badcases (or the evaluated set) on the **Clusters** page to see accuracy per cluster."
        )
st.dataframe(
    pd.DataFrame(
        [
            {
                "category": g.name,
                "records": g.n,
                "before": g.accuracy_before,
                "after": g.accuracy_after,
                "fixed": g.fixed,
                "regressed": g.regressed,
                "still wrong": g.still_wrong,
                "waiting for a person": g.pending,
            }
            for g in cmp.categories
        ]
    ),
    hide_index=True,
    width="stretch",
    column_config={k: st.column_config.NumberColumn(format="percent") for k in ("before", "after")},
)

# --- record by record ------------------------------------------------------------------------------------------
st.subheader("Record by record")
NAMES = {
    "fixed": "fixed",
    "regressed": "regressed",
    "still_wrong": "still wrong",
    "still_right": "still right",
    "pending": "waiting for a person",
}
with ui.stop_on_error():
    _, counts = side_by_side(store, before, after, limit=0)
first_kind = next((n for n, k in enumerate(CHANGES) if counts[k]), 0)
kind = st.radio(
    "Show",
    CHANGES,
    index=first_kind,
    horizontal=True,
    key="ev_kind",
    format_func=lambda k: f"{NAMES[k]} ({counts[k]:,})",
)
rows, _ = side_by_side(store, before, after, change=kind, limit=30)
if not rows:
    st.caption(f"No record is {NAMES[kind]}.")
for row in rows:
    with st.container(border=True):
        head = f"{row.category or '(no category)'} · {NAMES[row.change]}"
        st.markdown(
            f"**{escape_markdown(head)}**"
            + (f" · record {row.record_id}" if row.record_id is not None else "")
        )
        st.text(row.prompt)
        a, b, c = st.columns(3)
        a.caption(f"Before ({row.verdict_before})")
        a.text(row.before or "(no answer yet)")
        b.caption(f"After ({row.verdict_after})")
        b.text(row.after or "(no answer yet)")
        c.caption("Reference")
        c.text(row.reference or "")
        if row.diff:
            with st.expander("What differs between the two answers"):
                st.code(row.diff, language="diff")
        if row.needs_person:
            st.caption(verdicts.judged_caption(row.human_verdict_after))
            verdicts.verdict_buttons(
                store, after, row.seq_after, row.record_key, row.human_verdict_after, author
            )

# --- failures back to the badcase queue ------------------------------------------------------------------------
st.subheader("Send failures to badcases")
with ui.stop_on_error():
    failed = evaluate.evaluation_results(store, after, verdict="wrong", limit=None)
unsent = [r for r in failed if r.badcase_id is None]
if not failed:
    st.caption(f"Evaluation #{after} has no failed record.")
elif not unsent:
    st.caption(f"All {len(failed):,} failures of evaluation #{after} are in the badcase queue already.")
    ui.review_link("Open them in Review", ReviewFilter(tags=(f"evaluation-{after}",)))
else:
    st.caption(
        f"{len(unsent):,} failed records of evaluation #{after} go to the **badcases** dataset with the "
        "model's answer kept as the bad output and the reference as the fix, status fixed. The next export "
        "takes those that are not copies of an eval record (its leakage guard keeps eval questions out of "
        "training); after sending you see how many it takes."
    )
    if st.button(f"Send {len(unsent):,} failures to badcases", type="primary", key="ev_send"):
        with ui.stop_on_error():
            sent = evaluate.send_failures_to_badcases(store, after, author=author)
        ui.flash(
            "success",
            f"Sent {len(sent.created):,} new badcases and added the bad output to "
            f"{len(sent.updated):,} existing ones. {sent.export_says}",
        )
        st.rerun()

judge_panel(store, after, author)  # the LLM judge's suggestions where a person judges
