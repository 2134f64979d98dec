"""Padding-free batches: several conversations packed into one row, with attention kept inside each.

The linear layers (nearly all of the compute) see one row of real tokens and no padding. Attention
is the only place that must not mix conversations: the packed attention function below lays each
conversation into its own row for a causal `scaled_dot_product_attention` and packs the result back.
Conversations of similar length share one such call, padded to the longest (attention is a small
share of the compute for short conversations; long ones are bucketed so the padding stays small).
Position ids restart at 0 for every conversation, so rotary embeddings see each one from its start.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .data import Example

PACKED_ATTENTION = "workbench_packed"


@dataclass
class AttentionGroup:
    """Conversations laid out as `batch` rows of `length` for one attention call.

    pad_index: for each of the batch*length slots, the packed position it reads (padding slots read the
    group's first token; their output is never used). unpad_index: for each packed position of the
    group, the slot holding its output. Both are None when the group is one conversation (a plain slice).
    """

    start: int
    end: int
    batch: int
    length: int
    pad_index: torch.Tensor | None
    unpad_index: torch.Tensor | None


@dataclass
class PackedBatch:
    """One packed row and where its loss is computed.

    positions: indices in the row whose next token is trained; targets: those next tokens; weights: their
    loss weights. Only these positions go through the output head (the vocabulary projection is the
    largest single matmul of a small model, and most tokens are prompt).
    """

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    positions: torch.Tensor
    targets: torch.Tensor
    weights: torch.Tensor
    groups: list[AttentionGroup]
    lengths: list[int]

    @property
    def n_tokens(self) -> int:
        return int(self.input_ids.shape[1])

    @property
    def n_trained(self) -> int:
        return int((self.weights > 0).sum())

    def to(self, device) -> PackedBatch:
        def move(t):
            return t.to(device, non_blocking=True) if t is not None else None

        groups = [AttentionGroup(g.start, g.end, g.batch, g.length, move(g.pad_index), move(g.unpad_index))
                  for g in self.groups]
        return PackedBatch(move(self.input_ids), move(self.position_ids), move(self.positions), move(self.targets),
                           move(self.weights), groups, self.lengths)


def pack(examples: Sequence[Example]) -> PackedBatch:
    """Pack examples (longest first) into one row, with the attention groups and the trained positions."""
    examples = sorted(examples, key=len, reverse=True)
    lengths = [len(e) for e in examples]
    starts = list(itertools.accumulate([0] + lengths[:-1]))
    input_ids = torch.tensor([t for e in examples for t in e.input_ids], dtype=torch.long)[None]
    position_ids = torch.tensor([p for n in lengths for p in range(n)], dtype=torch.long)[None]
    positions, targets, weights = [], [], []
    for start, example in zip(starts, examples, strict=True):
        for t in range(1, len(example)):
            if example.weights[t] > 0:
                positions.append(start + t - 1)
                targets.append(example.input_ids[t])
                weights.append(example.weights[t])
    return PackedBatch(input_ids, position_ids, torch.tensor(positions, dtype=torch.long),
                       torch.tensor(targets, dtype=torch.long), torch.tensor(weights, dtype=torch.float32),
                       attention_groups(lengths, starts), lengths)


def attention_groups(lengths: Sequence[int], starts: Sequence[int], *, cheap_length: int = 256) -> list[AttentionGroup]:
    """Bucket conversations (sorted longest first) for attention: a new bucket starts when one is less than
    half as long as its bucket's longest, unless that longest is short enough that padding costs nothing
    worth a second call."""
    buckets: list[list[int]] = []
    for i, n in enumerate(lengths):
        if buckets and (lengths[buckets[-1][0]] <= cheap_length or n * 2 >= lengths[buckets[-1][0]]):
            buckets[-1].append(i)
        else:
            buckets.append([i])
    groups = []
    for members in buckets:
        longest = lengths[members[0]]
        start, end = starts[members[0]], starts[members[-1]] + lengths[members[-1]]
        if len(members) == 1:
            groups.append(AttentionGroup(start, end, 1, longest, None, None))
            continue
        pad_index, unpad_index = [], []
        for row, i in enumerate(members):
            pad_index += [starts[i] + j if j < lengths[i] else start for j in range(longest)]
            unpad_index += [row * longest + j for j in range(lengths[i])]
        groups.append(AttentionGroup(start, end, len(members), longest, torch.tensor(pad_index),
                                     torch.tensor(unpad_index)))
    return groups


def packed_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                     packed_groups: list[AttentionGroup] | None = None, **kwargs):
    """transformers attention function for packed rows (query: 1 x heads x tokens x head_dim).

    Without `packed_groups` (generation, evaluation) it is plain SDPA with the usual mask.
    """
    if packed_groups is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                      **kwargs)
    heads, head_dim = query.shape[1], query.shape[3]
    gqa = key.shape[1] != heads
    outputs = []
    for g in packed_groups:
        if g.pad_index is None:
            q, k, v = (x[:, :, g.start:g.end] for x in (query, key, value))
        else:
            q, k, v = (x[0].index_select(1, g.pad_index).unflatten(1, (g.batch, g.length)).transpose(0, 1)
                       for x in (query, key, value))
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True, scale=scaling,
                                             enable_gqa=gqa)
        out = out.transpose(1, 2).reshape(g.batch * g.length, heads, head_dim)
        outputs.append(out if g.unpad_index is None else out.index_select(0, g.unpad_index))
    return torch.cat(outputs)[None], None


_registered = False


def register_packed_attention() -> None:
    """Make the packed attention function known to transformers (once per process)."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface

        AttentionInterface.register(PACKED_ATTENTION, packed_attention)
        _registered = True


def supports_packing(config) -> tuple[bool, str]:
    """Whether packed attention computes what the model's own attention does (no sliding window, no
    attention soft-capping); if not, the reason, and the trainer falls back to padded batches."""
    sliding = getattr(config, "sliding_window", None)
    if sliding and getattr(config, "use_sliding_window", True):
        return False, f"the model uses sliding-window attention (window {sliding})"
    if any("sliding" in str(t) for t in (getattr(config, "layer_types", None) or [])):
        return False, "some of the model's layers use sliding-window attention"
    if getattr(config, "attn_logit_softcapping", None):
        return False, "the model soft-caps its attention logits"
    return True, ""


@contextmanager
def attention_implementation(model, name: str) -> Iterator[None]:
    """Switch the attention function the model's layers call, and switch it back afterwards."""
    config = getattr(model, "module", model).config  # through a DistributedDataParallel wrapper
    before = config._attn_implementation
    config._attn_implementation = name
    try:
        yield
    finally:
        config._attn_implementation = before


def batch_loss(model, batch: PackedBatch, *, packed: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over trained positions of weight x cross-entropy, and the number of trained positions.

    Logits are computed only at the trained positions (`logits_to_keep`). `packed=False` is the fallback
    for models whose attention the packed function cannot reproduce: the conversations go in as a padded
    batch through the model's own attention.
    """
    if packed:
        register_packed_attention()
        with attention_implementation(model, PACKED_ATTENTION):
            out = model(input_ids=batch.input_ids, position_ids=batch.position_ids, logits_to_keep=batch.positions,
                        packed_groups=batch.groups, use_cache=False)
        logits = out.logits.reshape(-1, out.logits.shape[-1])
    else:
        rows, mask, keep = _padded(batch)
        out = model(input_ids=rows, attention_mask=mask, use_cache=False)
        logits = out.logits.reshape(-1, out.logits.shape[-1])[keep]
    ce = F.cross_entropy(logits.float(), batch.targets, reduction="none")
    return (ce * batch.weights).sum(), (batch.weights > 0).sum()


def _padded(batch: PackedBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The packed row as a right-padded batch, and where the trained positions landed in it (flattened)."""
    longest = max(batch.lengths)
    starts = list(itertools.accumulate([0] + batch.lengths[:-1]))
    device = batch.input_ids.device
    rows = torch.zeros((len(batch.lengths), longest), dtype=torch.long, device=device)
    mask = torch.zeros_like(rows)
    flat = torch.empty(batch.n_tokens, dtype=torch.long, device=device)
    for r, (start, n) in enumerate(zip(starts, batch.lengths, strict=True)):
        rows[r, :n] = batch.input_ids[0, start:start + n]
        mask[r, :n] = 1
        flat[start:start + n] = torch.arange(n, device=device) + r * longest
    return rows, mask, flat[batch.positions]
