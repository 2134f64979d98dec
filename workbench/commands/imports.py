"""Commands that bring data in: `workbench import`, `workbench check` (a file, no store), `workbench rejects`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from .common import cli_author, console, error_line, open_store, out, progress_bar

if TYPE_CHECKING:
    from .. import ingest


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--dataset",
    default="badcases",
    show_default=True,
    help="Dataset to import into (badcases, general, eval, or a new badcases dataset's name).",
)
@click.option("--category", help="Category for records that do not name one.")
@click.option("--author", default=cli_author, help="Who imported (kept in the log).")
@click.pass_context
def import_cmd(ctx, paths, dataset, category, author):
    """Import JSONL, JSON, CSV/TSV or Parquet files of chat records."""
    from .. import ingest

    store = open_store(ctx)
    empty = []
    for path in paths:
        name = Path(path).name
        with progress_bar() as bar:
            task = bar.add_task(f"importing {name}", total=None)

            def show(stage, done, total, task=task, name=name, bar=bar):
                bar.update(task, description=f"{name}: {stage}", completed=done)

            report = ingest.import_file(
                store, path, dataset=dataset, category=category, author=author, progress=show
            )
        out.print(render_import(report))
        if not report.imported:
            empty.append(report)
    for report in empty:
        console.print(
            error_line(
                f"nothing imported from {report.file}: all "
                f"{report.rejected:,} of its records were rejected (see `workbench rejects {report.import_id}`); "
                "fix the file and import it again"
            )
        )
    sys.exit(1 if empty else 0)


def render_import(report: ingest.ImportReport) -> Table:
    table = Table(
        title=f"{Path(report.file).name} → {report.dataset} (import #{report.import_id})",
        show_header=False,
        title_justify="left",
    )
    table.add_column(style="bold")
    table.add_column()
    table.add_row("file format", f"{report.file_format}, {report.encoding}")
    table.add_row("record format", report.detected_format)
    table.add_row(
        "imported", f"{report.imported:,}" + (f" ({report.repaired} repaired)" if report.repaired else "")
    )
    table.add_row(
        "rejected",
        f"{report.rejected:,}"
        + (
            "  " + ", ".join(f"{code} {n}" for code, n in report.reject_counts.items())
            if report.rejected
            else ""
        ),
    )
    if report.blank_lines:
        table.add_row("blank lines", f"{report.blank_lines:,} (skipped)")
    for rej in report.rejects[:5]:
        table.add_row("", f"line {rej.line}: [{rej.code}] {rej.reason}")
    if report.rejected > 5:
        table.add_row("", f"... every rejected line is kept: workbench rejects {report.import_id}")
    issues = ", ".join(f"{code} {n}" for code, _sev, n in report.issue_counts) or "none"
    table.add_row("issues", issues)
    if report.earlier_import:
        eid, name, when = report.earlier_import
        table.add_row("note", f"the same file was imported before as #{eid} ({name}, {when})")
    table.add_row("time", f"{report.seconds:.1f} s")
    return table


@click.command("check")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input record, in input order.")
@click.option(
    "--fix",
    "fix_out",
    type=click.Path(dir_okay=False),
    help="Write the records with safe autofixes applied here (JSONL).",
)
@click.option(
    "--max-tokens", type=int, default=None, help="Flag records longer than this many tokens (default 2048)."
)
@click.option("--model", default=None, help="Whose tokenizer counts tokens (default: the embedded SmolLM2).")
def check(path, as_json, fix_out, max_tokens, model):
    """Check a file without importing it. Exit status: 0 no errors, 1 errors found, 2 unreadable input."""
    from .. import ingest
    from ..checks import CheckContext
    from ..models import token_counter

    ctx = CheckContext(max_tokens=max_tokens or 2048, count_tokens=token_counter(model))
    checked = list(ingest.check_file(path, ctx))
    errors = sum(1 for c in checked if not c.ok)
    if as_json:
        for item in checked:
            out.print(json.dumps(item.as_dict(), ensure_ascii=False), markup=False)
    else:
        render_check(path, checked)
    if fix_out:
        written = skipped = fixed = 0
        with open(fix_out, "w", encoding="utf-8") as f:
            for _item, record, applied in ingest.fixed_records(iter(checked), ctx):
                if record is None:
                    skipped += 1
                    continue
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                written += 1
                fixed += bool(applied)
        console.print(
            f"wrote {written} records to {fix_out} ({fixed} repaired); "
            f"{skipped} unreadable lines left out (see the report above)"
        )
    sys.exit(1 if errors else 0)


def render_check(path: str, checked: list) -> None:
    from collections import Counter

    counts = Counter(key for c in checked for key in {(i.code, i.severity, bool(i.fix)) for i in c.issues})
    bad = sum(1 for c in checked if not c.ok)
    out.print(
        f"{path}: {len(checked)} records, {bad} with errors, "
        f"{sum(1 for c in checked if c.issues and c.ok)} with warnings only"
    )
    if counts:
        table = Table("code", "severity", "records", "autofix")
        for (code, severity, fixable), n in counts.most_common():
            table.add_row(code, severity, str(n), "yes" if fixable else "")
        out.print(table)
    for item in [c for c in checked if c.issues][:10]:
        for issue in item.issues[:3]:
            where = f"line {item.line}" + (f", turn {issue.turn}" if issue.turn else "")
            out.print(f"  {where}: [{issue.code}] {issue.message}", markup=False)


@click.command("rejects")
@click.argument("import_id", type=int)
@click.pass_context
def rejects(ctx, import_id):
    """Every line an import rejected, with the reason and the raw text."""
    from .. import ingest

    out.print(ingest.rejects_jsonl(open_store(ctx), import_id), end="", markup=False)


COMMANDS = [import_cmd, check, rejects]
