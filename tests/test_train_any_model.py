"""Training any local model: its own chat template renders the export and places the loss mask, and a template
that cannot render the records refuses the run before it starts. The tiny random llama, given other templates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.data_train import classification_records, write_export
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.models import EMBEDDED_MODEL, embedded_gguf, resolve_model
from workbench.train import TrainConfig, train
from workbench.train import runs as R
from workbench.train.data import preview_mask
from workbench.train.folder import RunFolder
from workbench.train.template_check import ChatTemplateError, check_export_template, require_renderable

# Qwen2.5's chat format: a default system prompt, tools in the system turn, tool calls as <tool_call> JSON,
# tool results as user turns. Text goes out through {{ }} only: transformers renders with trim_blocks, which
# eats a newline written after a {% %} tag.
QWEN_STYLE = (
    "{% if messages[0].role == 'system' %}{% set system = messages[0].content %}"
    "{% else %}{% set system = 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' %}{% endif %}"
    "{{ '<|im_start|>system\\n' + system }}"
    "{% if tools %}{{ '\\n\\n# Tools\\n<tools>' }}{% for tool in tools %}{{ '\\n' + (tool | tojson) }}{% endfor %}"
    "{{ '\\n</tools>' }}{% endif %}{{ '<|im_end|>\\n' }}"
    "{% for message in messages %}"
    "{% if message.role == 'user' %}{{ '<|im_start|>user\\n' + message.content + '<|im_end|>\\n' }}"
    "{% elif message.role == 'assistant' %}{{ '<|im_start|>assistant\\n' + message.content }}"
    '{% for call in message.tool_calls or [] %}{{ \'<tool_call>\\n{"name": "\' + call.function.name + '
    "'\", \"arguments\": ' + (call.function.arguments | tojson) + '}\\n</tool_call>' }}{% endfor %}"
    "{{ '<|im_end|>\\n' }}"
    "{% elif message.role == 'tool' %}"
    "{{ '<|im_start|>user\\n<tool_response>\\n' + message.content + '\\n</tool_response><|im_end|>\\n' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# Gemma's: no system role, the assistant is 'model'
NO_SYSTEM = (
    "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}{{ '<start_of_turn>' + ('model' if message.role == 'assistant' else message.role) "
    "+ '\\n' + message.content + '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)
# ChatML that refuses a 'tool' turn, as many chat models' templates do
NO_TOOL_ROLE = (
    "{% for message in messages %}{% if message.role == 'tool' %}"
    "{{ raise_exception('Only user, assistant and system roles are supported') }}{% endif %}"
    "{{ '<|im_start|>' + message.role + '\\n' + message.content }}"
    "{% for call in message.tool_calls or [] %}{{ call | tojson }}{% endfor %}{{ '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# A broken template: it writes the assistant's turn without its text
NO_ANSWER_TEXT = (
    "{% for message in messages %}{{ '<|im_start|>' + message.role + '\\n' }}"
    "{% if message.role != 'assistant' %}{{ message.content }}{% endif %}{{ '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

TOOL_RECORD = {
    "id": 9001,
    "category": "订单查询",
    "tools": [{"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object"}}}],
    "messages": [
        {"role": "system", "content": "你是售后客服，可以查询订单。"},
        {"role": "user", "content": "订单 #12345 到哪了？"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"type": "function", "function": {"name": "lookup_order", "arguments": '{"order": "12345"}'}}
            ],
        },
        {"role": "tool", "content": '{"status": "已发货", "city": "杭州"}'},
        {"role": "assistant", "content": "您的订单已从杭州发出。"},
    ],
}


def model_with_template(tiny_model: Path, folder: Path, template: str | None) -> str:
    """A copy of the tiny llama whose tokenizer carries `template` (None: no chat template at all)."""
    shutil.copytree(tiny_model, folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    settings.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(settings))
    if template is not None:
        (folder / "chat_template.jinja").write_text(template, encoding="utf-8")
    return str(folder)


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    records = classification_records(24, chinese_share=0.5)
    return write_export(
        tmp_path_factory.mktemp("export") / "intents", [*records[4:], TOOL_RECORD], records[:4]
    )


@pytest.fixture(scope="module")
def qwen_style(tmp_path_factory, tiny_model) -> str:
    return model_with_template(tiny_model, tmp_path_factory.mktemp("models") / "qwen-style", QWEN_STYLE)


def test_own_template_renders_the_export_and_masks_only_the_answers(export, qwen_style):
    check = require_renderable(check_export_template(export, base_model=qwen_style))
    assert (check.records, check.shapes) == (25, 2)  # the labelled records, and the one with a tool call
    preview = preview_mask(export, base_model=qwen_style, record_id=9001)
    assert preview.marked_text.startswith(
        "<|im_start|>system\n你是售后客服，可以查询订单。\n\n# Tools\n<tools>\n"
    )
    # the tool call and the final answer are trained; the tool's result and the prompt are not
    assert '⟦<tool_call>\n{"name": "lookup_order"' in preview.marked_text
    assert preview.marked_text.endswith("<|im_start|>assistant\n⟦您的订单已从杭州发出。<|im_end|>⟧\n")
    assert "⟦" not in preview.marked_text.split("<tool_response>")[1].split("</tool_response>")[0]


def test_a_run_trains_with_the_models_own_template(tmp_path, export, qwen_style):
    config = TrainConfig(
        base_model=qwen_style, max_steps=2, batch_size=8, lora_rank=4, eval_every_steps=2, eval_max_records=2,
        eval_max_new_tokens=2,
    )  # fmt: skip
    result = train(export, config, tmp_path / "run")
    assert result.state == "done" and result.steps == 2
    assert (result.adapter_dir / "adapter_model.safetensors").is_file()
    log = RunFolder(tmp_path / "run").log_path.read_text(encoding="utf-8")
    assert f"chat template of {qwen_style}: renders all 2 record shapes" in log


def test_a_template_that_refuses_the_system_role_refuses_the_run_before_it_starts(
    tmp_path, store, export, tiny_model
):
    gemma_style = model_with_template(tiny_model, tmp_path / "gemma-style", NO_SYSTEM)
    with pytest.raises(ChatTemplateError) as refusal:
        R.start_run(store, export, TrainConfig(base_model=gemma_style), author="tester")
    message = str(refusal.value)
    assert (
        "System role not supported" in message
        and "System role not supported, in 25 records (train.jsonl lines 1, 2, 3, …)" in message
    )
    assert "--chat-template chatml" in message and "nothing was trained" in message
    assert R.list_runs(store) == [] and not any(store.runs_dir.glob("*"))
    # the way out it names: another template (ChatML renders the system prompt, though not the tool call)
    with_chatml = check_export_template(export, base_model=gemma_style, chat_template="chatml")
    assert [(p.reason, p.records) for p in with_chatml.problems] == [
        ("the chat template does not render the assistant's tool calls", 1)
    ]
    # for that one no built-in template helps (they render no tool calls): only a template of one's own is named
    assert "--chat-template FILE.jinja" in with_chatml.message()
    assert "chatml, plain" not in with_chatml.message()


def test_a_template_without_a_tool_role_refuses_the_tool_records_only(tmp_path, export, tiny_model):
    chatml = model_with_template(tiny_model, tmp_path / "no-tools", NO_TOOL_ROLE)
    check = check_export_template(export, base_model=chatml)
    [problem] = check.problems
    assert problem.records == 1 and problem.lines == [("train.jsonl", 21)]
    assert "Only user, assistant and system roles are supported" in problem.reason
    result = CliRunner().invoke(
        main, ["--store", str(tmp_path / "store"), "train", str(export), "--model", chatml]
    )
    assert result.exit_code == 1 and "cannot render this export" in result.output


def test_a_template_that_drops_the_answer_text_fails_the_mask_check(tmp_path, export, tiny_model):
    broken = model_with_template(tiny_model, tmp_path / "broken", NO_ANSWER_TEXT)
    problems = {p.reason: p.records for p in check_export_template(export, base_model=broken).problems}
    assert (
        problems[
            "the loss mask misses the answer: the template renders the assistant's turn without its text"
        ]
        == 24
    )


def test_a_model_without_a_chat_template_is_refused_with_the_templates_to_choose(
    tmp_path, store, export, tiny_model
):
    base = model_with_template(tiny_model, tmp_path / "base", None)
    with pytest.raises(WorkbenchError, match="no chat template.*--chat-template plain"):
        R.start_run(store, export, TrainConfig(base_model=base), author="tester")
    assert R.list_runs(store) == []


def test_model_paths_resolve_in_one_place_folders_and_gguf_files(tmp_path, qwen_style):
    assert resolve_model(qwen_style) == str(Path(qwen_style).resolve())
    assert resolve_model(str(embedded_gguf())) == resolve_model(EMBEDDED_MODEL)  # converted once, shared
    text = tmp_path / "weights.bin"
    text.write_bytes(b"\0")
    with pytest.raises(WorkbenchError, match="not a GGUF model"):
        resolve_model(str(text))
