"""The `workbench` command line: one click group; each command parses its options and calls one library function.

The commands live in `workbench/commands/`, one module per stage, each listing its commands in
`COMMANDS`; this module only builds the group and adds them (see docs/architecture.md).
"""

from __future__ import annotations

import sys

import click

from . import roles
from .commands import (
    app,
    cluster,
    curation,
    dedup,
    demo,
    embed,
    evaluate,
    export,
    imports,
    models,
    team,
    train,
    users,
)
from .commands.common import console, error_line
from .errors import InputFileError, WorkbenchError

COMMAND_MODULES = (
    imports,
    curation,
    embed,
    dedup,
    cluster,
    export,
    train,
    evaluate,
    models,
    demo,
    app,
    users,
    team,
)


class CLIGroup(click.Group):
    """Turns WorkbenchError into one clear line and exit status 1 instead of a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InputFileError as exc:
            console.print(error_line(exc))
            sys.exit(2)
        except WorkbenchError as exc:
            console.print(error_line(exc))
            sys.exit(1)


@click.group(cls=CLIGroup)
@click.option(
    "--store",
    "store_dir",
    type=click.Path(file_okay=False),
    envvar="WORKBENCH_STORE",
    help="The data folder (default: ./store, or $WORKBENCH_STORE).",
)
@click.option(
    "--user",
    envvar=roles.USER_ENV,
    help="The account to act as when the store has accounts (or $WORKBENCH_USER). Roles in the CLI guard "
    "against mistakes, not attackers: whoever can write the store folder can change anything in it.",
)
@click.pass_context
def main(ctx: click.Context, store_dir: str | None, user: str | None) -> None:
    """sft-workbench: collect badcases, check and fix them, export training sets, train LoRA adapters."""
    ctx.obj = {"store_dir": store_dir, "user": user}
    ctx.with_resource(roles.acting_as(user))  # for this command only, also when it runs in-process


for module in COMMAND_MODULES:
    for command in module.COMMANDS:
        main.add_command(command)

if __name__ == "__main__":
    main()
