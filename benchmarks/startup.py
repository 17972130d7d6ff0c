"""Wall time of one `ehrqa ask` process, start to exit: p50/p95 per selector.

    .venv/bin/python benchmarks/startup.py --runs 3 --out reports/startup

Each run is a fresh `ehrqa ask --answer-mode extractive` subprocess on the 3,149-resource
demo patient, with questions of three kinds: decided by the rules (the reranker is never
loaded), re-scored by the reranker, and left empty by the rules (the semantic matcher's
MiniLM runs). `--selector auto` and `--selector default` alternate question by question, so
load from other work on the machine falls on both alike. A private home is ingested and its
models prepared (`ehrqa models prepare`) before timing; one untimed run per selector warms
the page cache. Writes README.md (and results.json) into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EHRQA = [sys.executable, "-m", "ehrqa.cli.main"]
PATIENT = "4a404922-e691-47f2-bf50-bd2987fd9a44"  # Myron Schuster, 3,149 resources
NOW = "2025-01-01"
QUESTIONS = {
    "What was my most recent HbA1c?": "rules decide",
    "When was my last visit?": "rules decide",
    "Which conditions do I have?": "reranked",
    "Have I ever broken a bone?": "reranked",
    "How is my mental health?": "reranked",
    "What color are my eyes?": "semantic matcher",
    "What is my blood type?": "semantic matcher",
}
SELECTORS = ("auto", "default")


def run(args: list[str], home: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run ``ehrqa ARGS`` with ``home``; the wall seconds and the finished process."""
    env = {**os.environ, "EHRQA_HOME": str(home)}
    start = time.perf_counter()
    done = subprocess.run([*EHRQA, *args], capture_output=True, text=True, env=env, check=False)
    return time.perf_counter() - start, done


def prepare(home: Path) -> None:
    """Ingest the demo patient and export the models (untimed)."""
    demo = ROOT / "src" / "ehrqa" / "data" / "demo" / f"patient-{PATIENT}.json.gz"
    for args in (["ingest", str(demo)], ["models", "prepare"]):
        _, done = run(args, home)
        if done.returncode:
            sys.exit(f"ehrqa {' '.join(args)} failed: {done.stderr.strip()[-500:]}")


def ask(home: Path, selector: str, question: str) -> float:
    """One timed `ehrqa ask` process."""
    args = ["ask", "--patient", PATIENT, "--now", NOW, "--answer-mode", "extractive"]
    seconds, done = run([*args, "--selector", selector, question], home)
    if done.returncode:
        sys.exit(f"ehrqa ask failed: {done.stderr.strip()[-500:]}")
    return seconds


def percentile(values: list[float], q: float) -> float:
    """The q-quantile by linear interpolation (q=0.5 is the median)."""
    ordered = sorted(values)
    at = q * (len(ordered) - 1)
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    import onnxruntime

    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "commit": commit,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def measure(home: Path, runs: int) -> dict[str, dict[str, list[float]]]:
    """Seconds per selector and question, ``runs`` each, selectors alternating."""
    times: dict[str, dict[str, list[float]]] = {s: {q: [] for q in QUESTIONS} for s in SELECTORS}
    for selector in SELECTORS:  # warm the page cache and the semantic display cache
        for question in QUESTIONS:
            ask(home, selector, question)
    for _ in range(runs):
        for question in QUESTIONS:
            for selector in SELECTORS:
                times[selector][question].append(ask(home, selector, question))
    return times


def report(times: dict[str, dict[str, list[float]]], facts: dict[str, str], command: str) -> str:
    """The README: overall p50/p95 per selector, then per question."""
    lines = [
        "# `ehrqa ask` start-up: wall time of one process",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {facts['cpu']}, {facts['cores']} cores; Python {facts['python']}, "
        f"onnxruntime {facts['onnxruntime']}; commit {facts['commit']}; {facts['date']}; "
        f"load average before / after: {facts['load_before']} / {facts['load_after']}.",
        "",
        f"Each run is a fresh `ehrqa ask --answer-mode extractive` process on the demo patient "
        f"{PATIENT} (3,149 resources); the machine is shared, so read the two selectors "
        "side by side (they alternate question by question).",
        "",
        "| selector | runs | p50 s | p95 s | max s |",
        "|---|---:|---:|---:|---:|",
    ]
    for selector, per_question in times.items():
        values = [t for ts in per_question.values() for t in ts]
        lines.append(
            f"| {selector} | {len(values)} | {percentile(values, 0.5):.2f} | "
            f"{percentile(values, 0.95):.2f} | {max(values):.2f} |"
        )
    lines += ["", "| question | kind | " + " | ".join(f"{s} p50 s" for s in SELECTORS) + " |"]
    lines.append("|---|---|" + "---:|" * len(SELECTORS))
    for question, kind in QUESTIONS.items():
        cells = " | ".join(f"{statistics.median(times[s][question]):.2f}" for s in SELECTORS)
        lines.append(f"| {question} | {kind} | {cells} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per question and selector")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "startup")
    parser.add_argument("--home", type=Path, help="data directory to use (default: a temp dir)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ehrqa-startup-") as temp:
        home = options.home or Path(temp)
        prepare(home)
        load_before = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
        times = measure(home, options.runs)
        load_after = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    facts = {**machine(), "load_before": load_before, "load_after": load_after}
    command = " ".join(["python benchmarks/startup.py", *sys.argv[1:]])
    text = report(times, facts, command)
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "README.md").write_text(text, encoding="utf-8")
    results = {"machine": facts, "patient": PATIENT, "seconds": times}
    (options.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(text)


if __name__ == "__main__":
    main()
