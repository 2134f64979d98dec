"""Find duplicate and near-duplicate records, keep one per group, mark the rest `dup_of` (never delete).

Three ways two records can match, each on the request text (`TextSpec`, without the category):
- exact:    the same normalised text (NFKC, whitespace runs made one space, lower case); the
            normalised text and its md5 are computed in SQL.
- lexical:  Jaccard similarity of character 4-gram sets ("shingles") of the lexical text: the
            normalised text with numbers masked (a different order number, amount or count is the
            same request; digits and Chinese numerals alike), Chinese characters written as toneless
            pinyin (so the commonest Chinese typo, a homophone picked from the input method, costs
            nothing: 收货/收获, 登录/登陆), punctuation and spaces dropped. Candidates come from
            MinHash LSH (datasketch's MinHash; signatures cached in the store per normalised text);
            every candidate is then checked on the exact Jaccard of its shingle sets, at 0.7, or 0.8
            when either text is Chinese (after pinyin, a Chinese pair that still differs differs in
            a real syllable).
- semantic: cosine of cached embeddings >= 0.93 (all-MiniLM-L6-v2) or 0.96 (multilingual USE, which
            gives look-alike Chinese requests such as 反转/排序一个链表 up to 0.944), only between records
            embedded by the same model, i.e. never on a model that cannot read their script.
A lexical or semantic match must then pass the look-alike check (lookalike.request_change): two
requests that differ in a word that changes what is asked (open/closed, not, A to B / B to A, another
product) are never grouped, whatever their similarity.
Matches form groups (connected components); the kept record of a group is the one with the best
status (approved, fixed, labeled, new, rejected), then the newest, then the highest id.
"""

from __future__ import annotations

import difflib
import functools
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from . import embed, lookalike
from .embed import TextSpec
from .errors import WorkbenchError
from .store import Store
from .store import dedup as sql
from .store.records import Selection

Progress = Callable[[str, int, int], None]

# Status ranks for the keep rule: the kept record of a group is the best-ranked one, then the newest.
KEEP_RANK = {"approved": 0, "fixed": 1, "labeled": 2, "new": 3, "rejected": 4}

__all__ = [
    "DedupConfig",
    "Leak",
    "Match",
    "DedupReport",
    "find_leaks",
    "find_matches",
    "dedup",
    "restore",
    "restore_run",
    "lexical_text",
    "shingles",
    "prepare_signatures",
]


@dataclass(frozen=True)
class DedupConfig:
    """Dedup settings; the defaults were chosen on the labelled sets in tests/data_dedup_labels.py."""

    text: TextSpec | None = field(
        default=None,
        metadata={
            "help": "Which turns are compared (default: the store's embedding text choice, without the category)."
        },
    )
    exact: bool = field(default=True, metadata={"help": "Match equal normalised texts."})
    lexical: bool = field(
        default=True, metadata={"help": "Match texts whose 4-gram sets are similar (MinHash LSH)."}
    )
    lexical_threshold: float = field(
        default=0.7, metadata={"help": "Jaccard needed between two Latin-script texts."}
    )
    lexical_threshold_han: float = field(
        default=0.8,
        metadata={
            "help": "Jaccard needed when either text has Chinese characters (compared as toneless pinyin)."
        },
    )
    shingle: int = field(default=4, metadata={"help": "Characters per shingle."})
    num_perm: int = field(default=128, metadata={"help": "MinHash permutations (signature length)."})
    semantic: bool = field(
        default=True, metadata={"help": "Match records whose cached embeddings are close."}
    )
    semantic_threshold: float = field(
        default=0.93, metadata={"help": "Cosine needed on the main (English) model."}
    )
    multilingual_semantic_threshold: float = field(
        default=0.96,
        metadata={
            "help": "Cosine needed on the multilingual model (its cosines run higher on look-alike requests)."
        },
    )
    exact_search_limit: int = field(
        default=10_000,
        metadata={
            "help": "Up to this many vectors per model every pair is compared; above it, vectors are split into "
            "k-means cells and compared inside the cells each one falls nearest to (SemDeDup's recipe)."
        },
    )
    probes: int = field(
        default=3, metadata={"help": "Cells each vector is compared in, above exact_search_limit."}
    )

    def __post_init__(self):
        for name in (
            "lexical_threshold",
            "lexical_threshold_han",
            "semantic_threshold",
            "multilingual_semantic_threshold",
        ):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise WorkbenchError(f"{name} must be between 0 and 1 (1 = identical only), not {value}")

    def lexical_floor(self) -> float:
        return min(self.lexical_threshold, self.lexical_threshold_han)

    def to_json(self) -> dict:
        out = asdict(self)
        out["text"] = self.text.key() if self.text else None
        return out


@dataclass(frozen=True)
class Leak:
    eval_id: int  # a record of an eval-kind dataset
    train_id: int  # a candidate training record it duplicates
    kind: str  # 'exact' | 'lexical' | 'semantic'
    score: float  # 1.0 for exact; shingle-set Jaccard for lexical; cosine for semantic


@dataclass(frozen=True)
class Match:
    a: int
    b: int
    kind: str
    score: float


# --- lexical text, shingles, MinHash ---------------------------------------------------------------

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


def _signatures(
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


def _band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per (text, band); equal bands give equal keys (unequal ones rarely collide)."""
    keys = np.zeros((len(sigs), bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for band in range(bands):
            h = np.full(len(sigs), _SEED, dtype=np.uint64)
            for col in range(band * rows, (band + 1) * rows):
                h = (h ^ sigs[:, col].astype(np.uint64)) * _MULT
            keys[:, band] = h
    return keys


def _pairs_within_buckets(keys: np.ndarray) -> np.ndarray:
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


def _sorted_unique(values: np.ndarray, counts: bool = False):
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
    keys = _sorted_unique(
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


def _verify_pairs(
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
    pool, counts = _sorted_unique(np.r_[train_hashes.values, eval_hashes.values], counts=True)
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
        codes, hits = _sorted_unique(rows.astype(np.int64) * n_eval + evals, counts=True)
        pairs = np.stack([codes // n_eval, codes % n_eval], axis=1)
        pairs = pairs[hits >= needed[pairs[:, 1]]]
        t_size, e_size = t_sizes[pairs[:, 0]], e_sizes[pairs[:, 1]]
        yield pairs[(t_size >= threshold * e_size - 1e-9) & (t_size * threshold <= e_size + 1e-9)]
        start = end


# --- semantic search -------------------------------------------------------------------------------

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


# --- the leak check --------------------------------------------------------------------------------


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
        for i, j, score in _verify_pairs(pairs, train_hashes, eval_hashes, han_train, han_eval, config):
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
        threshold = _threshold_for(model_id, embed_config, config)
        for start in range(0, len(tv.ids), 65536):
            sims = ev.matrix @ tv.matrix[start : start + 65536].T
            rows, cols = np.nonzero(sims >= threshold)
            for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
                add(int(ev.ids[r]), int(tv.ids[start + c]), "semantic", float(sims[r, c]))


def _threshold_for(model_id: str, embed_config: embed.EmbedConfig, config: DedupConfig) -> float:
    main = embed.model_info(embed_config.model, embed_config.model_reads).model_id
    return config.semantic_threshold if model_id == main else config.multilingual_semantic_threshold


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
        _signatures(con, keys.norm_hash, keys.norm_text, config, progress)
    return len(set(keys.norm_hash)) - before


# --- dedup runs ------------------------------------------------------------------------------------


@dataclass
class Group:
    kept_id: int
    member_ids: list[int]  # every record of the group, the kept one included
    matches: list[Match] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "kept_id": self.kept_id,
            "member_ids": self.member_ids,
            "duplicate_ids": [i for i in self.member_ids if i != self.kept_id],
            "matches": [asdict(m) for m in self.matches],
        }


@dataclass
class DedupReport:
    run_id: int | None
    records: int
    groups: list[Group]
    marked: int = 0  # records newly marked dup_of
    restored: int = 0  # records unmarked because this run no longer finds them duplicates
    skipped: int = 0  # records edited while the run was computing (left as they were)
    kept_by_hand: int = 0  # records a person restored earlier, which runs leave unmarked
    by_kind: dict[str, int] = field(default_factory=dict)
    semantic: dict[str, int] = field(default_factory=dict)  # model -> records with a cached vector
    no_vector: int = 0  # records semantic matching could not look at (no cached vector)
    look_alikes: dict[str, int] = field(
        default_factory=dict
    )  # near pairs kept apart: kind -> pairs (lookalike)
    seconds: float = 0.0
    dry_run: bool = False

    @property
    def duplicates(self) -> int:
        return sum(len(g.member_ids) - 1 for g in self.groups)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["groups"] = [g.as_dict() for g in self.groups]
        out["duplicates"] = self.duplicates
        return out


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
        sigs = _signatures(con, rep_hashes, rep_texts, config, progress)
        bands, rows = lsh_bands(config.lexical_floor() - 0.1, config.num_perm)
        pairs = _pairs_within_buckets(_band_keys(sigs, bands, rows))
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
        for i, j, score in _verify_pairs(pairs, hashes, hashes, is_han, is_han, config):
            add(int(keys.ids[representatives[i]]), int(keys.ids[representatives[j]]), "lexical", score)
        if progress:
            progress("lexical", 1, 1)
    coverage = {"semantic": {}, "no_vector": 0, "look_alikes": {}}
    if config.semantic:
        vectors = embed.record_vectors(con, keys.ids.tolist(), embed_config)
        for model_id, vec in vectors.items():
            coverage["semantic"][model_id] = len(vec.ids)
            coverage["no_vector"] += len(vec.missing)
            threshold = _threshold_for(model_id, embed_config, config)
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


def _groups(keys: sql.RecordKeys, matches: list[Match]) -> list[Group]:
    """Matches form groups (the connected components of the match graph); each keeps its best record."""
    from scipy.sparse import coo_matrix  # scipy loads only for grouping: a listing or `--help` need none
    from scipy.sparse.csgraph import connected_components

    if not matches:
        return []
    row = {int(rid): i for i, rid in enumerate(keys.ids.tolist())}
    a = np.fromiter((row[m.a] for m in matches), np.int64, len(matches))
    b = np.fromiter((row[m.b] for m in matches), np.int64, len(matches))
    graph = coo_matrix((np.ones(len(matches), np.int8), (a, b)), shape=(len(keys), len(keys)))
    _, component = connected_components(graph, directed=False)
    matched = np.unique(np.concatenate([a, b]))
    matched = matched[np.argsort(component[matched], kind="stable")]
    starts = np.flatnonzero(np.diff(component[matched], prepend=-1))
    by_component: dict[int, list[Match]] = {}
    for m, c in zip(matches, component[a].tolist(), strict=True):
        by_component.setdefault(c, []).append(m)
    groups = []
    for rows in np.split(matched, starts[1:]):
        ids = sorted(int(keys.ids[r]) for r in rows)
        kept = min(
            ids, key=lambda rid: (KEEP_RANK.get(keys.status[row[rid]], 9), -int(keys.created[row[rid]]), -rid)
        )
        groups.append(Group(kept, ids, by_component[int(component[rows[0]])]))
    groups.sort(key=lambda g: (-len(g.member_ids), g.kept_id))
    return groups


def dedup(
    store: Store,
    selection: Selection | Sequence[int] | None = None,
    *,
    config: DedupConfig | None = None,
    author: str = "workbench",
    embed_missing: bool = True,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> DedupReport:
    """Find the duplicate groups among the selected records and mark all but one per group `dup_of`.

    Eval-kind datasets are left out (see find_leaks). With `embed_missing`, records without a cached
    vector are embedded first (embed.embed_records); otherwise semantic matching looks only at the
    records that have one. A re-run updates the marks: a record this run no longer groups is
    restored, one a person restored by hand stays unmarked. `dry_run` finds groups and marks nothing.
    """
    started = time.perf_counter()
    config = config or DedupConfig()
    ids = embed.selection_ids(store, selection)
    with store.connect() as con:
        ids = sql.without_eval(con, ids)
    if config.semantic and embed_missing and ids:

        def show(done, total):
            if progress:
                progress("embedding", done, total)

        embed.embed_records(store, ids, progress=show)
    with store.transaction() as con:
        keys, matches, coverage = find_matches(con, ids, config, progress=progress)
    groups = _groups(keys, matches)
    report = DedupReport(
        None,
        len(keys),
        groups,
        semantic=coverage["semantic"],
        no_vector=coverage["no_vector"],
        look_alikes=coverage["look_alikes"],
        dry_run=dry_run,
    )
    for m in matches:
        report.by_kind[m.kind] = report.by_kind.get(m.kind, 0) + 1
    if dry_run:
        report.seconds = time.perf_counter() - started
        return report
    with store.transaction() as con:
        by_hand = sql.restored_by_hand(con, ids)
        report.kept_by_hand = len(by_hand & {i for g in groups for i in g.member_ids if i != g.kept_id})
        run_id = sql.new_run_id(con)
        row = {int(rid): i for i, rid in enumerate(keys.ids.tolist())}
        target: dict[int, int | None] = {}
        for g in groups:
            for rid in g.member_ids:
                target[rid] = None if (rid == g.kept_id or rid in by_hand) else g.kept_id
        selected = set(row)
        for rid, current in zip(keys.ids.tolist(), keys.dup_of, strict=True):
            # marked earlier inside this selection but no longer grouped: restore
            if rid not in target and current is not None and current in selected:
                target[rid] = None
        marks = [
            (rid, new, int(keys.version[row[rid]]))
            for rid, new in target.items()
            if keys.dup_of[row[rid]] != new
        ]
        report.marked, report.restored, report.skipped = sql.apply_marks(
            con, marks, author, sql.run_note(run_id)
        )
        report.seconds = time.perf_counter() - started
        report.run_id = run_id
        sql.record_run(
            con,
            run_id,
            author=author,
            selection={"ids": len(ids)},
            config=config.to_json(),
            records=len(keys),
            groups=len(groups),
            marked=report.marked,
            restored=report.restored,
            skipped=report.skipped,
            seconds=report.seconds,
            matches=[(m.a, m.b, m.kind, m.score) for m in matches],
        )
    return report


def restore(store: Store, record_id: int, author: str = "workbench") -> bool:
    """Clear one record's duplicate mark (as a revision). Later dedup runs leave it unmarked."""
    with store.transaction() as con:
        return sql.restore(con, record_id, author)


def restore_run(store: Store, run_id: int, author: str = "workbench") -> int:
    """Undo every mark a dedup run set that is still in place; returns how many records were restored."""
    with store.transaction() as con:
        return sql.restore_run(con, run_id, author)


# --- duplicate groups, as the Clusters page shows them ------------------------------------------------------


@dataclass
class ShownRecord:
    id: int
    dataset: str
    category: str | None
    status: str
    text: str  # every turn as "role: content" lines
    kind: str | None = None  # how it matched the kept record: exact, lexical, semantic (copies only)
    score: float | None = None
    diff: str = ""  # what differs from the kept record: an ndiff, '?' lines marking the changed characters


@dataclass
class DuplicateGroup:
    kept: ShownRecord
    copies: list[ShownRecord]


def record_text(messages: Sequence[tuple[str, str | None]]) -> str:
    return "\n".join(f"{role}: {content or ''}" for role, content in messages)


def text_diff(kept: str, copy: str) -> str:
    """The lines that differ between two records' texts, with the changed characters marked under them
    (character-level, so it works on Chinese text without word boundaries); empty when they are equal."""
    if kept == copy:
        return ""
    lines = difflib.ndiff(kept.splitlines(), copy.splitlines())
    return "\n".join(line.rstrip("\n") for line in lines if not line.startswith("  "))


def duplicate_groups(store: Store, limit: int = 20) -> tuple[list[DuplicateGroup], int, int]:
    """The biggest duplicate groups (kept record, its copies, what differs), with the store's numbers of
    groups and copies."""
    with store.connect(read_only=True) as con:
        groups, copies = sql.group_count(con)
        page = sql.groups_page(con, limit)
        ids = [i for kept, group in page for i in (kept, *group)]
        shown = sql.shown_records(con, ids) if ids else {}
        matches = sql.latest_matches(con, ids) if ids else {}
    out = []
    for kept_id, copy_ids in page:

        def show(i: int) -> ShownRecord:
            dataset, category, status, messages = shown[i]
            return ShownRecord(i, dataset, category, status, record_text(messages))

        kept = show(kept_id)
        group = []
        for i in copy_ids:
            copy = show(i)
            copy.kind, copy.score = matches.get((kept_id, i), (None, None))
            copy.diff = text_diff(kept.text, copy.text)
            group.append(copy)
        out.append(DuplicateGroup(kept, group))
    return out, groups, copies


def keep_instead(store: Store, record_id: int, author: str = "workbench") -> int:
    """Keep `record_id` (now a copy) instead of the record its group kept: the others become its copies.
    Later dedup runs leave it unmarked (restored by hand). Returns how many records changed."""
    with store.transaction() as con:
        kept_id = sql.dup_of(con, record_id)
        if kept_id is None:
            raise WorkbenchError(f"record {record_id} is not marked as a copy: it is kept already")
        group = sql.group_of(con, kept_id)
        marks = [(i, None if i == record_id else record_id, version) for i, _dup, version in group]
        marked, restored, skipped = sql.apply_marks(
            con, marks, author, f"kept record {record_id} instead of {kept_id}"
        )
        if skipped:
            raise WorkbenchError(
                f"{skipped} record(s) of the group changed while you looked; reload the page and try again"
            )
        return marked + restored
