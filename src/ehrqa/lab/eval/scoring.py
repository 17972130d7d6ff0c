"""Scores of an evaluation run: per question, pooled into corpus numbers, with intervals.

Each selector's results become per-question *columns* (one value per question, None where a
question is not scored, e.g. Task 2 without an answer), made by the registered metrics'
``per_question`` functions. Every headline number is a :class:`Statistic`: the column it
pools and the metric's ``pool``, so the corpus number is computed exactly as the metric
computes it (micro-F1 from summed counts, corpus BLEU from summed statistics) and the
bootstrap (:mod:`ehrqa.lab.eval.bootstrap`) resamples the same columns for its intervals and
for paired differences between selectors or runs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ehrqa.lab.eval import bootstrap
from ehrqa.lab.eval import metrics as m
from ehrqa.lab.eval.harm import HARM_REASONS
from ehrqa.lab.eval.runner import EvalRun, QuestionResult

#: Groups (intents, perspectives) smaller than this get counts but no interval.
MIN_GROUP_FOR_INTERVAL = 5
STAGES = ("select", "answer", "total")
Columns = dict[str, list[Any]]


@dataclass(frozen=True)
class Statistic:
    """One headline number: which column it pools, how, and which way is better."""

    key: str
    task: str
    column: str
    pool: Callable[[Sequence[Any]], Any]
    part: str | None = None  # the key of a dict-valued pool; None when it gives a float
    higher_is_better: bool = True

    def pooled(self, values: Sequence[Any]) -> Any:
        """The statistic over these per-question values (None entries left out), as pooled."""
        pooled = self.pool([v for v in values if v is not None])
        return pooled[self.part] if self.part is not None else pooled

    def value(self, values: Sequence[Any]) -> float:
        """:meth:`pooled` as a float (NaN when undefined), what the bootstrap resamples."""
        result = self.pooled(values)
        return float(result) if result is not None else math.nan


def _prf(key: str, task: str, column: str, part: str) -> Statistic:
    return Statistic(key, task, column, m.pool_prf, part)


def _tokens_mean(values: Sequence[Any]) -> float:
    # A run without questions reports 0 tokens, as it always has.
    return m.mean_of_present(values) if values else 0.0


def statistics(ks: Sequence[int] = ()) -> list[Statistic]:
    """Every headline statistic, in table order (recall@k for each ``k``)."""
    stats = [
        _prf(f"{avg}_{p}", "task1", "selection", f"{avg}_{p}")
        for avg in ("micro", "macro")
        for p in m.PRF
    ]
    stats += [Statistic(f"recall@{k}", "task1", f"recall@{k}", m.mean_of_present) for k in ks]
    stats += [
        Statistic("meteor", "task2", "meteor", m.mean_of_present),
        Statistic("rouge_l", "task2", "rouge_l", m.mean_of_present),
        Statistic("bleu", "task2", "bleu", m.pool_bleu),
        Statistic("answer_accuracy", "task2", "answer_accuracy", m.mean_of_present),
        Statistic("verified_share", "task2", "verified", m.mean_of_present),
        _prf("citation_precision", "task2", "citation", "micro_precision"),
        _prf("citation_recall", "task2", "citation", "micro_recall"),
        Statistic("abstention_precision", "task2", "abstention", m.pool_abstention, "precision"),
        Statistic("abstention_recall", "task2", "abstention", m.pool_abstention, "recall"),
        Statistic("harmful", "task2", "harm", m.pool_harm, "harmful", False),
        Statistic("harmful_rate", "task2", "harm", m.pool_harm, "rate", False),
    ]
    stats += [
        Statistic(f"harmful_{r}", "task2", "harm", m.pool_harm, r, False) for r in HARM_REASONS
    ]
    stats += [
        Statistic(f"{stage}_ms_{part}", "cost", f"{stage}_ms", m.pool_latency, part, False)
        for stage in STAGES
        for part in ("p50", "p95", "mean")
    ]
    stats += [
        Statistic(f"{key}_mean", "cost", key, _tokens_mean, None, False)
        for key in (
            "prompt_tokens",
            "completion_tokens",
            "select_model_calls",
            "select_prompt_tokens",
        )
    ]
    return stats


#: Statistics shown per intent and perspective (text metrics per group would cost minutes).
GROUP_KEYS = (
    *(f"{avg}_{p}" for avg in ("micro", "macro") for p in m.PRF),
    "answer_accuracy",
    "harmful",
    "harmful_rate",
    *(f"harmful_{r}" for r in HARM_REASONS),
)


def _answered_column(results: Sequence[QuestionResult], values: list[Any]) -> list[Any]:
    """Spread values computed for the answered questions back over all questions."""
    it = iter(values)
    return [next(it) if r.answer is not None else None for r in results]


def question_columns(results: Sequence[QuestionResult], ks: Sequence[int]) -> Columns:
    """Every metric's per-question values for one selector's results, aligned with them."""
    gold = [r.gold_ids for r in results]
    columns: Columns = {"selection": m.prf_per_question(gold, [r.selected_ids for r in results])}
    for k in ks:
        columns[f"recall@{k}"] = m.recall_at_k_per_question(gold, [r.ranked for r in results], k)
    answered = [r for r in results if r.answer is not None]
    if answered:
        refs = [r.reference for r in answered]
        hyps = [r.answer or "" for r in answered]
        values = [r.answer_values for r in answered]
        task2: Columns = {
            "meteor": m.meteor_per_question(refs, hyps),
            "rouge_l": m.rouge_l_per_question(refs, hyps),
            "bleu": m.bleu_per_question(refs, hyps),
            "answer_accuracy": m.answer_accuracy_per_question(values, hyps),
            "verified": m.verified_per_question([bool(r.verified) for r in answered]),
            "citation": m.prf_per_question(
                [r.gold_ids for r in answered], [r.citations for r in answered]
            ),
            "abstention": m.abstention_per_question(
                [r.answerable for r in answered], [r.abstained for r in answered]
            ),
            "harm": m.harmful_per_question(refs, values, [r.answerable for r in answered], hyps),
        }
        columns.update({name: _answered_column(results, v) for name, v in task2.items()})
    for stage in STAGES:
        columns[f"{stage}_ms"] = m.latency_per_question([r.timings_ms.get(stage) for r in results])
    columns["prompt_tokens"] = [r.tokens.get("prompt", 0) for r in results]
    columns["completion_tokens"] = [r.tokens.get("completion", 0) for r in results]
    columns["select_model_calls"] = [int(r.details.get("model_calls", 0)) for r in results]
    columns["select_prompt_tokens"] = [int(r.details.get("prompt_tokens", 0)) for r in results]
    return columns


def _scored(stat: Statistic, columns: Columns) -> bool:
    """Whether the column exists and scores at least one question (else no number)."""
    values = columns.get(stat.column)
    if values is None:
        return False
    if stat.task == "task2":  # Task 2 numbers exist for every set with an answer
        values = columns["verified"]
    return stat.task == "task1" or any(v is not None for v in values)


def _by_source(stats: Sequence[Statistic]) -> list[list[Statistic]]:
    """Statistics grouped by the column and pool they share (pooled once per draw)."""
    groups: dict[tuple[str, int], list[Statistic]] = {}
    for stat in stats:
        groups.setdefault((stat.column, id(stat.pool)), []).append(stat)
    return list(groups.values())


def _joint_pool(stats: Sequence[Statistic]) -> Callable[[Sequence[Any]], dict[str, float]]:
    """One pool giving every statistic of a group (they share column and pool)."""
    first = stats[0]

    def pool(values: Sequence[Any]) -> dict[str, float]:
        pooled = first.pool([v for v in values if v is not None])
        out = {}
        for stat in stats:
            result = pooled[stat.part] if stat.part is not None else pooled
            out[stat.key] = float(result) if result is not None else math.nan
        return out

    return pool


def pooled_scores(
    columns: Columns, stats: Sequence[Statistic], *, intervals: bool
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, list[float]]]]:
    """Corpus numbers by task, and (when ``intervals``) their bootstrap intervals."""
    scores: dict[str, dict[str, float]] = {"task1": {}, "task2": {}, "cost": {}}
    bounds: dict[str, dict[str, list[float]]] = {"task1": {}, "task2": {}, "cost": {}}
    for stat in stats:
        if _scored(stat, columns):
            # Counts stay integers; the bootstrap works on floats.
            scores[stat.task][stat.key] = stat.pooled(columns[stat.column])
    if not intervals:
        return scores, bounds
    for group in _by_source([s for s in stats if _scored(s, columns)]):
        found = bootstrap.bootstrap_intervals(columns[group[0].column], _joint_pool(group))
        for stat in group:
            bounds[stat.task][stat.key] = found[stat.key].to_list()
    return scores, bounds


def _subset(columns: Columns, indices: Sequence[int]) -> Columns:
    return {name: [values[i] for i in indices] for name, values in columns.items()}


def _grouped(
    results: Sequence[QuestionResult], columns: Columns, key: Callable[[QuestionResult], str]
) -> dict[str, dict[str, Any]]:
    """Counts and scores per group, with intervals where it has enough questions."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(results):
        groups[key(r)].append(i)
    stats = [s for s in statistics() if s.key in GROUP_KEYS]
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(groups):
        indices = groups[name]
        enough = len(indices) >= MIN_GROUP_FOR_INTERVAL
        scores, bounds = pooled_scores(_subset(columns, indices), stats, intervals=enough)
        row: dict[str, Any] = {"n": float(len(indices)), **scores["task1"], **scores["task2"]}
        if enough:
            row["intervals"] = {**bounds["task1"], **bounds["task2"]}
        out[name] = row
    return out


def score_results(results: Sequence[QuestionResult], ks: Sequence[int]) -> dict[str, Any]:
    """One selector's scores: overall with intervals, by group, and per question."""
    columns = question_columns(results, ks)
    scores, bounds = pooled_scores(columns, statistics(ks), intervals=True)
    injected = [i for i, r in enumerate(results) if "injection" in r.tags]
    injection: dict[str, float] = {}
    if injected:
        task2_stats = [s for s in statistics() if s.task == "task2"]
        injection = pooled_scores(_subset(columns, injected), task2_stats, intervals=False)[0][
            "task2"
        ]
    return {
        "n": len(results),
        **scores,
        "intervals": bounds,
        "by_intent": _grouped(results, columns, lambda r: r.intent),
        "by_perspective": _grouped(results, columns, lambda r: r.perspective),
        "injection": injection,
        "per_question": {"ids": [r.id for r in results], "columns": columns},
    }


def score_run(run: EvalRun) -> dict[str, Any]:
    """All scores of a run, per selector: overall with 95% intervals, by intent,
    perspective and tag, and every question's values (for paired comparisons)."""
    return {name: score_results(results, run.config.ks) for name, results in run.results.items()}


def task1_scores(results: Sequence[QuestionResult], ks: Sequence[int]) -> dict[str, float]:
    """Resource-level precision/recall/F1 (micro and macro) and candidate recall@k."""
    stats = [s for s in statistics(ks) if s.task == "task1"]
    return pooled_scores(question_columns(results, ks), stats, intervals=False)[0]["task1"]


def task2_scores(results: Sequence[QuestionResult]) -> dict[str, float]:
    """Text overlap, answer accuracy, citations, abstention, verification and harm."""
    stats = [s for s in statistics() if s.task == "task2"]
    return pooled_scores(question_columns(results, ()), stats, intervals=False)[0]["task2"]


def cost_scores(results: Sequence[QuestionResult]) -> dict[str, float]:
    """Latency percentiles per stage and mean tokens and model calls per question."""
    stats = [s for s in statistics() if s.task == "cost"]
    return pooled_scores(question_columns(results, ()), stats, intervals=False)[0]["cost"]


def compare_columns(
    a: dict[str, Any], b: dict[str, Any], ks: Sequence[int] = ()
) -> dict[str, dict[str, Any]]:
    """B against A on every headline statistic both have: paired-bootstrap differences.

    ``a`` and ``b`` are ``per_question`` entries of two scored selectors (or runs); only the
    questions both answered are paired, in A's order.
    """
    common = set(b["ids"])
    shared = [qid for qid in a["ids"] if qid in common]
    where_a = {qid: i for i, qid in enumerate(a["ids"])}
    where_b = {qid: i for i, qid in enumerate(b["ids"])}
    out: dict[str, dict[str, Any]] = {}
    if not shared:
        return out
    wanted = [
        stat
        for stat in statistics(ks)
        if stat.column in a["columns"] and stat.column in b["columns"]
    ]
    for group in _by_source(wanted):
        ca, cb = a["columns"][group[0].column], b["columns"][group[0].column]
        va = [ca[where_a[q]] for q in shared]
        vb = [cb[where_b[q]] for q in shared]
        if group[0].task != "task1" and not any(v is not None for v in va + vb):
            continue
        higher = {stat.key: stat.higher_is_better for stat in group}
        found = bootstrap.paired_differences(va, vb, _joint_pool(group), higher)
        for stat in group:
            # Counts stay integers in the record (a = 3 harmful answers, not 3.0).
            out[stat.key] = found[stat.key].to_dict() | {
                "a": stat.pooled(va),
                "b": stat.pooled(vb),
                "n": len(shared),
            }
    return out


def recall_ks(per_question: dict[str, Any]) -> list[int]:
    """The k of every recall@k column in a ``per_question`` entry."""
    return sorted(
        int(name.split("@", 1)[1]) for name in per_question["columns"] if name.startswith("recall@")
    )


def selector_comparisons(scores: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Every other selector of a run against the first one named, paired by question."""
    names = [n for n in scores if "per_question" in scores[n]]
    if len(names) < 2:
        return {}
    base = scores[names[0]]["per_question"]
    ks = recall_ks(base)
    return {
        f"{other} vs {names[0]}": compare_columns(base, scores[other]["per_question"], ks)
        for other in names[1:]
    }
