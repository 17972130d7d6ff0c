"""Retrieval evaluation: label matching, recall@k, MRR, unanswerable probes, item files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ehrqa.core.errors import ConfigError
from ehrqa.docs import Chunk, DocumentLibrary
from ehrqa.docs.evaluate import evaluate_retrieval, load_items, matches, mrr, recall_at_k


def chunk(doc_id: str, section: str) -> Chunk:
    return Chunk(f"{doc_id}#1", doc_id, "T", section, "text", "guideline", "s.md", None)


RANKED = [chunk("a", "Intro"), chunk("b", "Treatment > Adults"), chunk("c", "Follow-up")]


def test_matches_by_doc_and_section_substring_ignoring_case() -> None:
    assert matches(RANKED[1], {"doc": "b", "section": "adults"})
    assert matches(RANKED[1], {"doc": "b", "section": ""})
    assert not matches(RANKED[1], {"doc": "a", "section": "adults"})
    assert not matches(RANKED[1], {"doc": "b", "section": "children"})


def test_recall_and_mrr() -> None:
    labels = [{"doc": "b", "section": "Treatment"}, {"doc": "z", "section": "x"}]
    assert recall_at_k(RANKED, labels, 5) == 0.5
    assert recall_at_k(RANKED, labels, 1) == 0.0
    assert mrr(RANKED, labels) == 0.5
    assert mrr(RANKED, [{"doc": "z", "section": ""}]) == 0.0
    with pytest.raises(ValueError, match="at least one label"):
        recall_at_k(RANKED, [], 5)


def test_evaluate_retrieval_reports_modes_and_probes(
    library: DocumentLibrary, corpus: Path
) -> None:
    library.add([corpus])
    items = [
        {"id": "q1", "question": "nitrofurantoin for cystitis",
         "relevant": [{"doc": "uti-adults", "section": "Treatment"}]},
        {"id": "q2", "question": "thiazide-like diuretic step 2",
         "relevant": [{"doc": "hypertension", "section": "Step 2"}]},
        {"id": "p1", "question": "knee replacement rehabilitation", "relevant": []},
    ]  # fmt: skip
    result = evaluate_retrieval(library, items, k=3)
    assert (result["answerable"], result["unanswerable"]) == (2, 1)
    for mode in ("bm25", "dense", "hybrid"):
        assert result["modes"][mode]["recall_at_k"] == 1.0
        assert result["modes"][mode]["mrr"] > 0.5
    assert result["modes"]["bm25"]["top_similarity"]["answerable"] is None
    probes = result["modes"]["dense"]["top_similarity"]["unanswerable"]
    assert probes["n"] == 1 and probes["max"] < result["modes"]["dense"]["top_similarity"][
        "answerable"]["min"]  # fmt: skip


def test_load_items(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(
        '{"id": "q1", "question": "q?", "relevant": [{"doc": "a", "section": "b"}]}\n\n'
    )
    assert load_items(path)[0]["id"] == "q1"


@pytest.mark.parametrize(
    ("line", "message"),
    [("{not json", "not JSON"), ('{"id": "q"}', "needs a 'question'"),
     ('{"question": "q", "relevant": "a"}', "must be a list")],
)  # fmt: skip
def test_load_items_rejects_bad_lines(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(ConfigError, match=f"items.jsonl:1: .*{message}"):
        load_items(path)
