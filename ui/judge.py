"""The LLM judge on the Evaluate page: rubrics for the categories a person judges, asking a registered model for
its suggested verdicts, the suggestions beside the person's verdicts, and how often the two agree."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench import evaluate, registry
from workbench.markup import escape_markdown

from .frame import flash, stop_on_error

PERSON = {
    "better": "right (better)",
    "same": "right (same)",
    "worse": "wrong (worse)",
    "both_bad": "wrong (both bad)",
}


def judge_panel(store, evaluation_id: int, author: str | None) -> None:
    """The judge's part of an evaluation; nothing where every category has a contract."""
    with stop_on_error():
        report = evaluate.evaluation_report(store, evaluation_id)
        rubrics = evaluate.rubrics(store)
    contracts = report.evaluation.config.get("contracts") or {}
    by_person = [c.category for c in report.categories[:-1] if c.category not in contracts and c.done]
    if not by_person:
        return
    st.subheader("LLM judge")
    st.caption(
        "A suggestion for the categories a person judges: a registered model reads the rubric, the question, the "
        "reference and the answer and says right or wrong, with its reason. Only a person's verdict counts; the "
        "agreement below says how far the judge can be trusted."
    )
    _rubric_form(store, by_person, rubrics, author)
    _ask_form(store, evaluation_id, [c for c in by_person if c in rubrics])
    _agreement(store, evaluation_id)


def _rubric_form(store, categories: list[str], rubrics: dict[str, str], author: str | None) -> None:
    with st.expander("Rubrics", expanded=not any(c in rubrics for c in categories)):
        category = st.selectbox("Category", categories, key="judge_rubric_category")
        text = st.text_area(
            "What a right answer does",
            value=rubrics.get(category, ""),
            key=f"judge_rubric_{category}",
            placeholder="礼貌、简短，并且回应了顾客的问题 / polite, short, answers what was asked",
        )
        if st.button("Save the rubric", key="judge_rubric_save"):
            with stop_on_error():
                evaluate.set_rubric(store, category, text, author=author)
            flash("success", f"The rubric of {category} is saved.")
            st.rerun()


def _ask_form(store, evaluation_id: int, categories: list[str]) -> None:
    if not categories:
        st.caption("Write a rubric for a category to ask a judge about its answers.")
        return
    with stop_on_error():
        endpoints = [m.name for m in registry.list_models(store, probe_health=False) if m.kind == "endpoint"]
    if not endpoints:
        st.caption("Register the judge first: `workbench models add NAME --endpoint URL --model ID`.")
        return
    left, right = st.columns([2, 1], vertical_alignment="bottom")
    judge = left.selectbox("Judge", endpoints, key="judge_model", format_func=lambda n: f"endpoint:{n}")
    if right.button(f"Ask the judge about {', '.join(categories)}", key="judge_ask"):
        bar = st.progress(0.0, text="asking the judge")
        with stop_on_error():
            done = evaluate.judge_evaluation(
                store,
                evaluation_id,
                f"endpoint:{judge}",
                categories=categories,
                progress=lambda n, total: bar.progress(n / max(total, 1), text=f"judged {n} of {total}"),
            )
        flash(
            "success" if not done.failed else "warning",
            f"The judge gave {done.judged:,} verdicts; {len(done.failed):,} replies were no verdict (kept with "
            "their text below).",
        )
        st.rerun()


def _agreement(store, evaluation_id: int) -> None:
    with stop_on_error():
        agreement = evaluate.judge_agreement(store, evaluation_id)
    suggestions = agreement.suggestions
    if not suggestions:
        return
    if agreement.total.both:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "category": c.category,
                        "judged by both": c.both,
                        "agree": c.share,
                        "Cohen's kappa": c.kappa,
                    }
                    for c in agreement.categories
                ]
            ),
            hide_index=True,
            column_config={
                "agree": st.column_config.NumberColumn(format="percent"),
                "Cohen's kappa": st.column_config.NumberColumn(
                    format="%.2f",
                    help="1: full agreement; 0: what chance gives. Empty with fewer than two records.",
                ),
            },
        )
    else:
        st.caption(
            "No record has both the judge's and a person's verdict yet: how far the judge agrees with a person is "
            "unknown. Judge a few answers below."
        )
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "record": s.seq,
                    "category": s.category,
                    "judge": s.verdict or "no verdict",
                    "reason, or why none": s.reason if s.verdict else s.error,
                    "person": PERSON.get(s.human_verdict, "not yet"),
                }
                for s in suggestions
            ]
        ),
        hide_index=True,
        height=min(38 + 35 * len(suggestions), 320),
    )
    st.caption(f"Suggested by {escape_markdown(suggestions[0].judge)}.")
