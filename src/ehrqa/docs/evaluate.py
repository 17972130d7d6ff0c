"""Retrieval quality of a document library against labelled questions.

Items are JSON objects (one per line in ``benchmarks/data/docs_retrieval.jsonl``)::

    {"id": "q01", "question": "...", "relevant": [{"doc": "<doc_id>", "section": "<heading>"}]}

A chunk matches a label when its ``doc_id`` equals ``doc`` and its section contains
``section`` (case-insensitive). Items with no labels are unanswerable probes: they are left
out of recall and MRR, and the similarity of their top hit is reported beside the
answerable items' (to choose an abstention threshold).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from ehrqa.core.errors import ConfigError
from ehrqa.docs.library import Chunk, DocumentLibrary

__all__ = ["MRR_DEPTH", "evaluate_retrieval", "load_items", "matches", "mrr", "recall_at_k"]

MRR_DEPTH = 10  # MRR looks at the top 10 chunks whatever k is; a first match deeper scores 0


def load_items(path: str | Path) -> list[dict[str, Any]]:
    """Read and check a JSONL file of retrieval items (see the module docstring)."""
    items: list[dict[str, Any]] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{number}: not JSON ({exc})") from exc
        if not isinstance(item, dict) or not isinstance(item.get("question"), str):
            raise ConfigError(f"{path}:{number}: an item needs a 'question' string")
        labels = item.get("relevant", [])
        if not isinstance(labels, list) or not all(
            isinstance(x, dict) and "doc" in x for x in labels
        ):
            raise ConfigError(f"{path}:{number}: 'relevant' must be a list of {{doc, section}}")
        items.append(item)
    return items


def matches(chunk: Chunk, label: Mapping[str, str]) -> bool:
    """Whether ``chunk`` is the labelled document section."""
    section = str(label.get("section") or "").lower()
    return chunk.doc_id == label["doc"] and section in chunk.section.lower()


def recall_at_k(ranked: Sequence[Chunk], labels: Sequence[Mapping[str, str]], k: int) -> float:
    """Share of ``labels`` matched by some chunk among the first ``k``."""
    if not labels:
        raise ValueError("recall needs at least one label")
    top = ranked[:k]
    return sum(any(matches(c, label) for c in top) for label in labels) / len(labels)


def mrr(ranked: Sequence[Chunk], labels: Sequence[Mapping[str, str]]) -> float:
    """1 / rank of the first chunk matching any label within :data:`MRR_DEPTH`, else 0."""
    for rank, chunk in enumerate(ranked[:MRR_DEPTH], start=1):
        if any(matches(chunk, label) for label in labels):
            return 1.0 / rank
    return 0.0


def evaluate_retrieval(
    library: DocumentLibrary,
    items: Iterable[Mapping[str, Any]],
    *,
    k: int = 5,
    modes: Sequence[str] = ("bm25", "dense", "hybrid"),
) -> dict[str, Any]:
    """Recall@k and MRR (top :data:`MRR_DEPTH`) per search mode, plus top-hit similarities.

    Returns ``{"k", "answerable", "unanswerable", "modes": {mode: {...}}}``; each mode has
    ``recall_at_k``, ``mrr``, per-item results, and for modes that embed the query the
    top-hit similarity of answerable and unanswerable items.
    """
    items = list(items)
    answerable = [i for i in items if i.get("relevant")]
    result: dict[str, Any] = {
        "k": k,
        "mrr_depth": MRR_DEPTH,
        "answerable": len(answerable),
        "unanswerable": len(items) - len(answerable),
        "modes": {},
    }
    for mode in modes:
        result["modes"][mode] = _evaluate_mode(library, items, mode, k)
    return result


def _evaluate_mode(
    library: DocumentLibrary, items: list[Mapping[str, Any]], mode: str, k: int
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for item in items:
        hits = library.search(item["question"], k=max(k, MRR_DEPTH), mode=mode)
        chunks = [h.chunk for h in hits]
        labels = item.get("relevant") or []
        row: dict[str, Any] = {
            "id": item.get("id"),
            "answerable": bool(labels),
            "top": chunks[0].id if chunks else None,
            "top_similarity": hits[0].similarity if hits else None,
        }
        if labels:
            row["recall"] = recall_at_k(chunks, labels, k)
            row["mrr"] = mrr(chunks, labels)
        rows.append(row)
    scored = [r for r in rows if r["answerable"]]
    return {
        "recall_at_k": _mean([r["recall"] for r in scored]),
        "mrr": _mean([r["mrr"] for r in scored]),
        "top_similarity": {
            "answerable": _distribution([r["top_similarity"] for r in scored]),
            "unanswerable": _distribution(
                [r["top_similarity"] for r in rows if not r["answerable"]]
            ),
        },
        "items": rows,
    }


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def _distribution(values: list[float | None]) -> dict[str, float] | None:
    """min, median, mean and max of the similarities (``None`` when there are none)."""
    present = sorted(v for v in values if v is not None)
    if not present:
        return None
    return {
        "n": len(present),
        "min": round(present[0], 4),
        "median": round(statistics.median(present), 4),
        "mean": round(statistics.fmean(present), 4),
        "max": round(present[-1], 4),
    }
