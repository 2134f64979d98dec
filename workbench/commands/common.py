"""What every command module shares: the consoles, the store of the `--store` option, progress bars.

Command modules import this, never `workbench.cli` (which imports them), so there is no import cycle.
Both consoles print text, never Rich markup: names, record text and model output come from data, and a
category `[/bold]` would break a table (MarkupError) or `:warning:` turn into an emoji. What we style
ourselves says so, with a `rich.text.Text` and its style (`Text("total", style="bold")`, `error_line`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from ..store import Store

console = Console(stderr=True, soft_wrap=True, markup=False, emoji=False)
out = Console(highlight=False, soft_wrap=True, markup=False, emoji=False)

AUTHOR = click.option(
    "--author",
    default=lambda: cli_author(),
    help="Who did it (kept in the log; with accounts, the --user / $WORKBENCH_USER account).",
)
EMBED_MISSING = click.option(
    "--embed/--no-embed",
    "embed_missing",
    default=True,
    show_default=True,
    help="Embed records that have no cached vector first.",
)


def cli_author() -> str:
    """Who the CLI writes as the author: the --user / $WORKBENCH_USER account when given, else $USER."""
    ctx = click.get_current_context(silent=True)
    user = ((ctx.find_root().obj or {}) if ctx else {}).get("user")
    return user or os.environ.get("USER", "cli")


def open_store(ctx: click.Context) -> Store:
    """The store named by the group's --store option (or $WORKBENCH_STORE, or ./store)."""
    return Store.open(ctx.obj.get("store_dir"))


def dump_json(data) -> str:
    """One JSON object for --json output: non-ASCII text as it is, anything else (dates, paths) as a string."""
    return json.dumps(data, ensure_ascii=False, default=str)


def error_line(message: object) -> Text:
    """`error: <message>` for stderr, the word in red and the message (which names data) as it is."""
    return Text.assemble(("error:", "red"), " ", str(message))


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}", markup=False),  # stages name files: text, not markup
        BarColumn(),
        TextColumn("{task.completed:,}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def staged(bar: Progress) -> Callable[[str, int, int], None]:
    """A progress callback `(stage, done, total)` that shows each stage as its own bar."""
    tasks: dict[str, object] = {}

    def show(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total or None)
        bar.update(tasks[stage], completed=done, total=total or None)

    return show
