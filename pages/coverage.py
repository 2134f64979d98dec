"""Coverage: does each category have the training records it needs, and what would the next export take?"""

import altair as alt
import pandas as pd
import streamlit as st

import ui
from ui.export import export_preview, export_settings
from workbench import coverage
from workbench.errors import WorkbenchError
from workbench.markup import escape_markdown
from workbench.review import STATUSES, ReviewFilter

# the statuses in the library's order, from new (light) to approved (dark green), rejected grey
STATUS_SCALE = alt.Scale(domain=list(STATUSES), range=["#9ecae1", "#4292c6", "#74c476", "#238b45", "#bdbdbd"])

store, author = ui.page_frame(
    "Coverage",
    "Records per category by status, against the band of training records its task type needs. "
    "Ready is what the next export takes: approved or fixed, without errors, not a duplicate, not a copy of an "
    "eval record. Click a bar to open the category in Review.",
)
with st.expander("Export settings the preview uses", expanded=False):
    config = export_settings("cv")
with ui.stop_on_error(), st.spinner("Counting and planning the export ..."):
    found = coverage.coverage(store, config)

if not found.categories:
    st.info(
        "No badcases yet. Import a file on the Import page (or `workbench import data.jsonl`), give the records "
        "categories, and their coverage shows here."
    )
    st.stop()

# --- the picture: a bar per category, stacked by status, the band behind it -----------------------------------
label = {c.category: c.category or "(none)" for c in found.categories}
# Bands differ by orders of magnitude (8-20 beside 2,000-10,000): by default each bar is drawn as a share of
# its own band's low end, so every category's standing is visible; "records" draws the counts.
scale = st.radio(
    "Scale",
    ["share of the band", "records"],
    horizontal=True,
    key="cv_scale",
    help="share of the band: 100% is the band's low end, the shaded part the band; records: the counts.",
)
relative = scale == "share of the band"


def per(c) -> float:
    return c.band[0] / 100 if relative and c.band and c.band[0] else 1.0


shown = [c for c in found.categories if c.band or not relative]
bars = pd.DataFrame(
    [
        {
            "category": label[c.category],
            "status": s,
            "records": c.by_status[s],
            "value": c.by_status[s] / per(c),
            "order": coverage.STATUSES.index(s),
            "verdict": c.says,
            "task type": c.task_type or "(none)",
            "default band": coverage.BAND_ADVICE.get(c.task_type or "", "none"),
        }
        for c in shown
        for s in coverage.STATUSES
        if c.by_status[s]
    ]
)
bands = pd.DataFrame(
    [
        {
            "category": label[c.category],
            "low": c.band[0],
            "high": c.band[1],
            "from": c.band[0] / per(c),
            "to": c.band[1] / per(c),
            "verdict": c.says,
            "band from": c.band_source,
        }
        for c in shown
        if c.band
    ]
)
order = [label[c.category] for c in shown]
y = alt.Y("category", sort=order, title=None, axis=alt.Axis(labelLimit=200))
pick = alt.selection_point(fields=["category"], name="pick")
layers = []
if not bands.empty:
    layers.append(
        alt.Chart(bands)
        .mark_bar(color="#fdd49e", opacity=0.55, height=26)
        .encode(y=y, x="from:Q", x2="to:Q", tooltip=["category", "low", "high", "band from", "verdict"])
    )
layers.append(
    alt.Chart(bars)
    .mark_bar(cursor="pointer", height=16)
    .encode(
        y=y,
        x=alt.X(
            "sum(value):Q",
            title="% of the band's low end (band shaded)" if relative else "records (band shaded)",
            axis=alt.Axis(format=",.0f"),
        ),
        color=alt.Color("status", scale=STATUS_SCALE),
        order="order",
        tooltip=["category", "status", "records", "task type", "default band", "verdict"],
    )
    .add_params(pick)
)
if relative and len(shown) < len(found.categories):
    st.caption(
        f"{len(found.categories) - len(shown)} categories without a band are left off the chart (see the "
        "table; choose records to draw them)."
    )
if not bars.empty:
    chart = alt.layer(*layers).properties(height=alt.Step(40))
    ui.chart_to_review(
        chart, "cv_chart", lambda name: ReviewFilter(categories=("" if name == "(none)" else name,))
    )

# --- per category, in words ----------------------------------------------------------------------------------
table = pd.DataFrame(
    [
        {
            "category": label[c.category],
            "task type": c.task_type or "",
            "ready": c.ready,
            "verdict": c.brief,
            "eval leaks": c.eval_leaks,
            "open": c.open_badcases,
            "errors": c.with_errors,
            "duplicates": c.duplicates,
        }
        for c in found.categories
    ]
)
NUMBER = {  # narrow numbers: the whole table fits 1400 px (the counts per status are in the chart and below)
    "ready": "an export takes them",
    "eval leaks": "of a ready status, left out as too like an eval record",
    "open": "new or labeled: work still to do",
    "errors": "records with error-level issues (not counting rejected ones)",
    "duplicates": "marked duplicates",
}
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    column_config={
        "verdict": st.column_config.TextColumn(
            width="large", help="Over-full: the export down-samples to the band's high end."
        ),
        **{k: st.column_config.NumberColumn(k, width="small", help=h) for k, h in NUMBER.items()},
    },
)
with st.expander("Records per status"):
    st.dataframe(
        pd.DataFrame([{"category": label[c.category], **c.by_status} for c in found.categories]),
        hide_index=True,
        width="stretch",
    )
cols = st.columns(2)  # two per row: a whole verdict fits at 1400 px
for n, c in enumerate(found.categories[:12]):
    ui.review_link(
        f"{label[c.category]}: {c.brief}" + (f", {c.open_badcases:,} open" if c.open_badcases else ""),
        ReviewFilter(categories=(c.category or "",)),
        where=cols[n % 2],
    )

with st.expander("Set a category's band by hand"):
    t1, t2, t3, t4, t5 = st.columns([2, 1, 1, 1, 1], vertical_alignment="bottom")
    chosen = t1.selectbox(
        "Category", [c.category for c in found.categories if c.category], key="cv_target_cat"
    )
    current = found.category(chosen)
    low = t2.number_input(
        "low",
        min_value=0,
        value=current.band[0] if current and current.band else 1000,
        step=100,
        key=f"cv_low_{chosen}",
    )
    high = t3.number_input(
        "high",
        min_value=0,
        value=current.band[1] if current and current.band else 3000,
        step=100,
        key=f"cv_high_{chosen}",
    )
    if t4.button("Set", key="cv_set", disabled=chosen is None):
        try:
            coverage.set_target(store, chosen, int(low), int(high), author)
            ui.flash("success", f"{chosen}: band {int(low):,}-{int(high):,}.")
        except WorkbenchError as exc:
            ui.flash("error", exc)
        st.rerun()
    if current and current.band_source == "set" and t5.button("Back to default", key="cv_clear"):
        coverage.clear_target(store, chosen)
        st.rerun()

# --- the next export: general share and the preview -------------------------------------------------------------
st.subheader("The next export")
left, right = st.columns([1, 2], gap="large")
general = found.general
preview = found.preview  # the export's own plan, which `ready` above comes from
with right:
    if preview is not None:
        export_preview(store, config, preview, "cv")
with left:
    # the export's own figure when it could be planned (val split and general quotas included)
    share = preview.general_share if preview is not None and not preview.nothing else general.actual_share
    low, high = general.band
    st.metric(
        "General data share",
        f"{share:.0%}",
        help="Of the next export's lines, against the "
        f"{low:.0%}-{high:.0%} band that keeps the model's general manners.",
    )
    if general.general_needed > general.general_available:
        st.warning(escape_markdown(general.says))
    elif low <= share <= high:
        st.success(f"Inside the {low:.0%}-{high:.0%} band.")
    else:
        st.warning(
            f"Outside the {low:.0%}-{high:.0%} band: set general_share between them (export settings above)."
        )
    st.caption(
        f"{general.task_records:,} badcase records ready · {general.general_available:,} general records "
        "available"
    )
