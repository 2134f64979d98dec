"""`workbench queue`, `agreement`, `settle` and `audit`: a team's queues, its agreement and who did what."""

from __future__ import annotations

import click
from rich.table import Table

from ..agreement import settle
from ..audit import audit
from ..queues import assign, queue_progress, reassign, release
from ..store.review import ReviewFilter
from .common import cli_author, dump_json, open_store, out


def _labellers(names: tuple[str, ...]) -> list[str] | dict[str, float]:
    """NAME (round-robin) or NAME:SHARE (by share) for each --to."""
    if not any(":" in n for n in names):
        return list(names)
    shares = {}
    for item in names:
        name, _, share = item.rpartition(":") if ":" in item else (item, "", "1")
        try:
            shares[name] = float(share)
        except ValueError:
            raise click.BadParameter(
                f"{item!r}: write NAME or NAME:SHARE (a number)", param_hint="--to"
            ) from None
    return shares


@click.group("queue", invoke_without_command=True)
@click.pass_context
def queue(ctx):
    """Assigned queues: done / assigned per labeller (and `queue assign`, `release`, `reassign`)."""
    if ctx.invoked_subcommand is not None:
        return
    table = Table("labeller", "done", "assigned")
    for row in queue_progress(open_store(ctx)):
        table.add_row(row.assignee, f"{row.done:,}", f"{row.assigned:,}")
    out.print(table)


@queue.command("assign")
@click.option(
    "--to", "to", multiple=True, required=True, help="A labeller (NAME, or NAME:SHARE); repeat for each."
)
@click.option(
    "--overlap", default=1, show_default=True, help="How many labellers get each record (2+: agreement)."
)
@click.option("--dataset", multiple=True)
@click.option("--category", multiple=True)
@click.option("--status", multiple=True)
@click.option("--cluster", type=int, default=None, help="A cluster of the latest clustering run.")
@click.option(
    "--hard-after-run", type=int, default=None, help="Records run N still gets wrong or learned least."
)
@click.pass_context
def queue_assign(ctx, to, overlap, dataset, category, status, cluster, hard_after_run):
    """Hand the records of a filter that are in no queue yet to labellers."""
    flt = ReviewFilter(
        datasets=dataset, categories=category, statuses=status, cluster=cluster, hard_after_run=hard_after_run
    )
    report = assign(open_store(ctx), flt, _labellers(to), overlap=overlap, author=cli_author())
    shares = ", ".join(f"{name} {n:,}" for name, n in report.per_labeller.items())
    out.print(f"assigned {report.records:,} records (overlap {report.overlap}): {shares}")
    if report.skipped:
        out.print(f"{report.skipped:,} records of the filter were already in a queue: left as they are")


@queue.command("release")
@click.argument("labeller")
@click.pass_context
def queue_release(ctx, labeller):
    """Empty LABELLER's queue (the assignments stay in the history)."""
    out.print(f"released {release(open_store(ctx), labeller, author=cli_author()):,} records from {labeller}")


@queue.command("reassign")
@click.argument("from_labeller")
@click.argument("to_labeller")
@click.pass_context
def queue_reassign(ctx, from_labeller, to_labeller):
    """Move what FROM has not done yet to TO (both kept in the history)."""
    moved = reassign(open_store(ctx), from_labeller, to_labeller, author=cli_author())
    out.print(f"moved {moved:,} records from {from_labeller} to {to_labeller}")


@click.command("agreement")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def agreement_cmd(ctx, as_json):
    """Agreement per category on records answered by several labellers, and the disagreements."""
    from dataclasses import asdict

    from ..agreement import agreement

    report = agreement(open_store(ctx))
    if as_json:
        out.print(dump_json(asdict(report)))
        return
    table = Table("category", "kind", "records", "exact match", "Cohen's kappa (pairs)", "Fleiss' kappa (3+)")
    for row in report.categories:
        kappa = "–" if row.kappa is None else f"{row.kappa:.2f}"
        fleiss = "–"
        if row.fleiss_kappa is not None:
            fleiss = f"{row.fleiss_kappa:.2f} ({row.fleiss_records:,} records × {row.fleiss_raters})"
        table.add_row(
            row.category or "(none)", row.kind, f"{row.records:,}", f"{row.exact_match:.0%}", kappa, fleiss
        )
    out.print(table)
    open_ = [d for d in report.disagreements if not d.settled]
    out.print(f"{len(open_):,} disagreements to settle (workbench settle RECORD ANSWER)")


@click.command("settle")
@click.argument("record_id", type=int)
@click.argument("answer")
@click.pass_context
def settle_cmd(ctx, record_id, answer):
    """Settle RECORD's disagreement: ANSWER becomes its answer (what trains)."""
    record = settle(open_store(ctx), record_id, answer, cli_author())
    out.print(f"record {record.id} settled (version {record.version})")


@click.command("audit")
@click.option(
    "--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="From this day (YYYY-MM-DD)."
)
@click.option("--person", default=None, help="Only this person.")
@click.pass_context
def audit_cmd(ctx, since, person):
    """Who changed what, per person per day (owners)."""
    table = Table("day", "person", "revisions", "records", "what", "from", "to")
    for row in audit(open_store(ctx), since=since.date() if since else None, person=person):
        table.add_row(
            f"{row.day}",
            row.author,
            f"{row.revisions:,}",
            f"{row.records:,}",
            row.actions,
            f"{row.first_at:%H:%M}",
            f"{row.last_at:%H:%M}",
        )
    out.print(table)


COMMANDS = [queue, agreement_cmd, settle_cmd, audit_cmd]
