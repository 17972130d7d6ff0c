"""Calibrate the semantic concept matcher's threshold on lay phrases over Java-Synthea patients.

Each line of ``semantic_phrases.jsonl`` is a lay question and the displays it is about. For
every calibration patient (files 120-150 of the sorted Java-Synthea folder; files 1-30 are
an evaluation set and are never read), the matcher's top concept is

- a hit when the patient has one of the expected displays and the top one is among them,
- a miss when it scores under the threshold, or is another concept (a false match),
- a false match when the patient has none of them and the top one scores above it.

Prints precision, recall and F1 of the top match per threshold, then timings (loading the
embedder, embedding displays into an empty cache, matching with a warm cache on the
3,149-resource demo patient) and the cache's size.

    python benchmarks/semantic_calibration.py [--embedder minilm] [--work DIR] [--show]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ehrqa.ingest.files import ingest_paths
from ehrqa.lab.data.demo import DEMO_PATIENT, demo_dir
from ehrqa.llm.embed import Embedder, load_embedder
from ehrqa.select.semantic import ConceptMatcher, concept_text
from ehrqa.store import CodedConcept, SqliteStore

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/data/java-synthea")
# Billing and administrative types repeat clinical displays or hold none worth matching.
SKIP_TYPES = frozenset(
    {"Claim", "ExplanationOfBenefit", "Coverage", "Organization", "Practitioner", "Patient"}
)
THRESHOLDS = [round(0.30 + 0.05 * i, 2) for i in range(11)]


@dataclass(frozen=True)
class Trial:
    """The top match of one phrase on one patient."""

    question: str
    patient: str
    positive: bool  # the patient has an expected display
    score: float
    correct: bool  # the top display is an expected one
    top: str
    phrase: str


def calibration_files(first: int, last: int) -> list[Path]:
    """Files ``first``..``last`` (1-based) of the sorted folder, patient bundles only."""
    files = sorted(DATA.glob("*.json.gz"))[first - 1 : last]
    return [f for f in files if "Information" not in f.name]


def clinical(concepts: list[CodedConcept]) -> list[CodedConcept]:
    """The concepts worth matching: clinical types with a display left after cleaning."""
    return [c for c in concepts if c.resource_type not in SKIP_TYPES and concept_text(c)]


def run_trials(
    matcher: ConceptMatcher, items: list[dict], patients: dict[str, list[CodedConcept]]
) -> list[Trial]:
    trials = []
    for item in items:
        expected = set(item["expected"])
        for pid, concepts in patients.items():
            found = matcher.match(item["question"], concepts, min_score=-1.0, limit=1)
            top = found[0] if found else None
            trials.append(
                Trial(
                    question=item["question"],
                    patient=pid,
                    positive=any(c.display in expected for c in concepts),
                    score=top.score if top else -1.0,
                    correct=bool(top and top.concept.display in expected),
                    top=top.concept.display if top else "",
                    phrase=top.phrase if top else "",
                )
            )
    return trials


def table(trials: list[Trial]) -> list[dict[str, float]]:
    positives = [t for t in trials if t.positive]
    negatives = [t for t in trials if not t.positive]
    rows = []
    for threshold in THRESHOLDS:
        hits = sum(t.correct and t.score >= threshold for t in positives)
        wrong = sum(not t.correct and t.score >= threshold for t in positives)
        false_alarms = sum(t.score >= threshold for t in negatives)
        answered = hits + wrong + false_alarms
        precision = hits / answered if answered else 1.0
        recall = hits / len(positives) if positives else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append(
            {
                "threshold": threshold,
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "wrong_top": wrong,
                "false_alarms": false_alarms,
                "negatives": len(negatives),
            }
        )
    return rows


def print_table(rows: list[dict[str, float]], n_pos: int) -> None:
    print(f"\n| min_score | precision | recall | F1 | wrong top (of {n_pos} positive pairs) "
          f"| false alarms (of {rows[0]['negatives']} negative pairs) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['threshold']:.2f} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f}"
              f" | {r['wrong_top']} | {r['false_alarms']} |")  # fmt: skip


def show_failures(trials: list[Trial], threshold: float) -> None:
    """Per question: the positive pairs it got wrong and the negatives it fired on."""
    print(f"\nFailures at {threshold:.2f} (question: score top <- phrase):")
    for t in trials:
        bad = (t.positive and not (t.correct and t.score >= threshold)) or (
            not t.positive and t.score >= threshold
        )
        if bad:
            kind = "MISS" if t.positive else "FALSE"
            print(f"  {kind} {t.question!r}: {t.score:.3f} {t.top!r} <- {t.phrase!r}")


def timings(embedder_spec: str, work: Path, items: list[dict]) -> Embedder:
    """Print load, cold-cache and warm-match timings on the demo patient; return the embedder."""
    started = time.perf_counter()
    embedder = load_embedder(embedder_spec)
    load_s = time.perf_counter() - started
    store = SqliteStore(work / "demo.sqlite3")
    if store.count() == 0:
        ingest_paths(store, [demo_dir() / f"patient-{DEMO_PATIENT}.json.gz"])
    resources = store.patient(DEMO_PATIENT).resource_count
    with tempfile.TemporaryDirectory() as empty:
        cold = ConceptMatcher(embedder, empty)
        concepts = store.distinct_codes(DEMO_PATIENT)
        started = time.perf_counter()
        cold.concept_vectors(concepts)
        cold_s = time.perf_counter() - started
        size = cold.cache_path.stat().st_size
        n_displays = cold.cached_displays
    warm = ConceptMatcher(embedder, work / "cache")
    warm.concept_vectors(concepts)
    per_question = []
    for item in items:
        started = time.perf_counter()
        warm.match(item["question"], store.distinct_codes(DEMO_PATIENT))
        per_question.append(time.perf_counter() - started)
    print(f"\nembedder {embedder.name}: load {load_s:.2f} s (in a process that had not loaded it)")
    print(f"demo patient: {resources} resources, {len(concepts)} concepts, {n_displays} distinct "
          f"cleaned displays; embedding them into an empty cache {cold_s:.2f} s, "
          f"cache file {size / 1024:.0f} KiB")  # fmt: skip
    print(f"match, warm display cache (distinct_codes + embedding the phrases + scoring), "
          f"{len(per_question)} questions: median {1000 * statistics.median(per_question):.1f} ms, "
          f"max {1000 * max(per_question):.1f} ms")  # fmt: skip
    full = work / "cache"
    total = sum(p.stat().st_size for p in full.glob("*.npz"))
    print(
        f"calibration cache ({warm.cached_displays} displays, 30 patients): {total / 1024:.0f} KiB"
    )
    store.close()
    return embedder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embedder", default="minilm")
    parser.add_argument("--phrases", type=Path, default=ROOT / "benchmarks/semantic_phrases.jsonl")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ehrqa-semantic")
    parser.add_argument("--first", type=int, default=120, help="first file (1-based); keep > 30")
    parser.add_argument("--last", type=int, default=150)
    parser.add_argument("--exponents", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0])
    parser.add_argument("--show", type=float, default=None, help="list failures at this threshold")
    args = parser.parse_args()
    if args.first <= 30:
        parser.error("files 1-30 are an evaluation set: calibrate on later files")
    args.work.mkdir(parents=True, exist_ok=True)
    items = [json.loads(line) for line in args.phrases.read_text().splitlines() if line.strip()]

    embedder = timings(args.embedder, args.work, items)
    store = SqliteStore(args.work / "calibration.sqlite3")
    files = calibration_files(args.first, args.last)
    if store.count() == 0:
        ingest_paths(store, files)
    patients = {p.id: clinical(store.distinct_codes(p.id)) for p in store.patients()}
    print(f"\n{len(items)} phrases x {len(patients)} patients ({files[0].name[:20]}.. "
          f"{files[-1].name[:20]}..)")  # fmt: skip
    for exponent in args.exponents:
        matcher = ConceptMatcher(embedder, args.work / "cache", subphrase_exponent=exponent)
        trials = run_trials(matcher, items, patients)
        print(f"\nsubphrase_exponent {exponent}:")
        print_table(table(trials), sum(t.positive for t in trials))
        if args.show is not None:
            show_failures(trials, args.show)


if __name__ == "__main__":
    main()
