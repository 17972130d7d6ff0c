"""Retrieval quality of the document library on the demo corpus and its labelled questions.

Ingests the corpus into a temporary library, then reports recall@k and MRR (top 10) for
bm25, dense and hybrid search, the time spent embedding, and the top-hit similarity of
answerable questions and of unanswerable probes (for choosing an abstention threshold).
Writes ``reports/docs/retrieval.md`` and ``.json``.

    python benchmarks/docs_retrieval.py [--corpus DIR] [--dataset FILE] [--home DIR]
                                        [--embedder minilm] [--k 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from ehrqa.docs import open_library
from ehrqa.docs.evaluate import evaluate_retrieval, load_items
from ehrqa.docs.library import RETRIEVER_WEIGHTS
from ehrqa.docs.retrieval import RRF_K

ROOT = Path(__file__).resolve().parents[1]
REPORT_DIR = ROOT / "reports" / "docs"


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    items = load_items(args.dataset)
    started = time.perf_counter()
    library = open_library(home, embedder=args.embedder)
    load_s = time.perf_counter() - started
    try:
        report = library.add([args.corpus])
        result = evaluate_retrieval(library, items, k=args.k)
        documents, chunks = len(library.documents()), len(library)
    finally:
        library.close()
    for mode in result["modes"].values():
        mode.pop("items")
    return {
        "date": dt.date.today().isoformat(),
        "commit": git_commit(),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "corpus": os.path.relpath(args.corpus, ROOT),
        "dataset": os.path.relpath(args.dataset, ROOT),
        "embedder": args.embedder,
        "documents": documents,
        "chunks": chunks,
        "files": report.counts,
        "model_load_s": round(load_s, 2),
        "add_s": round(report.seconds, 2),  # reading + chunking + embedding + writing
        **result,
    }


def write(result: dict[str, Any]) -> None:
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    (REPORT_DIR / "retrieval.json").write_text(json.dumps(result, indent=2) + "\n")
    k = result["k"]
    lines = [
        "# Document retrieval on the demo corpus",
        "",
        f"{result['date']}, commit {result['commit']}, {result['machine']}. Corpus "
        f"`{result['corpus']}`: {result['documents']} documents, {result['chunks']} chunks. "
        f"Questions `{result['dataset']}`: {result['answerable']} answerable, "
        f"{result['unanswerable']} unanswerable probes. Embedder `{result['embedder']}` "
        f"(load {result['model_load_s']} s); adding the corpus (read, chunk, embed, write) "
        f"took {result['add_s']} s.",
        "",
        f"recall@{k}: share of a question's labelled sections found in the top {k}, averaged. "
        f"MRR: 1/rank of the first labelled section within the top {result['mrr_depth']}.",
        "",
        f"Hybrid fuses the rankings by reciprocal rank fusion (k = {RRF_K}) with weights "
        f"{RETRIEVER_WEIGHTS}; the dense weight was chosen on these same questions "
        "(no held-out set), so the hybrid row is somewhat optimistic.",
        "",
        f"| mode | recall@{k} | MRR | top-hit similarity, answerable (min / median / max) "
        "| top-hit similarity, unanswerable (min / median / max) |",
        "|---|---:|---:|---|---|",
    ]
    for mode, m in result["modes"].items():
        lines.append(f"| {mode} | {m['recall_at_k']:.3f} | {m['mrr']:.3f} | "
                     f"{_dist(m['top_similarity']['answerable'])} | "
                     f"{_dist(m['top_similarity']['unanswerable'])} |")  # fmt: skip
    (REPORT_DIR / "retrieval.md").write_text("\n".join(lines) + "\n")


def _dist(d: dict[str, float] | None) -> str:
    return "-" if d is None else f"{d['min']:.3f} / {d['median']:.3f} / {d['max']:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(ROOT / "src" / "ehrqa" / "data" / "corpus"))
    parser.add_argument(
        "--dataset", default=str(ROOT / "benchmarks" / "data" / "docs_retrieval.jsonl")
    )
    parser.add_argument("--home", help="library folder (default: a temporary one)")
    parser.add_argument("--embedder", default="minilm")
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()
    if args.home:
        result = run(args, Path(args.home))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = run(args, Path(tmp))
    write(result)
    print((REPORT_DIR / "retrieval.md").read_text())


if __name__ == "__main__":
    main()
