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

One module per stage: `config` (DedupConfig), `lexical` (lexical text, shingles, MinHash, LSH),
`semantic` (cosine pairs), `matches` (every match among the records, the look-alike check), `keep`
(groups and the keep rule), `marking` (a dedup run and its undo), `leaks` (the eval-leak check), `view`
(duplicate groups as the Clusters page shows them).
"""

from __future__ import annotations

from .config import DedupConfig, Progress
from .keep import KEEP_RANK, Group, keep_instead
from .leaks import Leak, find_leaks
from .lexical import (
    lexical_text,
    lexical_texts,
    minhash_signatures,
    prepare_signatures,
    shingle_hash,
    shingles,
)
from .marking import DedupReport, dedup, list_runs, restore, restore_run
from .matches import Match, find_matches
from .semantic import semantic_pairs
from .view import DuplicateGroup, ShownRecord, duplicate_groups, record_text, text_diff

__all__ = [
    "KEEP_RANK",
    "DedupConfig",
    "DedupReport",
    "DuplicateGroup",
    "Group",
    "Leak",
    "Match",
    "Progress",
    "ShownRecord",
    "dedup",
    "duplicate_groups",
    "find_leaks",
    "find_matches",
    "keep_instead",
    "lexical_text",
    "lexical_texts",
    "list_runs",
    "minhash_signatures",
    "prepare_signatures",
    "record_text",
    "restore",
    "restore_run",
    "semantic_pairs",
    "shingle_hash",
    "shingles",
    "text_diff",
]
