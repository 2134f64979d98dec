"""The `workbench` command line: each command parses its options and calls one library function."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import ingest, stats
from .errors import InputFileError, WorkbenchError
from .store import Store

console = Console(stderr=True, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


class CLIGroup(click.Group):
    """Turns WorkbenchError into one clear line and exit status 1 instead of a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InputFileError as exc:
            console.print(f"[red]error:[/red] {exc}")
            sys.exit(2)
        except WorkbenchError as exc:
            console.print(f"[red]error:[/red] {exc}")
            sys.exit(1)


@click.group(cls=CLIGroup)
@click.option("--store", "store_dir", type=click.Path(file_okay=False), envvar="WORKBENCH_STORE",
              help="The data folder (default: ./store, or $WORKBENCH_STORE).")
@click.pass_context
def main(ctx: click.Context, store_dir: str | None) -> None:
    """sft-workbench: collect badcases, check and fix them, export training sets, train LoRA adapters."""
    ctx.obj = {"store_dir": store_dir}


def open_store(ctx: click.Context) -> Store:
    return Store.open(ctx.obj.get("store_dir"))


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,}"),
                    TimeElapsedColumn(), console=console, transient=True, disable=not console.is_terminal)


@main.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--dataset", default="badcases", show_default=True,
              help="Dataset to import into (badcases, general, eval, or a new badcases dataset's name).")
@click.option("--category", help="Category for records that do not name one.")
@click.option("--author", default=lambda: os.environ.get("USER", "cli"), help="Who imported (kept in the log).")
@click.pass_context
def import_cmd(ctx, paths, dataset, category, author):
    """Import JSONL, JSON, CSV/TSV or Parquet files of chat records."""
    store = open_store(ctx)
    empty = []
    for path in paths:
        name = Path(path).name
        with progress_bar() as bar:
            task = bar.add_task(f"importing {name}", total=None)

            def show(stage, done, total, task=task, name=name, bar=bar):
                bar.update(task, description=f"{name}: {stage}", completed=done)

            report = ingest.import_file(store, path, dataset=dataset, category=category, author=author, progress=show)
        out.print(render_import(report))
        if not report.imported:
            empty.append(report)
    for report in empty:
        console.print(f"[red]error:[/red] nothing imported from {escape(report.file)}: all "
                      f"{report.rejected:,} of its records were rejected (see `workbench rejects {report.import_id}`); "
                      "fix the file and import it again")
    sys.exit(1 if empty else 0)


def render_import(report: ingest.ImportReport) -> Table:
    table = Table(title=f"{Path(report.file).name} → {report.dataset} (import #{report.import_id})",
                  show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("file format", f"{report.file_format}, {report.encoding}")
    table.add_row("record format", report.detected_format)
    table.add_row("imported", f"{report.imported:,}" + (f" ({report.repaired} repaired)" if report.repaired else ""))
    table.add_row("rejected", f"{report.rejected:,}" + (
        "  " + ", ".join(f"{code} {n}" for code, n in report.reject_counts.items()) if report.rejected else ""))
    if report.blank_lines:
        table.add_row("blank lines", f"{report.blank_lines:,} (skipped)")
    for rej in report.rejects[:5]:
        table.add_row("", escape(f"line {rej.line}: [{rej.code}] {rej.reason}"))
    if report.rejected > 5:
        table.add_row("", f"... every rejected line is kept: workbench rejects {report.import_id}")
    issues = ", ".join(f"{code} {n}" for code, _sev, n in report.issue_counts) or "none"
    table.add_row("issues", issues)
    if report.earlier_import:
        eid, name, when = report.earlier_import
        table.add_row("note", f"the same file was imported before as #{eid} ({name}, {when})")
    table.add_row("time", f"{report.seconds:.1f} s")
    return table


@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input record, in input order.")
@click.option("--fix", "fix_out", type=click.Path(dir_okay=False), help="Write the records with safe autofixes applied here (JSONL).")
@click.option("--max-tokens", type=int, default=None, help="Flag records longer than this many tokens (default 2048).")
@click.option("--model", default=None, help="Whose tokenizer counts tokens (default: the embedded SmolLM2).")
def check(path, as_json, fix_out, max_tokens, model):
    """Check a file without importing it. Exit status: 0 no errors, 1 errors found, 2 unreadable input."""
    from .checks import CheckContext
    from .models import token_counter

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
        console.print(f"wrote {written} records to {fix_out} ({fixed} repaired); "
                      f"{skipped} unreadable lines left out (see the report above)")
    sys.exit(1 if errors else 0)


def render_check(path: str, checked: list) -> None:
    from collections import Counter

    counts = Counter(key for c in checked for key in {(i.code, i.severity, bool(i.fix)) for i in c.issues})
    bad = sum(1 for c in checked if not c.ok)
    out.print(f"{path}: {len(checked)} records, {bad} with errors, "
              f"{sum(1 for c in checked if c.issues and c.ok)} with warnings only")
    if counts:
        table = Table("code", "severity", "records", "autofix")
        for (code, severity, fixable), n in counts.most_common():
            table.add_row(code, severity, str(n), "yes" if fixable else "")
        out.print(table)
    for item in [c for c in checked if c.issues][:10]:
        for issue in item.issues[:3]:
            where = f"line {item.line}" + (f", turn {issue.turn}" if issue.turn else "")
            out.print(f"  {where}: [{issue.code}] {issue.message}", markup=False)


@main.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def stats_cmd(ctx, as_json):
    """Counts by dataset, category, status and issue code."""
    summary = stats.store_summary(open_store(ctx))
    if as_json:
        out.print(json.dumps(summary.as_dict(), ensure_ascii=False, default=str), markup=False)
        return
    for title, rows, header in (
        ("datasets", summary.datasets, ("dataset", "kind", "records")),
        ("statuses", summary.statuses, ("status", "records")),
        ("categories", summary.categories, ("category", "records")),
        ("issues", summary.issues, ("code", "severity", "records")),
    ):
        table = Table(*header, title=title, title_justify="left")
        for row in rows:
            table.add_row(*[str(x) if x is not None else "(none)" for x in row])
        out.print(table)


@main.command()
@click.option("--markdown", is_flag=True, help="A Markdown table (as in the README).")
def rules(markdown):
    """The check codes: what each catches, its severity, and whether it has an autofix."""
    from .checks import rules_table

    rows = [(r.code, r.severity, "yes" if r.fixable else "", "import" if r.stage == "import" else "any time", r.title)
            for r in rules_table()]
    header = ("code", "severity", "autofix", "found", "catches")
    if markdown:
        out.print("| " + " | ".join(header) + " |\n|" + "---|" * len(header), markup=False)
        for row in rows:
            out.print("| " + " | ".join(f"`{row[0]}`" if i == 0 else row[i] for i in range(len(row))) + " |",
                      markup=False)
        return
    table = Table(*header)
    for row in rows:
        table.add_row(*row)
    out.print(table)


@main.command()
@click.argument("category")
@click.option("--labels", help="Comma-separated labels: the answer must be exactly one of them.")
@click.option("--json", "as_json", is_flag=True, help="The answer must be valid JSON.")
@click.option("--schema", type=click.Path(exists=True, dir_okay=False), help="A JSON Schema file the answer must satisfy.")
@click.option("--regex", help="A pattern (Python re) the whole answer must match.")
@click.option("--remove", is_flag=True, help="Drop the category's contract.")
@click.pass_context
def contract(ctx, category, labels, as_json, schema, regex, remove):
    """Declare what the assistant's answer in CATEGORY must be, then re-check that category."""
    from . import curation
    from .contracts import Contract

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
        spec = Contract(category, "json_schema", json.loads(Path(schema).read_text(encoding="utf-8")))
    else:
        spec = Contract(category, "regex", regex)
    counts = curation.set_contract(store, spec)
    broken = sum(n for code, _s, n in counts if code.startswith("contract-"))
    out.print(f"{category!r}: answers must follow a {spec.kind} contract; {broken} record(s) break it")


@main.command()
@click.option("--dataset")
@click.option("--category")
@click.pass_context
def recheck(ctx, dataset, category):
    """Run the checks again over the store (after changing contracts or settings)."""
    from . import curation
    from .store.records import Selection

    counts = curation.recheck(open_store(ctx), Selection(dataset=dataset, category=category))
    table = Table("code", "severity", "records")
    for row in counts:
        table.add_row(*map(str, row))
    out.print(table)


@main.command()
@click.option("--dataset")
@click.option("--category")
@click.option("--code", help="Only records with this issue code.")
@click.option("--author", default=lambda: os.environ.get("USER", "cli"))
@click.pass_context
def fix(ctx, dataset, category, code, author):
    """Apply every safe autofix to records in the store (each fix is a revision you can undo)."""
    from . import curation
    from .store.records import Selection

    report = curation.apply_autofixes(open_store(ctx), Selection(dataset=dataset, category=category, issue_code=code),
                                      author)
    out.print(f"fixed {len(report.fixed)} of {report.looked_at} records with fixable issues")


@main.command("status")
@click.argument("status", type=click.Choice(["new", "labeled", "fixed", "approved", "rejected"]))
@click.option("--dataset")
@click.option("--category")
@click.option("--from-status", help="Only records now in this status (e.g. fixed).")
@click.option("--ids", help="Comma-separated record ids.")
@click.option("--author", default=lambda: os.environ.get("USER", "cli"))
@click.pass_context
def status_cmd(ctx, status, dataset, category, from_status, ids, author):
    """Set the status of records (e.g. approve the reviewed ones, which exports take by default)."""
    from . import curation
    from .store.records import Selection

    chosen = tuple(int(x) for x in ids.split(",")) if ids else None
    changed = curation.set_status(open_store(ctx), Selection(dataset=dataset, category=category, status=from_status,
                                                             ids=chosen), status, author)
    out.print(f"{changed} record(s) set to {status}")


@main.command()
@click.argument("key", required=False)
@click.argument("value", required=False)
@click.pass_context
def config(ctx, key, value):
    """Show the store's settings, or set one (max_tokens, target_model)."""
    from . import curation
    from .store.settings import all_settings

    store = open_store(ctx)
    if key and value is not None:
        curation.set_setting(store, key, int(value) if value.isdigit() else value)
    with store.connect(read_only=True) as con:
        for name, setting in all_settings(con).items():
            if key in (None, name):
                out.print(f"{name} = {json.dumps(setting)}", markup=False)


@main.command()
@click.argument("import_id", type=int)
@click.pass_context
def rejects(ctx, import_id):
    """Every line an import rejected, with the reason and the raw text."""
    from .store.imports import rejects_of

    store = open_store(ctx)
    with store.connect(read_only=True) as con:
        for rej in rejects_of(con, import_id):
            out.print(json.dumps({"line": rej.line, "code": rej.code, "reason": rej.reason, "raw": rej.raw},
                                 ensure_ascii=False), markup=False)


@main.command()
@click.option("--port", default=8501, show_default=True)
@click.pass_context
def app(ctx, port):
    """Open the browser workbench (Streamlit, on localhost)."""
    entry = Path(__file__).resolve().parent.parent / "app.py"
    if not entry.exists():
        raise WorkbenchError(f"{entry} is missing: run the app from a checkout of sft-workbench (make app)")
    os.execvp(sys.executable, [sys.executable, "-m", "streamlit", "run", str(entry), "--server.address", "localhost",
                               "--server.port", str(port)])


def _register_commands() -> None:
    """Commands of the other areas (dedup, export, train, ...) live in workbench/commands/, one module each."""
    import importlib
    import pkgutil

    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        importlib.import_module(f"{commands.__name__}.{info.name}").register(main)


_register_commands()

if __name__ == "__main__":
    main()
