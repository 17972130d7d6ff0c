"""Numbers rounded for readers, the one rule by which a shown number states a record's value,
and readable units."""

from __future__ import annotations

import pytest

from ehrqa.text.numbers import display_number, rounds_to
from ehrqa.text.units import readable_unit, show_value


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (1.8575090940655805, "1.9"),
        (199.37575576513606, "199.4"),
        (96.76005855002018, "96.8"),
        (0.8575090940655805, "0.86"),
        (7.8, "7.8"),  # recorded with one decimal: shown as recorded
        (7.85, "7.85"),
        (101.0, "101"),
        (38.45000000001, "38.5"),  # half up
    ],
)
def test_display_number_rounds_only_noise(value: float, shown: str) -> None:
    assert display_number(value) == shown


@pytest.mark.parametrize(
    ("shown", "recorded", "ok"),
    [
        ("1.9", 1.8575090940655805, True),
        ("1.86", 1.8575090940655805, True),
        ("2", 1.8575090940655805, True),  # rounded to whole units, still that value
        ("1.8", 1.8575090940655805, False),  # wrongly rounded
        ("14", 14.1, False),  # a value recorded with one decimal is never rounded
        ("7.80", 7.8, True),
        ("200", 199.37575576513606, False),
    ],
)
def test_rounds_to_accepts_only_correct_rounding_of_noise(
    shown: str, recorded: float, ok: bool
) -> None:
    assert rounds_to(shown, recorded) is ok


@pytest.mark.parametrize(
    ("unit", "reader"),
    [("mm[Hg]", "mmHg"), ("Cel", "°C"), ("{score}", ""), ("1", ""), ("kg", "kg"), (None, "")],
)
def test_readable_units(unit: str | None, reader: str) -> None:
    assert readable_unit(unit) == reader


def test_blood_pressure_is_shown_in_whole_mmhg() -> None:
    assert show_value(102.02907271841632, "mm[Hg]") == "102 mmHg"
    assert show_value(7.8, "%") == "7.8%"


def test_questionnaire_scores_are_whole_points() -> None:
    from ehrqa.text.units import show_value

    assert show_value(23.9412, "{score}") == "24"
    assert show_value(3.6123, "(score)") == "4"
