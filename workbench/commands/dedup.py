"""CLI for deduplication: `workbench dedup` groups duplicates and near-duplicates and marks the copies.

The command parses its options, calls one library function with a progress bar, and prints a summary
table (or, with --json, one JSON object).
"""

from __future__ import annotations

import dataclasses

import click
from rich.table import Table

from .. import dedup as dedupe
from .. import embed
from ..store.records import Selection
from .common import AUTHOR, EMBED_MISSING, dump_json, open_store, out, progress_bar, staged

DEDUP_HELP = {f.name: f.metadata.get("help", "") for f in dataclasses.fields(dedupe.DedupConfig)}
DEDUP_DEFAULTS = dedupe.DedupConfig()


@click.command("dedup")
@click.option("--dataset", help="Only this dataset (default: every dataset but eval ones).")
@click.option(
    "--lexical-threshold",
    type=float,
    default=DEDUP_DEFAULTS.lexical_threshold,
    show_default=True,
    help=DEDUP_HELP["lexical_threshold"],
)
@click.option(
    "--lexical-threshold-han",
    type=float,
    default=DEDUP_DEFAULTS.lexical_threshold_han,
    show_default=True,
    help=DEDUP_HELP["lexical_threshold_han"],
)
@click.option(
    "--semantic-threshold",
    type=float,
    default=DEDUP_DEFAULTS.semantic_threshold,
    show_default=True,
    help=DEDUP_HELP["semantic_threshold"],
)
@click.option(
    "--multilingual-semantic-threshold",
    type=float,
    default=DEDUP_DEFAULTS.multilingual_semantic_threshold,
    show_default=True,
    help=DEDUP_HELP["multilingual_semantic_threshold"],
)
@click.option(
    "--semantic/--no-semantic",
    default=DEDUP_DEFAULTS.semantic,
    show_default=True,
    help=DEDUP_HELP["semantic"],
)
@EMBED_MISSING
@click.option("--dry-run", is_flag=True, help="Show the groups, mark nothing.")
@click.option("--restore", "restore_id", type=int, metavar="ID", help="Clear one record's duplicate mark.")
@click.option("--restore-run", type=int, metavar="RUN", help="Undo every mark a dedup run set.")
@click.option("--runs", is_flag=True, help="List the dedup runs.")
@click.option(
    "--json", "as_json", is_flag=True, help="Machine-readable output (groups with member ids, kept id)."
)
@AUTHOR
@click.pass_context
def dedup_cmd(
    ctx,
    dataset,
    lexical_threshold,
    lexical_threshold_han,
    semantic_threshold,
    multilingual_semantic_threshold,
    semantic,
    embed_missing,
    dry_run,
    restore_id,
    restore_run,
    runs,
    as_json,
    author,
):
    """Group duplicates and near-duplicates; keep one per group, mark the others dup_of (never deleted)."""
    store = open_store(ctx)
    if restore_id is not None:
        done = dedupe.restore(store, restore_id, author)
        out.print(f"record {restore_id}: " + ("restored" if done else "was not marked as a duplicate"))
        return
    if restore_run is not None:
        n = dedupe.restore_run(store, restore_run, author)
        out.print(f"dedup run {restore_run}: {n} records restored")
        return
    if runs:
        rows = dedupe.list_runs(store)
        table = Table(
            "run", "when", "author", "records", "groups", "marked", "restored", "skipped", "seconds"
        )
        for row in rows:
            table.add_row(*[str(x) if not isinstance(x, float) else f"{x:.1f}" for x in row])
        out.print(table)
        return
    config = dedupe.DedupConfig(
        lexical_threshold=lexical_threshold,
        lexical_threshold_han=lexical_threshold_han,
        semantic=semantic,
        semantic_threshold=semantic_threshold,
        multilingual_semantic_threshold=multilingual_semantic_threshold,
    )
    with progress_bar() as bar:
        report = dedupe.dedup(
            store,
            Selection(dataset=dataset),
            config=config,
            author=author,
            embed_missing=embed_missing,
            dry_run=dry_run,
            progress=staged(bar),
        )
    if as_json:
        out.print(dump_json(report.as_dict()), markup=False)
        return
    render_dedup(store, report)


def render_dedup(store, report: dedupe.DedupReport) -> None:
    shown = report.groups[:15]
    texts = embed.request_snippets(store, [g.kept_id for g in shown])
    table = Table(
        "kept",
        "records",
        "matched by",
        "kept record's request",
        title="duplicate groups",
        title_justify="left",
    )
    for g in shown:
        kinds = sorted({m.kind for m in g.matches})
        table.add_row(str(g.kept_id), str(len(g.member_ids)), ", ".join(kinds), texts.get(g.kept_id, ""))
    if report.groups:
        out.print(table)
    if len(report.groups) > len(shown):
        out.print(f"... {len(report.groups) - len(shown)} more groups (--json lists them all)")
    summary = Table(
        show_header=False,
        title="dedup" + (" (dry run: nothing marked)" if report.dry_run else f" run {report.run_id}"),
        title_justify="left",
    )
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("records", f"{report.records:,}")
    summary.add_row("groups", f"{len(report.groups):,} ({report.duplicates:,} duplicates)")
    summary.add_row("matches", ", ".join(f"{k} {n:,}" for k, n in sorted(report.by_kind.items())) or "none")
    if report.look_alikes:
        summary.add_row(
            "kept apart",
            ", ".join(f"{k} {n:,}" for k, n in sorted(report.look_alikes.items()))
            + " (near pairs that ask different things)",
        )
    if not report.dry_run:
        summary.add_row("marked dup_of", f"{report.marked:,}")
        summary.add_row("restored", f"{report.restored:,}")
        if report.skipped:
            summary.add_row("skipped", f"{report.skipped:,} (edited meanwhile; run again)")
        if report.kept_by_hand:
            summary.add_row("left unmarked", f"{report.kept_by_hand:,} (restored by hand earlier)")
    for model_id, n in report.semantic.items():
        summary.add_row("semantic", f"{model_id}: {n:,} records")
    if report.no_vector:
        summary.add_row("no vector", f"{report.no_vector:,} records (semantic matching skipped them)")
    summary.add_row("time", f"{report.seconds:.1f} s")
    out.print(summary)


COMMANDS = [dedup_cmd]
