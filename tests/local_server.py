"""The session's `transformers serve` (the `server` fixture, tests/conftest.py), started again after a test kills it."""

from __future__ import annotations


def revive(server) -> None:
    """Start the server again on its port, in place, if it is down (a test killed it)."""
    from workbench.serve import start_server

    if server.process is not None and server.process.poll() is None:
        return
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    restarted = start_server(server.model_id, port=port, log=server.log, device="cpu")
    server.process, server.pid = restarted.process, restarted.pid
