"""Lexical search shared by the record stores: FTS5's tokens and FTS5's BM25, as pure functions.

Both stores rank a patient's records by BM25 over that patient's records alone (record
count, mean length and each phrase's document frequency are the patient's own), so a
patient's ranking does not change when other patients are stored, and the SQLite and
PostgreSQL stores give the same scores whatever else they hold. FTS5's own ``bm25()``
counts every row of the table, so the SQLite store uses FTS5 to find the rows and these
functions to score them.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping, Sequence

# The SQLite store's FTS5 tokenizer; search semantics follow from it.
FTS_TOKENIZE = "porter unicode61 remove_diacritics 2"
# FTS5's BM25 constants.
BM25_K1 = 1.2
BM25_B = 0.75


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Each text's lexemes in order, exactly as the SQLite store's FTS5 index sees them."""
    db = sqlite3.connect(":memory:")
    try:
        db.execute(f"CREATE VIRTUAL TABLE t USING fts5(body, tokenize = '{FTS_TOKENIZE}')")
        db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
        db.executemany(
            "INSERT INTO t (rowid, body) VALUES (?, ?)",
            [(i + 1, text) for i, text in enumerate(texts)],
        )
        found: list[list[tuple[int, str]]] = [[] for _ in texts]
        for term, doc, offset in db.execute("SELECT term, doc, offset FROM v"):
            found[doc - 1].append((offset, term))
    finally:
        db.close()
    return [[term for _, term in sorted(tokens)] for tokens in found]


def positions_of(lexemes: Sequence[str]) -> dict[str, list[int]]:
    """Each lexeme's positions (0-based) in ``lexemes``."""
    found: dict[str, list[int]] = {}
    for position, lexeme in enumerate(lexemes):
        found.setdefault(lexeme, []).append(position)
    return found


def phrase_count(phrase: Sequence[str], positions: Mapping[str, Sequence[int]]) -> int:
    """How often ``phrase`` occurs in a text whose lexeme positions are ``positions``."""
    if not phrase or any(lexeme not in positions for lexeme in phrase):
        return 0
    later = [set(positions[lexeme]) for lexeme in phrase[1:]]
    return sum(
        all(start + k + 1 in seen for k, seen in enumerate(later)) for start in positions[phrase[0]]
    )


def bm25(freqs: Sequence[float], idfs: Sequence[float], doc_len: int, avgdl: float) -> float:
    """FTS5's BM25 score of one row (same operations in the same order, so same floats)."""
    score = 0.0
    for freq, idf in zip(freqs, idfs, strict=True):
        score += idf * (
            (freq * (BM25_K1 + 1.0)) / (freq + BM25_K1 * (1 - BM25_B + BM25_B * doc_len / avgdl))
        )
    return score


def idf(n_rows: int, n_hits: int) -> float:
    """FTS5's inverse document frequency, floored at a tiny positive number."""
    value = math.log((n_rows - n_hits + 0.5) / (n_hits + 0.5))
    return value if value > 0.0 else 1e-6
