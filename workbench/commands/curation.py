"""Commands that curate the store: contracts, checks and autofixes, review states, settings, counts."""

from __future__ import annotations

import json

import click
from rich.table import Table

from ..errors import WorkbenchError
from ..patterns import SYNTAX_HELP
from ..store.records import STATUSES, Selection
from .common import cli_author, open_store, out


@click.command("contract")
@click.argument("category")
@click.option("--labels", help="Comma-separated labels: the answer must be exactly one of them.")
@click.option("--json", "as_json", is_flag=True, help="The answer must be valid JSON.")
@click.option(
    "--schema",
    type=click.Path(exists=True, dir_okay=False),
    help="A JSON Schema file the answer must satisfy.",
)
@click.option(
    "--regex",
    help="A pattern the whole answer must match: " + SYNTAX_HELP,
)
@click.option("--remove", is_flag=True, help="Drop the category's contract.")
@click.pass_context
def contract(ctx, category, labels, as_json, schema, regex, remove):
    """Declare what the assistant's answer in CATEGORY must be, then re-check that category."""
    from .. import curation
    from ..contracts import Contract, load_schema

    store = open_store(ctx)
    chosen = [x for x in (labels, as_json or None, schema, regex, remove or None) if x]
    if len(chosen) != 1:
        raise WorkbenchError("give exactly one of --labels, --json, --schema, --regex or --remove")
    if remove:
        curation.remove_contract(store, category)
        out.print(f"removed the contract of {category!r}")
        return
    if labels:
        spec = Contract(category, "labels", [x.strip() for x in labels.split(",") if x.strip()])
    elif as_json:
        spec = Contract(category, "json")
    elif schema:
        spec = Contract(category, "json_schema", load_schema(schema))
    else:
        spec = Contract(category, "regex", regex)
    counts = curation.set_contract(store, spec)
    broken = sum(n for code, _s, n in counts if code.startswith("contract-"))
    out.print(f"{category!r}: answers must follow a {spec.kind} contract; {broken} record(s) break it")


@click.command("recheck")
@click.option("--dataset")
@click.option("--category")
@click.pass_context
def recheck(ctx, dataset, category):
    """Run the checks again over the store (after changing contracts or settings)."""
    from .. import curation

    counts = curation.recheck(open_store(ctx), Selection(dataset=dataset, category=category))
    table = Table("code", "severity", "records")
    for row in counts:
        table.add_row(*map(str, row))
    out.print(table)


@click.command("fix")
@click.option("--dataset")
@click.option("--category")
@click.option("--code", help="Only records with this issue code.")
@click.option("--author", default=cli_author)
@click.pass_context
def fix(ctx, dataset, category, code, author):
    """Apply every safe autofix to records in the store (each fix is a revision you can undo)."""
    from .. import curation

    report = curation.apply_autofixes(
        open_store(ctx), Selection(dataset=dataset, category=category, issue_code=code), author
    )
    out.print(f"fixed {len(report.fixed)} of {report.looked_at} records with fixable issues")


@click.command("status")
@click.argument("status", type=click.Choice(STATUSES))
@click.option("--dataset")
@click.option("--category")
@click.option(
    "--from-status", type=click.Choice(STATUSES), help="Only records now in this status (e.g. fixed)."
)
@click.option("--ids", help="Comma-separated record ids.")
@click.option("--author", default=cli_author)
@click.pass_context
def status_cmd(ctx, status, dataset, category, from_status, ids, author):
    """Set the status of records (e.g. approve the reviewed ones, which exports take by default)."""
    from .. import curation

    try:
        chosen = tuple(int(x) for x in ids.split(",") if x.strip()) if ids else None
    except ValueError:
        raise WorkbenchError(f"--ids takes record ids separated by commas (12,15,20), not {ids!r}") from None
    changed = curation.set_status(
        open_store(ctx),
        Selection(dataset=dataset, category=category, status=from_status, ids=chosen),
        status,
        author,
    )
    out.print(f"{changed} record(s) set to {status}")


@click.command("config")
@click.argument("key", required=False)
@click.argument("value", required=False)
@click.pass_context
def config(ctx, key, value):
    """Show the store's settings, or set one (max_tokens, target_model)."""
    from .. import curation

    store = open_store(ctx)
    if key and value is not None:
        curation.set_setting(store, key, int(value) if value.isdigit() else value)
    for name, setting in curation.all_settings(store).items():
        if key in (None, name):
            out.print(f"{name} = {json.dumps(setting)}", markup=False)


@click.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def stats_cmd(ctx, as_json):
    """Counts by dataset, category, status and issue code."""
    from .. import stats

    summary = stats.store_summary(open_store(ctx))
    if as_json:
        out.print(json.dumps(summary.as_dict(), ensure_ascii=False, default=str), markup=False)
        return
    for title, rows, header in (
        ("datasets", summary.datasets, ("dataset", "kind", "records")),
        ("statuses", summary.statuses, ("status", "records")),
        ("categories", summary.categories, ("category", "records")),
        ("issues", summary.issues, ("code", "severity", "records")),
        ("feedback", summary.feedback, ("thumb", "records", "mean score")),
    ):
        if title == "feedback" and not rows:
            continue  # no production logs imported
        table = Table(*header, title=title, title_justify="left")
        for row in rows:
            table.add_row(*[str(x) if x is not None else "(none)" for x in row])
        out.print(table)


@click.command("rules")
@click.option("--markdown", is_flag=True, help="A Markdown table (as in the README).")
def rules(markdown):
    """The check codes: what each catches, its severity, and whether it has an autofix."""
    from ..checks import rules_table

    rows = [
        (
            r.code,
            r.severity,
            "yes" if r.fixable else "",
            "import" if r.stage == "import" else "any time",
            r.title,
        )
        for r in rules_table()
    ]
    header = ("code", "severity", "autofix", "found", "catches")
    if markdown:
        out.print("| " + " | ".join(header) + " |\n|" + "---|" * len(header), markup=False)
        for row in rows:
            out.print(
                "| " + " | ".join(f"`{row[0]}`" if i == 0 else row[i] for i in range(len(row))) + " |",
                markup=False,
            )
        return
    table = Table(*header)
    for row in rows:
        table.add_row(*row)
    out.print(table)


COMMANDS = [contract, recheck, fix, status_cmd, config, stats_cmd, rules]
