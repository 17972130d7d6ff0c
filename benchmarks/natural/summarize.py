"""Summarise `ehrqa eval` runs of the natural-question benchmark: per-kind tables with the
share of fully correct answers, harmful answers and Task 1 F1, and 95% bootstrap intervals.

    python benchmarks/natural/summarize.py reports/natural/test/results.json \
        --dataset benchmarks/natural/qa.jsonl --out reports/natural/test/summary.md

A question is *fully correct* when it is answerable and the answer states every gold value
(`ehrqa.eval.metrics.answer_correct`), or unanswerable and the system abstained or said the
record lacks it without selecting anything. *Harmful* follows `ehrqa.eval.harm`: a false
yes/no, a claimed absence of something recorded, another value for the asked measure.
Intervals resample questions with replacement (2,000 draws, seed 0); a difference inside
them is a tie.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ehrqa.eval.harm import harm_reason
from ehrqa.eval.metrics import answer_correct

DRAWS = 2000


def fully_correct(gold: dict[str, Any], result: dict[str, Any]) -> bool:
    """Whether one answer is fully right (see the module docs)."""
    if not gold["answerable"]:
        return not result["selected"]
    return bool(gold["answer_values"]) and answer_correct(gold["answer_values"], result["answer"])


def harmful(gold: dict[str, Any], result: dict[str, Any]) -> bool:
    """Whether one answer would mislead (``ehrqa.eval.harm``)."""
    reason = harm_reason(
        gold["answer"], gold["answer_values"], gold["answerable"], result["answer"]
    )
    return reason is not None


def f1_counts(gold: dict[str, Any], result: dict[str, Any]) -> tuple[int, int, int]:
    """Task 1 true positives, false positives and false negatives of one question."""
    chosen = {s["ref"] for s in result["selected"]}
    relevant = set(gold["relevant_ids"])
    return len(chosen & relevant), len(chosen - relevant), len(relevant - chosen)


def micro_f1(counts: Sequence[tuple[int, int, int]]) -> float:
    """Micro F1 over question-resource pairs."""
    tp = sum(c[0] for c in counts)
    fp = sum(c[1] for c in counts)
    fn = sum(c[2] for c in counts)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def interval(values: Sequence[float], seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of the mean of ``values``."""
    if not values:
        return (0.0, 0.0)
    rng = random.Random(seed)
    means = sorted(sum(rng.choice(values) for _ in values) / len(values) for _ in range(DRAWS))
    return means[int(0.025 * DRAWS)], means[int(0.975 * DRAWS) - 1]


def f1_interval(counts: Sequence[tuple[int, int, int]], seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of micro F1, resampling questions."""
    rng = random.Random(seed)
    draws = sorted(micro_f1([rng.choice(counts) for _ in counts]) for _ in range(DRAWS))
    return draws[int(0.025 * DRAWS)], draws[int(0.975 * DRAWS) - 1]


def summarize(results: Path, dataset: Path) -> str:
    """The markdown summary of every selector in one ``results.json``."""
    gold = {}
    for line in dataset.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            gold[item["id"]] = item
    data = json.loads(results.read_text(encoding="utf-8"))
    lines = [
        f"Results: `{results}`; dataset `{dataset}`; commit {data['manifest'].get('git_commit')}",
        "",
    ]
    for selector, rows in data["results"].items():
        rows = [r for r in rows if r["id"] in gold]
        right = [float(fully_correct(gold[r["id"]], r)) for r in rows]
        harm = [float(harmful(gold[r["id"]], r)) for r in rows]
        counts = [f1_counts(gold[r["id"]], r) for r in rows]
        lo, hi = interval(right)
        flo, fhi = f1_interval(counts)
        lines += [
            f"### {selector}: {len(rows)} questions",
            "",
            f"- fully correct **{sum(right) / len(rows):.3f}** (95% CI {lo:.3f}–{hi:.3f})",
            f"- harmful **{int(sum(harm))}** ({sum(harm) / len(rows):.1%})",
            f"- Task 1 micro-F1 **{micro_f1(counts):.3f}** (95% CI {flo:.3f}–{fhi:.3f})",
            "",
            "| kind | n | fully correct | harmful | Task 1 F1 |",
            "|---|---|---|---|---|",
        ]
        kinds = sorted({gold[r["id"]]["intent"] for r in rows})
        for kind in kinds:
            mine = [r for r in rows if gold[r["id"]]["intent"] == kind]
            ok = sum(fully_correct(gold[r["id"]], r) for r in mine)
            bad = sum(harmful(gold[r["id"]], r) for r in mine)
            f1 = micro_f1([f1_counts(gold[r["id"]], r) for r in mine])
            lines.append(f"| {kind} | {len(mine)} | {ok / len(mine):.2f} | {bad} | {f1:.2f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Print (and with --out write) the summary of each results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="results.json of ehrqa eval")
    parser.add_argument("--dataset", type=Path, default=Path("benchmarks/natural/qa.jsonl"))
    parser.add_argument("--out", type=Path, help="write the markdown here")
    args = parser.parse_args(argv)
    text = "\n".join(summarize(path, args.dataset) for path in args.results)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
