"""Finding matches: exact (equal normalised text), lexical and semantic pairs among the selected records,
each near pair checked by the look-alike rule before it may join a group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import embed, lookalike
from ..store import dedup as sql
from .config import DedupConfig, Progress
from .lexical import (
    band_keys,
    distinct_hashes,
    lexical_texts,
    lsh_bands,
    pairs_within_buckets,
    shingle_hashes,
    signatures,
    verify_pairs,
)
from .semantic import semantic_pairs, threshold_for


@dataclass(frozen=True)
class Match:
    a: int
    b: int
    kind: str
    score: float


def find_matches(
    con, ids: Sequence[int], config: DedupConfig, *, progress: Progress | None = None
) -> tuple[sql.RecordKeys, list[Match], dict]:
    """Every matching pair among `ids` (by record id), with the keys read and semantic coverage."""
    embed_config = embed.store_config(con)
    spec = (config.text or embed_config.text).request()
    keys = sql.record_keys(con, ids, spec)
    matches: dict[tuple[int, int], Match] = {}
    text_of = dict(zip(keys.ids.tolist(), keys.norm_text, strict=True))
    look_alikes: dict[tuple[int, int], str] = {}
    tokens: dict[str, tuple[str, ...]] = {}  # each text's request tokens, for this run only
    joined: dict[int, int] = {}  # union-find over the matches so far

    def root(x: int) -> int:
        while joined.get(x, x) != x:
            joined[x] = x = joined.get(joined[x], joined[x])
        return x

    def add(a: int, b: int, kind: str, score: float) -> None:
        pair = (min(a, b), max(a, b))
        if a == b or pair in matches or pair in look_alikes:
            return
        # A near match of two requests that ask different things (open/closed, not, A to B / B to A,
        # another product) is a look-alike, not a copy: grouping it would drop a badcase. A pair
        # already joined through checked matches changes no group, so it needs no check.
        ra, rb = root(a), root(b)
        change = None
        if kind != "exact" and ra != rb:
            change = lookalike.request_change(text_of[a], text_of[b], tokens)
        if change:
            look_alikes[pair] = change
            return
        matches[pair] = Match(pair[0], pair[1], kind, round(score, 4))
        if ra != rb:
            joined[max(ra, rb)] = min(ra, rb)

    first_of_hash: dict[str, int] = {}
    representatives: list[int] = []  # one row per distinct normalised text
    for row, h in enumerate(keys.norm_hash):
        if h in first_of_hash:
            if config.exact:
                add(int(keys.ids[first_of_hash[h]]), int(keys.ids[row]), "exact", 1.0)
        else:
            first_of_hash[h] = row
            representatives.append(row)
    if progress:
        progress("exact", len(keys), len(keys))
    if config.lexical and len(representatives) > 1:
        rep_hashes = [keys.norm_hash[r] for r in representatives]
        rep_texts = [keys.norm_text[r] for r in representatives]
        sigs = signatures(con, rep_hashes, rep_texts, config, progress)
        bands, rows = lsh_bands(config.lexical_floor() - 0.1, config.num_perm)
        pairs = pairs_within_buckets(band_keys(sigs, bands, rows))
        if len(pairs):
            # MinHash's estimate first (cheap, vectorised), then the exact Jaccard of the survivors
            estimate = (sigs[pairs[:, 0]] == sigs[pairs[:, 1]]).mean(axis=1)
            pairs = pairs[estimate >= config.lexical_floor() - 0.15]
        involved = np.unique(pairs) if len(pairs) else np.zeros(0, np.int64)
        lex = dict(
            zip(involved.tolist(), lexical_texts([rep_texts[r] for r in involved.tolist()]), strict=True)
        )
        hashes = distinct_hashes(
            shingle_hashes([lex.get(r, "") for r in range(len(rep_texts))], config.shingle)
        )
        is_han = np.fromiter((bool(embed.HAN.search(t)) for t in rep_texts), bool, len(rep_texts))
        for i, j, score in verify_pairs(pairs, hashes, hashes, is_han, is_han, config):
            add(int(keys.ids[representatives[i]]), int(keys.ids[representatives[j]]), "lexical", score)
        if progress:
            progress("lexical", 1, 1)
    coverage = {"semantic": {}, "no_vector": 0, "look_alikes": {}}
    if config.semantic:
        vectors = embed.record_vectors(con, keys.ids.tolist(), embed_config)
        for model_id, vec in vectors.items():
            coverage["semantic"][model_id] = len(vec.ids)
            coverage["no_vector"] += len(vec.missing)
            threshold = threshold_for(model_id, embed_config, config)
            for i, j, score in semantic_pairs(
                vec.matrix,
                threshold,
                exact_limit=config.exact_search_limit,
                probes=config.probes,
                progress=progress,
            ):
                add(int(vec.ids[i]), int(vec.ids[j]), "semantic", score)
    for change in look_alikes.values():
        coverage["look_alikes"][change] = coverage["look_alikes"].get(change, 0) + 1
    return keys, sorted(matches.values(), key=lambda m: (m.a, m.b)), coverage
