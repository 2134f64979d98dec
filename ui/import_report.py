"""An import's report as the CLI prints it, then every rejected line (downloadable): the Import page shows it for
each file it imported."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from workbench import ingest
from workbench.ingest import ImportReport
from workbench.markup import escape_markdown
from workbench.review import ReviewFilter
from workbench.store import Store

from .links import review_link


def show_report(store: Store, report: ImportReport) -> None:
    """The import report as the CLI prints it, then every rejected line (downloadable)."""
    name = Path(report.file).name
    box = st.container(border=True)
    box.markdown(
        f"**{escape_markdown(name)}** → {escape_markdown(report.dataset)} (import #{report.import_id})"
    )
    a, b, c, d = box.columns(4)
    a.metric("Imported", f"{report.imported:,}")
    b.metric(
        "Repaired",
        f"{report.repaired:,}",
        help="Lines fixed while importing (curly quotes, a BOM); the original file is kept in the store.",
    )
    c.metric("Rejected", f"{report.rejected:,}")
    d.metric("Time", f"{report.seconds:.1f} s")
    box.text(
        f"file format: {report.file_format}, {report.encoding} · record format: {report.detected_format}"
        + (f" · {report.blank_lines:,} blank lines skipped" if report.blank_lines else "")
    )
    if not report.imported:
        box.error(
            f"Nothing imported from {escape_markdown(name)}: all {report.rejected:,} of its records were rejected. The reasons "
            "are below; fix the file and import it again."
        )
    if report.issue_counts:
        box.text("issues: " + ", ".join(f"{code} {n:,}" for code, _sev, n in report.issue_counts))
    if report.earlier_import:
        eid, ename, when = report.earlier_import
        box.warning(
            f"The same bytes were imported before (import #{eid}, {escape_markdown(ename)}, {when}): the records are now "
            "in the store twice. Dedup on the Clusters page marks the copies."
        )
    if report.rejected:
        box.markdown(
            "**Rejected lines**"
            + (
                f" (the first {len(report.rejects)} of {report.rejected:,})"
                if report.rejected > len(report.rejects)
                else ""
            )
        )
        box.dataframe(
            pd.DataFrame(
                [
                    {"line": r.line, "code": r.code, "reason": r.reason, "raw text": r.raw[:300]}
                    for r in report.rejects
                ]
            ),
            hide_index=True,
            width="stretch",
        )
        box.download_button(
            "Download every rejected line (JSONL)",
            ingest.rejects_jsonl(store, report.import_id),
            file_name=f"rejects-{report.import_id}.jsonl",
            mime="application/jsonl",
            key=f"im_rejects_{report.import_id}",
        )
    if report.imported:
        review_link(
            f"Review the {report.imported:,} records of this import"
            if report.imported > 1
            else "Review the record of this import",
            ReviewFilter(imports=(report.import_id,)),
            where=box,
        )
