"""Coverage: does each category have the training records it needs, and what would the next export take?"""

import runpy
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from workbench import coverage as cov
from workbench.errors import WorkbenchError
from workbench.export import ExportConfig
from workbench.markup import escape_markdown
from workbench.review import ReviewFilter, filter_to_params
from workbench.store import Store

if not st.session_state.get(
    "in_frame"
):  # opened by a link before the app's entry ran: run the entry, which runs this page
    runpy.run_path(str(Path(__file__).resolve().parent.parent / "app.py"))
    st.stop()

S = st.session_state
AUTHOR = S.get("author") or "app"
REVIEW = "pages/review.py"
HELP = ExportConfig.help_texts()
STATUS_COLOURS = {
    "new": "#9ecae1",
    "labeled": "#4292c6",
    "fixed": "#74c476",
    "approved": "#238b45",
    "rejected": "#bdbdbd",
}

st.title("Coverage")
st.caption(
    "Records per category by status, against the band of training records its task type needs. "
    "Ready is what the next export takes: approved or fixed, without errors, not a duplicate, not a copy of an "
    "eval record. "
    "Click a bar to open the category in Review."
)

with st.expander("Export settings the preview uses", expanded=False):
    e1, e2, e3, e4 = st.columns(4)
    per_category = e1.number_input(
        "per_category (0: no target)",
        min_value=0,
        value=0,
        step=100,
        help=HELP["per_category"],
        key="cv_per_category",
    )
    general_share = e2.slider(
        "general_share", 0.0, 0.5, 0.2, 0.01, help=HELP["general_share"], key="cv_share"
    )
    upsample = e3.toggle("upsample", help=HELP["upsample"], key="cv_upsample")
    guard = e4.selectbox("leakage_guard", ["auto", "exact"], help=HELP["leakage_guard"], key="cv_guard")
config = ExportConfig(
    per_category=per_category or None, general_share=general_share, upsample=upsample, leakage_guard=guard
)

try:
    store = Store.open()
    with st.spinner("Counting and planning the export ..."):
        found = cov.coverage(store, config)
except WorkbenchError as exc:
    st.error(escape_markdown(exc))
    st.button("Retry")
    st.stop()

flash = S.pop("cv_flash", None)
if flash:
    getattr(st, flash[0])(escape_markdown(flash[1]))  # it names a category: text, not markdown

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
            "order": cov.STATUSES.index(s),
            "verdict": c.says,
            "task type": c.task_type or "(none)",
            "default band": cov.BAND_ADVICE.get(c.task_type or "", "none"),
        }
        for c in shown
        for s in cov.STATUSES
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
        color=alt.Color(
            "status", scale=alt.Scale(domain=list(STATUS_COLOURS), range=list(STATUS_COLOURS.values()))
        ),
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
    event = st.altair_chart(chart, width="stretch", on_select="rerun", key="cv_chart")
    picked = (event.selection.get("pick") or [{}])[0] if event and event.selection else {}
    if picked.get("category"):
        name = picked["category"]
        st.switch_page(
            REVIEW,
            query_params=filter_to_params(ReviewFilter(categories=("" if name == "(none)" else name,))),
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
    cols[n % 2].page_link(
        REVIEW,
        label=escape_markdown(
            f"{label[c.category]}: {c.brief}" + (f", {c.open_badcases:,} open" if c.open_badcases else "")
        ),
        query_params=filter_to_params(ReviewFilter(categories=(c.category or "",))),
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
            cov.set_target(store, chosen, int(low), int(high), AUTHOR)
            S.cv_flash = ("success", f"{chosen}: band {int(low):,}-{int(high):,}.")
        except WorkbenchError as exc:
            S.cv_flash = ("error", str(exc))
        st.rerun()
    if current and current.band_source == "set" and t5.button("Back to default", key="cv_clear"):
        cov.clear_target(store, chosen)
        st.rerun()

# --- the next export: general share and the preview -------------------------------------------------------------
st.subheader("The next export")
left, right = st.columns([1, 2], gap="large")
general = found.general
with right:
    preview = found.preview  # the export's own plan, which `ready` above comes from
    if preview is not None:
        if preview.nothing:
            st.info(escape_markdown(preview.nothing))
        rows = pd.DataFrame(
            [
                {
                    "pool": r.pool,
                    "category": r.category or "(none)",
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
        if not rows.empty:
            st.dataframe(rows, hide_index=True, width="stretch")
        st.caption(
            f"What `workbench export` with these settings would take (nothing written) · "
            f"{preview.leaks:,} eval leaks left out ({preview.guard}) · {preview.eval_records:,} eval records"
        )
        for note in preview.notes:
            st.caption(escape_markdown(note))
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
