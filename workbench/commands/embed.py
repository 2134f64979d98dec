"""CLI for embeddings: `workbench embed` embeds records (cached by text and model) and saves the store's choice.

The command parses its options, calls one library function with a progress bar, and prints a summary
table (or, with --json, one JSON object).
"""

from __future__ import annotations

import dataclasses

import click
from rich.table import Table

from .. import embed
from ..embed import TextSpec
from ..store.records import Selection
from .common import dump_json, open_store, out, progress_bar

EMBED_HELP = {f.name: f.metadata.get("help", "") for f in dataclasses.fields(embed.EmbedConfig)}


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
    config = embed.update_config(
        store,
        model=model,
        multilingual_model=multilingual_model,
        text=TextSpec.parse(text_spec) if text_spec else None,
    )
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
        out.print(dump_json({**report.as_dict(), "text": config.text.key()}), markup=False)
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


COMMANDS = [embed_cmd]
