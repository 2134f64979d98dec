"""The loop written once (`workbench.cycle`): its typed settings, and an empty selection as a typed error, raised
where the export or the evaluation finds nothing (the loop, the demo loop and the pipeline run it end to end in
test_evaluate_cli, test_demo and test_pipeline)."""

from __future__ import annotations

import pytest

from tests.conftest import chat
from workbench.cycle import CycleState, EvalPlan, EvalSet, TrainSettings, run_cycle
from workbench.errors import EmptySelectionError, WorkbenchError
from workbench.evaluate import evaluate
from workbench.export import ExportConfig, export_training_set
from workbench.ingest import import_file
from workbench.store import Store


def test_nothing_to_export_is_an_empty_selection_error_and_no_run_starts(tmp_path, write_jsonl):
    store = Store.open(tmp_path / "store")
    import_file(
        store, write_jsonl([chat("我的订单还没到", "已为您查询物流。"), chat("Refund please", "Done.")])
    )
    with pytest.raises(
        EmptySelectionError, match="nothing to export: no record in badcases has status approved"
    ):
        export_training_set(store, ExportConfig(name="空"))  # imported, none approved
    saved: list[CycleState] = []
    with pytest.raises(EmptySelectionError, match="Approve or fix records first"):
        run_cycle(
            store,
            ExportConfig(name="空"),
            TrainSettings(),
            EvalPlan((EvalSet("val", "val"),)),
            save=lambda state: saved.append(CycleState(**vars(state))),
        )
    assert [s.stage for s in saved] == ["export"] and saved[-1].run_id is None


def test_an_eval_set_with_no_answer_to_score_is_an_empty_selection_error(tmp_path, write_jsonl):
    store = Store.open(tmp_path / "store")
    import_file(store, write_jsonl([chat("推荐一家附近的餐厅"), chat("What time is it?")]), dataset="eval")
    with pytest.raises(
        EmptySelectionError, match="the dataset set \\(eval\\) has no record with a final assistant"
    ):
        evaluate(store, "base", "dataset", dataset="eval")


def test_train_settings_refuse_a_field_the_training_config_does_not_have():
    assert TrainSettings(overrides={"epochs": 2, "lora_rank": None}).values(threads=3) == {
        "threads": 3,
        "epochs": 2,
    }
    assert TrainSettings(overrides={"threads": 1}).values(threads=3) == {"threads": 1}
    with pytest.raises(WorkbenchError, match="epoch is not a training setting; use TrainConfig's fields"):
        TrainSettings(overrides={"epoch": 2})
