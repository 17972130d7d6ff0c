"""Pure retrieval helpers: safe FTS5 queries, reciprocal rank fusion, exact top-k.

Kept apart from the library so each is tested on plain values, without a database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["RRF_K", "fts_query", "reciprocal_rank_fusion", "top_k"]

# Reciprocal rank fusion constant from Cormack, Clarke & Büttcher (SIGIR 2009): score =
# sum over retrievers of 1 / (RRF_K + rank). 60 damps the head so that one retriever's
# first place does not drown agreement lower down; the paper found it robust across
# collections, and it needs no score calibration between BM25 and cosine similarity.
RRF_K = 60

# Words that match almost every chunk: dropping them keeps BM25's OR query focused.
_STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "should",
        "that",
        "the",
        "their",
        "there",
        "these",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    }
)
_WORD = re.compile(r"\w+")


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression for free text, or ``None`` when it has no words.

    Every whitespace-separated term becomes a quoted phrase of its word characters, so
    user text can never be FTS5 syntax: quotes, ``*``, ``-``, ``:``, ``AND``/``NOT`` and
    parentheses are just text. ``"covid-19"`` becomes the phrase ``"covid 19"``, which
    matches how the unicode61 tokenizer indexed it. Terms are OR-ed (BM25 ranks chunks
    that match more of them higher); common English words are dropped unless nothing
    else is left.
    """
    phrases: dict[str, None] = {}
    for term in text.split():
        words = _WORD.findall(term.lower())
        if words:
            phrases['"' + " ".join(words) + '"'] = None
    content = [p for p in phrases if p.strip('"') not in _STOPWORDS]
    chosen = content or list(phrases)
    return " OR ".join(chosen) if chosen else None


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[str]],
    *,
    k: int = RRF_K,
    weights: Mapping[str, float] | None = None,
) -> list[tuple[str, float, dict[str, int]]]:
    """Fuse ranked id lists: ``(id, score, {retriever: 1-based rank})``, best first.

    ``score`` is the sum of ``weight / (k + rank)`` over the retrievers that returned the
    id (``weights`` default to 1 each); ties keep the order in which ids were first seen
    (the first retriever's first).
    """
    scores: dict[str, float] = {}
    ranks: dict[str, dict[str, int]] = {}
    for retriever, ids in rankings.items():
        for rank, item in enumerate(ids, start=1):
            if retriever in ranks.setdefault(item, {}):
                continue  # a retriever listing an id twice counts its best rank only
            ranks[item][retriever] = rank
            weight = 1.0 if weights is None else weights.get(retriever, 1.0)
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    order = sorted(scores, key=lambda item: -scores[item])  # stable: ties keep first-seen
    return [(item, scores[item], ranks[item]) for item in order]


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest ``scores``, highest first (exact; ties by index)."""
    import numpy as np

    if k <= 0 or scores.size == 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k] if k < scores.size else np.arange(scores.size)
    return part[np.lexsort((part, -scores[part]))]
