"""Scores of an evaluation run: Task 1, Task 2 and cost, overall and by group."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from statistics import mean
from typing import Any

from ehrqa.eval import metrics as m
from ehrqa.eval.harm import HARM_REASONS
from ehrqa.eval.runner import EvalRun, QuestionResult


def task1_scores(results: Sequence[QuestionResult], ks: Sequence[int]) -> dict[str, float]:
    """Resource-level precision/recall/F1 (micro and macro) and candidate recall@k."""
    gold = [r.gold_ids for r in results]
    prf = m.precision_recall_f1(gold, [r.selected_ids for r in results])
    scores = {k: float(v) for k, v in prf.items() if k not in ("tp", "fp", "fn", "n")}
    for k in ks:
        scores[f"recall@{k}"] = m.recall_at_k(gold, [r.ranked for r in results], k)
    return scores


def task2_scores(results: Sequence[QuestionResult]) -> dict[str, float]:
    """Text overlap, answer accuracy, citations, abstention, verification and harm."""
    answered = [r for r in results if r.answer is not None]
    if not answered:
        return {}
    refs = [r.reference for r in answered]
    hyps = [r.answer or "" for r in answered]
    scores: dict[str, float] = {
        "meteor": m.meteor(refs, hyps),
        "rouge_l": m.rouge_l(refs, hyps),
        "bleu": m.bleu(refs, hyps),
        "answer_accuracy": m.answer_accuracy([r.answer_values for r in answered], hyps),
        "verified_share": m.verified_share([bool(r.verified) for r in answered]),
    }
    cited = m.citation_precision_recall(
        [r.gold_ids for r in answered], [r.citations for r in answered]
    )
    scores["citation_precision"] = cited["micro_precision"]
    scores["citation_recall"] = cited["micro_recall"]
    abstain = m.abstention_precision_recall(
        [r.answerable for r in answered], [r.abstained for r in answered]
    )
    scores["abstention_precision"] = abstain["precision"]
    scores["abstention_recall"] = abstain["recall"]
    scores.update(harm_scores(answered))
    return scores


def harm_scores(answered: Sequence[QuestionResult]) -> dict[str, float]:
    """Harmful answers: count, rate and count per reason (see :mod:`ehrqa.eval.harm`)."""
    harm = m.harmful_answers(
        [r.reference for r in answered],
        [r.answer_values for r in answered],
        [r.answerable for r in answered],
        [r.answer or "" for r in answered],
    )
    return {
        "harmful": harm["harmful"],
        "harmful_rate": harm["rate"],
        **{f"harmful_{reason}": harm[reason] for reason in HARM_REASONS},
    }


def cost_scores(results: Sequence[QuestionResult]) -> dict[str, float]:
    """Latency percentiles per stage and mean tokens and model calls per question."""
    scores: dict[str, float] = {}
    for stage in ("select", "answer", "total"):
        values = [r.timings_ms[stage] for r in results if stage in r.timings_ms]
        if values:
            for key, value in m.latency_percentiles(values).items():
                scores[f"{stage}_ms_{key}"] = value
    for key in ("prompt", "completion"):
        scores[f"{key}_tokens_mean"] = (
            mean(r.tokens.get(key, 0) for r in results) if results else 0.0
        )
    calls = [int(r.details.get("model_calls", 0)) for r in results]
    scores["select_model_calls_mean"] = mean(calls) if calls else 0.0
    select_tokens = [int(r.details.get("prompt_tokens", 0)) for r in results]
    scores["select_prompt_tokens_mean"] = mean(select_tokens) if select_tokens else 0.0
    return scores


def _grouped(
    results: Sequence[QuestionResult], key: Callable[[QuestionResult], str], ks: Sequence[int]
) -> dict[str, dict[str, float]]:
    groups: dict[str, list[QuestionResult]] = defaultdict(list)
    for r in results:
        groups[key(r)].append(r)
    out: dict[str, dict[str, float]] = {}
    for name in sorted(groups):
        members = groups[name]
        scores = {"n": float(len(members)), **task1_scores(members, ks[:0])}
        answered = [r for r in members if r.answer is not None]
        if answered:
            # Only accuracy and harm are shown per group; text metrics per group would cost minutes.
            scores["answer_accuracy"] = m.answer_accuracy(
                [r.answer_values for r in answered], [r.answer or "" for r in answered]
            )
            scores.update(harm_scores(answered))
        out[name] = scores
    return out


def score_run(run: EvalRun) -> dict[str, Any]:
    """All scores of a run: per selector, overall and by intent, perspective and tag."""
    ks = run.config.ks
    scores: dict[str, Any] = {}
    for name, results in run.results.items():
        injected = [r for r in results if "injection" in r.tags]
        scores[name] = {
            "n": len(results),
            "task1": task1_scores(results, ks),
            "task2": task2_scores(results),
            "cost": cost_scores(results),
            "by_intent": _grouped(results, lambda r: r.intent, ks),
            "by_perspective": _grouped(results, lambda r: r.perspective, ks),
            "injection": task2_scores(injected) if injected else {},
        }
    return scores
