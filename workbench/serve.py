"""A model behind an OpenAI-compatible endpoint on this machine: a run's adapter merged into its base model
(cached under the run), Hugging Face's own server (`transformers serve`) started on it, bound to 127.0.0.1,
and registered as a model so the Playground and `evaluate endpoint:NAME` can use it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .background.process import spawn_worker, worker_env
from .errors import WorkbenchError
from .store import Store

SERVER_START_S = 180.0


@dataclass
class Server:
    """A running `transformers serve`: its process, its base URL and the model id it serves."""

    pid: int
    url: str
    model_id: str
    log: Path
    process: subprocess.Popen | None = None

    def stop(self) -> None:
        """Stop the server (SIGKILL after 10 s of SIGTERM)."""
        if self.process is None:
            from .background.process import stop_worker

            stop_worker(self.pid)
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class ServedRun:
    name: str
    run_id: int
    merged: Path
    server: Server


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def start_server(
    model_dir: str | Path,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    log: Path,
    device: str = "auto",
    wait_s: float = SERVER_START_S,
) -> Server:
    """Start `transformers serve` on a local model folder and wait until it answers; raises WorkbenchError with
    the end of its log when it does not come up."""
    model_dir = str(Path(model_dir).resolve())
    port = port or free_port(host)
    command = [
        sys.executable, "-m", "transformers.cli.transformers", "serve", model_dir,
        "--host", host, "--port", str(port), "--device", device, "--dtype", "float32", "--log-level", "warning",
    ]  # fmt: skip
    log.parent.mkdir(parents=True, exist_ok=True)
    process = spawn_worker(command, log, worker_env(HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1")))
    server = Server(process.pid, f"http://{host}:{port}/v1", model_dir, log, process)
    _wait_until_up(server, host, port, wait_s)
    return server


def _wait_until_up(server: Server, host: str, port: int, wait_s: float) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if server.process is not None and server.process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    tail = server.log.read_text(encoding="utf-8", errors="replace")[-1500:] if server.log.exists() else ""
    server.stop()
    raise WorkbenchError(
        f"`transformers serve` on {server.model_id} did not answer on {host}:{port} within {wait_s:.0f} s; "
        f"the end of its log ({server.log}):\n{tail}"
    )


def merged_model(store: Store, run_id: int) -> Path:
    """The run's adapter merged into its base model, saved once under the run (merged/) with its tokenizer."""
    from .store.runs import get_run

    with store.connect() as con:
        run = get_run(con, run_id)
    adapter = Path(run.run_dir) / "adapter"
    if run.status != "done" or not (adapter / "adapter_config.json").is_file():
        raise WorkbenchError(
            f"run {run_id} has no finished adapter (it is {run.status}); serve a finished run"
        )
    target = Path(run.run_dir) / "merged"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    import warnings

    import torch
    from peft import PeftModel
    from transformers.utils import logging as hf_logging

    from .models import EMBEDDED_MODEL, load_causal_lm, load_chat_tokenizer

    name = None if run.base_model == EMBEDDED_MODEL else run.base_model
    partial = target.with_name("merged.partial")
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # the library never prints: no "Loading weights" bar on the caller's terminal
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            base = load_causal_lm(name, store.models_dir, dtype=torch.float32)
            merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
            merged.save_pretrained(partial)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    load_chat_tokenizer(name, store.models_dir, run.config.get("chat_template")).save_pretrained(partial)
    if partial.exists():
        import shutil

        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return target


def serve_run(store: Store, run_id: int, *, port: int | None = None, name: str | None = None) -> ServedRun:
    """Merge run `run_id` (cached), start `transformers serve` on it bound to 127.0.0.1, register it as model
    `name` (default run-ID; an earlier registration of that name is replaced). The server runs detached until
    stopped (its pid is in the run folder's serve.log line and `ServedRun.server`)."""
    from . import roles
    from .registry import add_endpoint

    roles.require(store, "models")
    merged = merged_model(store, run_id)
    server = start_server(merged, port=port, log=merged.parent / "serve.log")
    name = name or f"run-{run_id}"
    add_endpoint(store, name, server.url, server.model_id, max_concurrency=4, run_id=run_id, replace=True)
    return ServedRun(name, run_id, merged, server)
