"""Batched greedy generation that computes a prompt prefix shared by many prompts (a long system prompt) once.

Evaluation and the trainer's task accuracy both generate with it. Prompts that start with the same
tokens are grouped; each group's shared prefix runs through the model once and its key/value cache is
copied into every batch of the group, so only each prompt's own tail is computed per record.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

# A prefix shorter than this is not worth a separate forward pass and a cache copy.
MIN_SHARED_TOKENS = 16


@dataclass
class Generated:
    """One prompt's answer: the generated token ids (through the end-of-turn token, if it came) and the
    seconds its batch took divided by the batch's size (what one answer cost)."""

    ids: list[int]
    seconds: float


def decode_answer(tokenizer, ids: Sequence[int]) -> str:
    """The text of generated `ids`, cut on characters: an answer stopped at its token budget can end inside a
    character (byte-level tokens split a Chinese character into several), which decodes as U+FFFD; that
    partial character is dropped instead of shown as "\ufffd"."""
    return tokenizer.decode(list(ids), skip_special_tokens=True).rstrip("\ufffd")


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def prefix_groups(
    prompts: Sequence[Sequence[int]], min_shared: int = MIN_SHARED_TOKENS
) -> list[tuple[int, list[int]]]:
    """(shared prefix length, prompt indices) groups: prompts sorted by their tokens, so the ones that share
    a beginning lie side by side, then cut wherever the shared part would fall below `min_shared` tokens.
    Every prompt keeps at least its last token outside the prefix (the model must see one new token)."""
    order = sorted(range(len(prompts)), key=lambda i: list(prompts[i]))
    groups: list[tuple[int, list[int]]] = []
    for i in order:
        if groups:
            shared, members = groups[-1]
            first = prompts[members[0]]
            common = min(shared, common_prefix_length(first, prompts[i]), len(prompts[i]) - 1)
            if common >= min_shared:
                groups[-1] = (common, members + [i])
                continue
        groups.append((max(0, len(prompts[i]) - 1), [i]))
    # a group of one shares nothing: its prompt runs whole, batched with the other loners
    shared = [(n, members) for n, members in groups if len(members) > 1 and n >= min_shared]
    loners = [i for n, members in groups if not (len(members) > 1 and n >= min_shared) for i in members]
    return shared + ([(0, loners)] if loners else [])


@torch.no_grad()
def generate_greedy(
    model,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    stop_ids: Sequence[int],
    pad_id: int,
    device=None,
    batch_size: int = 16,
    share_prefix: bool = True,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[Generated | None]:
    """Greedy answers to token-id prompts, `batch_size` at a time (similar lengths together).

    progress(done, total) after each batch; should_stop() is asked before each batch, and when it says
    True the prompts not yet generated come back as None (the caller keeps what is done).
    """
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    results: list[Generated | None] = [None] * len(prompts)
    groups = prefix_groups(prompts) if share_prefix else [(0, list(range(len(prompts))))]
    done = 0
    try:
        for shared, members in groups:
            prefix_cache = _prefix_cache(model, prompts[members[0]][:shared], device) if shared else None
            members = sorted(members, key=lambda i: len(prompts[i]))
            for k in range(0, len(members), batch_size):
                if should_stop and should_stop():
                    return results
                chunk = members[k : k + batch_size]
                started = time.perf_counter()
                answers = _generate_batch(
                    model,
                    [prompts[i][shared:] for i in chunk],
                    prefix_cache,
                    shared,
                    max_new_tokens=max_new_tokens,
                    stop_ids=set(stop_ids),
                    pad_id=pad_id,
                    device=device,
                )
                seconds = (time.perf_counter() - started) / len(chunk)
                for i, ids in zip(chunk, answers, strict=True):
                    results[i] = Generated(ids, seconds)
                done += len(chunk)
                if progress:
                    progress(done, len(prompts))
    finally:
        model.train(was_training)
    return results


def _prefix_cache(model, prefix: Sequence[int], device):
    ids = torch.tensor([list(prefix)], dtype=torch.long, device=device)
    return model(input_ids=ids, use_cache=True, logits_to_keep=1).cache


def _generate_batch(
    model,
    tails: list[Sequence[int]],
    prefix_cache,
    shared: int,
    *,
    max_new_tokens: int,
    stop_ids: set[int],
    pad_id: int,
    device,
) -> list[list[int]]:
    """Greedy decoding of a batch of prompt tails after a shared prefix already in `prefix_cache`.

    The tails are left-padded; the attention mask hides the padding (which sits between the prefix and
    the tail) and the position ids count only real tokens, so each row computes what it would alone."""
    rows, longest = len(tails), max(len(t) for t in tails)
    ids = torch.full((rows, longest), pad_id, dtype=torch.long)
    mask = torch.zeros((rows, shared + longest), dtype=torch.long)
    mask[:, :shared] = 1
    for row, tail in enumerate(tails):
        ids[row, longest - len(tail) :] = torch.tensor(list(tail), dtype=torch.long)
        mask[row, shared + longest - len(tail) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
    cache = None
    if prefix_cache is not None:
        cache = copy.deepcopy(prefix_cache)
        cache.batch_repeat_interleave(rows)
    ids, mask, positions = ids.to(device), mask.to(device), positions.to(device)
    answers: list[list[int]] = [[] for _ in range(rows)]
    finished = torch.zeros(rows, dtype=torch.bool)
    for _step in range(max_new_tokens):
        out = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        cache = out.cache
        chosen = out.logits[:, -1, :].argmax(-1).cpu()
        for row in range(rows):
            if not finished[row]:
                token = int(chosen[row])
                answers[row].append(token)
                if token in stop_ids:
                    finished[row] = True
        if bool(finished.all()):
            break
        ids = chosen.masked_fill(finished, pad_id).unsqueeze(-1).to(device)
        mask = torch.cat([mask, torch.ones((rows, 1), dtype=mask.dtype, device=mask.device)], dim=-1)
        positions = positions[:, -1:] + 1
    return answers
