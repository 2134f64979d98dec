"""Train: one click exports the curated records, trains a LoRA adapter and evaluates base and tuned, in the
background; a live panel shows the run; the run's lineage links data, export, run, adapter and evaluations."""

import runpy
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from workbench import pipeline as P
from workbench import review
from workbench.errors import WorkbenchError
from workbench.export import ExportConfig, preview_export
from workbench.export.download import DOWNLOAD_FORMATS, download_curated_set, download_name
from workbench.markup import escape_markdown
from workbench.models import EMBEDDED_MODEL
from workbench.store import Store, default_root
from workbench.train import config as train_config
from workbench.train import runs

S = st.session_state
if not S.get("in_frame"):  # opened by a link before the app's entry ran: run the entry, which runs this page
    runpy.run_path(str(Path(__file__).resolve().parent.parent / "app.py"))
    st.stop()
AUTHOR = S.get("author") or "app"
EXPORT_HELP = ExportConfig.help_texts()
TRAIN_HELP = train_config.help_texts()
STEP_AXIS = alt.Axis(format=",d", tickMinStep=1)  # whole steps, never "14.000000"

st.title("Train")
st.caption(
    "Export the curated records, train a LoRA adapter on them and evaluate it against the base model, "
    "in one click. The run goes on in the background: close the browser and come back."
)


def fail(exc: Exception) -> None:
    st.error(escape_markdown(exc))
    st.button("Retry", key="tr_retry")
    st.stop()


try:
    store = Store.open(str(default_root()))
    current = P.latest_pipeline(store)
except WorkbenchError as exc:
    fail(exc)

if S.get("tr_flash"):
    st.success(S.pop("tr_flash"))


# --- the live panel: reads the pipeline's and the run's folders, never the store --------------------------------
@st.fragment(run_every=2.0 if current is not None and current.running else None)
def live_panel(pipeline_id: int) -> None:
    status = P.pipeline_status(store, pipeline_id)
    live = P.live_run(status)
    st.subheader(f"Pipeline {status.id}: {status.state}")
    stages = ["export", "train", "evaluate", "done"]
    at = stages.index(status.stage) if status.stage in stages else 0
    st.caption(
        " → ".join(f"**{s}**" if n == at and status.running else s for n, s in enumerate(stages))
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
            P.cancel_pipeline(store, status.id)
            st.rerun()
    elif status.state in ("cancelled", "failed") and status.run_id is not None:
        if c2.button(
            "Resume", key="tr_resume", help="Continue the run from its latest checkpoint, then evaluate."
        ):
            try:
                P.resume_pipeline(store, status.id)
            except WorkbenchError as exc:
                st.error(escape_markdown(exc))
            else:
                st.rerun(scope="app")
    if not status.running and S.get("tr_was_running") == status.id:
        S.pop("tr_was_running")
        st.rerun(scope="app")  # the run ended while watched: show the lineage and let a new one start
    if status.running:
        S.tr_was_running = status.id


try:
    run_list = runs.list_runs(store, limit=20)
except WorkbenchError as exc:
    fail(exc)
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
try:
    choices = review.filter_choices(store)
except WorkbenchError as exc:
    fail(exc)
d1, d2 = st.columns([3, 2])
with d1:
    datasets = st.multiselect(
        "Datasets",
        [d for d in choices["datasets"] if d not in ("general", "eval")],
        help=EXPORT_HELP["datasets"],
        key="tr_datasets",
        placeholder="every task dataset",
    )
    categories = st.multiselect(
        "Categories",
        [c for c in choices["categories"] if c],
        help=EXPORT_HELP["categories"],
        key="tr_categories",
        placeholder="every category",
    )
    per_category = st.number_input(
        "Target records per category",
        0,
        1_000_000,
        0,
        help=EXPORT_HELP["per_category"],
        key="tr_per_category",
    )
    g1, g2 = st.columns(2)
    general_share = g1.slider(
        "General data share", 0.0, 0.5, 0.2, 0.01, help=EXPORT_HELP["general_share"], key="tr_general"
    )
    val = g2.slider("Validation share", 0.0, 0.5, 0.1, 0.01, help=EXPORT_HELP["val"], key="tr_val")
export = ExportConfig(
    name="app",
    datasets=tuple(datasets) or None,
    categories=tuple(categories) or None,
    per_category=int(per_category) or None,
    general_share=general_share,
    val=val,
)
with d2:
    try:
        preview = preview_export(store, export)
    except WorkbenchError as exc:
        preview = None
        st.error(escape_markdown(exc))
    if preview is not None and preview.nothing:
        st.warning(f"Nothing to export: {escape_markdown(preview.nothing)}")
    elif preview is not None:
        frame = pd.DataFrame(
            [
                {
                    "category": r.category or "(none)"
                    if r.pool == "task"
                    else "general data"
                    + (f": {r.category}" if r.category and r.category != "general" else ""),
                    "pool": r.pool,
                    "taken": r.taken,
                    "cut": r.cut,
                    "short": r.short,
                }
                for r in preview.rows
            ]
        )
        st.markdown("**The export (preview)**")
        st.altair_chart(
            alt.Chart(frame)
            .mark_bar()
            .encode(
                x=alt.X("taken:Q", title="records taken", axis=alt.Axis(format=",d", tickMinStep=1)),
                y=alt.Y("category:N", sort="-x", title=None, axis=alt.Axis(labelLimit=160)),
                color=alt.Color("pool:N"),
                tooltip=list(frame.columns),
            )
            .properties(height=max(120, 30 * len(frame))),
            width="stretch",
            height=max(120, 30 * len(frame)) + 60,  # the bars, plus the axis below them
        )
        st.caption(
            f"{sum(r.taken for r in preview.rows):,} records · general share {preview.general_share:.0%} · "
            f"{preview.leaks:,} left out as too like an eval record"
        )
        f1, f2 = st.columns([2, 1], vertical_alignment="bottom")
        fmt = f1.selectbox(
            "Download the curated set as",
            list(DOWNLOAD_FORMATS),
            format_func=lambda f: DOWNLOAD_FORMATS[f].label,
            key="tr_download_format",
            help="Exports with these settings (or reuses the same export) and downloads train then val lines, "
            "to train elsewhere.",
        )
        f2.download_button(
            "Download",
            data=lambda: download_curated_set(store, export, fmt).data,
            file_name=download_name(export, fmt),
            mime=DOWNLOAD_FORMATS[fmt].mime,
            icon=":material/download:",
            on_click="ignore",
        )

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
defaults = train_config.PRESETS.get(preset or "classification", {})
t1, t2, t3 = k2.columns(3)
epochs = t1.number_input(
    "Epochs", 0.5, 50.0, float(defaults.get("epochs", 3)), 0.5, help=TRAIN_HELP["epochs"], key="tr_epochs"
)
rank = t2.selectbox(
    "LoRA rank",
    [4, 8, 16, 32, 64, 128, 256],
    index=[4, 8, 16, 32, 64, 128, 256].index(defaults.get("lora_rank", 64)),
    help=TRAIN_HELP["lora_rank"],
    key="tr_rank",
)
lr = t3.number_input(
    "Learning rate",
    1e-6,
    1e-1,
    float(defaults.get("learning_rate", 2e-4)),
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
        started = P.start_pipeline(
            store,
            export,
            preset=preset,
            from_run=from_run,
            init=init,
            train={"base_model": base_model, "epochs": epochs, "lora_rank": rank, "learning_rate": lr},
            eval_dataset=eval_dataset,
            author=AUTHOR,
        )
    except WorkbenchError as exc:
        fail(exc)
    S.tr_flash = f"Pipeline {started.id} started: exporting, then training in the background."
    st.rerun()
