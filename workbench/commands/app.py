"""`workbench app`: open the browser workbench."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..accounts import check_listen_address
from ..errors import WorkbenchError
from .common import open_store


@click.command("app")
@click.option("--port", default=8501, show_default=True)
@click.option(
    "--address",
    default="localhost",
    show_default=True,
    help="Where to listen. Anything beyond this machine needs accounts (sign-in) first.",
)
@click.option("--headless", is_flag=True, help="Do not open a browser (make app).")
@click.pass_context
def app(ctx, port, address, headless):
    """Open the browser workbench (Streamlit, on localhost unless the store has accounts)."""
    entry = Path(__file__).resolve().parents[2] / "app.py"
    if not entry.exists():
        raise WorkbenchError(f"{entry} is missing: run the app from a checkout of sft-workbench (make app)")
    store = open_store(ctx)
    check_listen_address(store, address)
    os.environ["WORKBENCH_STORE"] = str(store.root)
    os.execvp(
        sys.executable,
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(entry),
            "--server.address",
            address,
            "--server.port",
            str(port),
            *(["--server.headless", "true"] if headless else []),
        ],
    )


COMMANDS = [app]
