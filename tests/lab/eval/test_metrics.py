"""Metrics: every expected value below is computed by hand in the comments."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest

from ehrqa.core.errors import BackendUnavailableError, NotFoundError
from ehrqa.lab.eval.metrics import (
    METRICS,
    Metric,
    abstention_precision_recall,
    answer_accuracy,
    answer_correct,
    bertscore,
    bleu,
    citation_precision_recall,
    get_metric,
    latency_percentiles,
    meteor,
    percentile,
    precision_recall_f1,
    recall_at_k,
    rouge_l,
    token_means,
    verified_share,
)
from ehrqa.lab.eval.wordnet import APT_FIX, DEBIAN_WORDNET, ensure_wordnet

approx = pytest.approx

# ---------------------------------------------------------------------------- registry


def test_registry_lists_every_metric_with_direction_and_task():
    assert METRICS.names() == sorted(
        [
            "abstention_precision_recall",
            "answer_accuracy",
            "bertscore",
            "bleu",
            "citation_precision_recall",
            "harmful_answers",
            "latency_percentiles",
            "meteor",
            "precision_recall_f1",
            "recall_at_k",
            "rouge_l",
            "token_means",
            "verified_share",
        ]
    )
    assert get_metric("meteor").fn is meteor
    assert get_metric("meteor").higher_is_better
    assert not get_metric("latency_percentiles").higher_is_better
    assert get_metric("recall_at_k").task == "task1"
    assert get_metric("token_means").task == "cost"
    assert get_metric("bertscore").optional
    assert all(METRICS.describe(name) for name in METRICS.names())


def test_unknown_metric_suggests_the_close_name():
    with pytest.raises(NotFoundError, match="did you mean 'rouge_l'"):
        get_metric("rougel")


def test_metric_task_is_validated():
    with pytest.raises(ValueError, match="task must be one of"):
        Metric("x", len, True, "task3")


# ---------------------------------------------------------------------------- Task 1

# Q1: gold {a,b,c}, selected {a,b,d} -> tp 2, fp 1, fn 1 -> P 2/3, R 2/3, F1 2/3
# Q2: gold {e},     selected {}      -> tp 0, fp 0, fn 1 -> P 0 (empty selection), R 0, F1 0
# Q3: gold {},      selected {f}     -> tp 0, fp 1, fn 0 -> P 0, R 1 (nothing to miss), F1 0
# micro: tp 2, fp 2, fn 2 -> P 2/4, R 2/4, F1 1/2
# macro: P (2/3+0+0)/3 = 2/9, R (2/3+0+1)/3 = 5/9, F1 (2/3+0+0)/3 = 2/9
GOLD = [{"Observation/a", "Observation/b", "Observation/c"}, {"Condition/e"}, set()]
SELECTED = [["Observation/a", "Observation/b", "Observation/d"], [], ["Condition/f"]]


def test_precision_recall_f1_micro_and_macro_by_hand():
    scores = precision_recall_f1(GOLD, SELECTED)
    assert scores["micro_precision"] == approx(0.5)
    assert scores["micro_recall"] == approx(0.5)
    assert scores["micro_f1"] == approx(0.5)
    assert scores["macro_precision"] == approx(2 / 9)
    assert scores["macro_recall"] == approx(5 / 9)
    assert scores["macro_f1"] == approx(2 / 9)
    assert (scores["tp"], scores["fp"], scores["fn"], scores["n"]) == (2, 2, 2, 3)


@pytest.mark.parametrize(
    ("gold", "selected", "p", "r", "f1"),
    [
        (set(), set(), 1.0, 1.0, 1.0),  # nothing to select, nothing selected
        (set(), {"x/1"}, 0.0, 1.0, 0.0),
        ({"x/1"}, set(), 0.0, 0.0, 0.0),
        ({"x/1"}, {"x/1"}, 1.0, 1.0, 1.0),
        ({"x/1", "x/2"}, {"x/2", "x/3", "x/4"}, 1 / 3, 1 / 2, 0.4),  # 2*(1/6)/(5/6)
    ],
)
def test_precision_recall_f1_single_question_conventions(gold, selected, p, r, f1):
    scores = precision_recall_f1([gold], [selected])
    for average in ("micro", "macro"):
        assert scores[f"{average}_precision"] == approx(p)
        assert scores[f"{average}_recall"] == approx(r)
        assert scores[f"{average}_f1"] == approx(f1)


def test_precision_recall_f1_counts_duplicates_once():
    scores = precision_recall_f1([["x/1"]], [["x/1", "x/1"]])
    assert scores["micro_precision"] == 1.0


def test_precision_recall_f1_without_questions_is_nan():
    scores = precision_recall_f1([], [])
    assert math.isnan(scores["micro_f1"]) and math.isnan(scores["macro_f1"])
    assert scores["n"] == 0


def test_unequal_lengths_are_an_error():
    with pytest.raises(ValueError, match="equal length"):
        precision_recall_f1([{"x/1"}], [])
    with pytest.raises(ValueError, match="equal length"):
        rouge_l(["a"], ["a", "b"])


# gold {a,b}: ranked [a, x, b]; gold {c}: ranked [y, c]; gold {}: left out.
# k=1: (1/2 + 0)/2 = 0.25; k=2: (1/2 + 1)/2 = 0.75; k=3: (1 + 1)/2 = 1.0
@pytest.mark.parametrize(("k", "expected"), [(1, 0.25), (2, 0.75), (3, 1.0), (10, 1.0)])
def test_recall_at_k_by_hand(k: int, expected: float):
    gold = [{"a/1", "b/1"}, {"c/1"}, set()]
    ranked = [["a/1", "x/1", "b/1"], ["y/1", "c/1"], ["z/1"]]
    assert recall_at_k(gold, ranked, k) == approx(expected)


def test_recall_at_k_edge_cases():
    assert math.isnan(recall_at_k([set()], [["a/1"]], 5))
    with pytest.raises(ValueError, match="k must be at least 1"):
        recall_at_k([{"a/1"}], [["a/1"]], 0)


# ---------------------------------------------------------------------------- Task 2 text


def test_rouge_l_by_lcs():
    # ref: the patient has high blood pressure (6 tokens)
    # hyp: patient has blood pressure that is high (7 tokens)
    # LCS = "patient has blood pressure" = 4 -> P 4/7, R 4/6, F = 2PR/(P+R) = 8/13
    pytest.importorskip("rouge_score", reason="rouge-score is not installed")
    ref = "The patient has high blood pressure."
    hyp = "Patient has blood pressure that is high [Observation/bp1]."
    assert rouge_l([ref], [hyp]) == approx(8 / 13)
    # mean over items: (1 + 8/13) / 2
    assert rouge_l([ref, ref], [ref, hyp]) == approx((1 + 8 / 13) / 2)


def test_bleu_by_hand():
    # hyp: the cat sat on the mat / ref: the cat sat on a mat (13a tokens, equal length: BP 1)
    # 1-grams 5/6 (the clipped to 1), 2-grams 3/5, 3-grams 2/4, 4-grams 1/3
    # BLEU = 100 * (5/6 * 3/5 * 2/4 * 1/3) ** (1/4) = 100 * (1/12) ** 0.25 = 53.728...
    pytest.importorskip("sacrebleu", reason="sacrebleu is not installed")
    assert bleu(["the cat sat on a mat"], ["the cat sat on the mat"]) == approx(
        100 * (1 / 12) ** 0.25
    )
    # corpus BLEU pools n-gram counts (not a mean of sentence scores): adding an identical
    # pair gives 1-grams 11/12, 2-grams 8/10, 3-grams 6/8, 4-grams 4/6.
    corpus = bleu(
        ["the cat sat on a mat", "the cat sat on the mat"],
        ["the cat sat on the mat", "the cat sat on the mat [Observation/c]"],
    )
    assert corpus == approx(100 * (11 / 12 * 8 / 10 * 6 / 8 * 4 / 6) ** 0.25)
    assert bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == approx(100.0)


def test_text_metrics_without_items_are_nan():
    assert math.isnan(rouge_l([], []))
    assert math.isnan(bleu([], []))
    assert math.isnan(meteor([], []))


@pytest.fixture(scope="module")
def wordnet_reader(tmp_path_factory: pytest.TempPathFactory):
    nltk = pytest.importorskip("nltk", reason="nltk is not installed (pip install nltk)")
    if not DEBIAN_WORDNET.is_dir():
        pytest.skip(f"{DEBIAN_WORDNET} is absent: {APT_FIX}")
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    saved = list(nltk.data.path)
    corpus = ensure_wordnet(tmp_path_factory.mktemp("nltk_data"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available"
        reader = WordNetCorpusReader(str(corpus), None)
    yield reader
    nltk.data.path[:] = saved


def test_meteor_identical_disjoint_and_by_hand(wordnet_reader):
    same = "Your HbA1c was 7.8% on 2024-11-02."
    assert meteor([same], [same + " [Observation/a1]"], wordnet=wordnet_reader) > 0.99
    assert meteor(["blood pressure"], ["glucose level"], wordnet=wordnet_reader) == 0.0
    # "sick" and "ill" share the WordNet synset ill.a.01: 4 matches of 4 words, P = R = 1,
    # Fmean = 1, one chunk -> frag 1/4, penalty 0.5 * (1/4)**3 = 1/128 -> 127/128.
    assert meteor(["The patient is sick"], ["the patient is ill"], wordnet=wordnet_reader) == (
        approx(127 / 128)
    )
    # a b c d vs a b x y: m 2, P = R = 1/2, Fmean = PR/(0.9P + 0.1R) = 1/2, one chunk ->
    # frag 1/2, penalty 0.5 * (1/2)**3 = 1/16 -> 1/2 * 15/16 = 15/32; the mean of both is
    # (127/128 + 15/32) / 2.
    assert meteor(
        ["the patient is sick", "alpha beta gamma delta"],
        ["the patient is ill", "alpha beta xq yq"],
        wordnet=wordnet_reader,
    ) == approx((127 / 128 + 15 / 32) / 2)


def test_meteor_defaults_to_nltk_wordnet_made_available_offline(wordnet_reader):
    # ensure_wordnet() finds the corpus the fixture put on nltk.data.path; nothing downloads.
    assert meteor(["the patient is sick"], ["the patient is ill"]) == approx(127 / 128)


def test_bertscore_is_skipped_without_a_local_model(tmp_path: Path):
    with pytest.raises(BackendUnavailableError, match="local encoder"):
        bertscore(["a"], ["a"])
    with pytest.raises(BackendUnavailableError, match="does not exist"):
        bertscore(["a"], ["a"], model_path=tmp_path / "missing")


# ---------------------------------------------------------------------------- Task 2 facts


def test_answer_accuracy_by_hand():
    values = [
        ["7.8", "%", "2024-11-02"],  # all three present -> correct
        ["7.8", "%", "2024-11-02"],  # date missing -> wrong
        ["Prediabetes"],  # present -> correct
        [],  # unanswerable: left out
    ]
    answers = [
        "Your HbA1c was 7.80% on November 2, 2024 [Observation/a1].",
        "Your HbA1c was 7.8%.",
        "You have prediabetes (finding) [Condition/c1].",
        "The record does not say.",
    ]
    assert answer_correct(values[0], answers[0])
    assert not answer_correct(values[1], answers[1])
    assert answer_accuracy(values, answers) == approx(2 / 3)
    assert math.isnan(answer_accuracy([[]], ["x"]))


def test_citation_precision_recall_by_hand():
    # Q1 gold {a,b}, cited {a} -> P 1, R 1/2, F1 2/3; Q2 gold {c}, cited {c,d} -> P 1/2, R 1,
    # F1 2/3. micro: tp 2, fp 1, fn 1 -> P 2/3, R 2/3, F1 2/3; macro P 3/4, R 3/4, F1 2/3
    scores = citation_precision_recall([{"a/1", "b/1"}, {"c/1"}], [["a/1"], ["c/1", "d/1"]])
    assert scores["micro_precision"] == approx(2 / 3)
    assert scores["micro_recall"] == approx(2 / 3)
    assert scores["macro_precision"] == approx(3 / 4)
    assert scores["macro_recall"] == approx(3 / 4)
    assert scores["macro_f1"] == approx(2 / 3)


def test_abstention_precision_recall_by_hand():
    # positive class: not answerable. answerable / abstained:
    # F/T tp, F/F fn, T/T fp, T/F tn, F/T tp -> tp 2, fp 1, fn 1 -> P 2/3, R 2/3, F1 2/3
    answerable = [False, False, True, True, False]
    abstained = [True, False, True, False, True]
    scores = abstention_precision_recall(answerable, abstained)
    assert scores["precision"] == approx(2 / 3)
    assert scores["recall"] == approx(2 / 3)
    assert scores["f1"] == approx(2 / 3)
    assert (scores["n_unanswerable"], scores["n_abstained"], scores["n"]) == (3, 3, 5)


def test_abstention_when_everything_is_answerable_and_nothing_abstained():
    scores = abstention_precision_recall([True, True], [False, False])
    assert (scores["precision"], scores["recall"], scores["f1"]) == (1.0, 1.0, 1.0)
    assert math.isnan(abstention_precision_recall([], [])["f1"])


def test_verified_share():
    assert verified_share([True, False, True, True]) == approx(0.75)
    assert math.isnan(verified_share([]))


# ---------------------------------------------------------------------------- cost


def test_latency_percentiles_interpolate_linearly():
    # sorted: 100 200 300 400 1000; p50 at position 2 -> 300;
    # p95 at position 0.95 * 4 = 3.8 -> 400 + 0.8 * 600 = 880; mean 2000/5 = 400
    values = [400, 100, 1000, 300, 200]
    assert latency_percentiles(values) == {
        "p50": approx(300),
        "p95": approx(880),
        "mean": approx(400),
    }
    assert percentile([5.0], 95) == 5.0
    assert math.isnan(latency_percentiles([])["p50"])
    with pytest.raises(ValueError, match="q must be within"):
        percentile([1.0], 101)


def test_token_means():
    assert token_means([100, 300], [20, 40]) == {"prompt": 200, "completion": 30, "total": 230}


# ---------------------------------------------------------------------------- per question

PQ_GOLD = [["Observation/a", "Observation/b"], [], ["Condition/c"], ["Observation/d"]]
PQ_PICKED = [["Observation/a", "Observation/x"], [], [], ["Observation/d"]]
PQ_REFS = ["Your HbA1c was 7.8 %.", "No record.", "You have asthma.", "Blood type O."]
PQ_HYPS = ["Your HbA1c was 7.8 % [1].", "The record does not say.", "Nothing found.", "It is A."]
PQ_VALUES = [["7.8", "%"], [], ["asthma"], ["O"]]

#: Inputs of every registered metric (a metric added without a row here fails the test).
PQ_INPUTS = {
    "precision_recall_f1": ((PQ_GOLD, PQ_PICKED), {}),
    "citation_precision_recall": ((PQ_GOLD, PQ_PICKED), {}),
    "recall_at_k": (
        (PQ_GOLD, [["Observation/a", "Observation/x"], [], ["Condition/c"], []], 1),
        {},
    ),
    "rouge_l": ((PQ_REFS, PQ_HYPS), {}),
    "bleu": ((PQ_REFS, PQ_HYPS), {}),
    "meteor": ((PQ_REFS, PQ_HYPS), {"wordnet": "reader"}),
    "bertscore": ((PQ_REFS, PQ_HYPS), {"model_path": "model"}),
    "answer_accuracy": ((PQ_VALUES, PQ_HYPS), {}),
    "abstention_precision_recall": (([True, False, True, False], [False, True, True, False]), {}),
    "harmful_answers": ((PQ_REFS, PQ_VALUES, [True, False, True, True], PQ_HYPS), {}),
    "verified_share": (([True, False, True, True],), {}),
    "latency_percentiles": (([3.0, 1.0, 10.0, 4.0],), {}),
    "token_means": (([10, 20, 30, 40], [1, 2, 3, 5]), {}),
}


def _same(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == approx(b)


@pytest.mark.parametrize("name", sorted(METRICS.names()))
def test_every_metric_pools_its_per_question_values_into_its_corpus_number(
    name: str, request: pytest.FixtureRequest
):
    metric = get_metric(name)
    assert metric.per_question is not None and metric.pool is not None
    args, kwargs = PQ_INPUTS[name]
    if kwargs.get("wordnet"):
        kwargs = {"wordnet": request.getfixturevalue("wordnet_reader")}
    if kwargs.get("model_path"):
        pytest.skip("BERTScore needs a local encoder model, which tests do not ship")
    per_question = metric.per_question(*args, **kwargs)
    assert len(per_question) == len(args[0])
    assert _same(metric.pool(per_question), metric.fn(*args, **kwargs))


def test_per_question_prf_sums_to_micro_and_averages_to_macro():
    rows = get_metric("precision_recall_f1").per_question(PQ_GOLD, PQ_PICKED)
    corpus = precision_recall_f1(PQ_GOLD, PQ_PICKED)
    # a: tp 1 fp 1 fn 1; empty/empty: 0 0 0 (all 1); c missed: fn 1; d: tp 1.
    assert [(r["tp"], r["fp"], r["fn"]) for r in rows] == [
        (1, 1, 1),
        (0, 0, 0),
        (0, 0, 1),
        (1, 0, 0),
    ]
    assert sum(r["tp"] for r in rows) == corpus["tp"] == 2
    assert sum(r["fp"] for r in rows) == corpus["fp"] == 1
    assert sum(r["fn"] for r in rows) == corpus["fn"] == 2
    assert corpus["macro_f1"] == approx(sum(r["f1"] for r in rows) / 4)
    assert [r["f1"] for r in rows] == approx([0.5, 1.0, 0.0, 1.0])


def test_per_question_values_mark_left_out_questions_with_none():
    assert get_metric("answer_accuracy").per_question(PQ_VALUES, PQ_HYPS) == [1.0, None, 0.0, 0.0]
    ranked = [["Observation/a"], [], [], []]
    assert get_metric("recall_at_k").per_question(PQ_GOLD, ranked, 1) == [0.5, None, 0.0, 0.0]
    # "Nothing found." for a recorded condition claims an absence; "" is a harmless answer.
    reasons = get_metric("harmful_answers").per_question(*PQ_INPUTS["harmful_answers"][0])
    assert reasons == ["", "", "absence", ""]


def test_corpus_bleu_is_pooled_from_summed_statistics_not_a_mean():
    pytest.importorskip("sacrebleu", reason="sacrebleu is not installed")
    refs = ["the cat sat on a mat", "the cat sat on the mat"]
    hyps = ["the cat sat on the mat", "the cat sat on the mat"]
    stats = get_metric("bleu").per_question(refs, hyps)
    sentence_mean = (bleu(refs[:1], hyps[:1]) + bleu(refs[1:], hyps[1:])) / 2
    pooled = get_metric("bleu").pool(stats)
    assert pooled == approx(bleu(refs, hyps)) and pooled != approx(sentence_mean)
