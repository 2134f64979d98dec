"""Cluster badcases into failure modes: k-means (or HDBSCAN) on PCA-reduced embeddings, named offline by
c-TF-IDF keywords, with 3 representatives per cluster and a 2-D map layout stored per run.

Space: one model per run. The store's main model when it reads every selected record, otherwise
the multilingual model for all of them (so a Chinese and an English record of the same failure can
share a cluster, and no Chinese record is placed by an English-only model).
Automatic k: k-means for each k on a grid from 2 to min(k_max, n/3) (every k up to 8, then 6 steps
geometrically), fitted on up to 3,000 records; the k with the best silhouette (cosine, on up to
2,000 records) wins. `k` set by hand skips the search.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import embed
from .errors import WorkbenchError
from .store import Store
from .store import clusters as sql
from .store import embeddings as emb_sql
from .store.records import Selection

Progress = Callable[[str, int, int], None]
METHODS = ("kmeans", "hdbscan")


@dataclass(frozen=True)
class ClusterConfig:
    k: int | None = field(
        default=None, metadata={"help": "Number of clusters; None chooses it (silhouette)."}
    )
    method: str = field(
        default="kmeans", metadata={"help": "'kmeans' or 'hdbscan' (finds k itself, has noise)."}
    )
    k_min: int = field(default=2, metadata={"help": "Smallest k the automatic choice tries."})
    k_max: int = field(default=30, metadata={"help": "Largest k the automatic choice tries."})
    pca_dims: int = field(default=50, metadata={"help": "Dimensions kept by PCA before clustering."})
    include_duplicates: bool = field(
        default=False,
        metadata={
            "help": "Cluster records marked dup_of too (by default only the kept record of each group)."
        },
    )
    representatives: int = field(
        default=3, metadata={"help": "Records shown per cluster (nearest its centre)."}
    )
    keywords: int = field(
        default=5, metadata={"help": "c-TF-IDF keywords per cluster (the first 3 name it)."}
    )
    layout_sample: int = field(
        default=600,
        metadata={
            "help": "t-SNE places up to this many records; the rest sit beside their nearest placed record."
        },
    )
    seed: int = field(default=0, metadata={"help": "Random seed (k-means, t-SNE)."})

    def __post_init__(self):
        if self.method not in METHODS:
            raise WorkbenchError(f"unknown clustering method {self.method!r}; use kmeans or hdbscan")
        if self.k is not None and self.k < 1:
            raise WorkbenchError(f"k must be at least 1, not {self.k}")


@dataclass
class Cluster:
    id: int
    name: str
    keywords: list[str]
    size: int
    member_ids: list[int]
    representative_ids: list[int]
    x: float
    y: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ClusterRun:
    run_id: int | None
    model: str
    method: str
    k: int
    k_chosen_by: str
    records: int
    clusters: list[Cluster]
    silhouette: dict[int, float] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        out = asdict(self)
        out["silhouette"] = {str(k): v for k, v in self.silhouette.items()}
        return out


# --- keywords --------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z][a-z0-9'+#.-]*[a-z0-9+#]|[a-z]")
_HAN_RUN = re.compile(f"[{embed.HAN_CHARS}]+")
ZH_STOP = frozenset(
    """的 了 吗 呢 吧 啊 我 你 他 她 它 我们 你们 这个 那个 这 那 一下 一个 怎么 什么 为什么 可以 能 请 帮 帮我
    给 给我 是 有 在 和 与 就 也 都 还 要 想 会 把 被 让 用 对 从 到 说 么 如何 哪 哪里 哪儿 一些 没有 不 没""".split()
)


def tokens(text: str) -> list[str]:
    """Keyword tokens: English words (minus stop words) and jieba words of two or more Chinese characters."""
    import jieba
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    jieba.setLogLevel(logging.WARNING)  # jieba announces its dictionary on stderr; the library stays quiet
    lowered = text.lower()
    out = [w for w in _WORD.findall(_HAN_RUN.sub(" ", lowered)) if len(w) > 1 and w not in ENGLISH_STOP_WORDS]
    for run in _HAN_RUN.findall(lowered):
        out.extend(w for w in jieba.lcut(run) if len(w) > 1 and w not in ZH_STOP)
    return out


KEYWORD_SAMPLE = 300  # texts per cluster read for its keywords (the ones nearest its centre)


def ctfidf_keywords(texts_by_cluster: dict[int, list[str]], top: int = 5) -> dict[int, list[str]]:
    """c-TF-IDF (BERTopic's): a term's frequency in a cluster times log(1 + average cluster size / its
    frequency in all clusters). Terms typical of one cluster win; terms everywhere sink. At most
    KEYWORD_SAMPLE texts of each cluster are read (the first ones given)."""
    counts = {
        c: Counter(t for text in texts[:KEYWORD_SAMPLE] for t in tokens(text))
        for c, texts in texts_by_cluster.items()
    }
    total = Counter()
    for counter in counts.values():
        total.update(counter)
    average = sum(total.values()) / max(len(counts), 1)
    out = {}
    for c, counter in counts.items():
        size = sum(counter.values()) or 1
        scored = sorted(counter, key=lambda t: (-(counter[t] / size) * np.log(1 + average / total[t]), t))
        out[c] = scored[:top]
    return out


# --- the steps -------------------------------------------------------------------------------------


def reduce(vectors: np.ndarray, dims: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    dims = min(dims, vectors.shape[1], max(len(vectors) - 1, 1))
    if dims >= vectors.shape[1] or len(vectors) < 3:
        return vectors
    rng = np.random.default_rng(seed)
    fit_on = vectors if len(vectors) <= 10_000 else vectors[rng.choice(len(vectors), 10_000, replace=False)]
    reduced = PCA(n_components=dims, random_state=seed).fit(fit_on).transform(vectors)
    return reduced / np.maximum(np.linalg.norm(reduced, axis=1, keepdims=True), 1e-12)


def _kmeans(points: np.ndarray, k: int, seed: int, n_init: int = 4):
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if len(points) > 20_000:
        return MiniBatchKMeans(n_clusters=k, batch_size=4096, n_init=1, max_iter=50, random_state=seed).fit(
            points
        )
    return KMeans(n_clusters=k, n_init=n_init, max_iter=100, random_state=seed).fit(points)


def choose_k(points: np.ndarray, config: ClusterConfig, progress: Progress | None = None) -> tuple[int, dict]:
    """The k with the best silhouette on a grid (see the module docstring)."""
    from sklearn.metrics import silhouette_score

    n = len(points)
    high = min(config.k_max, n // 3)
    if high < max(config.k_min, 2):
        return max(1, min(n, config.k_min)), {}
    low = max(config.k_min, 2)
    grid = sorted(
        set(range(low, min(high, 8) + 1))
        | {int(round(k)) for k in np.geomspace(min(max(low, 8), high), high, num=6)}
    )
    rng = np.random.default_rng(config.seed)
    # the search runs on a sample: a silhouette on 2,000 points says as much as one on 100,000
    fit_on = points if n <= 3_000 else points[rng.choice(n, 3_000, replace=False)]
    score_on = rng.choice(len(fit_on), min(2000, len(fit_on)), replace=False)
    scores = {}
    for step, k in enumerate(grid):
        labels = _kmeans(fit_on, k, config.seed, n_init=1 if n > 3_000 else 4).labels_
        if len(set(labels[score_on])) > 1:
            scores[k] = float(silhouette_score(fit_on[score_on], labels[score_on], metric="cosine"))
        if progress:
            progress("choosing k", step + 1, len(grid))
    best = max(scores, key=lambda k: (scores[k], -k)) if scores else grid[0]
    return best, scores


def layout(points: np.ndarray, config: ClusterConfig) -> np.ndarray:
    """2-D positions: t-SNE of (a sample of) the PCA-reduced points; unsampled points sit beside their
    nearest sampled neighbour. Fewer than 10 points: the first two principal components."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    n = len(points)
    if n < 10:
        if n < 3:
            return np.zeros((n, 2), dtype=np.float32)
        return PCA(n_components=2, random_state=config.seed).fit_transform(points).astype(np.float32)
    rng = np.random.default_rng(config.seed)
    sample = (
        np.arange(n)
        if n <= config.layout_sample
        else np.sort(rng.choice(n, config.layout_sample, replace=False))
    )
    placed = TSNE(
        n_components=2,
        perplexity=min(30.0, (len(sample) - 1) / 3),
        init="pca",
        random_state=config.seed,
        metric="cosine",
        max_iter=300,
    ).fit_transform(points[sample])
    xy = np.zeros((n, 2), dtype=np.float32)
    xy[sample] = placed
    if len(sample) < n:
        rest = np.setdiff1d(np.arange(n), sample)
        spread = placed.std(axis=0) * 0.01
        for start in range(0, len(rest), 8192):
            chunk = rest[start : start + 8192]
            nearest = np.argmax(points[chunk] @ points[sample].T, axis=1)
            xy[chunk] = placed[nearest] + rng.normal(scale=spread, size=(len(chunk), 2))
    return xy


def cluster_records(
    store: Store,
    selection: Selection | Sequence[int] | None = None,
    *,
    config: ClusterConfig | None = None,
    author: str = "workbench",
    embed_missing: bool = True,
    progress: Progress | None = None,
    save: bool = True,
) -> ClusterRun:
    """Cluster the selected records (default: every badcase that is not a marked duplicate) and store the run."""
    started = time.perf_counter()
    config = config or ClusterConfig()
    explicit = None if selection is None else embed.selection_ids(store, selection)
    with store.connect() as con:
        ids = sql.clusterable_ids(con, explicit, config.include_duplicates)
        embed_config = embed.store_config(con)
        scripts = emb_sql.record_texts(con, ids, embed_config.text).column("script").to_pylist()
    if len(ids) < 2:
        raise WorkbenchError(
            f"clustering needs at least 2 records; the selection has {len(ids)} "
            f"(marked duplicates are left out unless include_duplicates)"
        )
    model = space_for(scripts, embed_config)
    if embed_missing:
        embed.embed_records(
            store,
            ids,
            config=embed_config,
            model=model.name,
            progress=(lambda d, t: progress("embedding", d, t)) if progress else None,
        )
    with store.connect() as con:
        vectors = embed.record_vectors(con, ids, embed_config, model=model.name)[model.model_id]
        if vectors.missing:
            raise WorkbenchError(
                f"{len(vectors.missing)} records have no {model.model_id} vector yet; "
                f"run `workbench embed` first (or cluster with embedding on)"
            )
        request = emb_sql.record_texts(con, vectors.ids.tolist(), embed_config.text.request())
    ids, texts = vectors.ids, request.column("text").to_pylist()
    points = reduce(vectors.matrix, config.pca_dims, config.seed)
    scores: dict[int, float] = {}
    if config.method == "hdbscan":
        from sklearn.cluster import HDBSCAN

        labels = HDBSCAN(min_cluster_size=max(3, len(ids) // 50), metric="euclidean", copy=True).fit_predict(
            points
        )
        k, chosen_by = int(labels.max()) + 1, "hdbscan"
    else:
        if config.k is not None:
            k, chosen_by = min(config.k, len(ids)), "set by hand"
        else:
            k, scores = choose_k(points, config, progress)
            chosen_by = "silhouette"
        labels = _kmeans(points, k, config.seed).labels_ if k > 1 else np.zeros(len(ids), dtype=np.int64)
    if progress:
        progress("layout", 0, 1)
    xy = layout(points, config)
    clusters, distance = _describe(ids, texts, points, labels, xy, config)
    run = ClusterRun(None, model.model_id, config.method, k, chosen_by, len(ids), clusters, scores)
    run.seconds = time.perf_counter() - started
    if save:
        with store.transaction() as con:
            run.run_id = sql.new_run_id(con)
            sql.save_run(
                con,
                run.run_id,
                author=author,
                selection={"records": len(ids)},
                model=model.model_id,
                text_spec=embed_config.text.key(),
                method=config.method,
                k=k,
                k_chosen_by=chosen_by,
                params={**asdict(config), "silhouette": {str(a): b for a, b in scores.items()}},
                seconds=run.seconds,
                clusters=[
                    (c.id, c.name, c.keywords, c.size, c.representative_ids, c.x, c.y) for c in clusters
                ],
                member_ids=ids,
                labels=labels,
                xy=xy,
                distance=distance,
            )
    return run


def space_for(scripts: Sequence[str], config: embed.EmbedConfig) -> embed.ModelInfo:
    """The one model a run uses: the main one if it reads every record, else the multilingual one."""
    main = embed.model_info(config.model, config.model_reads)
    if main.reads == "all" or all(s == "latin" for s in scripts):
        return main
    return embed.reader_for("han", config)


def _describe(
    ids: np.ndarray,
    texts: list[str],
    points: np.ndarray,
    labels: np.ndarray,
    xy: np.ndarray,
    config: ClusterConfig,
) -> tuple[list[Cluster], np.ndarray]:
    distance = np.zeros(len(ids), dtype=np.float32)
    groups = {int(c): np.flatnonzero(labels == c) for c in np.unique(labels)}
    ordered = {}
    for c, rows in groups.items():
        centre = points[rows].mean(axis=0)
        centre /= max(float(np.linalg.norm(centre)), 1e-12)
        distance[rows] = 1 - points[rows] @ centre
        ordered[c] = rows[np.argsort(distance[rows], kind="stable")]
    keywords = ctfidf_keywords({c: [texts[i] for i in rows] for c, rows in ordered.items()}, config.keywords)
    clusters = []
    for c, rows in groups.items():
        order = ordered[c]
        words = keywords.get(c, [])
        name = "noise" if c == -1 else (" · ".join(words[:3]) or f"cluster {c}")
        clusters.append(
            Cluster(
                c,
                name,
                words,
                len(rows),
                [int(i) for i in ids[rows]],
                [int(i) for i in ids[order[: config.representatives]]],
                float(xy[rows, 0].mean()),
                float(xy[rows, 1].mean()),
            )
        )
    clusters.sort(key=lambda cl: (cl.id == -1, -cl.size, cl.id))
    return clusters, distance


def set_cluster_category(
    store: Store,
    run_id: int,
    cluster: int,
    category: str,
    author: str = "workbench",
    include_duplicates: bool = True,
) -> int:
    """Give every record of a cluster `category` (revisions); returns how many records changed."""
    if not category.strip():
        raise WorkbenchError("give a category name (an empty one would clear every record's category)")
    with store.transaction() as con:
        return sql.set_category(con, run_id, cluster, category.strip(), author, include_duplicates)


def load_run(store: Store, run_id: int | None = None) -> tuple[sql.StoredRun, list[sql.StoredCluster]]:
    """A stored run (default: the latest) and its clusters."""
    with store.connect() as con:
        run_id = run_id or sql.latest_run_id(con)
        if run_id is None:
            raise WorkbenchError("no clustering run yet: run `workbench cluster` first")
        return sql.get_run(con, run_id), sql.clusters_of(con, run_id)


def member_ids(store: Store, run_id: int) -> dict[int, list[int]]:
    """The record ids of each cluster of a stored run."""
    with store.connect() as con:
        members = sql.members_of(con, run_id)
    ids_by: dict[int, list[int]] = {}
    for rid, c in zip(
        members.column("record_id").to_pylist(), members.column("cluster").to_pylist(), strict=True
    ):
        ids_by.setdefault(c, []).append(rid)
    return ids_by


# --- the map and the list, as the Clusters page shows them ---------------------------------------------------

MAP_POINTS = 5_000  # points the map draws at most: Vega-Lite in a browser stays interactive at this many


@dataclass
class ClusterMap:
    """The points of a run's 2-D map; with more members than `limit`, a sample that keeps every cluster."""

    run_id: int
    points: Any  # pyarrow Table: record_id, cluster, x, y, category, question, answer
    total: int  # members of the run

    @property
    def sampled(self) -> bool:
        return self.points.num_rows < self.total


@dataclass
class ClusterSummary:
    cluster: int
    name: str
    keywords: list[str]
    size: int
    category: str | None  # the category the cluster was given, if any
    category_mix: list[tuple[str | None, int]]  # (category, records), biggest first
    representatives: list[tuple[int, str, str]]  # (record id, first user turn, answer)


def cluster_map(
    store: Store, run_id: int | None = None, limit: int = MAP_POINTS, chars: int = 120
) -> ClusterMap:
    """The map's points of a run (default: the latest), sampled to about `limit` when the run is bigger."""
    with store.connect(read_only=True) as con:
        run_id = run_id or sql.latest_run_id(con)
        if run_id is None:
            raise WorkbenchError("no clustering run yet: run embed and cluster first")
        points, total = sql.map_points(con, run_id, limit, chars)
    return ClusterMap(run_id, points, total)


def cluster_summaries(store: Store, run_id: int | None = None, chars: int = 160) -> list[ClusterSummary]:
    """Every cluster of a run (default: the latest) with its category mix and representatives' text."""
    with store.connect(read_only=True) as con:
        run_id = run_id or sql.latest_run_id(con)
        if run_id is None:
            return []
        clusters = sql.clusters_of(con, run_id)
        mix: dict[int, list[tuple[str | None, int]]] = {}
        for cluster, category, n in sql.category_mix(con, run_id):
            mix.setdefault(cluster, []).append((category, n))
        texts = sql.texts_of(con, [i for c in clusters for i in c.representatives], chars)
    return [
        ClusterSummary(
            c.cluster,
            c.name,
            c.keywords,
            c.size,
            c.category,
            mix.get(c.cluster, []),
            [(i, *texts.get(i, ("", ""))) for i in c.representatives],
        )
        for c in clusters
    ]


def assign_category(store: Store, cluster: int, category: str, author: str = "workbench"):
    """Give every record of a cluster of the latest run `category`, as one bulk operation that Review's
    undo reverts whole; returns review.BulkResult."""
    from . import review  # review builds on checks and curation; the cluster maths does not need it

    if not category or not category.strip():
        raise WorkbenchError("give a category name (an empty one would clear every record's category)")
    with store.connect(read_only=True) as con:
        run_id = sql.latest_run_id(con)
        if run_id is None or not any(c.cluster == cluster for c in sql.clusters_of(con, run_id)):
            raise WorkbenchError(f"the latest clustering run has no cluster {cluster}; reload the page")
    result = review.apply_bulk(
        store, review.ReviewFilter(cluster=cluster), review.BulkAction("category", category.strip()), author
    )
    with store.transaction() as con:
        sql.set_cluster_label(con, run_id, cluster, category.strip())
    return result
