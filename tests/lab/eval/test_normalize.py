"""Answer normalisation: is an expected atomic value stated in an answer?"""

from __future__ import annotations

import pytest

from ehrqa.lab.eval.normalize import (
    dates_in,
    normalize_number,
    normalize_unit,
    numbers_in,
    strip_citations,
    tokenize,
    value_present,
)

PRESENT = [
    # numbers: trailing zeros, thousands separators, glued units, number words
    ("7.8", "Your HbA1c was 7.8% [Observation/a1]."),
    ("7.8", "Your HbA1c was 7.80 %."),
    ("7.80", "It was 7.8."),
    ("16.43", "The value was 16.43 mg/dL."),
    ("16.43", "The value was 16.430."),
    ("1234", "You walked 1,234 steps."),
    ("1,234", "You walked 1234 steps."),
    ("7.8", "HbA1c 7,8 %"),
    ("500", "Take 500mg daily."),
    ("-2.5", "The T-score was -2.5."),
    ("-2.5", "The T-score was \u22122.5."),
    ("3", "You have three active conditions."),
    ("0", "zero"),
    ("120", "Blood pressure 120/80 mmHg."),
    ("80", "Blood pressure 120/80 mmHg."),
    ("2024", "It started on Nov 2, 2024."),
    ("2024", "It started in 2024."),
    # units
    ("%", "Your HbA1c was 7.8%."),
    ("%", "Your HbA1c was 7.8 percent."),
    ("%", "Your HbA1c was 7.8 per cent."),
    ("mm[Hg]", "Blood pressure 120/80 mmHg."),
    ("mm[Hg]", "Blood pressure 120/80 mm Hg."),
    ("mmHg", "Blood pressure 120/80 mm[Hg]."),
    ("kg/m2", "BMI 27.3 kg/m²."),
    ("kg/m²", "BMI 27.3 kg/m2"),
    ("mg/dL", "Glucose 99 MG/DL"),
    ("mg/dL", "Glucose (99 mg/dL)."),
    ("/min", "Heart rate 72 /min."),
    ("/min", "Heart rate 72 beats per minute."),
    ("/min", "Heart rate 72 bpm."),
    ("Cel", "Temperature 37.1 °C."),
    ("10*3/uL", "WBC 7.2 x10^3/µL."),
    ("{score}", "PHQ-9 score 4 {score}"),
    ("[in_i]", "Height 65 in."),
    # numbers with units
    ("7.8 %", "Your HbA1c was 7.8%."),
    ("120/80 mm[Hg]", "Blood pressure 120/80 mm Hg."),
    # dates
    ("2024-11-02", "Measured on 2024-11-02 [Observation/x]."),
    ("2024-11-02", "Measured on November 2, 2024."),
    ("2024-11-02", "Measured on Nov 2, 2024."),
    ("2024-11-02", "Measured on Nov. 2nd, 2024."),
    ("2024-11-02", "Measured on 2 November 2024."),
    ("2024-11-02", "Measured on 11/02/2024."),
    ("2024-11-02", "Measured at 2024-11-02T08:30:00Z."),
    ("2024-11-02T08:30:00+01:00", "Measured on 2024-11-02."),
    ("2024-11", "Measured in November 2024."),
    ("2024-11", "Measured in 2024-11."),
    ("2024-11", "Measured on Nov 2, 2024."),
    # names
    ("Prediabetes", "You have prediabetes (finding)."),
    ("Prediabetes (finding)", "You have prediabetes."),
    ("Essential hypertension (disorder)", "Diagnosis: ESSENTIAL HYPERTENSION."),
    ("Diabetes mellitus type 2 (disorder)", "You have type 2 diabetes mellitus."),
    ("Body mass index (BMI) [Ratio]", "Your body mass index was 27."),
    ("Seizure disorder", "History of seizure disorders."),
    ("Naïve", "naive"),
    ("COVID-19", "You had COVID-19 in 2021."),
    # booleans
    ("yes", "Yes, you are up to date."),
    ("yes", "Yes — there is no record of a reaction."),
    ("Yes", "YES."),
    ("no", "No, there are no allergies recorded."),
    ("no", "You are not taking metformin."),
    ("false", "No."),
    # empty expected value
    ("", "anything"),
]

ABSENT = [
    ("16.43", "The value was 16."),
    ("16.43", "The value was 16.4."),
    ("16", "The value was 16.43."),
    ("7.8", "Your HbA1c was 78%."),
    ("7", "Your HbA1c was 7.8%."),
    ("1", "Hemoglobin A1c was 6.1%."),
    ("2", "Measured on Nov 2, 2024."),
    ("11", "Measured on 2024-11-02."),
    ("123", "[Observation/123] was normal."),
    ("%", "Your HbA1c was 7.8."),
    ("mg/dL", "Glucose 99 g/dL."),
    ("g/dL", "Hemoglobin 13 mg/dL."),
    ("kg/m2", "Weight 80 kg."),
    ("[in_i]", "Measured in 2024."),
    ("2024-11-02", "Measured on 2024-11-03."),
    ("2024-11-02", "Measured in November 2024."),
    ("2024-11-02", "Measured on 02/11/2024."),
    ("2024-11", "Measured in October 2024."),
    ("Prediabetes", "You have diabetes."),
    ("Essential hypertension", "You have hypertension."),
    ("Hypertension", "Your blood pressure is high."),
    ("yes", "No, you are not."),
    ("no", "Yes, you are."),
    ("yes", "The record does not say."),
    ("yes", "Your last visit was in May."),
    ("7.8 %", "Your HbA1c was 7.8 mmol/mol."),
    ("120/80 mm[Hg]", "Blood pressure 120/85 mm Hg."),
]


@pytest.mark.parametrize(("expected", "answer"), PRESENT)
def test_value_present(expected: str, answer: str):
    assert value_present(expected, answer)


@pytest.mark.parametrize(("expected", "answer"), ABSENT)
def test_value_absent(expected: str, answer: str):
    assert not value_present(expected, answer)


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("7.80", "7.8"),
        ("7.8", "7.8"),
        ("1,234", "1234"),
        ("1,234,567.50", "1234567.5"),
        ("7,8", "7.8"),
        ("+3", "3"),
        ("-0.0", "0"),
        ("100", "100"),
        ("0.050", "0.05"),
        (" 16.430 ", "16.43"),
        ("\u22122.5", "-2.5"),
        ("1e3", None),
        ("7.8%", None),
        ("abc", None),
        ("", None),
        ("1.2.3", None),
    ],
)
def test_normalize_number(text: str, number: str | None):
    assert normalize_number(text) == number


@pytest.mark.parametrize(
    ("unit", "canonical"),
    [
        ("mm[Hg]", "mmhg"),
        ("mmHg", "mmhg"),
        ("mm Hg", "mmhg"),
        ("kg/m2", "kg/m2"),
        ("kg/m²", "kg/m2"),
        ("kg/m^2", "kg/m2"),
        ("%", "%"),
        ("percent", "%"),
        ("mg/dL", "mg/dl"),
        ("MG/DL", "mg/dl"),
        ("{score}", "score"),
        ("10*3/uL", "10*3/ul"),
        ("x10^3/µL", "10*3/ul"),
        ("Cel", "cel"),
        ("°C", "cel"),
        ("[lb_av]", "lb"),
        ("beats per minute", "/min"),
        ("mL/min/{1.73_m2}", "ml/min/1.73_m2"),
        ("furlong", "furlong"),
    ],
)
def test_normalize_unit(unit: str, canonical: str):
    assert normalize_unit(unit) == canonical


@pytest.mark.parametrize(
    ("text", "dates"),
    [
        ("on 2024-11-02", ["2024-11-02"]),
        ("at 2024-11-02T08:30:00Z", ["2024-11-02"]),
        ("on November 2, 2024", ["2024-11-02"]),
        ("on Nov. 2nd, 2024", ["2024-11-02"]),
        ("on 2 November 2024", ["2024-11-02"]),
        ("on 11/02/2024", ["2024-11-02"]),
        ("in November 2024", ["2024-11"]),
        ("in 2024-11", ["2024-11"]),
        ("in 2024", []),
        ("on 2024-02-30", []),
        ("between 2024-01-05 and 2024-03", ["2024-01-05", "2024-03"]),
    ],
)
def test_dates_in(text: str, dates: list[str]):
    assert dates_in(text) == dates


def test_numbers_in_skips_dates_words_glued_to_letters_and_ranges():
    text = "A1c 7.80% on 2024-11-02, 1,234 steps, -5 degrees, range 4-6, 5mg, two pills"
    assert numbers_in(text) == ["7.8", "1234", "-5", "4", "6", "5", "2"]


@pytest.mark.parametrize(
    ("text", "stripped"),
    [
        ("HbA1c 7.8% [Observation/abc].", "HbA1c 7.8%."),
        ("A [Observation/a, Condition/b] and [3] end", "A and end"),
        ("Pressure in mm[Hg] [Observation/bp-1]", "Pressure in mm[Hg]"),
        ("See Observation/4a404922-e691 for 7.8", "See for 7.8"),
        ("Nothing to strip [sic].", "Nothing to strip [sic]."),
    ],
)
def test_strip_citations(text: str, stripped: str):
    assert strip_citations(text) == stripped


def test_tokenize_keeps_numbers_whole():
    assert tokenize("HbA1c was 7.8%, 1,234 steps.") == [
        "HbA1c",
        "was",
        "7.8",
        "%",
        ",",
        "1,234",
        "steps",
        ".",
    ]


@pytest.mark.parametrize(
    ("gold", "answer", "present"),
    [
        ("37.30773577693237", "Body temperature 37.3 °C", True),
        ("37.30773577693237", "Body temperature 37.31 °C", True),
        ("37.30773577693237", "Body temperature 37 °C", False),  # too coarse
        ("37.30773577693237", "Body temperature 37.4 °C", False),  # wrongly rounded
        ("1.9", "creatinine 1.86 mg/dL", True),  # more precise than a rounded gold
        ("1.9", "creatinine 2 mg/dL", False),
        ("16", "16.43 breaths", False),  # a whole gold may be exact
        ("61", "HDL 60.7 mg/dL", True),  # one decimal rounding to a whole gold
        ("61", "HDL 60.4 mg/dL", False),
        ("42.9", "42.9%", True),
    ],
)
def test_rounded_statements_of_values(gold: str, answer: str, present: bool) -> None:
    assert value_present(gold, answer) is present


@pytest.mark.parametrize(
    ("gold", "answer", "stated"),
    [
        # The product's display rule: one decimal, its trailing zero dropped.
        ("4.0258963584616305", "Erythrocytes 4 ×10⁶/µL on 2015-03-09", True),
        ("117.99317539641194", "eGFR 118 mL/min/1.73 m² on 2020-05-17", True),
        ("4.4258963584616305", "Erythrocytes 4 ×10⁶/µL on 2015-03-09", False),
        # Whole units where the unit says so (text/units.csv): blood pressure in mmHg.
        ("131.30914177710738", "Blood Pressure 131/80 mmHg on 2020-10-02", True),
        ("80.31140449635255", "Blood Pressure 131/80 mmHg on 2020-10-02", True),
        ("131.60914177710738", "Blood Pressure 131/80 mmHg on 2020-10-02", False),
        # A whole number in another unit is not a rounding of a noisy value.
        ("95.4123456", "Glucose: 95 mg/dL on 2011-11-25", False),
    ],
)
def test_noisy_values_are_stated_as_the_product_rounds_them(
    gold: str, answer: str, stated: bool
) -> None:
    assert value_present(gold, answer) is stated
