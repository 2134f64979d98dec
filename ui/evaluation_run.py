"""The Evaluate page's run panel: start an evaluation of the base model, a finished run or a registered endpoint on
a dataset in the background, watch it (a fragment that reads the job's folder only, polling while it runs), cancel
it, and resume an evaluation that failed or was cancelled."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from workbench import evaluate
from workbench.errors import WorkbenchError
from workbench.evaluate import EvalOptions
from workbench.markup import escape_markdown
from workbench.models import EMBEDDED_MODEL

from . import frame as ui


def eval_set_name(e) -> str:
    """A dataset by its name; an export's split (val, trained, general) with the export's folder."""
    if e.eval_set == "dataset" or not e.source:
        return e.source or e.eval_set
    return f"{e.eval_set} ({Path(e.source).name})"


def run_panel(store, author: str | None) -> None:
    state = st.session_state
    with ui.stop_on_error():
        models = evaluate.evaluation_models(store)
        targets = {t.key: t for t in evaluate.evaluation_targets(store)}
        job = evaluate.latest_eval_job(store)
        unfinished = evaluate.unfinished_evaluations(store)

    # Run an evaluation in the background.
    # The panel reads the job's folder only, and polls only while a job runs.
    @st.fragment(run_every=1.0 if job is not None and job.running else None)
    def job_panel() -> None:
        job = evaluate.latest_eval_job(store)
        if job is None:
            return
        what = f"{f'#{job.evaluation_id} ' if job.evaluation_id else ''}of {job.model} on {job.dataset}"
        if job.running:
            failed = f" · {job.failed_requests:,} requests failed" if job.failed_requests else ""
            st.progress(
                job.fraction or 0.0,
                text=escape_markdown(
                    f"{'Resuming' if job.resumes else 'Running'} evaluation {what}: {job.phase or 'starting'} · "
                    f"{job.done:,}/{job.total or '?'}{failed}"
                ),
            )
            if st.button(
                "Cancel", key="ev_job_cancel", help="What it answered is kept; Resume continues it."
            ):
                evaluate.cancel_eval_job(store, job.id)
                st.rerun(scope="fragment")
            state.ev_job_running = job.id
            return
        if job.state == "done":
            accuracy = (
                f"{job.accuracy:.0%}" if job.accuracy is not None else "no verdicts (a person judges them)"
            )
            st.success(
                escape_markdown(f"Evaluation {what}: done, {job.total or 0:,} records, accuracy {accuracy}.")
            )
        elif job.evaluation_id is None:  # it stopped before the evaluation was stored: nothing to resume
            st.error(escape_markdown(f"Evaluation {what}: {job.state}. {job.error or ''}"))
        if state.get("ev_job_running") == job.id:  # it just ended: show it in the list and offer Resume
            state.ev_job_running = None
            st.rerun(scope="app")

    st.subheader("Run an evaluation")
    with st.container(border=True):
        if not targets:
            st.info(
                "No dataset with records to evaluate on: import an eval set on the **Import** page (dataset eval)."
            )
        busy = job is not None and job.running
        c = st.columns(2, vertical_alignment="bottom")  # two rows: long model and set names stay whole
        model = c[0].selectbox(
            "Model",
            models,
            key="ev_model",
            format_func=lambda m: f"base ({EMBEDDED_MODEL})" if m == "base" else m,
            help="The embedded base model, a finished run's adapter, or a registered OpenAI-compatible endpoint "
            "(`workbench models add NAME --endpoint URL --model ID`).",
        )
        dataset = c[1].selectbox(
            "Eval set",
            list(targets),
            key="ev_set",
            format_func=lambda key: targets[key].label,
            help="A dataset of the store, or a finished run's export: its validation split, the badcases it "
            "trained on, or the general records it did not train on (their loss only).",
        )
        c = st.columns([1, 1, 2], vertical_alignment="bottom")
        limit = c[0].number_input(
            "Records (0: all)",
            min_value=0,
            value=0,
            step=10,
            key="ev_limit",
            help=EvalOptions.help_text("limit"),
        )
        max_new_tokens = c[1].number_input(
            "Max new tokens",
            min_value=1,
            value=EvalOptions().max_new_tokens,
            key="ev_max_new",
            help=EvalOptions.help_text("max_new_tokens"),
        )
        if c[2].button(
            "Evaluate in the background",
            type="primary",
            key="ev_start",
            width="stretch",
            disabled=not targets or busy,
            help="One evaluation runs at a time: wait for this one, or cancel it." if busy else None,
        ):
            try:
                options = EvalOptions(max_new_tokens=int(max_new_tokens), limit=int(limit) or None)
                started = evaluate.start_evaluation(store, model, dataset, options=options, author=author)
                state.ev_job_running = started.id
                ui.flash(
                    "info", f"Started evaluating {model} on {dataset}: it goes on if you close the browser."
                )
            except WorkbenchError as exc:
                ui.flash("error", str(exc))
            st.rerun()
        job_panel()
        resumable = [e for e in unfinished if not (busy and job.evaluation_id == e.id)]
        if resumable:
            labels = {e.id: f"#{e.id} {e.model} on {eval_set_name(e)} · {e.status}" for e in resumable}
            picked = st.selectbox(
                "Unfinished evaluation",
                list(labels),
                key="ev_unfinished",
                format_func=labels.get,
                help="Failed or cancelled: Resume asks only for the records without an answer.",
            )
            stopped = next(e for e in resumable if e.id == picked)
            shows = st.error if stopped.status == "failed" else st.warning
            shows(escape_markdown(stopped.error or f"Evaluation #{stopped.id} is {stopped.status}."))
            if st.button(
                f"Resume #{stopped.id}",
                key="ev_resume",
                disabled=busy,
                help="Ask again only for the records without an answer, in the background "
                f"(as `workbench evaluate --resume {stopped.id}`)"
                + (": after the evaluation running now." if busy else "."),
            ):
                try:
                    started = evaluate.resume_in_background(store, stopped.id, author=author)
                    state.ev_job_running = started.id
                    ui.flash("info", f"Resuming evaluation #{stopped.id} in the background.")
                except WorkbenchError as exc:
                    ui.flash("error", str(exc))
                st.rerun()
