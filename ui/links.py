"""Links into Review that carry a filter: a page link, or a click on a chart's bar (Overview's bar → Review
filtered to it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import altair as alt
import streamlit as st

from workbench.markup import escape_markdown
from workbench.review import ReviewFilter, filter_to_params

REVIEW = "pages/review.py"


def review_link(label: str, flt: ReviewFilter, *, where: Any = st, **options: Any) -> None:
    """A link that opens Review filtered by `flt`; the label is data, shown as text."""
    where.page_link(REVIEW, label=escape_markdown(label), query_params=filter_to_params(flt), **options)


def open_review(flt: ReviewFilter) -> None:
    st.switch_page(REVIEW, query_params=filter_to_params(flt))


def chart_to_review(chart: alt.Chart, key: str, to_filter: Callable[[Any], ReviewFilter]) -> None:
    """Draw a chart whose selection parameter is named "pick"; clicking a mark opens Review filtered to it."""
    event = st.altair_chart(chart, width="stretch", on_select="rerun", key=key)
    picked = (event.selection.get("pick") or [{}])[0] if event and event.selection else {}
    if picked:
        open_review(to_filter(next(iter(picked.values()))))
