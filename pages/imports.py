"""Import: bring records in from files, pasted text or a one-badcase form; every import's report and rejects."""

import pandas as pd
import streamlit as st

import ui
from ui.import_report import show_report
from workbench import ingest, jobs, review
from workbench.errors import WorkbenchError
from workbench.ingest import DATASET_KINDS
from workbench.markup import escape_markdown
from workbench.review import ReviewFilter

store, author = ui.page_frame(
    "Import",
    "Bring badcases, general data or an eval set into the store. Every line is imported or rejected with "
    "its reason; a file that cannot be read imports nothing.",
)
state = st.session_state
with ui.stop_on_error():
    known = review.filter_choices(store)["datasets"]
    imports = ingest.recent_imports(store)


def dataset_picker(key: str) -> str:
    options = [*DATASET_KINDS, *(d for d in known if d not in DATASET_KINDS)] + ["(new badcases dataset)"]
    chosen = st.selectbox(
        "Dataset",
        options,
        key=f"{key}_dataset",
        help="badcases: your model's failures to fix and train on; general: ordinary data mixed "
        "into training (15-30%); eval: held out, never trained on.",
    )
    if chosen == "(new badcases dataset)":
        chosen = st.text_input(
            "New dataset name", key=f"{key}_new", placeholder="e.g. badcases-2026-11"
        ).strip()
    return chosen


def run_import(action) -> None:
    """Import pasted text or the form's badcase (small: here and now); its report, or what stopped it, is kept
    for the next render."""
    state.im_shown, state.im_errors = [], []
    try:
        with st.spinner("Importing ..."):
            state.im_shown.append(action())
    except WorkbenchError as exc:
        state.im_errors.append(str(exc))
    st.rerun()


# --- background imports of uploaded files ---------------------------------------------------------------------
# Uploads are imported by a process of their own: the page stays usable (and may be closed) while a big file is
# read, and reopening it reattaches. The panel polls the job's folder only while the job runs.
latest = jobs.latest_job(store, "import")


def show_outcomes(job: jobs.JobStatus) -> None:
    for outcome in job.import_outcomes():
        if isinstance(outcome, str):
            st.error(
                escape_markdown(outcome)
                + " Nothing was imported from it; fix the file (or pick another) and import it "
                "again."
            )
        else:
            show_report(store, outcome)


@st.fragment(run_every=1 if latest and latest.running else None)
def import_panel() -> None:
    """Where the latest upload import stands (reads its folder only); its reports once it is done."""
    job = jobs.latest_job(store, "import")
    if job is None:
        return
    if job.running:
        where = (
            f"{job.detail}: {job.stage or 'starting'}"
            + (f" {job.done:,} / {job.total:,}" if job.total else "")
            if job.detail
            else "starting ..."
        )
        st.progress(
            job.fraction or 0.0, text=f"Importing in the background (job {job.id}) · {escape_markdown(where)}"
        )
        st.caption(
            "You can keep working on other pages or close the browser: the import goes on, and this page shows "
            "where it is when you come back."
        )
        if st.button("Cancel the import", key="im_cancel"):
            jobs.cancel_job(store, job.id, "import")
            st.rerun(scope="fragment")
        state.im_watching = job.id
        return
    if state.get("im_watching") == job.id:  # it just finished: refresh the log below, then show the reports
        state.im_watching, state.im_seen = None, job.id
        st.rerun(scope="app")
    files = len(job.imports)
    summary = (
        f"Upload import (job {job.id}) {job.state} at {job.finished_at}: {files} file(s), "
        f"{job.imported:,} records imported"
    )
    if job.state != "done":
        {"failed": st.error, "cancelled": st.warning}.get(job.state, st.info)(
            summary
            + ". The file it was importing when it stopped was rolled back (nothing of it is in the store); "
            "the files finished before are listed below."
            + (f"\n\n{escape_markdown(job.error)}" if job.error else "")
        )
    if state.get("im_seen") == job.id:  # this browser session started or watched it: the whole report
        show_outcomes(job)
    elif job.imports:
        with st.expander(summary):
            show_outcomes(job)


upload, paste, form = st.tabs(["Upload files", "Paste records", "Write one badcase"])
with upload:
    limit = st.get_option("server.maxUploadSize")
    state.setdefault("im_files_n", 0)  # a new key empties the uploader once its files are on their way
    files = st.file_uploader(
        f"JSONL, JSON, CSV/TSV or Parquet; UTF-8 (with or without BOM), UTF-16 or GB18030; "
        f"up to {limit} MB a file (server.maxUploadSize in .streamlit/config.toml)",
        type=list(ingest.UPLOAD_FORMATS),
        accept_multiple_files=True,
        key=f"im_files_{state.im_files_n}",
    )
    u1, u2 = st.columns(2)
    with u1:
        dataset = dataset_picker("im_up")
    category = (
        u2.text_input(
            "Default category", key="im_up_category", help="Given to records that have none of their own."
        ).strip()
        or None
    )
    busy = bool(latest and latest.running)
    if st.button(
        f"Import {len(files)} file(s)" if files else "Import",
        disabled=not files or not dataset or busy,
        type="primary",
        key="im_up_go",
        help="Wait for the running import to finish (or cancel it) first." if busy else None,
    ):
        try:
            started = jobs.start_import_job(
                store,
                [(f.name, f.getvalue()) for f in files],
                dataset=dataset,
                category=category,
                author=author,
            )
            state.im_watching, state.im_shown, state.im_errors = started.id, [], []
            state.im_files_n += 1
        except WorkbenchError as exc:  # another import still running, a disk that filled while staging
            ui.flash("error", exc)
        st.rerun()
    import_panel()
with paste:
    text = st.text_area(
        "Records",
        key="im_paste_text",
        height=200,
        placeholder='{"messages": [{"role": "user", "content": "我要退款"}, '
        '{"role": "assistant", "content": "refund"}]}\n'
        "(JSONL, a JSON array, or CSV/TSV with a header line)",
    )
    p1, p2 = st.columns(2)
    with p1:
        p_dataset = dataset_picker("im_paste")
    p_category = p2.text_input("Default category", key="im_paste_category").strip() or None
    if st.button("Import the pasted records", disabled=not text.strip() or not p_dataset, key="im_paste_go"):
        run_import(
            lambda: ingest.import_text(store, text, dataset=p_dataset, category=p_category, author=author)
        )
with form:
    with st.form("im_badcase", clear_on_submit=True, border=False):
        system = st.text_area("System prompt (optional)", height=68, key="im_form_system")
        user = st.text_area("User message", height=90, placeholder="我的外卖到哪了？", key="im_form_user")
        said, right = st.columns(2)
        bad = said.text_area(
            "What the model said (the bad output)", height=90, placeholder="refund", key="im_form_bad"
        )
        answer = right.text_area(
            "The right answer", height=90, placeholder="delivery_status", key="im_form_answer"
        )
        f1, f2 = st.columns(2)
        f_category = f1.text_input("Category", placeholder="e.g. 意图 or intent", key="im_form_category")
        f_dataset = f2.selectbox("Dataset", ["badcases", *(d for d in known if d not in DATASET_KINDS)])
        if st.form_submit_button("Add the badcase", type="primary"):
            run_import(
                lambda: ingest.add_badcase(
                    store,
                    system=system,
                    user=user,
                    bad_output=bad,
                    answer=answer,
                    category=f_category,
                    dataset=f_dataset,
                    author=author,
                )
            )

for error in state.get("im_errors") or []:
    st.error(
        escape_markdown(error)
        + " Nothing was imported from it; fix the file (or pick another) and import it again."
    )
for report in state.get("im_shown") or []:
    show_report(store, report)

st.subheader("Imports so far")
if not imports:
    st.info(
        "Nothing imported yet: upload a file above, paste records, or write a badcase. "
        "From the command line: `workbench import data.jsonl`."
    )
else:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "#": i.id,
                    "file": i.file_name,
                    "dataset": i.dataset,
                    "category": i.category or "",
                    "when": i.started_at,
                    "format": f"{i.file_format}, {i.encoding}",
                    "imported": i.imported,
                    "rejected": i.rejected,
                    "by": i.author or "",
                }
                for i in imports
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={"when": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")},
    )
    cols = st.columns(4)
    for n, i in enumerate(imports[:8]):
        ui.review_link(
            f"#{i.id} {i.file_name} ({i.imported:,})", ReviewFilter(imports=(i.id,)), where=cols[n % 4]
        )
    with st.expander("Rejected lines of an earlier import"):
        with_rejects = [i for i in imports if i.rejected]
        if not with_rejects:
            st.caption("No import has rejected lines.")
        else:
            pick = st.selectbox(
                "Import",
                with_rejects,
                format_func=lambda i: f"#{i.id} {i.file_name} ({i.rejected:,} rejected)",
                key="im_old",
            )
            st.download_button(
                "Download its rejected lines (JSONL)",
                ingest.rejects_jsonl(store, pick.id),
                file_name=f"rejects-{pick.id}.jsonl",
                mime="application/jsonl",
                key="im_old_dl",
            )
