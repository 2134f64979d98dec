"""The trainer's data side: the assistant-only loss mask on the embedded model's chat template, loss
weights, left-out records, packing (the packed loss equals the per-conversation loss) and batching."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

from tests.data_train import classification_records, write_classification_export, write_export
from workbench.errors import WorkbenchError
from workbench.models import end_of_turn_ids, load_chat_tokenizer
from workbench.train.data import (
    ChatEncoder,
    Example,
    encode_records,
    epoch_batches,
    first_turn_keys,
    micro_batches,
    preview_mask,
    read_export,
    render_mask,
)
from workbench.train.packing import (
    attention_groups,
    batch_loss,
    pack,
    register_packed_attention,
    shared_prefixes,
)


@pytest.fixture(scope="module")
def tok():
    return load_chat_tokenizer(None)


@pytest.fixture(scope="module")
def encoder(tok):
    return ChatEncoder(tok, end_of_turn_ids(None))


def trained_text(tok, ids, weights) -> str:
    return tok.decode([t for t, w in zip(ids, weights, strict=True) if w > 0])


def test_mask_trains_only_the_answer_and_its_end_of_turn_token_on_the_embedded_template(tok, encoder):
    messages = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."},
    ]
    ids, weights = encoder.encode(messages)
    # the tokens are exactly what the model's own template gives for the whole conversation
    assert ids == list(tok.apply_chat_template(messages, tokenize=True, return_dict=False))
    assert trained_text(tok, ids, weights) == "The capital of France is Paris.<|im_end|>"
    first_trained = weights.index(1.0)
    assert tok.decode(ids[:first_trained]).endswith("<|im_start|>assistant\n")
    assert (
        tok.decode(ids[first_trained - 1 + len([w for w in weights if w]) + 1 :]) == "\n"
    )  # the newline after is not
    assert ids[max(i for i, w in enumerate(weights) if w)] == tok.convert_tokens_to_ids("<|im_end|>")


def test_mask_without_system_message_keeps_the_templates_default_system_prompt_untrained(tok, encoder):
    ids, weights = encoder.encode(
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}]
    )
    text = tok.decode(ids)
    assert "You are a helpful AI assistant named SmolLM" in text
    assert trained_text(tok, ids, weights) == "Hello!<|im_end|>"


def test_multi_turn_mask_honours_per_message_loss_weight_including_fractions(tok, encoder):
    messages = [
        {"role": "user", "content": "1+1?"},
        {"role": "assistant", "content": "2", "loss_weight": 0.0},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4", "loss_weight": 0.5},
        {"role": "user", "content": "3+3?"},
        {"role": "assistant", "content": "6"},
    ]
    ids, weights = encoder.encode(messages)
    assert ids == list(tok.apply_chat_template(messages, tokenize=True, return_dict=False))
    spans = [(tok.decode([t]), w) for t, w in zip(ids, weights, strict=True) if w > 0]
    assert spans == [("4", 0.5), ("<|im_end|>", 0.5), ("6", 1.0), ("<|im_end|>", 1.0)]


def test_openai_weight_key_is_honoured_like_loss_weight(tok, encoder):
    ids, weights = encoder.encode(
        [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b", "weight": 0},
            {"role": "user", "content": "c"},
            {"role": "assistant", "content": "d", "weight": 1},
        ]
    )
    assert trained_text(tok, ids, weights) == "d<|im_end|>"


def test_chinese_answers_are_masked_exactly(tok, encoder):
    ids, weights = encoder.encode(
        [
            {"role": "user", "content": "订单扣了两次钱，请退款。"},
            {"role": "assistant", "content": "退款：已为您办理，三个工作日内到账。"},
        ]
    )
    assert trained_text(tok, ids, weights) == "退款：已为您办理，三个工作日内到账。<|im_end|>"


def test_untrainable_and_too_long_records_are_counted_with_their_reason_and_line(encoder):
    records = [
        {"messages": [{"role": "user", "content": "no answer here"}], "_line": 1},
        {
            "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": "y", "loss_weight": 0},
            ],
            "_line": 2,
        },
        {
            "messages": [{"role": "user", "content": "long " * 300}, {"role": "assistant", "content": "ok"}],
            "_line": 3,
        },
        {
            "messages": [
                {"role": "user", "content": "weather?"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": json.dumps(
                        [{"type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]
                    ),
                },
            ],
            "_line": 4,
        },
        {
            "messages": [{"role": "user", "content": "fine"}, {"role": "assistant", "content": "good"}],
            "_line": 5,
        },
    ]
    encoded = encode_records(encoder, records, max_length=128)
    assert len(encoded.examples) == 1
    assert sum(encoded.skipped.values()) == 4
    reasons = " | ".join(encoded.skipped)
    assert "no assistant answer" in reasons and "max_length=128" in reasons and "tool calls" in reasons
    assert sorted(line for lines in encoded.skipped_lines.values() for line in lines) == [1, 2, 3, 4]


def test_model_without_chat_template_needs_an_explicit_fallback(tmp_path, tiny_model):
    folder = Path(shutil.copytree(tiny_model, tmp_path / "base"))  # a copy: this test edits its tokenizer
    (folder / "chat_template.jinja").unlink()
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    settings.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(settings))
    with pytest.raises(WorkbenchError, match="no chat template.*--chat-template plain"):
        load_chat_tokenizer(str(folder))
    tok = load_chat_tokenizer(str(folder), chat_template="plain")
    ids, weights = ChatEncoder(tok).encode(
        [
            {"role": "system", "content": "Be short."},
            {"role": "user", "content": "Name a colour."},
            {"role": "assistant", "content": "Blue."},
        ]
    )
    assert tok.decode(ids).startswith("Be short.\n\n### User:\nName a colour.\n\n### Assistant:\n")
    assert trained_text(tok, ids, weights) == "Blue." + tok.eos_token


def test_prompt_ids_are_the_training_prefix_of_the_final_answer(tok, encoder):
    messages = [
        {"role": "user", "content": "1+1?"},
        {"role": "assistant", "content": "2"},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
    ]
    ids, weights = encoder.encode(messages)
    prompt = encoder.prompt_ids(messages)
    assert ids[: len(prompt)] == prompt
    assert tok.decode(ids[len(prompt) :]) == "4<|im_end|>\n"


def test_show_mask_preview_marks_trained_spans(tmp_path):
    folder = write_classification_export(tmp_path / "export", n=20)
    first = read_export(folder).train[0]
    preview = preview_mask(folder)
    label = first["messages"][-1]["content"]
    assert preview.record_id == first["id"]
    assert preview.marked_text.endswith(f"<|im_start|>assistant\n⟦{label}<|im_end|>⟧\n")
    assert preview.marked_text.count("⟦") == 1
    assert "".join(t for t, _ in preview.trained) == f"{label}<|im_end|>"


def test_render_mask_writes_fractional_weights(tok):
    ids = tok("a b c", add_special_tokens=False)["input_ids"]
    assert render_mask(tok, Example(ids, [0.0, 0.5, 1.0])) == "a⟦0.5| b⟧⟦ c⟧"


def test_show_mask_reads_chinese_characters_split_over_several_tokens(tmp_path):
    # SmolLM2's byte-level BPE spends about three tokens on a Chinese character: decoded one by one
    # they are U+FFFD; the preview decodes whole spans and joins a character's tokens
    record = {
        "id": 1,
        "category": "qa",
        "messages": [
            {"role": "user", "content": "请帮我取消订单。"},
            {"role": "assistant", "content": "好的，已取消订单。"},
        ],
    }
    folder = write_export(tmp_path / "zh", [record], [])
    preview = preview_mask(folder)
    assert "\ufffd" not in preview.marked_text
    assert "请帮我取消订单。" in preview.marked_text
    assert "⟦好的，已取消订单。<|im_end|>⟧" in preview.marked_text
    assert "".join(t for t, _ in preview.trained) == "好的，已取消订单。<|im_end|>"
    assert all("\ufffd" not in t for t, _ in preview.trained)
    assert preview.tokens > len("请帮我取消订单。好的，已取消订单。")  # several tokens per character indeed


def test_read_export_builds_contracts_and_tolerates_unknown_manifest_keys(tmp_path):
    folder = write_classification_export(tmp_path / "e", n=30)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["something_new"] = {"from": "a later export"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    export = read_export(folder)
    assert export.contracts["intent"].kind == "labels"
    assert export.contracts["intent"].violation("refund") is None
    assert len(export.train) == 27 and len(export.val) == 3
    (folder / "train.jsonl").write_text('{"messages": [}\n')
    with pytest.raises(WorkbenchError, match="train.jsonl, line 1: not valid JSON"):
        read_export(folder)


def test_read_export_without_manifest_says_how_to_make_one(tmp_path):
    with pytest.raises(WorkbenchError, match="workbench export"):
        read_export(tmp_path)


# --- packing --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_llama():
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=120,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
    )
    register_packed_attention()
    return LlamaForCausalLM(config).eval()


def random_examples(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in lengths:
        ids = torch.randint(0, 120, (n,), generator=g).tolist()
        weights = [0.0] * n
        for t in range(n // 2, n):
            weights[t] = 1.0 if t % 3 else 0.25
        out.append(Example(ids, weights))
    return out


@torch.no_grad()
def reference_loss(model, examples):
    total = 0.0
    for e in examples:
        ids = torch.tensor(e.input_ids)[None]
        logits = model(input_ids=ids).logits[0, :-1]
        ce = F.cross_entropy(logits, ids[0, 1:], reduction="none")
        total += float((ce * torch.tensor(e.weights[1:])).sum())
    return total


@pytest.mark.parametrize("lengths", [[37], [50, 12, 33, 7], [300, 290, 20, 140, 7, 100]])
def test_packed_loss_equals_the_sum_of_per_conversation_losses(tiny_llama, lengths):
    examples = random_examples(lengths)
    batch = pack(examples)
    assert batch.n_tokens == sum(lengths)  # no padding in the row
    with torch.no_grad():
        loss_sum, n = batch_loss(tiny_llama, batch)
        padded_sum, padded_n = batch_loss(tiny_llama, batch, packed=False)
    expected = reference_loss(tiny_llama, examples)
    assert float(loss_sum) == pytest.approx(expected, rel=1e-4)
    assert float(padded_sum) == pytest.approx(expected, rel=1e-4)
    assert int(n) == int(padded_n) == sum(e.trained_tokens - (e.weights[0] > 0) for e in examples)


def test_packed_positions_are_only_the_trained_ones(tiny_llama):
    batch = pack(random_examples([20, 10]))
    assert len(batch.positions) == batch.n_trained < batch.n_tokens
    assert batch.position_ids[0].tolist() == list(range(20)) + list(range(10))


def test_gradients_do_not_depend_on_how_a_step_is_split_into_micro_batches(tiny_llama):
    examples = random_examples([40, 31, 25, 9, 60], seed=3)

    def grads(max_tokens):
        tiny_llama.zero_grad()
        for group in micro_batches(examples, max_tokens):
            loss_sum, _ = batch_loss(tiny_llama, pack(group))
            loss_sum.backward()
        return torch.cat([p.grad.flatten() for p in tiny_llama.parameters() if p.grad is not None])

    whole, split = grads(10_000), grads(64)
    assert len(micro_batches(examples, 64)) > 2
    assert torch.allclose(whole, split, atol=1e-5)
    tiny_llama.zero_grad()


def test_attention_groups_bucket_long_conversations_by_length():
    lengths = [1000, 900, 400, 300, 30]
    starts = [0, 1000, 1900, 2300, 2600]
    groups = attention_groups(lengths, starts)
    assert [(g.batch, g.length) for g in groups] == [(2, 1000), (2, 400), (1, 30)]
    assert groups[0].start == 0 and groups[1].end == 2600 and groups[2].end == 2630
    short = attention_groups([200, 20, 5], [0, 200, 220])
    assert [(g.batch, g.length) for g in short] == [(3, 200)]


def test_epoch_batches_are_a_deterministic_shuffle_covering_every_example():
    a = epoch_batches(21, 4, seed=7, epoch=0)
    assert a == epoch_batches(21, 4, seed=7, epoch=0)
    assert a != epoch_batches(21, 4, seed=7, epoch=1)
    assert sorted(i for b in a for i in b) == list(range(21))
    assert [len(b) for b in a] == [4, 4, 4, 4, 4, 1]


def test_micro_batches_respect_the_token_budget_and_keep_overlong_examples_alone():
    examples = random_examples([100, 80, 30, 30, 500])
    groups = micro_batches(examples, 128)
    assert [sorted(len(e) for e in g) for g in groups] == [[500], [100], [30, 80], [30]]


def test_synthetic_export_has_the_export_folder_shape(tmp_path):
    records = classification_records(12, seed=1, chinese_share=0.5)
    folder = write_export(
        tmp_path / "x", records[2:], records[:2], contracts={"intent": {"kind": "labels", "spec": ["a"]}}
    )
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {"name", "hash", "config", "counts", "categories", "contracts"} <= set(manifest)
    assert manifest["counts"] == {"train": 10, "val": 2}
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in r["messages"][1]["content"]) for r in records)


# --- shared prompts --------------------------------------------------------------------------------------


def prompt_sharing_examples(seed=0):
    """Conversations as a step of real data has them: two system prompts (a long and a shorter one), each
    followed by different messages; a trained token right after the shared part, trained tokens inside it
    (the same first answer), a copy of a conversation, and one that shares nothing."""
    g = torch.Generator().manual_seed(seed)

    def rand(n):
        return torch.randint(0, 120, (n,), generator=g).tolist()

    system_a, system_b, first_turn = rand(60), rand(24), rand(10)
    conversations = [system_a + rand(n) for n in (15, 40, 7, 22)] + [system_b + rand(n) for n in (30, 5)]
    conversations += [system_a + first_turn + rand(12), system_a + first_turn + rand(9), rand(33)]
    out = []
    for ids in conversations:
        weights = [0.0] * len(ids)
        for t in range(len(ids) - 4, len(ids)):
            weights[t] = 1.0 if t % 2 else 0.5
        out.append(Example(ids, weights))
    out[6].weights[60:70] = out[7].weights[60:70] = [1.0] * 10  # a trained answer inside the shared prefix
    out[4].weights[24] = 1.0  # the first token after the shared prompt is trained
    out.append(Example(list(out[1].input_ids), list(out[1].weights)))  # the same conversation twice
    return out


def lora_llama(dtype=torch.float32):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=120,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
    )
    register_packed_attention()
    model = get_peft_model(
        LlamaForCausalLM(config),
        LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False),
    )
    return model.to(dtype)


def loss_and_lora_grads(model, batch):
    model.zero_grad()
    loss_sum, n = batch_loss(model, batch)
    loss_sum.backward()
    grads = {k: p.grad.detach().clone() for k, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    return float(loss_sum.detach()), int(n), grads


def test_shared_prefixes_find_the_common_prompts():
    examples = prompt_sharing_examples()
    groups = shared_prefixes(examples)
    by_prefix = sorted((p, sorted(m)) for p, m in groups)
    assert by_prefix == [(0, [8]), (24, [4, 5]), (60, [0, 1, 2, 3, 6, 7, 9])]
    assert shared_prefixes(examples[6:8]) == [(70, [0, 1])]  # the same first turns are shared too
    assert shared_prefixes(examples, min_tokens=100) == [
        (0, [i]) for i in sorted(range(10), key=lambda i: examples[i].input_ids)
    ]


def test_shared_prompts_give_the_same_loss_and_lora_gradients_as_packing_them_apart():
    model = lora_llama()
    examples = prompt_sharing_examples()
    shared, apart = pack(examples), pack(examples, share_prefixes=False)
    assert (
        shared.shared_tokens == 60 * 6 + 24 > 0 and shared.n_tokens == apart.n_tokens - shared.shared_tokens
    )
    assert apart.restore is None and shared.restore is not None
    loss_shared, n_shared, grads_shared = loss_and_lora_grads(model, shared)
    loss_apart, n_apart, grads_apart = loss_and_lora_grads(model, apart)
    assert n_shared == n_apart == sum(e.trained_tokens for e in examples)
    assert loss_shared == pytest.approx(loss_apart, rel=1e-5)
    assert loss_shared == pytest.approx(reference_loss(model, examples), rel=1e-5)
    assert grads_shared.keys() == grads_apart.keys() and any("lora_A" in k for k in grads_shared)
    for name, grad in grads_apart.items():
        assert grad.abs().max() > 0
        assert torch.allclose(grads_shared[name], grad, rtol=1e-4, atol=1e-6), name


def test_shared_prompts_positions_continue_after_the_prefix():
    examples = prompt_sharing_examples()[4:6]  # the 24-token prompt, then 30 and 5 tokens of their own
    batch = pack(examples)
    assert batch.position_ids[0].tolist() == list(range(24)) + list(range(24, 54)) + list(range(24, 29))
    assert batch.input_ids[0, :24].tolist() == examples[0].input_ids[:24]


def test_shared_prompts_hold_in_bfloat16():
    """The mask is boolean, so the compute dtype does not change which keys a query sees (bfloat16 is what
    CUDA trains in; on this CPU it runs slowly but the same way)."""
    model = lora_llama(torch.bfloat16)
    examples = prompt_sharing_examples(seed=1)
    with torch.no_grad():
        shared, _ = batch_loss(model, pack(examples))
        apart, _ = batch_loss(model, pack(examples, share_prefixes=False))
    assert float(shared) == pytest.approx(float(apart), rel=2e-2)


def test_the_padded_fallback_lays_shared_prompts_out_again():
    model = lora_llama()
    examples = prompt_sharing_examples()
    with torch.no_grad():
        padded, _ = batch_loss(model, pack(examples), packed=False)
    assert float(padded) == pytest.approx(reference_loss(model, examples), rel=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")
def test_shared_prompts_on_cuda_in_bfloat16():
    model = lora_llama(torch.bfloat16).cuda()
    examples = prompt_sharing_examples()
    shared = loss_and_lora_grads(model, pack(examples).to("cuda"))
    apart = loss_and_lora_grads(model, pack(examples, share_prefixes=False).to("cuda"))
    assert shared[0] == pytest.approx(apart[0], rel=2e-2)
    for name, grad in apart[2].items():
        assert torch.allclose(shared[2][name].float(), grad.float(), rtol=5e-2, atol=5e-3), name


def test_micro_batches_keep_a_shared_first_turn_together_and_count_it_once():
    examples = prompt_sharing_examples()
    long_prompt, short_prompt = (0, 1, 2, 3, 6, 7, 9), (4, 5)
    keys = [
        tuple(e.input_ids[: 60 if i in long_prompt else 24 if i in short_prompt else len(e)])
        for i, e in enumerate(examples)
    ]
    # a budget that holds the long prompt's seven conversations only when the prompt is counted once
    budget = 60 + sum(len(examples[i]) - 60 for i in (0, 1, 2, 3, 6, 7, 9))
    groups = micro_batches(examples, budget, keys)
    assert sorted(map(id, groups[0])) == sorted(id(examples[i]) for i in (0, 1, 2, 3, 6, 7, 9))
    assert sum(len(g) for g in groups) == len(examples)
    assert all(len(pack(g).input_ids[0]) <= budget for g in groups)  # the packed rows keep the budget
    assert len(micro_batches(examples, budget)) > len(groups)  # counted whole, the same budget needs more


def test_steps_mix_the_tasks_and_a_step_of_two_prompts_lays_each_once(tiny_llama):
    keys = ["A"] * 20 + ["B"] * 10  # two system prompts
    batches = epoch_batches(len(keys), 6, seed=7, epoch=0)
    assert (
        sum(len({keys[i] for i in b}) == 2 for b in batches) >= 3
    )  # steps are random mixes, not one task each
    examples = prompt_sharing_examples()
    two_prompts = [examples[i] for i in (0, 4, 1, 5, 2)]
    batch = pack(two_prompts)
    assert batch.n_tokens == 60 + 15 + 40 + 7 + 24 + 30 + 5 and batch.shared_tokens == 2 * 60 + 24


def test_first_turn_keys_are_the_tokens_through_the_first_end_of_turn(encoder):
    records = classification_records(6, seed=2)
    records[0]["messages"][0]["content"] = "另一个系统提示：只回答标签。"
    examples = encode_records(encoder, records, 2048).examples
    keys = first_turn_keys(examples, encoder.end_of_turn_ids)
    assert len(set(keys)) == 2 and keys.count(keys[1]) == 5
    assert keys[1][-1] in encoder.end_of_turn_ids and list(keys[1]) == examples[1].input_ids[: len(keys[1])]
