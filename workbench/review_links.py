"""The Review filter in a link: a ReviewFilter to query parameters and back, so a page can open Review filtered
(Overview's bar, a cluster, an import, the records hard after a run) and a reload keeps the filter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import WorkbenchError
from .store.records import STATUSES
from .store.review import ReviewFilter

_LIST_PARAMS = {
    "dataset": "datasets",
    "status": "statuses",
    "category": "categories",
    "tag": "tags",
    "task_type": "task_types",
    "issue": "issue_codes",
    "source": "sources",
}


def filter_from_params(params: Mapping[str, list[str]]) -> ReviewFilter:
    """The filter a URL's query parameters name (each a list of values, as `st.query_params.to_dict` lists
    them with get_all); unknown parameters are ignored, bad values are an error that names them."""
    values: dict[str, Any] = {}
    for param, name in _LIST_PARAMS.items():
        found = [v for v in params.get(param, []) if v is not None]
        if found:
            values[name] = tuple(found)
    bad = [s for s in values.get("statuses", ()) if s not in STATUSES]
    if bad:
        raise WorkbenchError(f"unknown status {bad[0]!r} in the link; statuses are {', '.join(STATUSES)}")
    for param, name in (
        ("severity", "severity"),
        ("duplicate", "duplicate"),
        ("text", "text"),
        ("in", "text_in"),
        ("feedback", "feedback"),
        ("queue", "assigned_to"),
    ):
        found = params.get(param) or []
        if found and found[0]:
            values[name] = found[0]
    try:
        imports = tuple(int(v) for v in params.get("import", []) if v)
    except ValueError:
        raise WorkbenchError(f"import {params['import'][0]!r} in the link is not an import number") from None
    if imports:
        values["imports"] = imports
    for param, name, what in (("cluster", "cluster", "cluster"), ("hard", "hard_after_run", "run")):
        if params.get(param) and params[param][0] != "":
            try:
                values[name] = int(params[param][0])
            except ValueError:
                raise WorkbenchError(
                    f"{param} {params[param][0]!r} in the link is not a {what} number"
                ) from None
    for param, name in (("score_min", "score_min"), ("score_max", "score_max")):
        if params.get(param) and params[param][0] != "":
            try:
                values[name] = float(params[param][0])
            except ValueError:
                raise WorkbenchError(f"{param} {params[param][0]!r} in the link is not a number") from None
    flt = ReviewFilter(**values)
    flt.sql()  # validates severity, duplicate state and where text is searched
    return flt


def filter_to_params(flt: ReviewFilter) -> dict[str, list[str]]:
    """The query parameters for a filter (the inverse of filter_from_params); empty fields are left out."""
    out: dict[str, list[str]] = {}
    for param, name in _LIST_PARAMS.items():
        if getattr(flt, name):
            out[param] = list(getattr(flt, name))
    for param, name in (
        ("severity", "severity"),
        ("duplicate", "duplicate"),
        ("text", "text"),
        ("feedback", "feedback"),
        ("queue", "assigned_to"),
    ):
        if getattr(flt, name):
            out[param] = [getattr(flt, name)]
    if flt.text and flt.text_in != ReviewFilter.text_in:
        out["in"] = [flt.text_in]
    if flt.cluster is not None:
        out["cluster"] = [str(flt.cluster)]
    if flt.imports:
        out["import"] = [str(i) for i in flt.imports]
    if flt.hard_after_run is not None:
        out["hard"] = [str(flt.hard_after_run)]
    for param in ("score_min", "score_max"):
        if getattr(flt, param) is not None:
            out[param] = [f"{getattr(flt, param):g}"]
    return out
