"""Dedup settings: which matchers run and how close two texts must be, with the help texts the CLI shows.

The defaults were chosen on the labelled sets in tests/data_dedup_labels.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from ..embed import TextSpec
from ..errors import WorkbenchError

Progress = Callable[[str, int, int], None]


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
