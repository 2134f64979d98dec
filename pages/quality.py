"""Quality: what the checks found, by code and severity; fix the safe ones in bulk; contracts and settings."""

import json

import altair as alt
import pandas as pd
import streamlit as st

import ui
from workbench import curation, patterns, review
from workbench.contracts import KIND_HELP, KINDS, Contract, schema_from_text
from workbench.errors import WorkbenchError
from workbench.markup import escape_markdown
from workbench.review import BulkAction, ReviewFilter

store, author = ui.page_frame(
    "Quality",
    "What the checks found in the store. Click a bar to open those records in Review; fix the safe ones "
    "in bulk (one undo reverts it); set what each category's answers must look like.",
)
state = st.session_state
with ui.stop_on_error():
    issues = curation.issues_by_code(store)
    contracts = curation.get_contracts(store)
    settings = curation.get_settings(store)
    categories = [c for c in review.filter_choices(store)["categories"] if c]

# --- the picture: issues by code and severity --------------------------------------------------------------
st.subheader("Issues by code")
if not issues:
    st.success(
        "No issues found: every record passes the checks. Import more data on the Import page, or set "
        "contracts below to hold answers to a format."
    )
else:
    frame = pd.DataFrame(
        [
            {
                "code": i.code,
                "severity": i.severity,
                "records": i.records,
                "rule": i.title,
                "safe autofix": "yes" if i.fixable else "no",
            }
            for i in issues
        ]
    )
    pick = alt.selection_point(fields=["code"], name="pick")
    chart = (
        alt.Chart(frame)
        .mark_bar(cursor="pointer")
        .encode(
            y=alt.Y("code", sort="-x", title=None, axis=alt.Axis(labelLimit=200)),
            x=alt.X("records", title="records", axis=alt.Axis(tickMinStep=1, format="d")),
            color=alt.Color(
                "severity", scale=alt.Scale(domain=["error", "warning"], range=["#d62728", "#ff9f0e"])
            ),
            tooltip=["code", "severity", "records", "rule", "safe autofix"],
        )
        .add_params(pick)
        .properties(height=alt.Step(30))
    )
    ui.chart_to_review(chart, "q_chart", lambda code: ReviewFilter(issue_codes=(code,)))

    # --- the records and the actions: one row per code ------------------------------------------------------
    for issue in issues:
        row = st.columns([2.2, 4.5, 1.6, 2.2], vertical_alignment="center")
        row[0].markdown(f"{'✖' if issue.severity == 'error' else '▲'} `{issue.code}`")
        row[1].caption(f"{issue.title}")
        ui.review_link(f"{issue.records:,} records", ReviewFilter(issue_codes=(issue.code,)), where=row[2])
        if issue.fixable:
            target = ReviewFilter(issue_codes=(issue.code,))
            n = review.preview_bulk(store, target, BulkAction("autofix"))
            if row[3].button(
                f"Fix all {n:,}",
                key=f"q_fix_{issue.code}",
                disabled=not n,
                help=f"Apply the safe autofixes to the {n:,} records with {issue.code}, as one "
                f"operation (undo it on the Review page's recent bulk actions, or below).",
            ):
                try:
                    result = review.apply_bulk(store, target, BulkAction("autofix"), author)
                    ui.flash(
                        "success",
                        f"Operation #{result.operation_id}: fixed {result.changed:,} records "
                        f"with {issue.code}.",
                    )
                    state.q_last_op = result.operation_id
                except WorkbenchError as exc:
                    ui.flash("error", str(exc))
                st.rerun()
        else:
            row[3].caption("fix by hand in Review")

if state.get("q_last_op"):
    if st.button(f"Undo operation #{state.q_last_op}", key="q_undo"):
        try:
            done = review.undo_operation(store, state.q_last_op, author)
            ui.flash(
                "success",
                f"Undid #{state.q_last_op}: {done.reverted:,} records put back"
                + (f", {done.left_alone:,} changed since and left as they are" if done.left_alone else ""),
            )
        except WorkbenchError as exc:
            ui.flash("error", str(exc))
        state.q_last_op = None
        st.rerun()

# --- output contracts --------------------------------------------------------------------------------------
st.subheader("Output contracts")
st.caption(
    "What the answers of a category must be: one of a set of labels, JSON, JSON following a schema, or text "
    "matching a pattern. A record whose last answer breaks its category's contract gets an error."
)
if contracts:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "category": c.category,
                    "kind": c.kind,
                    "spec": "" if c.spec is None else json.dumps(c.spec, ensure_ascii=False),
                }
                for c in contracts.values()
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={  # the spec takes the room: a JSON schema is long
            "category": st.column_config.TextColumn(width="small"),
            "kind": st.column_config.TextColumn(width="small"),
            "spec": st.column_config.TextColumn(
                width="large", help="Hover a cell to read a long spec whole."
            ),
        },
    )
if not categories:
    st.info(
        "No record has a category yet: give records categories (on import or in Review) to set contracts."
    )
else:
    c1, c2 = st.columns([1, 1])
    category = c1.selectbox("Category", categories, key="q_cat")
    current = contracts.get(category)
    kind = c2.selectbox(
        "Kind",
        KINDS,
        key=f"q_kind_{category}",
        index=KINDS.index(current.kind) if current else 0,
        help=" · ".join(f"{name}: {text}" for name, text in KIND_HELP.items()),
    )
    spec_text = ""
    if current and current.kind == kind and current.spec is not None:
        spec_text = (
            ", ".join(current.spec)
            if kind == "labels"
            else (
                json.dumps(current.spec, ensure_ascii=False, indent=1)
                if kind == "json_schema"
                else current.spec
            )
        )
    spec_in = None
    if kind == "labels":
        spec_in = st.text_input(
            "Labels", spec_text, key=f"q_spec_{category}_{kind}", placeholder="refund, cancel, 物流"
        )
    elif kind == "json_schema":
        spec_in = st.text_area(
            "JSON Schema",
            spec_text,
            key=f"q_spec_{category}_{kind}",
            height=150,
            placeholder='{"type": "object", "required": ["order_id"]}',
        )
    elif kind == "regex":
        spec_in = st.text_input(
            "Pattern (the whole answer must match)",
            spec_text,
            key=f"q_spec_{category}_{kind}",
            placeholder=r"\d{4}-\d{2}-\d{2}",
            help=patterns.SYNTAX_HELP,
        )
    contract = None
    if kind != "json" and not (spec_in or "").strip():
        st.caption(
            "Write the "
            + {"labels": "labels", "json_schema": "schema", "regex": "pattern"}[kind]
            + " to see how many records the contract would flag before you save it."
        )
    else:
        try:
            if kind == "labels":
                spec = [x.strip() for x in spec_in.split(",") if x.strip()]
            elif kind == "json_schema":
                spec = schema_from_text(spec_in)
            else:
                spec = spec_in or None
            contract = Contract(category, kind, spec)
            preview = curation.preview_contract(store, contract)
            st.markdown(
                f"This contract would flag **{preview.flagged:,} of {preview.records:,}** records of "
                f"this category that have an answer."
            )
            for _answer, why in preview.examples:
                st.text(f"· {why}")
        except WorkbenchError as exc:
            contract = None
            st.warning(f"{escape_markdown(exc)}. Fix it to see what it would flag.")
    s1, s2, _ = st.columns([1, 1, 3])
    if s1.button("Save the contract", disabled=contract is None, type="primary", key="q_save_contract"):
        try:
            curation.set_contract(store, contract)
            ui.flash("success", f"Saved the {kind} contract of {category!r} and re-checked its records.")
        except WorkbenchError as exc:
            ui.flash("error", str(exc))
        st.rerun()
    if current and s2.button("Remove it", key="q_remove_contract"):
        curation.remove_contract(store, category)
        ui.flash("success", f"Removed the contract of {category!r}.")
        st.rerun()

# --- settings ----------------------------------------------------------------------------------------------
st.subheader("Settings")
with st.form("q_settings", border=False):
    t1, t2 = st.columns(2)
    max_tokens = t1.number_input(
        "max_tokens",
        min_value=16,
        value=int(settings["max_tokens"]),
        step=128,
        help=curation.SETTING_HELP["max_tokens"],
    )
    target = t2.text_input(
        "target_model", str(settings["target_model"]), help=curation.SETTING_HELP["target_model"]
    )
    if st.form_submit_button("Save the settings and re-check"):
        try:
            curation.set_setting(store, "max_tokens", int(max_tokens))
            curation.set_setting(
                store, "target_model", target.strip() or curation.default_setting("target_model")
            )
            curation.recheck(store)
            ui.flash("success", "Saved the settings and re-checked every record.")
        except WorkbenchError as exc:
            ui.flash("error", str(exc))
        st.rerun()
