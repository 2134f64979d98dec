"""`workbench app`: open the browser workbench."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..errors import WorkbenchError


@click.command("app")
@click.option("--port", default=8501, show_default=True)
@click.pass_context
def app(ctx, port):
    """Open the browser workbench (Streamlit, on localhost)."""
    entry = Path(__file__).resolve().parents[2] / "app.py"
    if not entry.exists():
        raise WorkbenchError(f"{entry} is missing: run the app from a checkout of sft-workbench (make app)")
    os.execvp(
        sys.executable,
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(entry),
            "--server.address",
            "localhost",
            "--server.port",
            str(port),
        ],
    )


COMMANDS = [app]
