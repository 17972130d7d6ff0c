"""Bootstrap intervals and paired differences: seeded, calibrated, and honest about ties."""

from __future__ import annotations

import math
import random

import pytest

from ehrqa.lab.eval.bootstrap import (
    bootstrap_interval,
    paired_difference,
    resample_indices,
    verdict,
)
from ehrqa.lab.eval.metrics import mean_of_present, pool_prf


def micro_f1(rows: list[dict[str, float]]) -> float:
    return pool_prf(rows)["micro_f1"]


def test_the_same_seed_gives_the_same_interval_and_another_seed_another():
    values = [float(random.Random(7).random() < 0.6) for _ in range(80)]
    values = [float(v) for v in random.Random(7).choices([0, 1], k=80)]
    a = bootstrap_interval(values, mean_of_present, seed=3)
    b = bootstrap_interval(values, mean_of_present, seed=3)
    c = bootstrap_interval(values, mean_of_present, seed=4)
    assert a == b
    assert (c.low, c.high) != (a.low, a.high)
    assert a.value == mean_of_present(values) and a.low <= a.value <= a.high


def test_resampling_draws_with_replacement_from_every_question():
    draws = resample_indices(10, 200, 0)
    assert len(draws) == 200 and all(len(d) == 10 for d in draws)
    assert {i for d in draws for i in d} == set(range(10))
    assert any(len(set(d)) < 10 for d in draws)  # with replacement
    with pytest.raises(ValueError, match="at least one question"):
        resample_indices(0)


def test_the_interval_covers_the_true_mean_at_about_the_stated_rate():
    # 40 synthetic samples of 100 questions answered right with probability 0.7: a 95%
    # interval must contain 0.7 for nearly all of them (a broken bootstrap fails this).
    covered = 0
    for sample in range(40):
        rng = random.Random(1000 + sample)
        values = [float(rng.random() < 0.7) for _ in range(100)]
        found = bootstrap_interval(values, mean_of_present, resamples=500)
        covered += found.low <= 0.7 <= found.high
        assert 0.05 < found.high - found.low < 0.3
    assert covered >= 34


def test_micro_f1_is_resampled_from_per_question_counts():
    # 50 questions with 1 gold each, 40 found, 10 missed, and 10 extra picks: F1 = 0.8.
    rows = [{"tp": 1, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0, "f1": 1.0}] * 40
    rows += [{"tp": 0, "fp": 1, "fn": 1, "precision": 0.0, "recall": 0.0, "f1": 0.0}] * 10
    found = bootstrap_interval(rows, micro_f1)
    assert found.value == pytest.approx(0.8)
    assert 0.65 < found.low < 0.8 < found.high < 0.92


def test_a_difference_of_identical_runs_is_a_tie():
    values = [float(v) for v in random.Random(5).choices([0, 1], k=60)]
    diff = paired_difference(values, list(values), mean_of_present, higher_is_better=True)
    assert diff.delta == 0 and diff.low == diff.high == 0 and diff.verdict == "tie"


def test_a_small_margin_on_few_questions_is_a_tie_and_a_large_one_is_not():
    rng = random.Random(11)
    a = [float(rng.random() < 0.6) for _ in range(100)]
    one_more = list(a)
    one_more[a.index(0.0)] = 1.0  # one more question right: +0.01
    small = paired_difference(a, one_more, mean_of_present, higher_is_better=True)
    assert small.delta == pytest.approx(0.01) and small.verdict == "tie"
    all_right = [1.0] * 100
    large = paired_difference(a, all_right, mean_of_present, higher_is_better=True)
    assert large.verdict == "better" and large.low > 0
    assert paired_difference(all_right, a, mean_of_present, higher_is_better=True).verdict == (
        "worse"
    )
    # For a cost (lower is better) the same increase is worse.
    assert paired_difference(a, all_right, mean_of_present, higher_is_better=False).verdict == (
        "worse"
    )


def test_pairing_narrows_the_interval_of_correlated_systems():
    # B is A plus a small shift on every question: unpaired intervals overlap widely, the
    # paired one excludes 0.
    rng = random.Random(2)
    a = [rng.random() for _ in range(60)]
    b = [x + 0.02 for x in a]
    alone_a = bootstrap_interval(a, mean_of_present)
    alone_b = bootstrap_interval(b, mean_of_present)
    assert alone_b.low < alone_a.high  # the intervals overlap
    assert paired_difference(a, b, mean_of_present, higher_is_better=True).verdict == "better"


def test_undefined_draws_are_left_out_and_empty_input_has_no_interval():
    values = [None] * 3 + [1.0]
    found = bootstrap_interval(values, mean_of_present)
    assert found.value == 1.0 and found.low == found.high == 1.0
    empty = bootstrap_interval([], mean_of_present)
    assert math.isnan(empty.value) and math.isnan(empty.low)
    assert paired_difference([], [], mean_of_present, higher_is_better=True).verdict == (
        "undefined"
    )
    with pytest.raises(ValueError, match="aligned"):
        paired_difference([1.0], [1.0, 2.0], mean_of_present, higher_is_better=True)


@pytest.mark.parametrize(
    ("low", "high", "higher", "expected"),
    [
        (-0.1, 0.2, True, "tie"),
        (0.0, 0.2, True, "tie"),
        (0.01, 0.2, True, "better"),
        (0.01, 0.2, False, "worse"),
        (-0.3, -0.01, True, "worse"),
        (-0.3, -0.01, False, "better"),
        (math.nan, math.nan, True, "undefined"),
    ],
)
def test_verdict(low: float, high: float, higher: bool, expected: str):
    assert verdict(low, high, higher_is_better=higher) == expected


def test_the_natural_summary_uses_this_bootstrap_and_names_ties(tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).parents[3] / "benchmarks" / "natural" / "summarize.py"
    spec = importlib.util.spec_from_file_location("natural_summarize", path)
    assert spec is not None and spec.loader is not None
    summarize = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(summarize)
    values = [float(v) for v in random.Random(3).choices([0, 1], k=30)]
    shared = bootstrap_interval(values, mean_of_present, resamples=summarize.DRAWS)
    assert summarize.interval(values) == (shared.low, shared.high)
    gold = [
        {
            "id": f"q{i}",
            "intent": "latest",
            "answerable": True,
            "answer": "It was 7.",
            "answer_values": ["7"],
            "relevant_ids": ["Observation/a"],
        }
        for i in range(6)
    ]
    dataset = tmp_path / "qa.jsonl"
    dataset.write_text("\n".join(json.dumps(g) for g in gold), encoding="utf-8")
    rows = [
        {"id": g["id"], "answer": "It was 7.", "selected": [{"ref": "Observation/a"}]} for g in gold
    ]
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"manifest": {}, "results": {"auto": rows}}), encoding="utf-8")
    text = summarize.summarize(results, dataset, baseline=results)
    assert "| latest | 6 | 1.00 (1.00–1.00) |" in text
    compared = [line for line in text.splitlines() if line.startswith("| auto vs auto")]
    assert len(compared) == 3 and all(line.endswith("| tie |") for line in compared)
