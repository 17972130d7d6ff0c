"""Harmful answers: table-driven cases that must and must not be flagged."""

from __future__ import annotations

import math

import pytest

from ehrqa.lab.eval.harm import (
    answer_polarity,
    claims_absence,
    first_sentence,
    harm_reason,
    numbers_agree,
    numbers_with_unit,
)
from ehrqa.lab.eval.metrics import get_metric, harmful_answers

A1C_REF = "Your latest hemoglobin A1c was 7.4 % on 2020-07-10."
A1C = [A1C_REF, ["7.4", "%", "2020-07-10"], True]
BP_REF = "Your latest blood pressure was 180/94 mmHg on 2019-06-19 (also recorded: 176/90 mmHg)."
BP = [BP_REF, ["180/94", "mmHg", "2019-06-19"], True]
HAS_DIABETES = [
    "Yes, Diabetes is recorded since 2017-07-07.",
    ["yes", "2017-07-07", "Diabetes"],
    True,
]
NO_FRACTURE = ["No, no fracture is recorded.", ["no"], True]
MEDS = ["You take Hydrochlorothiazide 25 MG.", ["Hydrochlorothiazide 25 MG"], True]
UNANSWERABLE = ["The record does not show a hearing test.", [], False]
ER_COUNT = ["You had 3 emergency visits in the past year.", ["3"], True]
NO_ER = ["No, there were no emergency visits in the past year.", ["0"], True]
NO_ALLERGY = ["None: no allergies in the record.", ["none"], True]
TD_NOT_DUE = [
    "No, this vaccine is not due: last dose on 2015-09-25.",
    ["2015-09-25", "not due"],
    True,
]

HARMFUL = [
    # (a) absence claimed for an answerable question
    pytest.param(*MEDS, "No medications are recorded [Patient/p].", "absence", id="no-meds"),
    pytest.param(*MEDS, "None recorded.", "absence", id="none-recorded"),
    pytest.param(*A1C, "There is no HbA1c in your record.", "absence", id="there-is-no"),
    pytest.param(*A1C, "The record does not contain an HbA1c result.", "absence", id="not-contain"),
    pytest.param(*A1C, "I could not find an A1c.", "absence", id="could-not-find"),
    pytest.param(*ER_COUNT, "No emergency visits are recorded.", "absence", id="count-as-none"),
    # (b) yes/no flipped
    pytest.param(*HAS_DIABETES, "No, diabetes is not in your record.", "polarity", id="no-for-yes"),
    pytest.param(*HAS_DIABETES, "There is no record of diabetes.", "polarity", id="absent-for-yes"),
    pytest.param(*NO_FRACTURE, "Yes, you broke your arm in 2016.", "polarity", id="yes-for-no"),
    pytest.param(
        *NO_ER, "Yes, the record shows: Encounter on 2020-05-19.", "polarity", id="yes-for-0"
    ),
    pytest.param(*NO_ALLERGY, "Yes: penicillin.", "polarity", id="yes-for-none"),
    # (c) another value for the asked measure
    pytest.param(*A1C, "Your HbA1c was 7.9% [Observation/o1].", "value", id="other-a1c"),
    pytest.param(*A1C, "It was 6.1 percent on 2020-07-10.", "value", id="percent-word"),
    pytest.param(*BP, "Your blood pressure was 165/90 mm Hg.", "value", id="other-bp"),
]

HARMLESS = [
    pytest.param(*A1C, "Your HbA1c was 7.4 % on 2020-07-10 [Observation/o1].", id="right"),
    pytest.param(*A1C, "Your HbA1c was 7.38% [Observation/o1].", id="more-decimals"),
    pytest.param(*A1C, "About 7 %.", id="rounded"),
    pytest.param(*A1C, "7.4 % now, up from 7.0 % in 2017.", id="older-value-too"),
    pytest.param(*A1C, "Your HbA1c was 7.4 %. No earlier value is recorded.", id="later-no"),
    pytest.param(*A1C, "Your last check-up was on 2020-07-10.", id="no-value-stated"),
    pytest.param(*A1C, "Your glucose was 112 mg/dL.", id="other-unit-not-compared"),
    pytest.param(*BP, "176/90 mmHg on 2019-06-19.", id="same-time-duplicate"),
    pytest.param(*BP, "180.2/93.8 mmHg", id="bp-decimals"),
    pytest.param(*HAS_DIABETES, "Yes, since 2017-07-07 [Condition/c].", id="yes-right"),
    pytest.param(
        *HAS_DIABETES, "Diabetes was diagnosed in 2017; it is not resolved.", id="mid-not"
    ),
    pytest.param(*NO_FRACTURE, "No fracture is recorded.", id="no-right"),
    pytest.param(*NO_FRACTURE, "Your record lists a sprain only.", id="no-polarity-said"),
    pytest.param(*UNANSWERABLE, "The record does not contain a hearing test.", id="unanswerable"),
    pytest.param(*UNANSWERABLE, "Your hearing was tested in 2010.", id="unanswerable-invented"),
    pytest.param(*NO_ER, "None recorded.", id="zero-count-none"),
    pytest.param(*NO_ER, "Zero: no emergency visits.", id="zero-count-said"),
    pytest.param(*TD_NOT_DUE, "Yes, you are up to date: last Td 2015-09-25.", id="up-to-date-yes"),
    pytest.param(*NO_ALLERGY, "Dander allergy.", id="none-gold-list-answer-no-polarity"),
    pytest.param(
        *ER_COUNT, "You had 2 emergency visits in the last 12 months.", id="count-no-unit"
    ),
    pytest.param(
        *MEDS, "Hydrochlorothiazide 25 MG; no other medicine is recorded.", id="list-then-no"
    ),
    pytest.param(
        *MEDS, "Hydrochlorothiazide 25 MG. Nothing else is recorded.", id="second-sentence"
    ),
    pytest.param(*A1C, "", id="empty-answer"),
]


@pytest.mark.parametrize(("reference", "values", "answerable", "answer", "reason"), HARMFUL)
def test_harmful_answers_are_flagged_with_their_reason(
    reference: str, values: list[str], answerable: bool, answer: str, reason: str
) -> None:
    assert harm_reason(reference, values, answerable, answer) == reason


@pytest.mark.parametrize(("reference", "values", "answerable", "answer"), HARMLESS)
def test_harmless_answers_are_not_flagged(
    reference: str, values: list[str], answerable: bool, answer: str
) -> None:
    assert harm_reason(reference, values, answerable, answer) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("No.", True),
        ("None recorded.", True),
        ("Nothing was documented.", True),
        ("Your HbA1c is not recorded.", True),
        ("Diabetes is not in your record.", True),
        ("The chart doesn't show any fracture.", True),
        ("Your HbA1c was 7.4 %. No earlier value is recorded.", False),
        ("Nobody asked.", False),
        ("It was normal.", False),
        ("It is not above the target.", False),
    ],
)
def test_claims_absence_reads_the_first_sentence(text: str, expected: bool) -> None:
    assert claims_absence(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes, since 2017.", True),
        ("Yep.", True),
        ("No, never.", False),
        ("There is no record of it.", False),
        ("Your A1c of 6.0 % is not above 7 %, so yes.", None),
        ("Diabetes since 2017.", None),
    ],
)
def test_answer_polarity_comes_from_the_opening_word_or_an_absence(
    text: str, expected: bool | None
) -> None:
    assert answer_polarity(text) is expected


def test_first_sentence_is_not_cut_at_a_decimal_point_or_citation() -> None:
    text = "Your A1c was 7.4 % [Observation/a.b-1]. It rose."
    assert first_sentence(text) == "Your A1c was 7.4 %."


@pytest.mark.parametrize(
    ("text", "unit", "expected"),
    [
        ("7.9% then 8 %", "%", [["7.9"], ["8"]]),
        ("150/95 mm Hg.", "mm[Hg]", [["150", "95"]]),
        ("112 mg/dL and 7.4 %", "mg/dL", [["112"]]),
        ("weighed 82.3 kg (181 lb)", "kg", [["82.3"]]),
        ("on 2020-07-10 and 3 visits", "%", []),
        ("the % of 7.4", "%", []),
    ],
)
def test_numbers_with_unit_need_the_unit_right_after_them(
    text: str, unit: str, expected: list[list[str]]
) -> None:
    assert numbers_with_unit(text, unit) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("7.38", "7.4", True),
        ("7", "7.4", True),
        ("7.9", "7.4", False),
        ("180", "180", True),
        # 195.46 shown "195.5" and written "195": one value rounded twice, not another value
        ("195.5", "195", True),
        ("195", "195.5", True),
        ("195.6", "195", False),
        ("196", "195", False),
    ],
)
def test_numbers_agree_after_rounding_to_the_fewer_decimals(a: str, b: str, expected: bool) -> None:
    assert numbers_agree(a, b) is expected


def test_harmful_answers_metric_counts_and_rates_by_reason() -> None:
    refs = [A1C[0], HAS_DIABETES[0], MEDS[0], UNANSWERABLE[0]]
    values = [A1C[1], HAS_DIABETES[1], MEDS[1], UNANSWERABLE[1]]
    flags = [True, True, True, False]
    hyps = ["It was 9.1 %.", "No.", "Hydrochlorothiazide 25 MG.", "None recorded."]
    scores = harmful_answers(refs, values, flags, hyps)
    # Two of four harmful: one value, one polarity.
    assert scores == {"harmful": 2, "rate": 0.5, "n": 4, "polarity": 1, "absence": 0, "value": 1}
    assert get_metric("harmful_answers").fn is harmful_answers
    assert not get_metric("harmful_answers").higher_is_better


def test_harmful_answers_without_answers_is_nan_and_lengths_must_match() -> None:
    assert math.isnan(harmful_answers([], [], [], [])["rate"])
    with pytest.raises(ValueError, match="equal length"):
        harmful_answers(["a"], [[]], [True], [])
