"""Semantic matching: pairs of cached embeddings whose cosine reaches the threshold of their model,
exact up to a size, by k-means cells above it.
"""

from __future__ import annotations

import numpy as np

from .. import embed
from .config import DedupConfig, Progress

BLOCK = 2048


def semantic_pairs(
    vectors: np.ndarray,
    threshold: float,
    *,
    exact_limit: int = 10_000,
    probes: int = 3,
    progress: Progress | None = None,
) -> list[tuple[int, int, float]]:
    """(i, j, cosine), i < j, for rows of L2-normalised `vectors` with cosine >= threshold.

    Exact (blockwise matrix products) up to `exact_limit` rows; above, k-means cells with each row
    compared against the rows of the `probes` cells nearest to it (SemDeDup's recipe with probing).
    """
    n = len(vectors)
    if n < 2:
        return []
    if n <= exact_limit:
        out = []
        for start in range(0, n, BLOCK):
            block = vectors[start : start + BLOCK] @ vectors[start:].T
            rows, cols = np.nonzero(block >= threshold)
            keep = cols > rows  # block covers columns from `start`; row r is column r
            for r, c in zip(rows[keep].tolist(), cols[keep].tolist(), strict=True):
                out.append((start + r, start + c, float(block[r, c])))
            if progress:
                progress("semantic", min(start + BLOCK, n), n)
        return out
    return _partitioned_pairs(vectors, threshold, probes, progress)


def _partitioned_pairs(
    vectors: np.ndarray, threshold: float, probes: int, progress: Progress | None
) -> list[tuple[int, int, float]]:
    """Cells: a few Lloyd steps of spherical k-means from random records (cells only need to keep
    near neighbours together, not to be good clusters); each record is compared with the records whose
    nearest cell is one of its `probes` nearest cells."""
    n = len(vectors)
    k = int(min(1024, max(8, np.sqrt(n))))
    rng = np.random.default_rng(0)
    centroids = vectors[rng.choice(n, k, replace=False)].copy()
    sample = vectors[rng.choice(n, min(n, 50 * k), replace=False)]
    for _ in range(4):
        assign = np.argmax(sample @ centroids.T, axis=1)
        for cell in range(k):
            members = sample[assign == cell]
            if len(members):
                centre = members.sum(axis=0)
                centroids[cell] = centre / max(float(np.linalg.norm(centre)), 1e-12)
    nearest = np.empty((n, probes), dtype=np.int64)
    for start in range(0, n, 16384):
        sims = vectors[start : start + 16384] @ centroids.T
        top = np.argpartition(-sims, probes - 1, axis=1)[:, :probes]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)
        nearest[start : start + 16384] = np.take_along_axis(top, order, axis=1)
    primary = nearest[:, 0]
    by_primary = np.argsort(primary, kind="stable")
    primary_bounds = np.searchsorted(primary[by_primary], np.arange(k + 1))
    probe_cells, probe_rows = nearest.ravel(), np.repeat(np.arange(n), probes)
    by_probe = np.argsort(probe_cells, kind="stable")
    probe_bounds = np.searchsorted(probe_cells[by_probe], np.arange(k + 1))
    found_a, found_b, found_s = [], [], []
    for cell in range(k):
        members = by_primary[primary_bounds[cell] : primary_bounds[cell + 1]]
        probing = probe_rows[by_probe[probe_bounds[cell] : probe_bounds[cell + 1]]]
        if not len(members) or not len(probing):
            continue
        sims = vectors[members] @ vectors[probing].T
        rows, cols = np.nonzero(sims >= threshold)
        a, b = members[rows], probing[cols]
        keep = a != b
        found_a.append(np.minimum(a, b)[keep])
        found_b.append(np.maximum(a, b)[keep])
        found_s.append(sims[rows, cols][keep])
        if progress and cell % 32 == 0:
            progress("semantic", cell + 1, k)
    if not found_a:
        return []
    a, b, s = np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_s)
    _, first = np.unique(a.astype(np.int64) * n + b, return_index=True)
    return list(zip(a[first].tolist(), b[first].tolist(), s[first].astype(float).tolist(), strict=True))


def threshold_for(model_id: str, embed_config: embed.EmbedConfig, config: DedupConfig) -> float:
    main = embed.model_info(embed_config.model, embed_config.model_reads).model_id
    return config.semantic_threshold if model_id == main else config.multilingual_semantic_threshold
