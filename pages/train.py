"""Train: one click exports the curated records, trains a LoRA adapter and evaluates base and tuned, in the
background; a live panel shows the run; the run's lineage links data, export, run, adapter and evaluations."""

from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

import ui
from ui.export import export_preview, export_settings
from workbench import pipeline, review
from workbench.errors import WorkbenchError
from workbench.export import preview_export
from workbench.markup import escape_markdown
from workbench.models import EMBEDDED_MODEL
from workbench.train import config as train_config
from workbench.train import runs

TRAIN_HELP = train_config.help_texts()
STEP_AXIS = alt.Axis(format=",d", tickMinStep=1)  # whole steps, never "14.000000"
RANKS = [4, 8, 16, 32, 64, 128, 256]

store, author = ui.page_frame(
    "Train",
    "Export the curated records, train a LoRA adapter on them and evaluate it against the base model, "
    "in one click. The run goes on in the background: close the browser and come back.",
)
state = st.session_state
with ui.stop_on_error():
    current = pipeline.latest_pipeline(store)


# --- the live panel: reads the pipeline's and the run's folders, never the store --------------------------------
@st.fragment(run_every=2.0 if current is not None and current.running else None)
def live_panel(pipeline_id: int) -> None:
    status = pipeline.pipeline_status(store, pipeline_id)
    live = pipeline.live_run(status)
    st.subheader(f"Pipeline {status.id}: {status.state}")
    at = pipeline.STAGES.index(status.stage) if status.stage in pipeline.STAGES else 0
    st.caption(
        " → ".join(f"**{s}**" if n == at and status.running else s for n, s in enumerate(pipeline.STAGES))
        + (f" · started {status.started_at[:19]}" if status.started_at else "")
    )
    if status.error:
        st.error(
            f"{escape_markdown(status.error)}  \nFix the cause and press Resume (a run continues from its last checkpoint), "
            "or start a new one below."
        )
    elif status.state == "cancelled":
        st.warning(
            "Cancelled. Resume continues it (a run from its last checkpoint), or start a new one below."
        )
    m = st.columns(4)
    if live is not None:
        m[0].metric("Step", f"{live.step}/{live.total_steps or '?'}")
        m[1].metric("Loss", f"{live.losses[-1]['loss']:.3f}" if live.losses else "–")
        m[2].metric("Tokens/s", f"{live.tokens_per_s:,.0f}" if live.tokens_per_s else "–")
        m[3].metric("ETA", f"{live.eta_s / 60:.1f} min" if live.eta_s and status.stage == "train" else "–")
        left, right = st.columns(2)
        if live.losses:
            left.altair_chart(
                alt.Chart(pd.DataFrame(live.losses))
                .mark_line()
                .encode(
                    x=alt.X("step:Q", axis=STEP_AXIS),
                    y=alt.Y("loss:Q", title="training loss", axis=alt.Axis(format=".2f")),
                )
                .properties(height=220, title="Loss"),
                width="stretch",
            )
        checks = [c for c in live.checkpoints if c.get("val_accuracy") is not None]
        if checks:
            right.altair_chart(
                alt.Chart(pd.DataFrame(checks))
                .mark_line(point=True)
                .encode(
                    x=alt.X("step:Q", axis=STEP_AXIS),
                    y=alt.Y(
                        "val_accuracy:Q",
                        title="validation accuracy",
                        axis=alt.Axis(format="%"),
                        scale=alt.Scale(domain=[0, 1]),
                    ),
                )
                .properties(height=220, title="Validation accuracy per checkpoint"),
                width="stretch",
            )
    else:
        m[0].metric("Step", "exporting…" if status.running else "–")
    ev = status.evaluating if status.running and status.stage == "evaluate" else None
    if ev and ev.get("total"):
        st.progress(
            min(1.0, ev["done"] / ev["total"]),
            text=f"Evaluating {ev['key']}: {ev.get('phase') or 'starting'} · {ev['done']:,}/{ev['total']:,}",
        )
    if status.evaluations:
        st.caption(
            "Evaluations: "
            + ", ".join(f"{k} #{v}" for k, v in status.evaluations.items())
            + ". Compare them on the **Evaluate** page."
        )
        st.page_link("pages/evaluate.py", label="Open Evaluate", icon=":material/compare_arrows:")
    c1, c2, _ = st.columns([1, 1, 4])
    if status.running:
        if c1.button(
            "Cancel", key="tr_cancel", help="The run saves a checkpoint and stops; Resume continues it."
        ):
            pipeline.cancel_pipeline(store, status.id)
            st.rerun()
    elif status.state in ("cancelled", "failed") and status.run_id is not None:
        if c2.button(
            "Resume", key="tr_resume", help="Continue the run from its latest checkpoint, then evaluate."
        ):
            try:
                pipeline.resume_pipeline(store, status.id)
            except WorkbenchError as exc:
                st.error(escape_markdown(exc))
            else:
                st.rerun(scope="app")
    if not status.running and state.get("tr_was_running") == status.id:
        state.pop("tr_was_running")
        st.rerun(scope="app")  # the run ended while watched: show the lineage and let a new one start
    if status.running:
        state.tr_was_running = status.id


with ui.stop_on_error():
    run_list = runs.list_runs(store, limit=20)
if current is None and not run_list:
    st.info("No run yet. Choose the data and the model below and press **Export, train and evaluate**.")
elif current is None:  # runs started elsewhere (the command line, `make demo-loop`): show them, not "no run"
    st.subheader("Runs")
    st.caption("Started from the command line. Compare their evaluations on the **Evaluate** page.")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "run": r.row.id,
                    "state": r.state,
                    "step": f"{r.row.step or 0}/{r.row.total_steps or '?'}",
                    "epochs": r.row.config.get("epochs"),
                    "train loss": r.row.train_loss,
                    "val loss": r.row.val_loss,
                    "val accuracy": r.row.val_accuracy,
                    "best step": r.row.best_step,
                    "export": r.row.export_name or Path(r.row.export_dir).name,
                    "started": str(r.row.created_at)[:16],
                }
                for r in run_list
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={
            "val accuracy": st.column_config.NumberColumn(format="percent"),
            "train loss": st.column_config.NumberColumn(format="%.3f"),
            "val loss": st.column_config.NumberColumn(format="%.3f"),
        },
    )
    st.page_link("pages/evaluate.py", label="Open Evaluate", icon=":material/compare_arrows:")
else:
    live_panel(current.id)
    if current.run_id is not None and not current.running:
        with st.expander("Lineage: data → export → run → adapter → evaluations"):
            try:
                steps = runs.run_lineage(store, current.run_id)
            except WorkbenchError as exc:
                st.error(escape_markdown(exc))
                steps = []
            for step in steps:
                st.text(" · ".join(f"{k}: {v}" for k, v in step.items() if v is not None))
            if current.evaluations:
                st.text("evaluations: " + ", ".join(f"{k} #{v}" for k, v in current.evaluations.items()))

# --- what to train on --------------------------------------------------------------------------------------------
st.subheader("Data")
with ui.stop_on_error():
    choices = review.filter_choices(store)
d1, d2 = st.columns([3, 2])
with d1:
    export = export_settings(
        "tr",
        datasets=[d for d in choices["datasets"] if d not in ("general", "eval")],
        categories=[c for c in choices["categories"] if c],
    )
with d2:
    try:
        preview = preview_export(store, export)
    except WorkbenchError as exc:
        preview = None
        st.error(escape_markdown(exc))
    if preview is not None:
        st.markdown("**The export (preview)**")
        export_preview(store, export, preview, "tr")

# --- how to train ---------------------------------------------------------------------------------------------------
st.subheader("Model and training")
k1, k2 = st.columns(2)
source = k1.radio(
    "Model",
    ["embedded", "folder", "run"],
    horizontal=True,
    key="tr_source",
    format_func={
        "embedded": f"Embedded ({EMBEDDED_MODEL})",
        "folder": "A local folder",
        "run": "Continue a run",
    }.get,
    help=TRAIN_HELP["base_model"],
)
base_model, from_run, init = None, None, None
if source == "folder":
    base_model = k1.text_input("Model folder", key="tr_folder", placeholder="/path/to/model") or None
elif source == "run":
    finished = [r.id for r in run_list if r.state == "done"]
    if not finished:
        k1.caption("No finished run yet: train one first.")
    else:
        from_run = k1.selectbox("Run", finished, key="tr_from_run", format_func=lambda i: f"run {i}")
        init = k1.radio(
            "Adapter",
            ["continue", "fresh"],
            horizontal=True,
            key="tr_init",
            help="continue: train this run's adapter further; fresh: a new adapter on its base model.",
        )
preset = k2.selectbox(
    "Preset (task type)",
    ["(from the data)", *train_config.PRESETS],
    key="tr_preset",
    help=TRAIN_HELP["preset"],
)
preset = None if preset == "(from the data)" else preset
defaults = {**vars(train_config.TrainConfig()), **train_config.preset_values(preset)}
t1, t2, t3 = k2.columns(3)
epochs = t1.number_input(
    "Epochs", 0.5, 50.0, float(defaults["epochs"]), 0.5, help=TRAIN_HELP["epochs"], key="tr_epochs"
)
rank = t2.selectbox(
    "LoRA rank",
    RANKS,
    index=RANKS.index(defaults["lora_rank"]),
    help=TRAIN_HELP["lora_rank"],
    key="tr_rank",
)
lr = t3.number_input(
    "Learning rate",
    1e-6,
    1e-1,
    float(defaults["learning_rate"]),
    format="%.0e",
    help=TRAIN_HELP["learning_rate"],
    key="tr_lr",
)
eval_dataset = st.selectbox(
    "Held-out eval dataset",
    ["eval", *[d for d in choices["datasets"] if d != "eval"]],
    key="tr_eval",
    help="Base and tuned model are both scored on it when the run ends "
    "(and on the general set, to see forgetting). Empty: the export's validation split.",
)

busy = current is not None and current.running
nothing = preview is None or bool(preview.nothing)
if busy:
    st.caption(f"Pipeline {current.id} is running: cancel it or wait for it to end before starting another.")
elif preview is not None and not preview.nothing:
    st.caption(
        f"Exports {sum(r.taken for r in preview.rows):,} records, trains on them and evaluates; changes no "
        "record."
    )
if st.button("Export, train and evaluate", type="primary", disabled=busy or nothing, key="tr_start"):
    try:
        started = pipeline.start_pipeline(
            store,
            export,
            preset=preset,
            from_run=from_run,
            init=init,
            train={"base_model": base_model, "epochs": epochs, "lora_rank": rank, "learning_rate": lr},
            eval_dataset=eval_dataset,
            author=author,
        )
    except WorkbenchError as exc:
        ui.fail(exc)
    ui.flash("success", f"Pipeline {started.id} started: exporting, then training in the background.")
    st.rerun()
