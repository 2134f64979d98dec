"""Batched greedy generation with a shared prompt prefix computed once: the same answers as generating
each prompt alone with `model.generate`, on English and Chinese prompts (a tiny random llama)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from workbench.generation import decode_answer, generate_greedy, prefix_groups
from workbench.models import load_chat_tokenizer
from workbench.train.data import ChatEncoder

from .data_train import classification_records


@pytest.fixture(scope="module")
def tiny(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    tok = load_chat_tokenizer(str(tiny_model))
    return model, ChatEncoder(tok, [tok.eos_token_id])


def test_prefix_groups_share_the_system_prompt_and_keep_a_token_for_each_prompt():
    system = list(range(100, 140))
    prompts = [system + [1, 2, 3], system + [1, 2], system + [7], [5, 6], system[:10] + [9]]
    groups = prefix_groups(prompts, min_shared=16)
    assert groups[0] == (40, [1, 0, 2])  # sorted by tokens; [7] differs right after the 40 system tokens
    assert groups[1] == (0, [3, 4])  # too little in common: whole prompts
    assert sorted(i for _, members in groups for i in members) == [0, 1, 2, 3, 4]
    for n, members in groups:
        assert all(len(prompts[i]) > n for i in members)


def test_shared_prefix_generation_equals_generating_each_prompt_alone(tiny):
    model, encoder = tiny
    records = classification_records(12, seed=3, chinese_share=0.5)
    prompts = [encoder.prompt_ids(r["messages"]) for r in records]
    stop = sorted(encoder.end_of_turn_ids)
    pad = encoder.tok.pad_token_id
    shared = generate_greedy(model, prompts, max_new_tokens=12, stop_ids=stop, pad_id=pad, batch_size=5)
    plain = generate_greedy(
        model, prompts, max_new_tokens=12, stop_ids=stop, pad_id=pad, batch_size=5, share_prefix=False
    )
    assert any(n > 0 for n, _ in prefix_groups(prompts))  # the system prompt is shared
    for prompt, a, b in zip(prompts, shared, plain, strict=True):
        alone = model.generate(
            input_ids=torch.tensor([prompt]),
            max_new_tokens=12,
            do_sample=False,
            eos_token_id=stop,
            pad_token_id=pad,
        )[0, len(prompt) :].tolist()
        assert a.ids == b.ids == alone
        assert a.seconds > 0


def test_should_stop_leaves_the_rest_ungenerated(tiny):
    model, encoder = tiny
    prompts = [encoder.prompt_ids(r["messages"]) for r in classification_records(6, seed=1)]
    asked = []

    def stop():
        asked.append(1)
        return len(asked) > 1

    seen = []
    out = generate_greedy(
        model,
        prompts,
        max_new_tokens=4,
        stop_ids=[encoder.eos_id],
        pad_id=0,
        batch_size=2,
        should_stop=stop,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert sum(g is not None for g in out) == 2 and seen == [(2, 6)]


def test_an_answer_cut_inside_a_chinese_character_ends_on_a_whole_character():
    """SmolLM2's byte-level tokens split a Chinese character; an answer stopped at its budget between them
    decoded as '退款�'. It is cut on characters instead."""
    tok = load_chat_tokenizer(None)  # the embedded SmolLM2's tokenizer: no weights are loaded
    ids = tok.encode("退款申请已提交", add_special_tokens=False)
    cut = next(n for n in range(len(ids), 0, -1) if tok.decode(ids[:n]).endswith("\ufffd"))
    assert decode_answer(tok, ids[:cut]) == tok.decode(ids[:cut]).rstrip("\ufffd")
    assert "\ufffd" not in decode_answer(tok, ids[:cut]) and "退款申请已提交".startswith(
        decode_answer(tok, ids[:cut])
    )
    assert decode_answer(tok, ids) == "退款申请已提交"
