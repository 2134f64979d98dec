"""The Playground's library: a model loaded once answers as a stream (the pieces make up the model's own greedy
answer), and a flagged answer becomes a badcase with the bad output, the fix and its source; tiny model, real store."""

from __future__ import annotations

import pytest
import torch

from workbench import playground as PG
from workbench import review
from workbench.errors import WorkbenchError
from workbench.review import ReviewFilter
from workbench.store.records import get_record


def test_the_stream_is_the_models_greedy_answer_piece_by_piece(store, tiny):
    chat = PG.load_chat_model(store, "base", base_model=tiny)
    messages = PG.chat_messages("你是外卖平台的客服。", [], "我的订单 123 还没到，怎么办？")
    pieces = list(PG.stream_answer(chat, messages, PG.Sampling(max_new_tokens=12)))
    assert len(pieces) > 1
    ids = torch.tensor([chat.encoder.tokens(chat.encoder.render(messages, generation=True))])
    eos = list(chat.encoder.end_of_turn_ids or []) or [chat.encoder.eos_id]
    with torch.no_grad():
        out = chat.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=12,
            do_sample=False,
            eos_token_id=eos,
            pad_token_id=chat.encoder.eos_id,
        )
    assert "".join(pieces) == chat.encoder.tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def test_a_run_without_an_adapter_and_an_empty_question_say_what_to_do(store, tiny):
    with pytest.raises(WorkbenchError, match="write a question"):
        PG.chat_messages("", [], "  ")
    with pytest.raises(WorkbenchError, match="'base' or 'run N'"):
        PG.load_chat_model(store, "gpt", base_model=tiny)
    assert PG.model_choices(store) == ["base"]


def test_a_flagged_answer_is_a_badcase_in_review_with_its_bad_output_and_source(store):
    messages = PG.chat_messages("", [], "我要退款，饭洒了")
    rid = PG.flag_answer(
        store,
        messages,
        "您好！请问有什么可以帮您？",
        "refund",
        category="退款",
        model="base",
        base_model="smollm2-135m-instruct",
        adapter=None,
        sampling=PG.Sampling(),
        author="张三",
    )
    page = review.load_queue(store, ReviewFilter(datasets=("badcases",)), "oldest", limit=10)
    assert page.ids == [rid]
    with store.connect() as con:
        record = get_record(con, rid)
    assert record.bad_output == "您好！请问有什么可以帮您？" and record.messages[-1]["content"] == "refund"
    assert record.status == "fixed" and record.category == "退款" and "playground: base" in record.source
    assert "temperature=0.0" in record.source
    with pytest.raises(WorkbenchError, match="write the right answer"):
        PG.flag_answer(
            store,
            messages,
            "x",
            " ",
            category=None,
            model="base",
            base_model="m",
            adapter=None,
            sampling=PG.Sampling(),
            author="t",
        )
