"""The eval-leak check: eval records that duplicate or nearly duplicate a training candidate
(exact in SQL, lexical by exact prefix filtering, semantic on cached vectors).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .. import embed
from ..store import dedup as sql
from .config import DedupConfig, Progress
from .lexical import (
    ShingleHashes,
    distinct_hashes,
    lexical_texts,
    shingle_hashes,
    sorted_unique,
    verify_pairs,
)
from .semantic import threshold_for


@dataclass(frozen=True)
class Leak:
    eval_id: int  # a record of an eval-kind dataset
    train_id: int  # a candidate training record it duplicates
    kind: str  # 'exact' | 'lexical' | 'semantic'
    score: float  # 1.0 for exact; shingle-set Jaccard for lexical; cosine for semantic


PREFIX_HITS = 3  # probes a candidate must hold (more probes per eval text, fewer candidates; still exact)
EXPAND_BUDGET = 4_000_000  # (train, eval) probe hits expanded at once: about 100 MB of arrays


def _prefix_candidates(
    eval_hashes: ShingleHashes, train_hashes: ShingleHashes, threshold: float
) -> Iterator[np.ndarray]:
    """Slices of (train row, eval row) pairs that can reach Jaccard >= threshold; exact (prefix filtering).

    If J(E, T) >= t then T holds at least a = ceil(t|E|) of E's shingles, so of any |E| - a + m of
    them T holds at least m. Each eval text probes with its |E| - a + m rarest shingles (rarity:
    how many train texts hold the shingle) and only train texts holding m of them are candidates
    (m = PREFIX_HITS, or fewer for short texts); then lengths must fit: t|E| <= |T| <= |E|/t.
    """
    pool, counts = sorted_unique(np.r_[train_hashes.values, eval_hashes.values], counts=True)
    probes, owners, needed = [], [], np.zeros(len(eval_hashes.offsets) - 1, dtype=np.int64)
    for j in range(len(eval_hashes.offsets) - 1):
        own = eval_hashes.of(j)
        if not len(own):
            continue
        least = int(np.ceil(threshold * len(own) - 1e-9))
        m = max(1, min(PREFIX_HITS, least))
        keep = len(own) - least + m
        rarity = counts[np.searchsorted(pool, own)]
        probes.append(own[np.argsort(rarity, kind="stable")[:keep]])
        owners.append(np.full(keep, j, dtype=np.int64))
        needed[j] = m
    if not probes:
        return
    probe_values, probe_owner = np.concatenate(probes), np.concatenate(owners)
    order = np.argsort(probe_values, kind="stable")
    probe_values, probe_owner = probe_values[order], probe_owner[order]
    hit = np.flatnonzero(np.isin(train_hashes.values, probe_values))
    if not len(hit):
        return
    train_row = train_hashes.text_of_each()[hit]  # non-decreasing: a text's shingles lie together
    lo = np.searchsorted(probe_values, train_hashes.values[hit], "left")
    span = np.searchsorted(probe_values, train_hashes.values[hit], "right") - lo
    n_eval = len(eval_hashes.offsets) - 1
    t_sizes, e_sizes = np.diff(train_hashes.offsets), np.diff(eval_hashes.offsets)
    # Each hit expands into one (train, eval) entry per eval text probing that shingle: templated data
    # can make billions. Expand a slice of train texts at a time (whole texts, so every pair's hits are
    # counted in one slice); the caller scores each slice before the next, so memory stays bounded.
    ends = np.cumsum(span)
    start = 0
    while start < len(hit):
        end = max(
            start + 1, int(np.searchsorted(ends, (ends[start - 1] if start else 0) + EXPAND_BUDGET, "right"))
        )
        if end < len(hit):
            end = int(np.searchsorted(train_row, train_row[end - 1], "right"))
        part = slice(start, end)
        rows = np.repeat(train_row[part], span[part])
        within = np.arange(len(rows)) - np.repeat(np.cumsum(span[part]) - span[part], span[part])
        evals = probe_owner[np.repeat(lo[part], span[part]) + within]
        codes, hits = sorted_unique(rows.astype(np.int64) * n_eval + evals, counts=True)
        pairs = np.stack([codes // n_eval, codes % n_eval], axis=1)
        pairs = pairs[hits >= needed[pairs[:, 1]]]
        t_size, e_size = t_sizes[pairs[:, 0]], e_sizes[pairs[:, 1]]
        yield pairs[(t_size >= threshold * e_size - 1e-9) & (t_size * threshold <= e_size + 1e-9)]
        start = end


def find_leaks(
    con,
    train_ids: Sequence[int],
    eval_ids: Sequence[int],
    *,
    config: DedupConfig | None = None,
    progress: Progress | None = None,
) -> list[Leak]:
    """Eval records that duplicate or nearly duplicate a training candidate, on an open connection.

    Checks, on the request text (the store's embedding text choice, without the category):
    - exact: equal normalised texts (NFKC, whitespace, case), joined in SQL over every train id;
    - lexical: shingle-set Jaccard >= 0.7 (0.8 with Chinese) of the lexical texts (numbers masked,
      Chinese as toneless pinyin). Eval sets are small and train sets large, so instead of signing
      every train text (MinHash LSH, as `dedup` does) candidates come from exact prefix filtering:
      a train text can only reach the threshold if it holds m of the eval text's rarest
      |E| - ceil(t|E|) + m shingles, and its length fits (`_prefix_candidates`); candidates are
      then scored exactly. Nothing is cached and nothing is missed;
    - semantic: cosine >= 0.93 (0.96 multilingual) between records whose vectors are both cached,
      in the same model (the one that reads their script; a Chinese pair is never judged by an
      English-only model). Nothing is embedded here.
    Each (eval, train) pair is reported once, with the strongest kind (exact, then lexical, then
    semantic). Reads only; registers temporary views and the wb_nfkc function on the connection.
    """
    config = config or DedupConfig()
    train_ids, eval_ids = list(dict.fromkeys(train_ids)), list(dict.fromkeys(eval_ids))
    if not train_ids or not eval_ids:
        return []
    embed_config = embed.store_config(con)
    spec = (config.text or embed_config.text).request()
    found: dict[tuple[int, int], Leak] = {}

    def add(eval_id: int, train_id: int, kind: str, score: float) -> None:
        if eval_id != train_id and (eval_id, train_id) not in found:
            found[(eval_id, train_id)] = Leak(eval_id, train_id, kind, round(score, 4))

    if config.exact:
        for eval_id, train_id in sql.exact_matches(con, train_ids, eval_ids, spec):
            add(eval_id, train_id, "exact", 1.0)
    if progress:
        progress("exact", 1, 1)
    if config.lexical:
        _lexical_leaks(con, train_ids, eval_ids, spec, config, add, progress)
    if config.semantic:
        _semantic_leaks(con, train_ids, eval_ids, embed_config, config, add)
    return sorted(found.values(), key=lambda leak: (leak.eval_id, leak.train_id))


def _lexical_leaks(con, train_ids, eval_ids, spec, config, add, progress) -> None:
    evals = sql.record_keys(con, eval_ids, spec)
    trains = sql.record_keys(con, train_ids, spec)
    if progress:
        progress("lexical", 0, len(trains))
    eval_lex = lexical_texts(evals.norm_text)
    train_lex = lexical_texts(trains.norm_text)
    eval_hashes = distinct_hashes(shingle_hashes(eval_lex, config.shingle))
    train_hashes = distinct_hashes(shingle_hashes(train_lex, config.shingle))
    han_train = np.fromiter((bool(embed.HAN.search(t)) for t in trains.norm_text), bool, len(trains))
    han_eval = np.fromiter((bool(embed.HAN.search(t)) for t in evals.norm_text), bool, len(evals))
    for pairs in _prefix_candidates(eval_hashes, train_hashes, config.lexical_floor()):
        for i, j, score in verify_pairs(pairs, train_hashes, eval_hashes, han_train, han_eval, config):
            add(int(evals.ids[j]), int(trains.ids[i]), "lexical", score)
    if progress:
        progress("lexical", len(trains), len(trains))


def _semantic_leaks(con, train_ids, eval_ids, embed_config, config, add) -> None:
    eval_vectors = embed.record_vectors(con, eval_ids, embed_config)
    if not any(len(v.ids) for v in eval_vectors.values()):
        return
    train_vectors = embed.record_vectors(con, train_ids, embed_config)
    for model_id, ev in eval_vectors.items():
        tv = train_vectors.get(model_id)
        if tv is None or not len(tv.ids) or not len(ev.ids):
            continue
        threshold = threshold_for(model_id, embed_config, config)
        for start in range(0, len(tv.ids), 65536):
            sims = ev.matrix @ tv.matrix[start : start + 65536].T
            rows, cols = np.nonzero(sims >= threshold)
            for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
                add(int(ev.ids[r]), int(tv.ids[start + c]), "semantic", float(sims[r, c]))
