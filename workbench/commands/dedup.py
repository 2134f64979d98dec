"""CLI for embeddings, deduplication and clustering: `workbench embed`, `workbench dedup`, `workbench cluster`.

Each command parses its options, calls one library function with a progress bar, and prints a
summary table (or, with --json, one JSON object).
"""

from __future__ import annotations

import dataclasses
import json

import click
from rich.table import Table
from rich.text import Text

from .. import cluster as clustering
from .. import dedup as dedupe
from .. import embed
from ..embed import TextSpec
from ..store.clusters import members_of
from ..store.dedup import list_runs
from ..store.embeddings import record_texts
from ..store.records import Selection
from .common import AUTHOR, open_store, out, progress_bar, staged

DEDUP_HELP = {f.name: f.metadata.get("help", "") for f in dataclasses.fields(dedupe.DedupConfig)}
CLUSTER_HELP = {f.name: f.metadata.get("help", "") for f in dataclasses.fields(clustering.ClusterConfig)}
DEDUP_DEFAULTS = dedupe.DedupConfig()
CLUSTER_DEFAULTS = clustering.ClusterConfig()
EMBED_HELP = {f.name: f.metadata.get("help", "") for f in dataclasses.fields(embed.EmbedConfig)}


def _snippets(store, ids: list[int], width: int = 70) -> dict[int, str]:
    if not ids:
        return {}
    with store.connect() as con:
        table = record_texts(con, ids, TextSpec(category=False))
    return {
        rid: " ".join(text.split())[:width]
        for rid, text in zip(table.column("id").to_pylist(), table.column("text").to_pylist(), strict=True)
    }


def _dump(data) -> str:
    return json.dumps(data, ensure_ascii=False, default=str)


@click.command("embed")
@click.option("--dataset", help="Only this dataset (default: every record).")
@click.option("--model", help=EMBED_HELP["model"] + " Saved as the store's setting.")
@click.option(
    "--multilingual-model", help=EMBED_HELP["multilingual_model"] + " Saved as the store's setting."
)
@click.option(
    "--text",
    "text_spec",
    help=f"Which text is embedded: {', '.join(embed.TURNS)}, plus '+category' "
    f"(default {embed.EmbedConfig().text.key()}). Saved as the store's setting.",
)
@click.option("--batch-size", type=int, help=EMBED_HELP["batch_size"])
@click.option("--device", help=EMBED_HELP["device"])
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def embed_cmd(ctx, dataset, model, multilingual_model, text_spec, batch_size, device, as_json):
    """Embed records (cached by text and model: a text is embedded once, ever)."""
    store = open_store(ctx)
    with store.transaction() as con:
        config = embed.store_config(con)
        changes = {
            k: v
            for k, v in (
                ("model", model),
                ("multilingual_model", multilingual_model),
                ("text", TextSpec.parse(text_spec) if text_spec else None),
            )
            if v
        }
        if changes:
            config = dataclasses.replace(config, **changes)
            embed.model_info(config.model, config.model_reads)  # fails early on a model that is not there
            embed.save_config(con, config)
    run_config = dataclasses.replace(
        config, **{k: v for k, v in (("batch_size", batch_size), ("device", device)) if v}
    )
    with progress_bar() as bar:
        task = bar.add_task("embedding", total=None)
        report = embed.embed_records(
            store,
            Selection(dataset=dataset),
            config=run_config,
            progress=lambda d, t: bar.update(task, completed=d, total=t or None),
        )
    if as_json:
        out.print(_dump({**report.as_dict(), "text": config.text.key()}), markup=False)
        return
    table = Table(title="embeddings", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row(
        "records", f"{report.records:,} ({', '.join(f'{s} {n:,}' for s, n in report.by_script.items())})"
    )
    table.add_row("text", config.text.key())
    table.add_row("distinct texts", f"{report.texts:,}")
    table.add_row("already cached", f"{report.cached:,}")
    rate = (
        f" in {report.encode_seconds:.1f} s ({report.embedded / report.encode_seconds:,.0f} texts/s)"
        if report.embedded and report.encode_seconds
        else ""
    )
    table.add_row("embedded now", f"{report.embedded:,}{rate}")
    for model_id, n in report.by_model.items():
        table.add_row("model", f"{model_id}: {n:,} records")
    table.add_row("time", f"{report.seconds:.1f} s")
    out.print(table)


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
@click.option(
    "--embed/--no-embed",
    "embed_missing",
    default=True,
    show_default=True,
    help="Embed records that have no cached vector first.",
)
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
        with store.connect() as con:
            rows = list_runs(con)
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
        out.print(_dump(report.as_dict()), markup=False)
        return
    render_dedup(store, report)


def render_dedup(store, report: dedupe.DedupReport) -> None:
    shown = report.groups[:15]
    texts = _snippets(store, [g.kept_id for g in shown])
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


@click.command("cluster")
@click.option("--k", type=int, help=CLUSTER_HELP["k"])
@click.option(
    "--method",
    type=click.Choice(clustering.METHODS),
    default=CLUSTER_DEFAULTS.method,
    show_default=True,
    help=CLUSTER_HELP["method"],
)
@click.option("--dataset", help="Only this dataset (default: every badcases dataset).")
@click.option("--include-duplicates", is_flag=True, help=CLUSTER_HELP["include_duplicates"])
@click.option(
    "--embed/--no-embed",
    "embed_missing",
    default=True,
    show_default=True,
    help="Embed records that have no cached vector first.",
)
@click.option("--show", "show_run", type=int, metavar="RUN", help="Show a stored run instead of clustering.")
@click.option(
    "--category",
    metavar="CLUSTER=NAME",
    help="Give every record of a cluster of the latest run (or --run) a category.",
)
@click.option("--run", "run_id", type=int, help="The run --category applies to (default: the latest).")
@click.option(
    "--json", "as_json", is_flag=True, help="Machine-readable output (clusters with name, size, member ids)."
)
@AUTHOR
@click.pass_context
def cluster_cmd(
    ctx, k, method, dataset, include_duplicates, embed_missing, show_run, category, run_id, as_json, author
):
    """Cluster badcases into failure modes, named by their keywords, with a 2-D map stored per run."""
    store = open_store(ctx)
    if category:
        number, sep, name = category.partition("=")
        if not sep or not number.strip().lstrip("-").isdigit():
            raise click.BadParameter(
                "write it as CLUSTER=NAME, e.g. --category 3=refund", param_hint="--category"
            )
        stored, _ = clustering.load_run(store, run_id)
        changed = clustering.set_cluster_category(store, stored.id, int(number), name, author)
        out.print(f"run {stored.id}, cluster {number}: category {name!r} given to {changed} records")
        return
    if show_run is not None:
        stored, clusters = clustering.load_run(store, show_run)
        if as_json:
            with store.connect() as con:
                members = members_of(con, stored.id)
            ids_by = {}
            for rid, c in zip(
                members.column("record_id").to_pylist(), members.column("cluster").to_pylist(), strict=True
            ):
                ids_by.setdefault(c, []).append(rid)
            out.print(
                _dump(
                    {
                        "run_id": stored.id,
                        "model": stored.model,
                        "k": stored.k,
                        "clusters": [
                            {
                                "id": c.cluster,
                                "name": c.name,
                                "keywords": c.keywords,
                                "size": c.size,
                                "category": c.category,
                                "member_ids": sorted(ids_by.get(c.cluster, [])),
                                "representative_ids": c.representatives,
                            }
                            for c in clusters
                        ],
                    }
                ),
                markup=False,
            )
            return
        render_clusters(
            store,
            stored.id,
            stored.model,
            stored.k,
            stored.k_chosen_by,
            stored.records,
            [(c.cluster, c.name, c.size, c.representatives, c.category) for c in clusters],
            stored.seconds,
        )
        return
    config = clustering.ClusterConfig(k=k, method=method, include_duplicates=include_duplicates)
    selection = Selection(dataset=dataset) if dataset else None
    with progress_bar() as bar:
        run = clustering.cluster_records(
            store, selection, config=config, author=author, embed_missing=embed_missing, progress=staged(bar)
        )
    if as_json:
        out.print(_dump(run.as_dict()), markup=False)
        return
    render_clusters(
        store,
        run.run_id,
        run.model,
        run.k,
        run.k_chosen_by,
        run.records,
        [(c.id, c.name, c.size, c.representative_ids, None) for c in run.clusters],
        run.seconds,
    )


def render_clusters(store, run_id, model, k, chosen_by, records, rows, seconds) -> None:
    texts = _snippets(store, [rid for row in rows for rid in row[3]], width=48)
    table = Table(
        "cluster",
        "records",
        "name",
        "representatives",
        title=f"clustering run {run_id}",
        title_justify="left",
    )
    for cluster_id, name, size, reps, category in rows:
        label = Text(name) + (Text(f"  (category: {category})", style="bold") if category else Text())
        table.add_row(str(cluster_id), str(size), label, "\n".join(texts.get(r, "") for r in reps))
    out.print(table)
    out.print(
        f"{records:,} records, k={k} ({chosen_by}), model {model}, {seconds or 0:.1f} s. "
        f"Give a cluster a category: workbench cluster --category CLUSTER=NAME",
        markup=False,
    )


COMMANDS = [embed_cmd, dedup_cmd, cluster_cmd]
