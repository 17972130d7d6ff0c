"""Pure retrieval helpers: FTS5 query escaping, reciprocal rank fusion, top-k."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from ehrqa.docs.retrieval import RRF_K, fts_query, reciprocal_rank_fusion, top_k

HOSTILE_QUERIES = [
    'what is "first-line" therapy',
    "COVID-19 AND NOT influenza",
    "nitro* OR (cystitis",
    "eGFR < 45 ml/min: stop?",
    "NEAR(a b) title:foo ^bar",
    '"unbalanced quote',
    "AND",
    "-",
]


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
def test_fts_query_never_raises_in_sqlite(query: str) -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize='porter unicode61')")
    db.execute("INSERT INTO t VALUES ('covid 19 first line therapy and nitrofurantoin')")
    match = fts_query(query)
    if match is not None:
        db.execute("SELECT rowid FROM t WHERE t MATCH ?", (match,)).fetchall()


def test_fts_query_quotes_terms_and_keeps_hyphenated_words_together() -> None:
    assert fts_query("COVID-19 in children") == '"covid 19" OR "children"'
    assert fts_query('nitro* "cystitis"') == '"nitro" OR "cystitis"'


def test_fts_query_drops_stopwords_unless_nothing_else_is_left() -> None:
    assert fts_query("what is the dose") == '"dose"'
    assert fts_query("what is it") == '"what" OR "is" OR "it"'
    assert fts_query("* - ?") is None
    assert fts_query("") is None


def test_hyphenated_phrase_matches_indexed_text() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize='porter unicode61')")
    db.executemany("INSERT INTO t VALUES (?)", [("first-line treatment",), ("line first",)])
    rows = db.execute("SELECT body FROM t WHERE t MATCH ?", (fts_query("first-line"),))
    assert [r[0] for r in rows] == ["first-line treatment"]


def test_rrf_sums_reciprocal_ranks_and_records_them() -> None:
    fused = reciprocal_rank_fusion({"bm25": ["a", "b", "c"], "dense": ["b", "d"]})
    assert [item for item, _, _ in fused] == ["b", "a", "d", "c"]
    b = fused[0]
    assert b[1] == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))
    assert b[2] == {"bm25": 2, "dense": 1}
    assert fused[2][2] == {"dense": 2}


def test_rrf_ties_keep_first_seen_order_and_ignore_repeats() -> None:
    fused = reciprocal_rank_fusion({"x": ["a", "a", "b"], "y": ["b", "a"]}, k=0)
    assert fused[0][0] == "a" and fused[0][2] == {"x": 1, "y": 2}
    assert reciprocal_rank_fusion({}) == []
    assert [i for i, _, _ in reciprocal_rank_fusion({"x": ["p"], "y": ["q"]})] == ["p", "q"]


def test_top_k_is_exact_and_ordered() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.9, -1.0], dtype=np.float32)
    assert top_k(scores, 3).tolist() == [1, 3, 2]
    assert top_k(scores, 10).tolist() == [1, 3, 2, 0, 4]
    assert top_k(scores, 0).tolist() == []


def test_weights_scale_each_retrievers_contribution() -> None:
    rankings = {"bm25": ["a", "b"], "dense": ["b", "a"]}
    equal = reciprocal_rank_fusion(rankings, k=1)
    assert equal[0][1] == pytest.approx(equal[1][1])  # a tie: 1/2 + 1/3 each
    fused = reciprocal_rank_fusion(rankings, k=1, weights={"dense": 0.5})
    assert [item for item, _, _ in fused] == ["a", "b"]
    assert fused[0][1] == pytest.approx(1 / 2 + 0.5 / 3)
    assert fused[1][1] == pytest.approx(1 / 3 + 0.5 / 2)
