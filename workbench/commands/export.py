"""CLI for exports: `workbench export` writes a balanced training set, `workbench exports` lists them.

Each option's help text is the ExportConfig field's, so the CLI, the app and the library say the same.
"""

from __future__ import annotations

import json

import click
from rich.table import Table
from rich.text import Text

from ..errors import WorkbenchError
from ..export import LEAKAGE_GUARDS, ExportConfig, ExportResult, export_training_set, list_exports
from ..export.writers import FORMATS
from ..store.exports import WEIGHTS
from .common import open_store, out, progress_bar

HELP = ExportConfig.help_texts()
DEFAULTS = ExportConfig()


def _names(values: tuple[str, ...]) -> tuple[str, ...] | None:
    """Repeated and/or comma-separated names; None when none were given."""
    names = tuple(n.strip() for v in values for n in v.split(",") if n.strip())
    return names or None


def _pairs(values: tuple[str, ...], kind: type, option: str) -> dict:
    """CATEGORY=VALUE options into a dict (the last '=' splits, so a category may contain '=')."""
    out = {}
    for value in values:
        category, sep, number = value.rpartition("=")
        if not sep or not category:
            raise WorkbenchError(f"{option} {value!r}: write it as CATEGORY=VALUE, e.g. {option} refund=500")
        try:
            out[category] = kind(number)
        except ValueError:
            raise WorkbenchError(f"{option} {value!r}: {number!r} is not a {kind.__name__}") from None
    return out


@click.command("export")
@click.option("--name", required=True, help=HELP["name"])
@click.option(
    "--datasets", multiple=True, metavar="NAMES", help=HELP["datasets"] + " Comma-separated or repeated."
)
@click.option(
    "--categories", multiple=True, metavar="NAMES", help=HELP["categories"] + " Comma-separated or repeated."
)
@click.option("--statuses", default=",".join(DEFAULTS.statuses), show_default=True, help=HELP["statuses"])
@click.option("--per-category", type=int, help=HELP["per_category"])
@click.option("--target", "targets", multiple=True, metavar="CATEGORY=N", help=HELP["category_targets"])
@click.option("--share", "shares", multiple=True, metavar="CATEGORY=F", help=HELP["category_shares"])
@click.option("--task-records", type=int, help=HELP["task_records"])
@click.option("--upsample/--no-upsample", default=DEFAULTS.upsample, show_default=True, help=HELP["upsample"])
@click.option(
    "--max-repeat", type=int, default=DEFAULTS.max_repeat, show_default=True, help=HELP["max_repeat"]
)
@click.option(
    "--general-share",
    type=float,
    default=DEFAULTS.general_share,
    show_default=True,
    help=HELP["general_share"],
)
@click.option("--general-datasets", multiple=True, metavar="NAMES", help=HELP["general_datasets"])
@click.option("--val", type=float, default=DEFAULTS.val, show_default=True, help=HELP["val"])
@click.option("--seed", type=int, default=DEFAULTS.seed, show_default=True, help=HELP["seed"])
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=DEFAULTS.format,
    show_default=True,
    help=HELP["format"],
)
@click.option(
    "--weights", type=click.Choice(WEIGHTS), default=DEFAULTS.weights, show_default=True, help=HELP["weights"]
)
@click.option(
    "--leakage-guard",
    type=click.Choice(LEAKAGE_GUARDS),
    default=DEFAULTS.leakage_guard,
    show_default=True,
    help=HELP["leakage_guard"],
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (the manifest's summary).")
@click.pass_context
def export_cmd(
    ctx,
    name,
    datasets,
    categories,
    statuses,
    per_category,
    targets,
    shares,
    task_records,
    upsample,
    max_repeat,
    general_share,
    general_datasets,
    val,
    seed,
    fmt,
    weights,
    leakage_guard,
    as_json,
):
    """Export a balanced training set into exports/<name>-<hash>/ (train/val JSONL, manifest, report)."""
    config = ExportConfig(
        name=name,
        datasets=_names(datasets),
        categories=_names(categories),
        statuses=_names((statuses,)) or DEFAULTS.statuses,
        per_category=per_category,
        category_targets=_pairs(targets, int, "--target"),
        category_shares=_pairs(shares, float, "--share"),
        task_records=task_records,
        upsample=upsample,
        max_repeat=max_repeat,
        general_share=general_share,
        general_datasets=_names(general_datasets),
        val=val,
        seed=seed,
        format=fmt,
        weights=weights,
        leakage_guard=leakage_guard,
    )
    store = open_store(ctx)
    with progress_bar() as bar:
        task = bar.add_task("exporting", total=None)

        def show(stage, done, total):
            bar.update(task, description=stage, completed=done, total=total)

        result = export_training_set(store, config, progress=show)
    if as_json:
        manifest = json.loads((result.folder / "manifest.json").read_text(encoding="utf-8"))
        manifest.pop("records", None)
        out.print(json.dumps(manifest, ensure_ascii=False, indent=2), markup=False)
        return
    for renderable in render_export(result):
        out.print(renderable)


@click.command("exports")
@click.option("--limit", type=int, default=20, show_default=True)
@click.pass_context
def exports_cmd(ctx, limit):
    """The training sets exported so far, newest first."""
    entries = list_exports(open_store(ctx), limit)
    table = Table(
        "name",
        "folder",
        "format",
        "train",
        "val",
        "general",
        "exported",
        title="exports",
        title_justify="left",
    )
    for entry in entries:
        row = entry.row
        share = "-" if row.general_share is None else f"{row.general_share:.1%}"
        folder = row.folder if entry.folder_exists else f"{row.folder} (deleted)"
        table.add_row(
            row.name,
            folder,
            row.format,
            f"{row.train_records:,}",
            f"{row.val_records:,}",
            share,
            str(row.created_at)[:16],
        )
    out.print(table)


def render_export(result: ExportResult) -> list:
    """The summary table per category (cut: down-sampled away; short: below target), then totals and flags."""
    table = Table(
        "category",
        "available",
        "target",
        "taken",
        "cut",
        "short",
        "train",
        "val",
        "repeats",
        title=f"{result.name} → {result.folder}",
        title_justify="left",
    )
    for p in result.categories:
        table.add_row(
            "(no category)" if p.category is None else p.category,
            f"{p.available:,}",
            "-" if p.target is None else f"{p.target:,}",
            f"{p.take:,}",
            f"{p.downsampled:,}",
            f"{p.short:,}",
            f"{p.train_rows:,}",
            f"{p.val:,}",
            f"{p.repeats:,}",
        )
    general_taken = sum(p.take for p in result.general)
    general_train = sum(p.train_rows for p in result.general)
    table.add_row(
        Text("general", style="italic"),
        f"{sum(p.available for p in result.general):,}",
        f"{result.general_wanted:,}",
        f"{general_taken:,}",
        "",
        f"{max(0, result.general_wanted - general_taken):,}",
        f"{general_train:,}",
        f"{general_taken - general_train:,}",
        "0",
    )
    table.add_row(
        Text("total", style="bold"),
        "",
        "",
        "",
        "",
        "",
        Text(f"{result.train_records:,}", style="bold"),
        Text(f"{result.val_records:,}", style="bold"),
        "",
    )
    lines: list = [table]
    lines.append(
        f"general data: {result.general_share:.1%} of all lines (asked: {result.config.general_share:.0%})"
    )
    excluded = ", ".join(f"{reason} {n:,}" for reason, n in result.excluded.items()) or "none"
    lines.append(f"left out: {excluded} (every one is listed in report.md and excluded.jsonl)")
    lines.append(f"leakage guard: {result.leakage_guard}, {result.eval_records:,} eval records")
    for warning in result.warnings:
        lines.append(Text.assemble(("flag:", "yellow"), " ", warning))
    files = ", ".join(f.name for f in result.files)
    lines.append(
        f"wrote {files}, manifest.json, report.md in {result.folder}"
        + (" (identical to the earlier export)" if result.reused else "")
        + f" in {result.seconds:.1f} s"
    )
    return lines


COMMANDS = [export_cmd, exports_cmd]
