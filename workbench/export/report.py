"""report.md: an export told for people: what went in per category, the general mix, and every record left out.

Deterministic like the data files (no timestamps, no timings), so the same export gives the same report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..store.exports import REASONS

if TYPE_CHECKING:
    from . import ExportResult
    from .plan import CategoryPlan

LISTED_PER_REASON = 200  # excluded records listed by id in report.md; excluded.jsonl has every one


def render_report(result: ExportResult, excluded: list[tuple], unselected: list[tuple[str, int]]) -> str:
    config = result.config
    task_train = sum(p.train_rows for p in result.categories)
    task_val = sum(p.val for p in result.categories)
    general_train = sum(p.train_rows for p in result.general)
    general_val = sum(p.val for p in result.general)
    out = [
        f"# Training set `{result.name}`",
        "",
        f"- folder: `{result.folder.name}`",
        f"- hash: `{result.hash}`",
        f"- format: {config.format} (train.jsonl / val.jsonl in messages form"
        + (
            f", plus train.{config.format}.json / val.{config.format}.json and dataset_info.json"
            if config.format != "messages"
            else ""
        )
        + f"), weights: {config.weights}",
        f"- seed: {config.seed}; val share: {config.val:.0%}, stratified by category",
        f"- datasets: {', '.join(config.datasets) if config.datasets else 'every badcases dataset'}; "
        f"statuses: {', '.join(config.statuses)}"
        + (f"; categories: {', '.join(config.categories)}" if config.categories else ""),
        "",
        "## Summary",
        "",
        "| part | train lines | val lines | total |",
        "|---|---:|---:|---:|",
        f"| badcases | {task_train:,} | {task_val:,} | {task_train + task_val:,} |",
        f"| general | {general_train:,} | {general_val:,} | {general_train + general_val:,} |",
        f"| **all** | **{result.train_records:,}** | **{result.val_records:,}** | "
        f"**{result.train_records + result.val_records:,}** |",
        "",
        f"General data: **{result.general_share:.1%}** of all lines (asked: {config.general_share:.0%}; "
        f"advised: 15-30%){' **FLAG: outside 15-30%**' if not 0.15 <= result.general_share <= 0.30 else ''}.",
        "",
    ]
    if result.warnings:
        out += ["## Flags", ""] + [f"- {w}" for w in result.warnings] + [""]
    out += [
        "## Categories",
        "",
        _balance_rule(config),
        "",
        "| category | available | fixed | target | taken | down-sampled | train lines | repeats | val |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    out += [_category_row(p) for p in result.categories]
    out.append("")
    if result.general:
        out += [
            "## General data",
            "",
            f"Drawn from {', '.join(config.general_datasets) if config.general_datasets else 'every general dataset'}"
            f" in proportion to each category's size; {result.general_wanted:,} lines wanted.",
            "",
            "| category | available | taken | train | val |",
            "|---|---:|---:|---:|---:|",
        ]
        out += [
            f"| {_label(p.category)} | {p.available:,} | {p.take:,} | {p.train_rows:,} | {p.val:,} |"
            for p in result.general
        ]
        out.append("")
    out += [
        "## Leakage guard",
        "",
        f"{result.eval_records:,} eval records; guard: {result.leakage_guard}. "
        f"{result.leaks:,} candidate records were too close to an eval record and left out "
        "(listed below under eval-leak). Eval records themselves never enter training.",
        "",
    ]
    out += _left_out(excluded, result.excluded, unselected)
    return "\n".join(out).rstrip("\n") + "\n"


def _balance_rule(config) -> str:
    if config.category_shares or (
        config.task_records and config.per_category is None and not config.category_targets
    ):
        shares = (
            ", ".join(f"{k} {v:.0%}" for k, v in sorted(config.category_shares.items())) or "equal shares"
        )
        size = (
            f"{config.task_records:,} badcase lines"
            if config.task_records
            else "the largest set without repeats"
        )
        rule = f"Balanced by shares ({shares}; categories not named share the rest) of {size}."
    elif config.per_category is not None or config.category_targets:
        named = ", ".join(f"{k} {v:,}" for k, v in sorted(config.category_targets.items()))
        rule = (
            "Balanced by counts: "
            + (
                f"{config.per_category:,} per category"
                if config.per_category is not None
                else "no target for unnamed categories"
            )
            + (f"; {named}" if named else "")
            + "."
        )
    else:
        rule = "No balancing asked for: every record that passes is taken."
    rule += (
        " Down-sampling takes one record of each near-copy group (stored clusters when dedup has made them, "
        "else records whose first user turn starts the same) before a second of any, fixed badcases first."
    )
    if config.upsample:
        rule += (
            f" Categories below target repeat their train records, each at most {config.max_repeat} times."
        )
    else:
        rule += " Categories below target are reported, not repeated (upsample is off)."
    return rule


def _category_row(p: CategoryPlan) -> str:
    target = "-" if p.target is None else f"{p.target:,}"
    note = f" (short {p.short:,})" if p.short else ""
    return (
        f"| {_label(p.category)} | {p.available:,} | {p.fixed:,} | {target}{note} | {p.take:,} | "
        f"{p.downsampled:,} | {p.train_rows:,} | {p.repeats:,} | {p.val:,} |"
    )


def _left_out(excluded: list[tuple], counts: dict[str, int], unselected: list[tuple[str, int]]) -> list[str]:
    out = ["## Left out", ""]
    if unselected:
        out += [
            "Not selected by status (not ready for training): "
            + ", ".join(f"{n:,} {status}" for status, n in unselected)
            + ".",
            "",
        ]
    if not counts:
        return out + ["No candidate record was excluded.", ""]
    out += ["| reason | records |", "|---|---:|"]
    out += [f"| {reason}: {REASONS[reason]} | {n:,} |" for reason, n in counts.items()]
    out.append("")
    by_reason: dict[str, list[tuple]] = {}
    for row in excluded:
        by_reason.setdefault(row[3], []).append(row)
    for reason, n in counts.items():
        out += [f"### {reason}", ""]
        for record_id, pool, category, _reason, detail in by_reason.get(reason, [])[:LISTED_PER_REASON]:
            where = "general" if pool == "general" else _label(category)
            out.append(f"- record {record_id} ({where}): {detail}")
        if n > LISTED_PER_REASON:
            out.append(f"- ... and {n - LISTED_PER_REASON:,} more: excluded.jsonl lists every one")
        out.append("")
    return out


def _label(category: str | None) -> str:
    return "(no category)" if category is None else category.replace("|", "\\|")  # a | would end a table cell
