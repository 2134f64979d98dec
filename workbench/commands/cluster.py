"""CLI for clustering: `workbench cluster` groups badcases into failure modes named by their keywords.

The command parses its options, calls one library function with a progress bar, and prints a summary
table (or, with --json, one JSON object).
"""

from __future__ import annotations

import dataclasses

import click
from rich.table import Table
from rich.text import Text

from .. import cluster as clustering
from .. import embed
from ..store.records import Selection
from .common import AUTHOR, EMBED_MISSING, dump_json, open_store, out, progress_bar, staged

CLUSTER_HELP = {f.name: f.metadata.get("help", "") for f in dataclasses.fields(clustering.ClusterConfig)}
CLUSTER_DEFAULTS = clustering.ClusterConfig()


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
@EMBED_MISSING
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
            ids_by = clustering.member_ids(store, stored.id)
            out.print(
                dump_json(
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
        out.print(dump_json(run.as_dict()), markup=False)
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
    texts = embed.request_snippets(store, [rid for row in rows for rid in row[3]], width=48)
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


COMMANDS = [cluster_cmd]
