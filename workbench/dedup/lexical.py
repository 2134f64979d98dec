"""Lexical matching: the lexical text (numbers masked, Chinese as pinyin), character shingles, MinHash
signatures (cached per normalised text), LSH buckets and the exact Jaccard check of candidate pairs.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import embed
from ..store import Store
from ..store import dedup as sql
from ..store.records import Selection
from .config import DedupConfig, Progress

_NUMBERS = re.compile("[0-9〇零一二三四五六七八九十百千万亿两]+")
_NON_WORD = re.compile(r"[\W_]+")


@functools.lru_cache(maxsize=1)
def _pinyin_table() -> dict[int, str]:
    """Chinese character -> its most common toneless pinyin syllable (pypinyin's data), for str.translate."""
    import unicodedata

    from pypinyin import pinyin_dict

    table = {}
    for code, readings in pinyin_dict.pinyin_dict.items():
        first = unicodedata.normalize("NFD", readings.split(",")[0])
        table[code] = " " + "".join(c for c in first if not unicodedata.combining(c)) + " "
    return table


def lexical_text(normalised: str) -> str:
    """The text lexical matching compares: numbers masked, Chinese as toneless pinyin, no punctuation or spaces."""
    text = _NUMBERS.sub("0", normalised)
    if embed.HAN.search(text):
        text = text.translate(_pinyin_table())
    return _NON_WORD.sub("", text)


_SEPARATOR = (
    "\U0001d6c2"  # a letter (so the regexes keep it) no request text uses: MATHEMATICAL BOLD SMALL ALPHA
)


def lexical_texts(normalised: Sequence[str]) -> list[str]:
    """`lexical_text` of many texts at once (three regex passes over one joined string, not three per text)."""
    if not normalised:
        return []
    joined = _SEPARATOR.join(t.replace(_SEPARATOR, "") for t in normalised)
    joined = _NUMBERS.sub("0", joined)
    if embed.HAN.search(joined):
        joined = joined.translate(_pinyin_table())
    out = _NON_WORD.sub("", joined).split(_SEPARATOR)
    assert len(out) == len(normalised)
    return out


def shingles(lexical: str, n: int = 4) -> list[str]:
    """The character n-grams of a lexical text (the whole text when shorter than n)."""
    if len(lexical) <= n:
        return [lexical] if lexical else []
    return [lexical[i : i + n] for i in range(len(lexical) - n + 1)]


# Shingles are hashed by their code points (a 64-bit multiply-xor folded to 32 bits), which numpy can
# do for a million texts at once; `shingle_hash` is the same function for one shingle, the hash
# function handed to datasketch's MinHash.
_MULT = np.uint64(0x100000001B3)
_SEED = np.uint64(0xCBF29CE484222325)


def shingle_hash(shingle: str) -> int:
    h = int(_SEED)
    for ch in shingle:
        h = ((h ^ ord(ch)) * int(_MULT)) & 0xFFFFFFFFFFFFFFFF
    return (h ^ (h >> 32)) & 0xFFFFFFFF


@dataclass
class ShingleHashes:
    """Every text's shingle hashes, concatenated: text i owns values[offsets[i]:offsets[i + 1]]."""

    values: np.ndarray  # uint32
    offsets: np.ndarray  # int64, len(texts) + 1

    def of(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def text_of_each(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.offsets) - 1), np.diff(self.offsets))


def shingle_hashes(lexical_texts: Sequence[str], n: int = 4) -> ShingleHashes:
    """`shingle_hash` of every shingle of every text, computed with numpy."""
    lengths = np.fromiter((len(t) for t in lexical_texts), dtype=np.int64, count=len(lexical_texts))
    codes = np.frombuffer("".join(lexical_texts).encode("utf-32-le"), dtype=np.uint32)
    starts = np.r_[0, np.cumsum(lengths)[:-1]].astype(np.int64) if len(lengths) else np.zeros(0, np.int64)
    windows = np.where(lengths >= n, lengths - n + 1, np.minimum(lengths, 1))
    offsets = np.r_[0, np.cumsum(windows)].astype(np.int64)
    owner = np.repeat(np.arange(len(lengths)), windows)
    position = np.arange(offsets[-1], dtype=np.int64) - offsets[owner] + starts[owner]
    end = starts[owner] + lengths[owner]
    padded = np.r_[codes, np.zeros(n, np.uint32)]
    h = np.full(len(position), _SEED, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            inside = position + k < end
            if not inside.any():
                break
            at = np.where(inside, position + k, len(codes))
            h = np.where(inside, (h ^ padded[at].astype(np.uint64)) * _MULT, h)
    return ShingleHashes(((h ^ (h >> np.uint64(32))) & np.uint64(0xFFFFFFFF)).astype(np.uint32), offsets)


def scheme(config: DedupConfig) -> str:
    import datasketch
    import pypinyin

    return (
        f"char{config.shingle}-numbers-pinyin{pypinyin.__version__}-fnv32-affine32-p{config.num_perm}-s1"
        f"-datasketch{datasketch.__version__.split('.')[0]}"
    )


def minhash_signatures(lexical_texts: Sequence[str], config: DedupConfig) -> np.ndarray:
    """MinHash signatures (uint32, one row per text) of the texts' shingle sets.

    Bit for bit datasketch's `MinHash(num_perm, seed=1, hashfunc=shingle_hash)` (its permutations and
    its affine32 scheme; tests/test_dedup.py checks), computed for many texts at once with numpy.
    """
    from datasketch import MinHash
    from datasketch.minhash import _fmix

    out = np.full((len(lexical_texts), config.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    a, b = MinHash(num_perm=config.num_perm, seed=1).permutations
    step = 4096
    for start in range(0, len(lexical_texts), step):
        hashes = shingle_hashes(lexical_texts[start : start + step], config.shingle)
        if not len(hashes.values):
            continue
        mixed = _fmix(hashes.values.astype(np.uint32), 32)
        counts = np.diff(hashes.offsets)
        nonempty = np.flatnonzero(counts)
        # one permutation at a time keeps the working set small (a row of shingles, not a matrix)
        for p in range(config.num_perm):
            permuted = mixed * a[p] + b[p]
            out[start + nonempty, p] = np.minimum.reduceat(permuted, hashes.offsets[nonempty])
    return out


def signatures(
    con, norm_hashes: Sequence[str], norm_texts: Sequence[str], config: DedupConfig, progress: Progress | None
) -> np.ndarray:
    """Signatures for each hash, from the cache or computed (and cached) now."""
    key = scheme(config)
    found = sql.cached_signatures(con, key, norm_hashes, config.num_perm)
    texts_by_hash = dict(zip(norm_hashes, norm_texts, strict=True))
    missing = [h for h in texts_by_hash if h not in found]
    step = 50_000
    for start in range(0, len(missing), step):
        chunk = missing[start : start + step]
        sigs = minhash_signatures(lexical_texts([texts_by_hash[h] for h in chunk]), config)
        sql.store_signatures(con, key, chunk, sigs)
        found.update(zip(chunk, sigs, strict=True))
        if progress:
            progress("minhash", min(start + step, len(missing)), len(missing))
    return (
        np.stack([found[h] for h in norm_hashes])
        if norm_hashes
        else np.zeros((0, config.num_perm), np.uint32)
    )


def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) that datasketch's MinHashLSH picks for `threshold`, weighted towards recall."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=(0.2, 0.8))
    return lsh.b, lsh.r


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per (text, band); equal bands give equal keys (unequal ones rarely collide)."""
    keys = np.zeros((len(sigs), bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for band in range(bands):
            h = np.full(len(sigs), _SEED, dtype=np.uint64)
            for col in range(band * rows, (band + 1) * rows):
                h = (h ^ sigs[:, col].astype(np.uint64)) * _MULT
            keys[:, band] = h
    return keys


def pairs_within_buckets(keys: np.ndarray) -> np.ndarray:
    """All (i, j), i < j, of rows sharing a key in any band (columns of `keys`)."""
    out = []
    for band in range(keys.shape[1]):
        column = keys[:, band]
        order = np.argsort(column, kind="stable")
        sorted_keys = column[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        sizes = np.diff(np.r_[starts, len(column)])
        for size in np.unique(sizes[sizes > 1]):
            run_starts = starts[sizes == size]
            members = order[run_starts[:, None] + np.arange(size)[None, :]]
            iu = np.triu_indices(size, 1)
            a, b = members[:, iu[0]].ravel(), members[:, iu[1]].ravel()
            out.append(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1))
    if not out:
        return np.zeros((0, 2), dtype=np.int64)
    return np.unique(np.concatenate(out), axis=0)


def sorted_unique(values: np.ndarray, counts: bool = False):
    """np.unique by sorting (numpy's hash-based unique is several times slower on these arrays)."""
    ordered = np.sort(values, kind="stable")
    first = np.r_[True, ordered[1:] != ordered[:-1]] if len(ordered) else np.zeros(0, bool)
    if not counts:
        return ordered[first]
    starts = np.flatnonzero(first)
    return ordered[starts], np.diff(np.r_[starts, len(ordered)])


def distinct_hashes(hashes: ShingleHashes) -> ShingleHashes:
    """Each text's shingle hashes as a sorted set (duplicates within a text dropped)."""
    n = len(hashes.offsets) - 1
    keys = sorted_unique(
        (hashes.text_of_each().astype(np.uint64) << np.uint64(32)) | hashes.values.astype(np.uint64)
    )
    owners = (keys >> np.uint64(32)).astype(np.int64)
    return ShingleHashes(
        (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32),
        np.searchsorted(owners, np.arange(n + 1)).astype(np.int64),
    )


def pair_jaccard(pairs: np.ndarray, a: ShingleHashes, b: ShingleHashes, chunk: int = 200_000) -> np.ndarray:
    """Jaccard of the shingle sets of each (row of a, row of b) pair; a and b from `distinct_hashes`.

    Vectorised: each pair's a-shingles are looked up among b's (text, hash) keys with one searchsorted.
    """
    out = np.zeros(len(pairs), dtype=np.float64)
    if not len(pairs):
        return out
    b_keys = (b.text_of_each().astype(np.uint64) << np.uint64(32)) | b.values.astype(np.uint64)
    a_size, b_size = np.diff(a.offsets), np.diff(b.offsets)
    for start in range(0, len(pairs), chunk):
        i, j = pairs[start : start + chunk, 0], pairs[start : start + chunk, 1]
        sizes = a_size[i]
        total = int(sizes.sum())
        if total == 0:
            continue
        firsts = np.cumsum(sizes) - sizes
        idx = np.repeat(a.offsets[i], sizes) + (np.arange(total) - np.repeat(firsts, sizes))
        keys = (np.repeat(j, sizes).astype(np.uint64) << np.uint64(32)) | a.values[idx].astype(np.uint64)
        found = np.searchsorted(b_keys, keys)
        hit = b_keys[np.minimum(found, len(b_keys) - 1)] == keys
        overlap = np.zeros(len(i), dtype=np.int64)
        nonempty = sizes > 0
        overlap[nonempty] = np.add.reduceat(hit.astype(np.int64), firsts[nonempty])
        union = a_size[i] + b_size[j] - overlap
        out[start : start + len(i)] = np.where(union > 0, overlap / np.maximum(union, 1), 0.0)
    return out


def verify_pairs(
    pairs: np.ndarray,
    hashes_a: ShingleHashes,
    hashes_b: ShingleHashes,
    han_a: np.ndarray,
    han_b: np.ndarray,
    config: DedupConfig,
) -> list[tuple[int, int, float]]:
    """Keep candidate pairs whose shingle-set Jaccard reaches the threshold for their script."""
    if not len(pairs):
        return []
    scores = pair_jaccard(pairs, hashes_a, hashes_b)
    threshold = np.where(
        han_a[pairs[:, 0]] | han_b[pairs[:, 1]], config.lexical_threshold_han, config.lexical_threshold
    )
    keep = np.flatnonzero(scores >= threshold - 1e-12)
    return list(zip(pairs[keep, 0].tolist(), pairs[keep, 1].tolist(), scores[keep].tolist(), strict=True))


def prepare_signatures(
    store: Store,
    selection: Selection | Sequence[int] | None = None,
    *,
    config: DedupConfig | None = None,
    progress: Progress | None = None,
) -> int:
    """Compute and cache the MinHash signatures of the selected records; returns how many were computed."""
    config = config or DedupConfig()
    ids = embed.selection_ids(store, selection)
    with store.transaction() as con:
        spec = (config.text or embed.store_config(con).text).request()
        keys = sql.record_keys(con, ids, spec)
        before = len(sql.cached_signatures(con, scheme(config), keys.norm_hash, config.num_perm))
        signatures(con, keys.norm_hash, keys.norm_text, config, progress)
    return len(set(keys.norm_hash)) - before
