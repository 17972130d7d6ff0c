"""Speed of the records-QA slice: ingest rate, selection latency, answer latency.

    python benchmarks/bench_records_qa.py [--model smollm2] [--repeats 5] [--out reports/]

Ingests the six demo patients into a fresh store, then asks a fixed question set about the
3,172-resource demo patient. Prints a markdown table and writes it, with the raw numbers
and the environment, to ``reports/bench_records_qa.{md,json}``. Numbers, not asserts:
this machine is shared and noisy, so compare runs on the same machine only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ehrqa.core.config import EhrqaConfig
from ehrqa.ingest.files import ingest_paths
from ehrqa.lab.data.demo import DEMO_NOW, DEMO_PATIENT, DEMO_QUESTIONS, demo_dir
from ehrqa.lab.eval.metrics import percentile
from ehrqa.lab.eval.provenance import git_commit
from ehrqa.qa import QASystem
from ehrqa.store import SqliteStore

QUESTIONS = (
    *DEMO_QUESTIONS,
    "What was my last blood pressure?",
    "How has my weight changed since 2020?",
    "Is the patient on any blood thinners?",
    "When was I first diagnosed with prediabetes?",
    "What procedures did I have last year?",
    "What was my cholesterol in 2022?",
    "How many encounters did the patient have in 2023?",
    "What is my smoking status?",
    "Show my most recent kidney function tests",
    "What is the patient's date of birth?",
)


def measure_models(
    store: SqliteStore, home: str, patient_id: str, models: list[str]
) -> dict[str, dict[str, object]]:
    """Answer latency and how many model answers verified, per model, in hybrid mode."""
    results: dict[str, dict[str, object]] = {}
    for model in models:
        system = QASystem(EhrqaConfig(home=home, model=model), store)
        system.model()  # load once, outside the timings
        answer_ms: list[float] = []
        sources: dict[str, int] = {}
        verified = called = 0
        for question in QUESTIONS:
            result = system.ask(patient_id, question, now=DEMO_NOW)
            answer_ms.append(result.timings["answer"] * 1000)
            a = result.answer
            sources[a.source] = sources.get(a.source, 0) + 1
            called += a.draft is not None
            verified += a.source == "model"
        results[model] = {
            "answer_ms": {
                "n": len(answer_ms),
                "p50": round(percentile(answer_ms, 50)),
                "p95": round(percentile(answer_ms, 95)),
                "mean": round(statistics.mean(answer_ms)),
            },
            "model_calls": called,
            "model_answers_verified": verified,
            "answer_sources": sources,
        }
    return results


def run(models: list[str], repeats: int) -> dict[str, object]:
    """Ingest, selection and per-model answer measurements."""
    with tempfile.TemporaryDirectory() as home:
        store = SqliteStore(Path(home) / "bench.sqlite3")
        report = ingest_paths(store, [demo_dir()])
        patient = store.patient(DEMO_PATIENT)
        selector = QASystem(EhrqaConfig(home=home), store).selector
        select_ms: list[float] = []
        for _ in range(repeats):
            for question in QUESTIONS:
                started = time.perf_counter()
                selector.select(store, patient.id, question, DEMO_NOW)
                select_ms.append((time.perf_counter() - started) * 1000)
        per_model = measure_models(store, home, patient.id, models)
        store.close()
    return {
        "commit": git_commit(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, "
        f"Python {platform.python_version()}",
        "questions": len(QUESTIONS),
        "ingest": {
            "files": report.files,
            "resources": report.resources_read,
            "seconds": round(report.seconds, 2),
            "resources_per_s": round(report.resources_read / report.seconds),
        },
        "patient_resources": patient.resource_count,
        "selection_ms": {
            "n": len(select_ms),
            "p50": round(percentile(select_ms, 50), 2),
            "p95": round(percentile(select_ms, 95), 2),
        },
        "models": per_model,
    }


def to_markdown(r: dict[str, Any]) -> str:
    """The results as markdown tables."""
    ing, sel = r["ingest"], r["selection_ms"]
    lines = [
        f"Records-QA speed — commit {r['commit']}, {r['machine']}",
        "",
        "| measure | value |",
        "|---|---|",
        f"| ingest ({ing['resources']:,} resources, {ing['files']} files) "
        f"| {ing['resources_per_s']:,} resources/s |",
        f"| selection, {r['patient_resources']:,}-resource patient (n={sel['n']}) "
        f"| p50 {sel['p50']} ms, p95 {sel['p95']} ms |",
        "",
        f"Answers to {r['questions']} questions, hybrid mode:",
        "",
        "| model | answer p50 | answer p95 | model calls | model answers verified | sources |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in r["models"].items():
        a = m["answer_ms"]
        lines.append(
            f"| {name} | {a['p50']} ms | {a['p95']} ms | {m['model_calls']} "
            f"| {m['model_answers_verified']} | {m['answer_sources']} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Parse arguments, run, print and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="smollm2", help="comma-separated model specs")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("reports"))
    args = parser.parse_args()
    results = run(args.models.split(","), args.repeats)
    table = to_markdown(results)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_records_qa.md").write_text(table + "\n", encoding="utf-8")
    (args.out / "bench_records_qa.json").write_text(
        json.dumps(results, indent=2) + "\n", encoding="utf-8"
    )


if __name__ == "__main__":
    main()
