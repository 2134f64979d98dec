"""`workbench users`: the team's accounts (list, add, remove). Passwords are read, never echoed or printed."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from ..accounts import ROLES, add_account, list_accounts, remove_account
from ..errors import WorkbenchError
from ..roles import current_actor
from .common import open_store, out


def read_password(name: str) -> str:
    """The new password, twice: getpass on a terminal, else the first two lines of stdin."""
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass(f"Password for {name}: ")
        second = getpass.getpass("Again: ")
    else:
        first, second = (sys.stdin.readline().rstrip("\r\n") for _ in range(2))
    if first != second:
        raise WorkbenchError(
            f"the two passwords for {name!r} differ: nothing was changed; run the command again"
        )
    return first


@click.group("users", invoke_without_command=True)
@click.pass_context
def users(ctx):
    """List the accounts (name, role, when and by whom added). With accounts, the app asks everyone to sign in."""
    if ctx.invoked_subcommand is not None:
        return
    accounts = list_accounts(open_store(ctx))
    if not accounts:
        out.print(
            "no accounts: solo mode (no sign-in). Add the first with: workbench users add NAME --role owner"
        )
        return
    table = Table("name", "role", "added", "by")
    for account in accounts:
        table.add_row(
            account.name, account.role, f"{account.created_at:%Y-%m-%d %H:%M}", account.created_by or ""
        )
    out.print(table)


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the account may do.")
@click.pass_context
def users_add(ctx, name, role):
    """Add an account; its password is asked twice (or read as two lines from stdin)."""
    password = read_password(name)
    account = add_account(open_store(ctx), name, role, password, created_by=current_actor())
    out.print(f"added {account.role} {account.name}")


@users.command("remove")
@click.argument("name")
@click.pass_context
def users_remove(ctx, name):
    """Remove an account and sign it out everywhere (its past changes keep its name)."""
    remove_account(open_store(ctx), name, actor=current_actor())
    out.print(f"removed {name}")


COMMANDS = [users]
