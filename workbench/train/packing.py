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
    """Segments of the packed row laid out as `batch` rows of `length` queries for one attention call.

    pad_index: for each of the batch*length query slots, the packed position it reads (padding slots read the
    group's first token; their output is never used). unpad_index: for each packed position of the group, the
    slot holding its output. Both are None when the group is one segment (a plain slice from start to end).
    Segments that continue a shared prefix also see its keys: key_index names the packed position of each of
    the batch*key_length key slots (the prefix, then the segment itself, then padding) and mask (batch x 1 x
    length x key_length, bool) says which keys each query sees. Without them (key_length 0) the keys are the
    queries and the attention is plain causal.
    """

    start: int
    end: int
    batch: int
    length: int
    pad_index: torch.Tensor | None
    unpad_index: torch.Tensor | None
    key_length: int = 0
    key_index: torch.Tensor | None = None
    mask: torch.Tensor | None = None


@dataclass
class PackedBatch:
    """One packed row and where its loss is computed.

    positions: indices in the row whose next token is trained; targets: those next tokens; weights: their
    loss weights. Only these positions go through the output head (the vocabulary projection is the
    largest single matmul of a small model, and most tokens are prompt). A position inside a shared prefix
    appears once per conversation that trains the token after it.
    restore: when prompts are shared, the attention groups' outputs come out in another order than the row's;
    restore puts them back (None: they come out in row order). examples: what was packed.
    """

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    positions: torch.Tensor
    targets: torch.Tensor
    weights: torch.Tensor
    groups: list[AttentionGroup]
    lengths: list[int]
    restore: torch.Tensor | None = None
    examples: list[Example] | None = None
    shared_tokens: int = 0  # tokens not computed again thanks to shared prefixes

    @property
    def n_tokens(self) -> int:
        return int(self.input_ids.shape[1])

    @property
    def n_trained(self) -> int:
        return int((self.weights > 0).sum())

    def to(self, device) -> PackedBatch:
        def move(t):
            return t.to(device, non_blocking=True) if t is not None else None

        groups = [
            AttentionGroup(
                g.start,
                g.end,
                g.batch,
                g.length,
                move(g.pad_index),
                move(g.unpad_index),
                g.key_length,
                move(g.key_index),
                move(g.mask),
            )
            for g in self.groups
        ]
        return PackedBatch(
            move(self.input_ids),
            move(self.position_ids),
            move(self.positions),
            move(self.targets),
            move(self.weights),
            groups,
            self.lengths,
            move(self.restore),
            self.examples,
            self.shared_tokens,
        )


# A prefix is laid once when at least this many leading tokens are the same: below that, the extra
# attention rows cost more than the tokens saved.
MIN_SHARED_TOKENS = 16


def shared_prefixes(
    examples: Sequence[Example], min_tokens: int = MIN_SHARED_TOKENS
) -> list[tuple[int, list[int]]]:
    """(prefix length, member indices) for the conversations of `examples` that begin with the same tokens.

    Conversations are sorted by their tokens and neighbours sharing at least `min_tokens` leading tokens form a
    group; its prefix is what all its members share, short of each one's last token. A conversation sharing
    nothing is a group of its own with prefix 0.
    """
    order = sorted(range(len(examples)), key=lambda i: examples[i].input_ids)
    groups: list[tuple[int, list[int]]] = []
    for i in order:
        if groups:
            prefix, members = groups[-1]
            previous, current = examples[members[-1]].input_ids, examples[i].input_ids
            common = min(_common_length(previous, current), len(previous) - 1, len(current) - 1)
            shared = common if len(members) == 1 else min(prefix, common)
            if shared >= min_tokens:
                groups[-1] = (shared, members + [i])
                continue
        groups.append((0, [i]))
    return groups


def _common_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def pack(
    examples: Sequence[Example], *, share_prefixes: bool = True, min_shared: int = MIN_SHARED_TOKENS
) -> PackedBatch:
    """Pack examples into one row, with the attention groups and the trained positions.

    With `share_prefixes`, conversations that begin with the same tokens (a system prompt, the same first
    turns) lay that prefix once; each continues it with positions counted on from its end and attends to it.
    With causal attention a prefix's activations do not depend on what follows it, so this computes exactly
    what packing them apart does, and the prefix's gradient collects every conversation's share.
    """
    examples = list(examples)
    groups = (
        shared_prefixes(examples, min_shared) if share_prefixes else [(0, [i]) for i in range(len(examples))]
    )
    if all(prefix == 0 for prefix, _ in groups):  # nothing shared: longest first, as before
        examples.sort(key=len, reverse=True)
        groups = [(0, [i]) for i in range(len(examples))]
    # segments: (start in the row, length, first position id, prefix start, prefix length)
    segments: list[tuple[int, int, int, int, int]] = []
    ids: list[int] = []
    position_ids: list[int] = []
    positions, targets, weights = [], [], []
    shared_tokens = 0
    for prefix, members in sorted(groups, key=lambda g: -max(len(examples[i]) for i in g[1])):
        prefix_start = len(ids)
        if prefix:
            first = examples[members[0]].input_ids[:prefix]
            segments.append((prefix_start, prefix, 0, 0, 0))
            ids += first
            position_ids += range(prefix)
            shared_tokens += prefix * (len(members) - 1)
        for i in sorted(members, key=lambda i: -len(examples[i])):
            example = examples[i]
            start = len(ids)
            segments.append((start, len(example) - prefix, prefix, prefix_start, prefix))
            ids += example.input_ids[prefix:]
            position_ids += range(prefix, len(example))
            for t in range(1, len(example)):
                if example.weights[t] > 0:
                    positions.append(prefix_start + t - 1 if t - 1 < prefix else start + t - 1 - prefix)
                    targets.append(example.input_ids[t])
                    weights.append(example.weights[t])
    lengths = [n for _start, n, *_ in segments]
    if shared_tokens:
        attention, restore = _shared_attention_groups(segments)
    else:
        attention, restore = attention_groups(lengths, [s[0] for s in segments]), None
    return PackedBatch(
        torch.tensor(ids, dtype=torch.long)[None],
        torch.tensor(position_ids, dtype=torch.long)[None],
        torch.tensor(positions, dtype=torch.long),
        torch.tensor(targets, dtype=torch.long),
        torch.tensor(weights, dtype=torch.float32),
        attention,
        lengths,
        restore,
        examples,
        shared_tokens,
    )


def attention_groups(
    lengths: Sequence[int], starts: Sequence[int], *, cheap_length: int = 256
) -> list[AttentionGroup]:
    """Bucket conversations (sorted longest first) for attention: a new bucket starts when one is less than
    half as long as its bucket's longest, unless that longest is short enough that padding costs nothing
    worth a second call."""
    groups = []
    for members in _buckets(lengths, cheap_length):
        longest = lengths[members[0]]
        start, end = starts[members[0]], starts[members[-1]] + lengths[members[-1]]
        if len(members) == 1:
            groups.append(AttentionGroup(start, end, 1, longest, None, None))
            continue
        pad_index, unpad_index = [], []
        for row, i in enumerate(members):
            pad_index += [starts[i] + j if j < lengths[i] else start for j in range(longest)]
            unpad_index += [row * longest + j for j in range(lengths[i])]
        groups.append(
            AttentionGroup(
                start, end, len(members), longest, torch.tensor(pad_index), torch.tensor(unpad_index)
            )
        )
    return groups


def _buckets(lengths: Sequence[int], cheap_length: int) -> list[list[int]]:
    buckets: list[list[int]] = []
    for i, n in enumerate(lengths):
        if buckets and (lengths[buckets[-1][0]] <= cheap_length or n * 2 >= lengths[buckets[-1][0]]):
            buckets[-1].append(i)
        else:
            buckets.append([i])
    return buckets


def _shared_attention_groups(
    segments, *, cheap_length: int = 256, cheap_queries: int = 32
) -> tuple[list[AttentionGroup], torch.Tensor]:
    """Attention groups for a row with shared prefixes: every segment is a row of queries whose keys are its
    prefix's (if any) followed by its own; query j of a segment after a prefix of p tokens sees keys 0..p+j.
    `restore` puts the groups' outputs back in row order.

    Segments are bucketed by their number of queries, then of keys: a prefix (many queries) and the short
    conversations that continue it (few queries, many keys) go to separate calls, since padding each short
    one to the prefix's length would compute its attention several times over."""
    by_queries = sorted(range(len(segments)), key=lambda s: -segments[s][1])
    buckets = []
    for bucket in _buckets([segments[s][1] for s in by_queries], cheap_queries):
        members = sorted((by_queries[b] for b in bucket), key=lambda s: -(segments[s][1] + segments[s][4]))
        keys = [segments[s][1] + segments[s][4] for s in members]
        buckets += [[members[k] for k in sub] for sub in _buckets(keys, cheap_length)]
    groups, covered = [], []
    for bucket in buckets:
        members = [segments[s] for s in bucket]
        length = max(n for _s, n, *_ in members)
        key_length = max(n + p for _s, n, _pos, _ps, p in members)
        pad_index, unpad_index, key_index = [], [], []
        mask = torch.zeros((len(members), 1, length, key_length), dtype=torch.bool)
        for row, (start, n, _pos, prefix_start, prefix) in enumerate(members):
            pad_index += [start + j if j < n else start for j in range(length)]
            unpad_index += [row * length + j for j in range(n)]
            own = list(range(prefix_start, prefix_start + prefix)) + list(range(start, start + n))
            key_index += own + [start] * (key_length - len(own))
            # query j sees the prefix and its own first j+1 tokens; padding queries see something harmless too
            mask[row, 0] = torch.arange(key_length)[None, :] <= torch.arange(length)[:, None] + prefix
            covered += range(start, start + n)
        groups.append(
            AttentionGroup(
                members[0][0],
                members[0][0] + members[0][1],
                len(members),
                length,
                torch.tensor(pad_index),
                torch.tensor(unpad_index),
                key_length,
                torch.tensor(key_index),
                mask,
            )
        )
    restore = torch.empty(len(covered), dtype=torch.long)
    restore[torch.tensor(covered)] = torch.arange(len(covered))
    return groups, restore


def packed_attention(
    module,
    query,
    key,
    value,
    attention_mask,
    scaling=None,
    dropout=0.0,
    packed_groups: list[AttentionGroup] | None = None,
    packed_restore: torch.Tensor | None = None,
    **kwargs,
):
    """transformers attention function for packed rows (query: 1 x heads x tokens x head_dim).

    Without `packed_groups` (generation, evaluation) it is plain SDPA with the usual mask. The shared-prefix
    mask is boolean, so it holds under any compute dtype (bfloat16 on CUDA, float32 on CPU).
    """
    if packed_groups is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
        )
    heads, head_dim = query.shape[1], query.shape[3]
    gqa = key.shape[1] != heads
    outputs = []
    for g in packed_groups:
        if g.key_index is not None:
            q = query[0].index_select(1, g.pad_index).unflatten(1, (g.batch, g.length)).transpose(0, 1)
            k, v = (
                x[0].index_select(1, g.key_index).unflatten(1, (g.batch, g.key_length)).transpose(0, 1)
                for x in (key, value)
            )
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=g.mask, dropout_p=dropout, scale=scaling, enable_gqa=gqa
            )
        else:
            if g.pad_index is None:
                q, k, v = (x[:, :, g.start : g.end] for x in (query, key, value))
            else:
                q, k, v = (
                    x[0].index_select(1, g.pad_index).unflatten(1, (g.batch, g.length)).transpose(0, 1)
                    for x in (query, key, value)
                )
            out = F.scaled_dot_product_attention(
                q, k, v, dropout_p=dropout, is_causal=True, scale=scaling, enable_gqa=gqa
            )
        out = out.transpose(1, 2).reshape(g.batch * g.length, heads, head_dim)
        outputs.append(out if g.unpad_index is None else out.index_select(0, g.unpad_index))
    out = torch.cat(outputs)
    return (out if packed_restore is None else out.index_select(0, packed_restore))[None], None


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
            out = model(
                input_ids=batch.input_ids,
                position_ids=batch.position_ids,
                logits_to_keep=batch.positions,
                packed_groups=batch.groups,
                packed_restore=batch.restore,
                use_cache=False,
            )
        logits = out.logits.reshape(-1, out.logits.shape[-1])
    else:
        if batch.shared_tokens:  # the padded fallback lays every conversation whole
            batch = pack(batch.examples, share_prefixes=False).to(batch.input_ids.device)
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
        rows[r, :n] = batch.input_ids[0, start : start + n]
        mask[r, :n] = 1
        flat[start : start + n] = torch.arange(n, device=device) + r * longest
    return rows, mask, flat[batch.positions]
