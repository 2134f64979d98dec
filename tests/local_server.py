"""The session's `transformers serve` (the `server` fixture, tests/conftest.py), started again after a test kills it."""

from __future__ import annotations


def revive(server) -> None:
    """Start the server again on its port, in place, if it is down (a test killed it)."""
    from urllib.parse import urlparse

    from workbench.serve import start_server

    if server.process is not None and server.process.poll() is None:
        return
    restarted = start_server(server.model_id, port=urlparse(server.url).port, log=server.log, device="cpu")
    server.process, server.pid = restarted.process, restarted.pid
