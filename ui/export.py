"""The export settings and their preview, one set of widgets for every page that plans an export (Coverage,
Train): the same labels, the defaults and help texts of `ExportConfig`, and a download of the curated set."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from workbench.export import ExportConfig
from workbench.export.config import GENERAL_SHARE_RANGE, LEAKAGE_GUARDS
from workbench.export.download import DOWNLOAD_FORMATS, download_curated_set, download_name
from workbench.export.preview import ExportPreview
from workbench.markup import escape_markdown
from workbench.store import Store

DEFAULTS = ExportConfig()
HELP = ExportConfig.help_texts()
VAL_MAX = 0.5  # the validation share the help text allows


def export_settings(
    key: str, *, datasets: list[str] | None = None, categories: list[str] | None = None
) -> ExportConfig:
    """The export settings as widgets (keys start with `key`); the dataset and category pickers are drawn
    when their options are given. Every value not set here is ExportConfig's default."""
    picked: dict = {}
    if datasets is not None:
        picked["datasets"] = (
            tuple(
                st.multiselect(
                    "Datasets",
                    datasets,
                    help=HELP["datasets"],
                    key=f"{key}_datasets",
                    placeholder="every task dataset",
                )
            )
            or None
        )
    if categories is not None:
        picked["categories"] = (
            tuple(
                st.multiselect(
                    "Categories",
                    categories,
                    help=HELP["categories"],
                    key=f"{key}_categories",
                    placeholder="every category",
                )
            )
            or None
        )
    c1, c2, c3 = st.columns(3)
    per_category = c1.number_input(
        "Target per category",
        min_value=0,
        value=DEFAULTS.per_category or 0,
        step=100,
        help=HELP["per_category"],
        key=f"{key}_per_category",
    )
    general_share = c2.slider(
        "General data share",
        *GENERAL_SHARE_RANGE,
        DEFAULTS.general_share,
        0.01,
        help=HELP["general_share"],
        key=f"{key}_general",
    )
    val = c3.slider("Validation share", 0.0, VAL_MAX, DEFAULTS.val, 0.01, help=HELP["val"], key=f"{key}_val")
    g1, g2 = st.columns(2)
    upsample = g1.toggle(
        "Upsample small categories", DEFAULTS.upsample, help=HELP["upsample"], key=f"{key}_upsample"
    )
    guard = g2.selectbox(
        "Leakage guard",
        LEAKAGE_GUARDS,
        index=LEAKAGE_GUARDS.index(DEFAULTS.leakage_guard),
        help=HELP["leakage_guard"],
        key=f"{key}_guard",
    )
    return ExportConfig(
        name="app",
        **picked,
        per_category=int(per_category) or None,
        general_share=general_share,
        val=val,
        upsample=upsample,
        leakage_guard=guard,
    )


def export_preview(store: Store, config: ExportConfig, preview: ExportPreview, key: str) -> None:
    """What the export would take per category (nothing written), and the curated set to download."""
    if preview.nothing:
        st.warning(f"Nothing to export: {escape_markdown(preview.nothing)}")
        return
    frame = pd.DataFrame(
        [
            {
                "category": (r.category or "(none)")
                if r.pool == "task"
                else "general data" + (f": {r.category}" if r.category and r.category != "general" else ""),
                "pool": r.pool,
                "available": r.available,
                "taken": r.taken,
                "cut": r.cut,
                "short": r.short,
                "repeats": r.repeats,
                "eval leaks": r.leaks,
            }
            for r in preview.rows
        ]
    )
    height = max(120, 30 * len(frame))
    st.altair_chart(
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("taken:Q", title="records taken", axis=alt.Axis(format=",d", tickMinStep=1)),
            y=alt.Y("category:N", sort="-x", title=None, axis=alt.Axis(labelLimit=160)),
            color=alt.Color("pool:N"),
            tooltip=list(frame.columns),
        )
        .properties(height=height),
        width="stretch",
        height=height + 60,  # the bars, plus the axis below them
    )
    st.caption(
        f"What `workbench export` with these settings would take (nothing written): "
        f"{sum(r.taken for r in preview.rows):,} records · general share {preview.general_share:.0%} · "
        f"{preview.leaks:,} left out as too like an eval record ({preview.guard}) · "
        f"{preview.eval_records:,} eval records"
    )
    for note in preview.notes:
        st.caption(escape_markdown(note))
    with st.expander("Per category, in numbers"):
        st.dataframe(frame, hide_index=True, width="stretch")
    f1, f2 = st.columns([2, 1], vertical_alignment="bottom")
    fmt = f1.selectbox(
        "Download the curated set as",
        list(DOWNLOAD_FORMATS),
        format_func=lambda f: DOWNLOAD_FORMATS[f].label,
        key=f"{key}_download_format",
        help="Exports with these settings (or reuses the same export) and downloads train then val lines, "
        "to train elsewhere.",
    )
    f2.download_button(
        "Download",
        data=lambda: download_curated_set(store, config, fmt).data,
        file_name=download_name(config, fmt),
        mime=DOWNLOAD_FORMATS[fmt].mime,
        icon=":material/download:",
        on_click="ignore",
        key=f"{key}_download",
    )
