"""Metrics: pure functions over lists, registered with ``higher_is_better`` (lm-eval style).

Every function takes parallel lists (one entry per question) and returns a float or a dict
of floats; lists of different lengths raise ``ValueError``; an empty input gives NaN (no
data), never an invented score. :data:`METRICS` maps names to :class:`Metric` entries.
Each entry also has ``per_question`` (the same inputs, one value per question; None where a
question is left out) and ``pool`` (those values back to the corpus result, so
``pool(per_question(x)) == fn(x)``): micro-F1 pools summed counts, corpus BLEU pools summed
n-gram statistics. Reports resample these values for intervals (:mod:`ehrqa.lab.eval.bootstrap`).

Conventions
-----------
*Task 1 (resource selection)* — :func:`precision_recall_f1` reports **micro** scores (counts
pooled over all (question, resource) pairs: the headline figure, like the resource-level F1
of the published FHIR QA work) and **macro** scores (the mean of per-question
scores). Per question, with G the gold set and S the selection:

====================  =========  =========  ====
case                  precision  recall     F1
====================  =========  =========  ====
G empty, S empty      1          1          1
G empty, S non-empty  0          1          0
G non-empty, S empty  0          0          0
otherwise             |G∩S|/|S|  |G∩S|/|G|  harmonic mean (0 when P+R=0)
====================  =========  =========  ====

Recall of an empty gold set is vacuously perfect (nothing was missed), while an empty
selection earns precision only when nothing was to be selected (scikit-learn's
``zero_division=0``), so selecting nothing is never rewarded. Micro scores apply the same
rules to the pooled counts. :func:`recall_at_k` follows the IR convention instead: questions
without gold resources are left out of the mean (their recall is undefined).

*Task 2 (answers)* — citations (``[Observation/abc]``, ``[3]``) and bare ``Type/id``
references are stripped from hypotheses **and** references before every text metric (ids
are not words, and their digits would count as facts). Empty texts score what the
libraries give (0). METEOR uses nltk on :func:`~ehrqa.lab.eval.normalize.tokenize` tokens,
lower-cased, with WordNet built offline (:mod:`ehrqa.lab.eval.wordnet`); ROUGE-L is
rouge-score's F-measure with the Porter stemmer and its own tokeniser; BLEU is sacreBLEU's
corpus BLEU with default settings (13a tokeniser, case-sensitive, 0–100 scale).
Answer accuracy counts an answer correct when *every* expected value is present
(:func:`~ehrqa.lab.eval.normalize.value_present`: exact numeric value, no rounding tolerance);
items without expected values (unanswerable questions) are left out — abstention is scored
by :func:`abstention_precision_recall`, whose positive class is "should abstain".
:func:`harmful_answers` counts answers that could mislead (a wrong "no", a flipped yes/no,
another value for the asked measure); its rules are in :mod:`ehrqa.lab.eval.harm`.

*Cost* — percentiles interpolate linearly between order statistics (numpy's default).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any, TypeVar

from ehrqa.core.errors import BackendUnavailableError
from ehrqa.core.registry import Registry
from ehrqa.lab.eval.harm import HARM_REASONS, harm_reason
from ehrqa.lab.eval.normalize import strip_citations, tokenize, value_present

NAN = float("nan")
TASKS = ("task1", "task2", "cost")
PRF = ("precision", "recall", "f1")
EVAL_EXTRA = "pip install 'ehrqa[eval]'"


@dataclass(frozen=True)
class Metric:
    """A registered metric: a pure function and how to read its result."""

    name: str
    fn: Callable[..., Any] = field(metadata={"help": "the pure function computing it"})
    higher_is_better: bool = field(metadata={"help": "direction of improvement"})
    task: str = field(metadata={"help": "task1 | task2 | cost"})
    help: str = field(default="", metadata={"help": "one line for tables and --help"})
    optional: bool = field(
        default=False,
        metadata={"help": "needs a backend that may be absent; skip on BackendUnavailableError"},
    )
    per_question: Callable[..., list[Any]] | None = field(
        default=None,
        metadata={"help": "same inputs as fn; one value per question (None: left out)"},
    )
    pool: Callable[[Sequence[Any]], Any] | None = field(
        default=None,
        metadata={"help": "per-question values -> fn's corpus result (what a bootstrap resamples)"},
    )

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(
                f"metric {self.name!r}: task must be one of {TASKS}, got {self.task!r}"
            )


#: The metric registry (the only module-level singleton here).
METRICS: Registry[Metric] = Registry("metric")


F = TypeVar("F", bound=Callable[..., Any])


def register_metric(
    name: str,
    *,
    task: str,
    help: str,
    per_question: Callable[..., list[Any]],
    pool: Callable[[Sequence[Any]], Any],
    higher_is_better: bool = True,
    optional: bool = False,
) -> Callable[[F], F]:
    """Decorator adding the function to :data:`METRICS` as ``name`` (lm-eval style).

    ``per_question`` takes the metric's inputs and gives one value per question, and
    ``pool`` turns those values into the metric's corpus result: ``pool(per_question(x))``
    equals ``fn(x)``, which is what lets reports resample questions for intervals.
    """

    def register(fn: F) -> F:
        entry = Metric(name, fn, higher_is_better, task, help, optional, per_question, pool)
        METRICS.register(name, entry, help)
        return fn

    return register


def get_metric(name: str) -> Metric:
    """The metric registered as ``name`` (unknown names say "did you mean …")."""
    return METRICS.get(name)


def _check_lengths(**lists: Sequence[Any]) -> int:
    lengths = {name: len(values) for name, values in lists.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise ValueError(f"inputs must be parallel lists of equal length, got {shown}")
    return next(iter(lengths.values()), 0)


def _mean(values: Sequence[float]) -> float:
    return fmean(values) if values else NAN


# ---------------------------------------------------------------------------- Task 1


def prf_from_counts(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall and F1 from counts, with the module's empty-set conventions."""
    gold, predicted = tp + fn, tp + fp
    if gold == 0 and predicted == 0:
        return 1.0, 1.0, 1.0
    precision = tp / predicted if predicted else 0.0
    recall = tp / gold if gold else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def prf_per_question(
    gold: Sequence[Collection[str]], predicted: Sequence[Collection[str]]
) -> list[dict[str, float]]:
    """Per question: ``tp``, ``fp``, ``fn`` and its ``precision``, ``recall``, ``f1``."""
    _check_lengths(gold=gold, predicted=predicted)
    rows = []
    for gold_set, predicted_set in zip(map(set, gold), map(set, predicted), strict=True):
        tp = len(gold_set & predicted_set)
        fp = len(predicted_set - gold_set)
        fn = len(gold_set - predicted_set)
        precision, recall, f1 = prf_from_counts(tp, fp, fn)
        rows.append(
            {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1}
        )
    return rows


def pool_prf(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """Micro scores of the summed counts and macro means of :func:`prf_per_question` rows."""
    n = len(rows)
    if n == 0:
        empty: dict[str, float] = {f"{avg}_{m}": NAN for avg in ("micro", "macro") for m in PRF}
        return empty | {"tp": 0, "fp": 0, "fn": 0, "n": 0}
    tp, fp, fn = (int(sum(row[c] for row in rows)) for c in ("tp", "fp", "fn"))
    micro = prf_from_counts(tp, fp, fn)
    macro = [fmean(row[m] for row in rows) for m in PRF]
    return {
        "micro_precision": micro[0],
        "micro_recall": micro[1],
        "micro_f1": micro[2],
        "macro_precision": macro[0],
        "macro_recall": macro[1],
        "macro_f1": macro[2],
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "n": n,
    }


@register_metric(
    "precision_recall_f1",
    task="task1",
    help="resource selection P/R/F1, micro (headline) and macro",
    per_question=prf_per_question,
    pool=pool_prf,
)
def precision_recall_f1(
    gold: Sequence[Collection[str]], predicted: Sequence[Collection[str]]
) -> dict[str, float]:
    """Micro and macro precision/recall/F1 of predicted resource sets against gold sets.

    Returns ``micro_precision``, ``micro_recall``, ``micro_f1`` (pooled counts),
    ``macro_precision``, ``macro_recall``, ``macro_f1`` (per-question means), the pooled
    ``tp``, ``fp``, ``fn`` and ``n`` questions. Duplicates within a set count once.
    """
    return pool_prf(prf_per_question(gold, predicted))


def mean_of_present(values: Sequence[float | None]) -> float:
    """Mean of the values that are not None (questions left out); NaN without any."""
    return _mean([float(v) for v in values if v is not None])


def recall_at_k_per_question(
    gold: Sequence[Collection[str]], ranked_candidates: Sequence[Sequence[str]], k: int
) -> list[float | None]:
    """Per question, the share of its gold resources in its top ``k``; None without gold."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    _check_lengths(gold=gold, ranked_candidates=ranked_candidates)
    return [
        len(set(g) & set(ranked[:k])) / len(set(g)) if g else None
        for g, ranked in zip(gold, ranked_candidates, strict=True)
    ]


@register_metric(
    "recall_at_k",
    task="task1",
    help="share of gold resources in the top k candidates",
    per_question=recall_at_k_per_question,
    pool=mean_of_present,
)
def recall_at_k(
    gold: Sequence[Collection[str]], ranked_candidates: Sequence[Sequence[str]], k: int
) -> float:
    """Mean share of each question's gold resources found in its top ``k`` candidates.

    Questions with no gold resources are left out; NaN when none has any.
    """
    return mean_of_present(recall_at_k_per_question(gold, ranked_candidates, k))


# ---------------------------------------------------------------------------- Task 2 text


def _clean_pairs(references: Sequence[str], hypotheses: Sequence[str]) -> list[tuple[str, str]]:
    _check_lengths(references=references, hypotheses=hypotheses)
    return [
        (strip_citations(r), strip_citations(h))
        for r, h in zip(references, hypotheses, strict=True)
    ]


@functools.lru_cache(maxsize=2)
def _wordnet_reader(corpus: str) -> Any:
    """A WordNet reader on ``corpus``, built once (loading the index takes seconds).

    Our own reader rather than ``nltk.corpus.wordnet``: that global stays bound to wherever
    it was first loaded from, which may be a folder no longer on ``nltk.data.path``.
    """
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    return WordNetCorpusReader(corpus, None)


def meteor_per_question(
    references: Sequence[str], hypotheses: Sequence[str], *, wordnet: Any = None
) -> list[float]:
    """nltk METEOR (alpha 0.9, beta 3, gamma 0.5) of each hypothesis against its reference.

    ``wordnet`` is an nltk ``WordNetCorpusReader``; by default nltk's, made available offline
    with :func:`ehrqa.lab.eval.wordnet.ensure_wordnet`.
    """
    pairs = _clean_pairs(references, hypotheses)
    if not pairs:
        return []
    try:
        from nltk.translate.meteor_score import meteor_score
    except ImportError as exc:
        raise BackendUnavailableError(f"METEOR needs nltk: {EVAL_EXTRA}") from exc
    reader = wordnet
    if reader is None:
        from ehrqa.lab.eval.wordnet import ensure_wordnet

        reader = _wordnet_reader(str(ensure_wordnet()))
    return [meteor_score([tokenize(ref)], tokenize(hyp), wordnet=reader) for ref, hyp in pairs]


@register_metric(
    "meteor",
    task="task2",
    help="nltk METEOR, WordNet offline",
    per_question=meteor_per_question,
    pool=mean_of_present,
)
def meteor(references: Sequence[str], hypotheses: Sequence[str], *, wordnet: Any = None) -> float:
    """Mean nltk METEOR of each hypothesis against its reference (:func:`meteor_per_question`)."""
    return mean_of_present(meteor_per_question(references, hypotheses, wordnet=wordnet))


def rouge_l_per_question(references: Sequence[str], hypotheses: Sequence[str]) -> list[float]:
    """ROUGE-L F-measure (rouge-score, Porter stemmer on) of each hypothesis."""
    pairs = _clean_pairs(references, hypotheses)
    if not pairs:
        return []
    try:
        from rouge_score import rouge_scorer
    except ImportError as exc:
        raise BackendUnavailableError(f"ROUGE-L needs rouge-score: {EVAL_EXTRA}") from exc
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return [scorer.score(ref, hyp)["rougeL"].fmeasure for ref, hyp in pairs]


@register_metric(
    "rouge_l",
    task="task2",
    help="ROUGE-L F-measure, Porter stemmer",
    per_question=rouge_l_per_question,
    pool=mean_of_present,
)
def rouge_l(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Mean ROUGE-L F-measure (rouge-score, Porter stemmer on)."""
    return mean_of_present(rouge_l_per_question(references, hypotheses))


def _sacrebleu() -> Any:
    try:
        from sacrebleu.metrics import BLEU
    except ImportError as exc:
        raise BackendUnavailableError(f"BLEU needs sacrebleu: {EVAL_EXTRA}") from exc
    return BLEU()


def bleu_per_question(references: Sequence[str], hypotheses: Sequence[str]) -> list[list[int]]:
    """Each hypothesis's sacreBLEU sufficient statistics (lengths, n-gram matches and totals).

    Corpus BLEU is not a mean of sentence scores: it is computed from these statistics
    summed over the questions (:func:`pool_bleu`), as sacreBLEU's own paired bootstrap does.
    """
    pairs = _clean_pairs(references, hypotheses)
    if not pairs:
        return []
    stats = _sacrebleu()._extract_corpus_statistics(
        [hyp for _, hyp in pairs], [[ref for ref, _ in pairs]]
    )
    return [[int(x) for x in row] for row in stats]


def pool_bleu(stats: Sequence[Sequence[int] | None]) -> float:
    """Corpus BLEU (0–100) of summed :func:`bleu_per_question` statistics; NaN without any."""
    rows = [row for row in stats if row is not None]
    if not rows:
        return NAN
    summed = [sum(column) for column in zip(*rows, strict=True)]
    return float(_sacrebleu()._compute_score_from_stats(summed).score)


@register_metric(
    "bleu",
    task="task2",
    help="sacreBLEU corpus BLEU (0-100)",
    per_question=bleu_per_question,
    pool=pool_bleu,
)
def bleu(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """sacreBLEU corpus BLEU (default settings, 0–100) of the hypotheses, one reference each."""
    return pool_bleu(bleu_per_question(references, hypotheses))


def bertscore_per_question(
    references: Sequence[str],
    hypotheses: Sequence[str],
    *,
    model_path: str | Path | None = None,
    num_layers: int | None = None,
) -> list[float]:
    """BERTScore F1 of each hypothesis with a local encoder at ``model_path``.

    Never downloads: without ``model_path`` (a local Hugging Face model directory) or without
    the ``bert-score`` package it raises :class:`BackendUnavailableError`, which runners
    treat as "skip". ``num_layers`` defaults to the model's last layer; no IDF weighting,
    no baseline rescaling.
    """
    if model_path is None:
        raise BackendUnavailableError(
            "BERTScore needs a local encoder: pass model_path=DIR (a Hugging Face model "
            "directory); it is skipped otherwise"
        )
    path = Path(model_path)
    if not path.is_dir():
        raise BackendUnavailableError(f"BERTScore model directory {path} does not exist")
    try:
        import bert_score
        from transformers import AutoConfig
    except ImportError as exc:
        raise BackendUnavailableError(
            "BERTScore needs bert-score and transformers: pip install bert-score"
        ) from exc
    pairs = _clean_pairs(references, hypotheses)
    if not pairs:
        return []
    if num_layers is None:
        num_layers = int(AutoConfig.from_pretrained(str(path)).num_hidden_layers)
    _, _, f1 = bert_score.score(
        [hyp for _, hyp in pairs],
        [ref for ref, _ in pairs],
        model_type=str(path),
        num_layers=num_layers,
        verbose=False,
    )
    return [float(x) for x in f1.tolist()]


@register_metric(
    "bertscore",
    task="task2",
    help="BERTScore F1, local encoder only",
    optional=True,
    per_question=bertscore_per_question,
    pool=mean_of_present,
)
def bertscore(
    references: Sequence[str],
    hypotheses: Sequence[str],
    *,
    model_path: str | Path | None = None,
    num_layers: int | None = None,
) -> float:
    """Mean BERTScore F1 with a local encoder at ``model_path`` (optional metric).

    See :func:`bertscore_per_question`; without a local model it raises
    :class:`BackendUnavailableError`.
    """
    return mean_of_present(
        bertscore_per_question(references, hypotheses, model_path=model_path, num_layers=num_layers)
    )


# ---------------------------------------------------------------------------- Task 2 facts


def answer_correct(answer_values: Sequence[str], hypothesis: str) -> bool:
    """True when every expected value is present in the hypothesis answer."""
    return all(value_present(value, hypothesis) for value in answer_values)


def answer_accuracy_per_question(
    answer_values_list: Sequence[Sequence[str]], hypotheses: Sequence[str]
) -> list[float | None]:
    """1 when the answer states all its expected values, else 0; None without values."""
    _check_lengths(answer_values_list=answer_values_list, hypotheses=hypotheses)
    return [
        float(answer_correct(values, hyp)) if values else None
        for values, hyp in zip(answer_values_list, hypotheses, strict=True)
    ]


@register_metric(
    "answer_accuracy",
    task="task2",
    help="share of answers stating every expected value",
    per_question=answer_accuracy_per_question,
    pool=mean_of_present,
)
def answer_accuracy(
    answer_values_list: Sequence[Sequence[str]], hypotheses: Sequence[str]
) -> float:
    """Share of answers stating all their expected values; items without values are left out."""
    return mean_of_present(answer_accuracy_per_question(answer_values_list, hypotheses))


@register_metric(
    "citation_precision_recall",
    task="task2",
    help="cited references against gold resources",
    per_question=prf_per_question,
    pool=pool_prf,
)
def citation_precision_recall(
    gold_ids: Sequence[Collection[str]], cited_ids: Sequence[Collection[str]]
) -> dict[str, float]:
    """Precision/recall/F1 of cited references against gold resources (as Task 1's)."""
    return precision_recall_f1(gold_ids, cited_ids)


def abstention_per_question(
    answerable_flags: Sequence[bool], abstained_flags: Sequence[bool]
) -> list[dict[str, int]]:
    """Per question, abstention ``tp``/``fp``/``fn`` (positive: "not answerable")."""
    _check_lengths(answerable_flags=answerable_flags, abstained_flags=abstained_flags)
    return [
        {
            "tp": int(abstained and not answerable),
            "fp": int(abstained and answerable),
            "fn": int(not abstained and not answerable),
        }
        for answerable, abstained in zip(answerable_flags, abstained_flags, strict=True)
    ]


def pool_abstention(rows: Sequence[dict[str, int]]) -> dict[str, float]:
    """Abstention precision/recall/F1 and counts from :func:`abstention_per_question` rows."""
    n = len(rows)
    tp, fp, fn = (sum(row[c] for row in rows) for c in ("tp", "fp", "fn"))
    precision, recall, f1 = prf_from_counts(tp, fp, fn) if n else (NAN, NAN, NAN)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "n_unanswerable": tp + fn,
        "n_abstained": tp + fp,
        "n": n,
    }


@register_metric(
    "abstention_precision_recall",
    task="task2",
    help="abstaining when not answerable: P/R/F1",
    per_question=abstention_per_question,
    pool=pool_abstention,
)
def abstention_precision_recall(
    answerable_flags: Sequence[bool], abstained_flags: Sequence[bool]
) -> dict[str, float]:
    """Precision/recall/F1 of abstaining, the positive class being "not answerable".

    Returns ``precision``, ``recall``, ``f1``, ``n_unanswerable``, ``n_abstained``, ``n``.
    """
    return pool_abstention(abstention_per_question(answerable_flags, abstained_flags))


def harmful_per_question(
    references: Sequence[str],
    answer_values_list: Sequence[Sequence[str]],
    answerable_flags: Sequence[bool],
    hypotheses: Sequence[str],
) -> list[str]:
    """Per answer, why it could mislead (a reason of :mod:`ehrqa.lab.eval.harm`), or ""."""
    _check_lengths(
        references=references,
        answer_values_list=answer_values_list,
        answerable_flags=answerable_flags,
        hypotheses=hypotheses,
    )
    return [
        harm_reason(ref, values, answerable, hyp) or ""
        for ref, values, answerable, hyp in zip(
            references, answer_values_list, answerable_flags, hypotheses, strict=True
        )
    ]


def pool_harm(reasons: Sequence[str | None]) -> dict[str, float]:
    """Count and share of harmful answers, and a count per reason (None: not scored)."""
    scored = [r for r in reasons if r is not None]
    n = len(scored)
    harmful = sum(1 for r in scored if r)
    counts: dict[str, float] = {reason: scored.count(reason) for reason in HARM_REASONS}
    return {"harmful": harmful, "rate": harmful / n if n else NAN, "n": n, **counts}


@register_metric(
    "harmful_answers",
    task="task2",
    help="answers that could mislead: wrong 'no', flipped yes/no, another value",
    higher_is_better=False,
    per_question=harmful_per_question,
    pool=pool_harm,
)
def harmful_answers(
    references: Sequence[str],
    answer_values_list: Sequence[Sequence[str]],
    answerable_flags: Sequence[bool],
    hypotheses: Sequence[str],
) -> dict[str, float]:
    """Count and share of harmful answers, by reason (rules: :mod:`ehrqa.lab.eval.harm`).

    Returns ``harmful`` (count), ``rate`` (share of all ``n`` answers; NaN without answers)
    and one count per reason: ``polarity``, ``absence``, ``value``.
    """
    return pool_harm(
        harmful_per_question(references, answer_values_list, answerable_flags, hypotheses)
    )


def verified_per_question(flags: Sequence[bool]) -> list[float]:
    """1 for an answer whose citations and facts were verified, else 0."""
    return [float(bool(flag)) for flag in flags]


@register_metric(
    "verified_share",
    task="task2",
    help="share of answers whose citations and facts verified",
    per_question=verified_per_question,
    pool=mean_of_present,
)
def verified_share(flags: Sequence[bool]) -> float:
    """Share of answers whose citations and facts were verified."""
    return mean_of_present(verified_per_question(flags))


# ---------------------------------------------------------------------------- cost


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100), interpolating linearly like ``numpy.percentile``."""
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0–100, got {q}")
    if not values:
        return NAN
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_per_question(values_ms: Sequence[float | None]) -> list[float | None]:
    """Each question's latency in milliseconds, as given (None: not measured)."""
    return list(values_ms)


def pool_latency(values_ms: Sequence[float | None]) -> dict[str, float]:
    """Median, 95th percentile and mean of the measured latencies."""
    measured = [v for v in values_ms if v is not None]
    return {
        "p50": percentile(measured, 50),
        "p95": percentile(measured, 95),
        "mean": _mean(measured),
    }


@register_metric(
    "latency_percentiles",
    task="cost",
    help="p50/p95/mean latency (ms)",
    higher_is_better=False,
    per_question=latency_per_question,
    pool=pool_latency,
)
def latency_percentiles(values_ms: Sequence[float]) -> dict[str, float]:
    """Median, 95th percentile and mean of latencies in milliseconds."""
    return pool_latency(latency_per_question(values_ms))


def tokens_per_question(
    prompt_tokens: Sequence[int], completion_tokens: Sequence[int]
) -> list[dict[str, int]]:
    """Each question's ``prompt``, ``completion`` and ``total`` tokens."""
    _check_lengths(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    return [
        {"prompt": p, "completion": c, "total": p + c}
        for p, c in zip(prompt_tokens, completion_tokens, strict=True)
    ]


def pool_tokens(rows: Sequence[dict[str, int]]) -> dict[str, float]:
    """Mean prompt, completion and total tokens of :func:`tokens_per_question` rows."""
    return {key: _mean([row[key] for row in rows]) for key in ("prompt", "completion", "total")}


@register_metric(
    "token_means",
    task="cost",
    help="mean prompt/completion/total tokens",
    higher_is_better=False,
    per_question=tokens_per_question,
    pool=pool_tokens,
)
def token_means(prompt_tokens: Sequence[int], completion_tokens: Sequence[int]) -> dict[str, float]:
    """Mean prompt, completion and total tokens per question."""
    return pool_tokens(tokens_per_question(prompt_tokens, completion_tokens))
