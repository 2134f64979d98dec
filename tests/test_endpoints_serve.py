"""`workbench serve RUN`: a finished run (a tiny random Llama, trained a few steps) merged once under the run,
a real `transformers serve` started on it bound to 127.0.0.1, registered, and answering a Chinese chat."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tests.data_train import write_classification_export
from workbench import registry
from workbench.cli import main
from workbench.endpoint import chat
from workbench.serve import merged_model, serve_run
from workbench.store import Store
from workbench.train import TrainConfig
from workbench.train import runs as R

pytestmark = pytest.mark.slow


def test_a_served_run_is_merged_once_registered_and_answers(tmp_path, tiny):
    store = Store.open(tmp_path / "store")
    export = write_classification_export(store.exports_dir / "intents-0123456789", n=16)
    config = TrainConfig(base_model=tiny, max_steps=2, batch_size=8, lora_rank=4, eval_every_steps=0)
    run_id = R.start_run(store, export, config)
    assert R.wait_for_run(store, run_id, timeout_s=180).state == "done"
    served = serve_run(store, run_id)
    try:
        assert served.server.url.startswith("http://127.0.0.1:") and served.name == f"run-{run_id}"
        merged = served.merged / "model.safetensors"
        stamp = merged.stat().st_mtime_ns
        assert merged_model(store, run_id) == served.merged and merged.stat().st_mtime_ns == stamp  # cached
        listed = {m.name: m for m in registry.list_models(store)}[served.name]
        assert listed.healthy and listed.run_id == run_id, listed.health
        answer = chat(
            registry.endpoint_of(store, served.name), [{"role": "user", "content": "你好"}], max_tokens=4
        )
        assert answer.output_tokens and answer.seconds > 0
        shown = CliRunner().invoke(main, ["--store", str(store.root), "models"])
        assert served.name in shown.output and "yes" in shown.output
    finally:
        served.server.stop()
