"""Summarise `ehrqa eval` runs of the natural-question benchmark: per-kind tables with the
share of fully correct answers, harmful answers and Task 1 F1, and 95% bootstrap intervals.

    python benchmarks/natural/summarize.py reports/natural/test/results.json \
        --dataset benchmarks/natural/qa.jsonl --out reports/natural/test/summary.md

A question is *fully correct* when it is answerable and the answer states every gold value
(`ehrqa.lab.eval.metrics.answer_correct`), or unanswerable and the system abstained or said the
record lacks it without selecting anything. *Harmful* follows `ehrqa.lab.eval.harm`: a false
yes/no, a claimed absence of something recorded, another value for the asked measure.
Intervals resample questions with replacement (2,000 draws, seed 0; the bootstrap of
`ehrqa.lab.eval.bootstrap`, the one `ehrqa eval` reports use), per kind only where it has at
least 5 questions. Differences between selectors of one file, and with `--baseline`
between the same selector of two runs, are paired by question: a difference whose interval
contains 0 is a tie.

    python benchmarks/natural/summarize.py reports/natural/test/results.json \
        --baseline reports/natural/baseline-test/results.json
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ehrqa.lab.eval.bootstrap import bootstrap_interval, paired_difference
from ehrqa.lab.eval.harm import harm_reason
from ehrqa.lab.eval.metrics import answer_correct, mean_of_present

DRAWS = 2000
MIN_KIND = 5


def fully_correct(gold: dict[str, Any], result: dict[str, Any]) -> bool:
    """Whether one answer is fully right (see the module docs)."""
    if not gold["answerable"]:
        return not result["selected"]
    return bool(gold["answer_values"]) and answer_correct(gold["answer_values"], result["answer"])


def harmful(gold: dict[str, Any], result: dict[str, Any]) -> bool:
    """Whether one answer would mislead (``ehrqa.lab.eval.harm``)."""
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
    found = bootstrap_interval(values, mean_of_present, resamples=DRAWS, seed=seed)
    return found.low, found.high


def f1_interval(counts: Sequence[tuple[int, int, int]], seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of micro F1, resampling questions."""
    found = bootstrap_interval(counts, micro_f1, resamples=DRAWS, seed=seed)
    return found.low, found.high


def question_values(
    gold: dict[str, dict[str, Any]], rows: Sequence[dict[str, Any]]
) -> dict[str, list[Any]]:
    """Per question (by id): fully correct, harmful (1/0) and Task 1 counts."""
    return {
        r["id"]: [
            float(fully_correct(gold[r["id"]], r)),
            float(harmful(gold[r["id"]], r)),
            f1_counts(gold[r["id"]], r),
        ]
        for r in rows
        if r["id"] in gold
    }


MEASURES = (
    ("fully correct", 0, mean_of_present, True),
    ("harmful (share)", 1, mean_of_present, False),
    ("Task 1 micro-F1", 2, micro_f1, True),
)


def differences(label: str, a: dict[str, list[Any]], b: dict[str, list[Any]]) -> list[str]:
    """Table rows of B − A on each measure, paired by question, with "tie" or a direction."""
    shared = [qid for qid in a if qid in b]
    lines = []
    for name, index, pool, higher in MEASURES:
        diff = paired_difference(
            [a[q][index] for q in shared],
            [b[q][index] for q in shared],
            pool,
            higher_is_better=higher,
            resamples=DRAWS,
        )
        lines.append(
            f"| {label} | {name} | {len(shared)} | {diff.a:.3f} | {diff.b:.3f} | "
            f"{diff.delta:+.3f} ({diff.low:+.3f} to {diff.high:+.3f}) | {diff.verdict} |"
        )
    return lines


def _kind_row(kind: str, mine: list[list[Any]]) -> str:
    n = len(mine)
    right = [v[0] for v in mine]
    counts = [v[2] for v in mine]
    bad = int(sum(v[1] for v in mine))
    ok, f1 = sum(right) / n, micro_f1(counts)
    if n < MIN_KIND:
        return f"| {kind} | {n} (n too small) | {ok:.2f} | {bad} | {f1:.2f} |"
    lo, hi = interval(right)
    flo, fhi = f1_interval(counts)
    return (
        f"| {kind} | {n} | {ok:.2f} ({lo:.2f}–{hi:.2f}) | {bad} | {f1:.2f} ({flo:.2f}–{fhi:.2f}) |"
    )


def _gold(dataset: Path) -> dict[str, dict[str, Any]]:
    gold = {}
    for line in dataset.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            gold[item["id"]] = item
    return gold


def summarize(results: Path, dataset: Path, baseline: Path | None = None) -> str:
    """The markdown summary of every selector in one ``results.json``."""
    gold = _gold(dataset)
    data = json.loads(results.read_text(encoding="utf-8"))
    lines = [
        f"Results: `{results}`; dataset `{dataset}`; commit {data['manifest'].get('git_commit')}",
        "",
    ]
    values: dict[str, dict[str, list[Any]]] = {}
    for selector, rows in data["results"].items():
        mine = values[selector] = question_values(gold, rows)
        right = [v[0] for v in mine.values()]
        harm = [v[1] for v in mine.values()]
        counts = [v[2] for v in mine.values()]
        n = len(mine)
        lo, hi = interval(right)
        flo, fhi = f1_interval(counts)
        lines += [
            f"### {selector}: {n} questions",
            "",
            f"- fully correct **{sum(right) / n:.3f}** (95% CI {lo:.3f}–{hi:.3f})",
            f"- harmful **{int(sum(harm))}** ({sum(harm) / n:.1%})",
            f"- Task 1 micro-F1 **{micro_f1(counts):.3f}** (95% CI {flo:.3f}–{fhi:.3f})",
            "",
            "| kind | n | fully correct | harmful | Task 1 F1 |",
            "|---|---|---|---|---|",
        ]
        for kind in sorted({gold[qid]["intent"] for qid in mine}):
            kind_values = [v for qid, v in mine.items() if gold[qid]["intent"] == kind]
            lines.append(_kind_row(kind, kind_values))
        lines.append("")
    rows = _comparisons(values, baseline, gold)
    if rows:
        lines += [
            "### Differences, paired by question (95% CI; tie when it contains 0)",
            "",
            "| B vs A | measure | n | A | B | B − A (95% CI) | verdict |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    return "\n".join(lines)


def _comparisons(
    values: dict[str, dict[str, list[Any]]], baseline: Path | None, gold: dict[str, Any]
) -> list[str]:
    names = list(values)
    rows = []
    for other in names[1:]:
        rows += differences(f"{other} vs {names[0]}", values[names[0]], values[other])
    if baseline is not None:
        before = json.loads(baseline.read_text(encoding="utf-8"))["results"]
        for name in names:
            if name in before:
                past = question_values(gold, before[name])
                rows += differences(f"{name} vs {name} in `{baseline}`", past, values[name])
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """Print (and with --out write) the summary of each results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="results.json of ehrqa eval")
    parser.add_argument("--dataset", type=Path, default=Path("benchmarks/natural/qa.jsonl"))
    parser.add_argument("--out", type=Path, help="write the markdown here")
    parser.add_argument(
        "--baseline", type=Path, help="an earlier results.json: paired differences against it"
    )
    args = parser.parse_args(argv)
    text = "\n".join(summarize(path, args.dataset, args.baseline) for path in args.results)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
