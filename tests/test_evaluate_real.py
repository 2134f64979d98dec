"""The whole loop once with the real embedded model (SmolLM2-135M-Instruct): import → check → export → train →
evaluate base and tuned → compare, on generated intent records (English and Chinese, labels in the system prompt).
The loop runs once per session (conftest's `real_loop`); test_train_real checks its training run."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_the_loop_on_the_real_model_learns_the_labels_it_is_evaluated_on(real_loop):
    _store, result = real_loop
    held_out = result.held_out
    assert (
        held_out.total.n == 12 and held_out.total.pending == 0
    )  # every answer judged by the labels contract
    assert (
        held_out.total.right_after - held_out.total.right_before
        == held_out.total.fixed - held_out.total.regressed
    )
    # the tuned model has learnt the answers it never saw: the held-out references' loss falls sharply
    assert held_out.loss_after < 0.6 * held_out.loss_before, (held_out.loss_before, held_out.loss_after)
    assert (
        result.tuned.total.output_tokens < result.base.total.output_tokens
    )  # a label and stop, not a sentence
