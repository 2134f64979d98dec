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
Matches form groups (connected components); the kept record of a group is the one with the best
status (approved, fixed, labeled, new, rejected), then the newest, then the highest id.
"""

from __future__ import annotations

import functools
import re
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from . import embed
from .errors import WorkbenchError
from .store import Store
from .store import dedup as sql
from .store.dedup import KEEP_RANK, DuplicateGroup, duplicate_groups
from .store.embeddings import TextSpec
from .store.records import Selection

Progress = Callable[[str, int, int], None]

__all__ = ["DedupConfig", "Leak", "Match", "DedupReport", "DuplicateGroup", "find_leaks", "find_matches", "dedup",
           "restore", "restore_run", "duplicate_groups", "lexical_text", "shingles"]


@dataclass(frozen=True)
class DedupConfig:
    """Dedup settings; the defaults were chosen on the labelled sets in tests/data_dedup_labels.py."""

    text: TextSpec | None = field(default=None, metadata={
        "help": "Which turns are compared (default: the store's embedding text choice, without the category)."})
    exact: bool = field(default=True, metadata={"help": "Match equal normalised texts."})
    lexical: bool = field(default=True, metadata={"help": "Match texts whose 4-gram sets are similar (MinHash LSH)."})
    lexical_threshold: float = field(default=0.7, metadata={"help": "Jaccard needed between two Latin-script texts."})
    lexical_threshold_han: float = field(default=0.8, metadata={
        "help": "Jaccard needed when either text has Chinese characters (compared as toneless pinyin)."})
    shingle: int = field(default=4, metadata={"help": "Characters per shingle."})
    num_perm: int = field(default=128, metadata={"help": "MinHash permutations (signature length)."})
    semantic: bool = field(default=True, metadata={"help": "Match records whose cached embeddings are close."})
    semantic_threshold: float = field(default=0.93, metadata={"help": "Cosine needed on the main (English) model."})
    multilingual_semantic_threshold: float = field(default=0.96, metadata={
        "help": "Cosine needed on the multilingual model (its cosines run higher on look-alike requests)."})
    exact_search_limit: int = field(default=10_000, metadata={
        "help": "Up to this many vectors per model every pair is compared; above it, vectors are split into "
                "k-means cells and compared inside the cells each one falls nearest to (SemDeDup's recipe)."})
    probes: int = field(default=3, metadata={"help": "Cells each vector is compared in, above exact_search_limit."})

    def __post_init__(self):
        for name in ("lexical_threshold", "lexical_threshold_han", "semantic_threshold",
                     "multilingual_semantic_threshold"):
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
    eval_id: int          # a record of an eval-kind dataset
    train_id: int         # a candidate training record it duplicates
    kind: str             # 'exact' | 'lexical' | 'semantic'
    score: float          # 1.0 for exact; shingle-set Jaccard for lexical; cosine for semantic


@dataclass(frozen=True)
class Match:
    a: int
    b: int
    kind: str
    score: float


# --- lexical text, shingles, MinHash ---------------------------------------------------------------

_NUMBERS = re.compile("[0-9〇零一二三四五六七八九十百千万亿两]+")
_NON_WORD = re.compile(r"[\W_]+")
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


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
    if _HAN.search(text):
        text = text.translate(_pinyin_table())
    return _NON_WORD.sub("", text)


def shingles(lexical: str, n: int = 4) -> frozenset[str]:
    if len(lexical) <= n:
        return frozenset([lexical]) if lexical else frozenset()
    return frozenset(lexical[i:i + n] for i in range(len(lexical) - n + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def scheme(config: DedupConfig) -> str:
    import datasketch
    import pypinyin

    return (f"char{config.shingle}-numbers-pinyin{pypinyin.__version__}-crc32-affine32-p{config.num_perm}-s1"
            f"-datasketch{datasketch.__version__.split('.')[0]}")


def _crc32(data: bytes) -> int:
    return zlib.crc32(data)


def minhash_signatures(lexical_texts: Sequence[str], config: DedupConfig) -> np.ndarray:
    """datasketch MinHash signatures (uint32, one row per text) of the texts' shingle sets."""
    from datasketch import MinHash

    sets = ([s.encode("utf-8") for s in shingles(t, config.shingle)] for t in lexical_texts)
    out = np.empty((len(lexical_texts), config.num_perm), dtype=np.uint32)
    for row, m in enumerate(MinHash.generator(sets, num_perm=config.num_perm, seed=1, hashfunc=_crc32)):
        out[row] = m.hashvalues
    return out


def _signatures(con, norm_hashes: Sequence[str], norm_texts: Sequence[str] | Callable[[list[str]], dict[str, str]],
                config: DedupConfig, progress: Progress | None) -> np.ndarray:
    """Signatures for each hash, from the cache or computed (and cached) now."""
    key = scheme(config)
    found = sql.cached_signatures(con, key, norm_hashes, config.num_perm)
    missing = [h for h in dict.fromkeys(norm_hashes) if h not in found]
    if missing:
        if callable(norm_texts):
            texts_by_hash = norm_texts(missing)
        else:
            texts_by_hash = dict(zip(norm_hashes, norm_texts, strict=True))
        step = 20_000
        for start in range(0, len(missing), step):
            chunk = missing[start:start + step]
            sigs = minhash_signatures([lexical_text(texts_by_hash[h]) for h in chunk], config)
            sql.store_signatures(con, key, chunk, sigs)
            found.update(zip(chunk, sigs, strict=True))
            if progress:
                progress("minhash", min(start + step, len(missing)), len(missing))
    return np.stack([found[h] for h in norm_hashes]) if norm_hashes else np.zeros((0, config.num_perm), np.uint32)


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
            h = np.full(len(sigs), 1469598103934665603, dtype=np.uint64)
            for col in range(band * rows, (band + 1) * rows):
                h = (h ^ sigs[:, col].astype(np.uint64)) * np.uint64(1099511628211)
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


def _pairs_across(keys_a: np.ndarray, keys_b: np.ndarray) -> np.ndarray:
    """All (i in a, j in b) sharing a key in any band."""
    out = []
    for band in range(keys_a.shape[1]):
        ka, kb = keys_a[:, band], keys_b[:, band]
        hit = np.flatnonzero(np.isin(kb, ka))
        if not len(hit):
            continue
        order = np.argsort(ka, kind="stable")
        sorted_a = ka[order]
        for j in hit:
            lo, hi = np.searchsorted(sorted_a, kb[j], "left"), np.searchsorted(sorted_a, kb[j], "right")
            out.extend((int(i), int(j)) for i in order[lo:hi])
    if not out:
        return np.zeros((0, 2), dtype=np.int64)
    return np.unique(np.asarray(out, dtype=np.int64), axis=0)


def _verify_lexical(pairs: np.ndarray, sigs_a: np.ndarray, sigs_b: np.ndarray, texts_a: Callable[[int], str],
                    texts_b: Callable[[int], str], han_a: Callable[[int], bool], han_b: Callable[[int], bool],
                    config: DedupConfig) -> list[tuple[int, int, float]]:
    """Keep candidate pairs whose shingle-set Jaccard reaches the threshold for their script."""
    if not len(pairs):
        return []
    estimate = (sigs_a[pairs[:, 0]] == sigs_b[pairs[:, 1]]).mean(axis=1)
    keep = pairs[estimate >= config.lexical_floor() - 0.15]
    cache_a: dict[int, frozenset] = {}
    cache_b: dict[int, frozenset] = {}
    out = []
    for i, j in keep.tolist():
        sa = cache_a.get(i)
        if sa is None:
            sa = cache_a[i] = shingles(lexical_text(texts_a(i)), config.shingle)
        sb = cache_b.get(j)
        if sb is None:
            sb = cache_b[j] = shingles(lexical_text(texts_b(j)), config.shingle)
        score = jaccard(sa, sb)
        threshold = config.lexical_threshold_han if (han_a(i) or han_b(j)) else config.lexical_threshold
        if score >= threshold:
            out.append((i, j, score))
    return out


# --- semantic search -------------------------------------------------------------------------------

BLOCK = 2048


def semantic_pairs(vectors: np.ndarray, threshold: float, *, exact_limit: int = 10_000, probes: int = 3,
                   progress: Progress | None = None) -> list[tuple[int, int, float]]:
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
            block = vectors[start:start + BLOCK] @ vectors[start:].T
            rows, cols = np.nonzero(block >= threshold)
            keep = cols > rows  # block covers columns from `start`; row r is column r
            for r, c in zip(rows[keep].tolist(), cols[keep].tolist(), strict=True):
                out.append((start + r, start + c, float(block[r, c])))
            if progress:
                progress("semantic", min(start + BLOCK, n), n)
        return out
    return _partitioned_pairs(vectors, threshold, probes, progress)


def _partitioned_pairs(vectors: np.ndarray, threshold: float, probes: int,
                       progress: Progress | None) -> list[tuple[int, int, float]]:
    from sklearn.cluster import MiniBatchKMeans

    n = len(vectors)
    k = int(min(1024, max(8, np.sqrt(n))))
    km = MiniBatchKMeans(n_clusters=k, batch_size=4096, n_init=1, max_iter=20, random_state=0).fit(vectors)
    centroids = km.cluster_centers_ / np.maximum(np.linalg.norm(km.cluster_centers_, axis=1, keepdims=True), 1e-12)
    nearest = np.empty((n, probes), dtype=np.int64)
    for start in range(0, n, 16384):
        sims = vectors[start:start + 16384] @ centroids.T
        nearest[start:start + 16384] = np.argpartition(-sims, probes - 1, axis=1)[:, :probes]
    primary = km.labels_
    found: dict[tuple[int, int], float] = {}
    by_cell = [[] for _ in range(k)]
    for row, cells in enumerate(nearest.tolist()):
        for cell in cells:
            by_cell[cell].append(row)
    for cell in range(k):
        members = np.flatnonzero(primary == cell)
        probing = np.asarray(by_cell[cell], dtype=np.int64)
        if not len(members) or not len(probing):
            continue
        sims = vectors[members] @ vectors[probing].T
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            a, b = int(members[r]), int(probing[c])
            if a != b:
                found[(min(a, b), max(a, b))] = float(sims[r, c])
        if progress and cell % 16 == 0:
            progress("semantic", cell + 1, k)
    return [(a, b, s) for (a, b), s in found.items()]


# --- the leak check --------------------------------------------------------------------------------

def find_leaks(con, train_ids: Sequence[int], eval_ids: Sequence[int], *, config: DedupConfig | None = None,
               progress: Progress | None = None) -> list[Leak]:
    """Eval records that duplicate or nearly duplicate a training candidate, on an open connection.

    Checks, on the request text (the store's embedding text choice, without the category):
    - exact: equal normalised texts (NFKC, whitespace, case), joined in SQL over every train id;
    - lexical: shingle-set Jaccard >= 0.7 (0.8 with Chinese) of the lexical texts (numbers masked,
      Chinese as toneless pinyin). MinHash signatures come from the store's cache; train texts
      without one are signed now and cached (about 10k texts/s here: a first check of 1M never-seen
      records pays that once; `workbench dedup` or `prepare_signatures` warms the cache ahead);
    - semantic: cosine >= 0.93 (0.96 multilingual) between records whose vectors are both cached,
      in the same model (the one that reads their script; a Chinese pair is never judged by an
      English-only model). Nothing is embedded here.
    Each (eval, train) pair is reported once, with the strongest kind (exact, then lexical, then
    semantic). Writes only to the MinHash cache, so the connection must be writable.
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
    eval_sigs = _signatures(con, evals.norm_hash, evals.norm_text, config, progress)
    trains = sql.record_keys(con, train_ids, spec, with_text=False)

    def texts_of(hashes: list[str]) -> dict[str, str]:
        wanted = set(hashes)
        rows = [i for i, h in enumerate(trains.norm_hash) if h in wanted]
        subset = sql.record_keys(con, trains.ids[rows].tolist(), spec)
        return dict(zip(subset.norm_hash, subset.norm_text, strict=True))

    train_sigs = _signatures(con, trains.norm_hash, texts_of, config, progress)
    bands, rows = lsh_bands(config.lexical_floor() - 0.1, config.num_perm)
    pairs = _pairs_across(_band_keys(train_sigs, bands, rows), _band_keys(eval_sigs, bands, rows))
    if not len(pairs):
        return
    # pairs are (train row, eval row); the candidate train texts are fetched now
    cand = sorted(set(pairs[:, 0].tolist()))
    cand_keys = sql.record_keys(con, trains.ids[cand].tolist(), spec)
    text_of = dict(zip(cand, cand_keys.norm_text, strict=True))
    matched = _verify_lexical(pairs, train_sigs, eval_sigs, text_of.__getitem__, evals.norm_text.__getitem__,
                              lambda i: bool(_HAN.search(text_of[i])),
                              lambda j: bool(_HAN.search(evals.norm_text[j])), config)
    for i, j, score in matched:
        add(int(evals.ids[j]), int(trains.ids[i]), "lexical", score)


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
            sims = ev.matrix @ tv.matrix[start:start + 65536].T
            rows, cols = np.nonzero(sims >= threshold)
            for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
                add(int(ev.ids[r]), int(tv.ids[start + c]), "semantic", float(sims[r, c]))


def _threshold_for(model_id: str, embed_config: embed.EmbedConfig, config: DedupConfig) -> float:
    main = embed.model_info(embed_config.model, embed_config.model_reads).model_id
    return config.semantic_threshold if model_id == main else config.multilingual_semantic_threshold


def prepare_signatures(store: Store, selection: Selection | Sequence[int] | None = None, *,
                       config: DedupConfig | None = None, progress: Progress | None = None) -> int:
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
    member_ids: list[int]                        # every record of the group, the kept one included
    matches: list[Match] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"kept_id": self.kept_id, "member_ids": self.member_ids,
                "duplicate_ids": [i for i in self.member_ids if i != self.kept_id],
                "matches": [asdict(m) for m in self.matches]}


@dataclass
class DedupReport:
    run_id: int | None
    records: int
    groups: list[Group]
    marked: int = 0              # records newly marked dup_of
    restored: int = 0            # records unmarked because this run no longer finds them duplicates
    skipped: int = 0             # records edited while the run was computing (left as they were)
    kept_by_hand: int = 0        # records a person restored earlier, which runs leave unmarked
    by_kind: dict[str, int] = field(default_factory=dict)
    semantic: dict[str, int] = field(default_factory=dict)      # model -> records with a cached vector
    no_vector: int = 0           # records semantic matching could not look at (no cached vector)
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


def find_matches(con, ids: Sequence[int], config: DedupConfig, *, progress: Progress | None = None
                 ) -> tuple[sql.RecordKeys, list[Match], dict]:
    """Every matching pair among `ids` (by record id), with the keys read and semantic coverage."""
    embed_config = embed.store_config(con)
    spec = (config.text or embed_config.text).request()
    keys = sql.record_keys(con, ids, spec)
    matches: dict[tuple[int, int], Match] = {}

    def add(a: int, b: int, kind: str, score: float) -> None:
        pair = (min(a, b), max(a, b))
        if a != b and pair not in matches:
            matches[pair] = Match(pair[0], pair[1], kind, round(score, 4))

    first_of_hash: dict[str, int] = {}
    representatives: list[int] = []   # one row per distinct normalised text
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
        is_han = [bool(_HAN.search(t)) for t in rep_texts]
        for i, j, score in _verify_lexical(pairs, sigs, sigs, rep_texts.__getitem__, rep_texts.__getitem__,
                                           is_han.__getitem__, is_han.__getitem__, config):
            add(int(keys.ids[representatives[i]]), int(keys.ids[representatives[j]]), "lexical", score)
        if progress:
            progress("lexical", 1, 1)
    coverage = {"semantic": {}, "no_vector": 0}
    if config.semantic:
        vectors = embed.record_vectors(con, keys.ids.tolist(), embed_config)
        for model_id, vec in vectors.items():
            coverage["semantic"][model_id] = len(vec.ids)
            coverage["no_vector"] += len(vec.missing)
            threshold = _threshold_for(model_id, embed_config, config)
            for i, j, score in semantic_pairs(vec.matrix, threshold, exact_limit=config.exact_search_limit,
                                              probes=config.probes, progress=progress):
                add(int(vec.ids[i]), int(vec.ids[j]), "semantic", score)
    return keys, sorted(matches.values(), key=lambda m: (m.a, m.b)), coverage


def _groups(keys: sql.RecordKeys, matches: list[Match]) -> list[Group]:
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for m in matches:
        ra, rb = find(m.a), find(m.b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for rid in parent:
        members.setdefault(find(rid), []).append(rid)
    row = {int(rid): i for i, rid in enumerate(keys.ids.tolist())}
    by_root: dict[int, list[Match]] = {}
    for m in matches:
        by_root.setdefault(find(m.a), []).append(m)
    groups = []
    for root, ids in members.items():
        kept = min(ids, key=lambda rid: (KEEP_RANK.get(keys.status[row[rid]], 9), -int(keys.created[row[rid]]), -rid))
        groups.append(Group(kept, sorted(ids), by_root.get(root, [])))
    groups.sort(key=lambda g: (-len(g.member_ids), g.kept_id))
    return groups


def default_selection() -> Selection:
    """Everything but eval datasets (eval records are checked for leaks, never marked)."""
    return Selection()


def dedup(store: Store, selection: Selection | Sequence[int] | None = None, *, config: DedupConfig | None = None,
          author: str = "workbench", embed_missing: bool = True, dry_run: bool = False,
          progress: Progress | None = None) -> DedupReport:
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
    report = DedupReport(None, len(keys), groups, semantic=coverage["semantic"], no_vector=coverage["no_vector"],
                         dry_run=dry_run)
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
        marks = [(rid, new, int(keys.version[row[rid]])) for rid, new in target.items()
                 if keys.dup_of[row[rid]] != new]
        report.marked, report.restored, report.skipped = sql.apply_marks(con, marks, author, sql.run_note(run_id))
        report.seconds = time.perf_counter() - started
        report.run_id = run_id
        sql.record_run(con, run_id, author=author, selection={"ids": len(ids)}, config=config.to_json(),
                       records=len(keys), groups=len(groups), marked=report.marked, restored=report.restored,
                       skipped=report.skipped, seconds=report.seconds,
                       matches=[(m.a, m.b, m.kind, m.score) for m in matches])
    return report


def restore(store: Store, record_id: int, author: str = "workbench") -> bool:
    """Clear one record's duplicate mark (as a revision). Later dedup runs leave it unmarked."""
    with store.transaction() as con:
        return sql.restore(con, record_id, author)


def restore_run(store: Store, run_id: int, author: str = "workbench") -> int:
    """Undo every mark a dedup run set that is still in place; returns how many records were restored."""
    with store.transaction() as con:
        return sql.restore_run(con, run_id, author)


def groups_now(store: Store, dataset: str | None = None) -> list[DuplicateGroup]:
    with store.connect() as con:
        return duplicate_groups(con, dataset)
