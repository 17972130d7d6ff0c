"""Time expressions → inclusive date windows, relative to a fixed ``now``."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from ehrqa.select.timeexpr import TimeWindow, parse_time

NOW = date(2025, 1, 1)  # a Wednesday
MID = date(2024, 8, 15)  # a Thursday, for month and week arithmetic
D = date

WINDOWS = [
    # absolute years, months, days
    ("Which vaccines did I get in 2021?", D(2021, 1, 1), D(2021, 12, 31)),
    # since an event the question dates: from that date on, not during it
    ("has my hemoglobin recovered since the anemia in 2014?", D(2014, 1, 1), None),
    ("weight since my surgery in March 2019", D(2019, 3, 1), None),
    ("labs during 2019", D(2019, 1, 1), D(2019, 12, 31)),
    ("What was my weight IN 2020?", D(2020, 1, 1), D(2020, 12, 31)),
    ("visits in the year 2018", D(2018, 1, 1), D(2018, 12, 31)),
    ("show my labs from 2020", D(2020, 1, 1), D(2020, 12, 31)),
    ("my 2019 flu shot", D(2019, 1, 1), D(2019, 12, 31)),
    ("blood pressure in March 2021", D(2021, 3, 1), D(2021, 3, 31)),
    ("anything in Feb 2020?", D(2020, 2, 1), D(2020, 2, 29)),
    ("results from sept. 2022", D(2022, 9, 1), D(2022, 9, 30)),
    ("what happened on 2021-03-04", D(2021, 3, 4), D(2021, 3, 4)),
    ("visit on 3/4/2021", D(2021, 3, 4), D(2021, 3, 4)),
    ("labs on March 4th, 2021", D(2021, 3, 4), D(2021, 3, 4)),
    ("the 4th of July 2019 ER visit", D(2019, 7, 4), D(2019, 7, 4)),
    ("conditions in the 1990s", D(1990, 1, 1), D(1999, 12, 31)),
    ("vaccines in the 90s", D(1990, 1, 1), D(1999, 12, 31)),
    ("anything from the 2010s", D(2010, 1, 1), D(2019, 12, 31)),
    ("in May", D(2024, 5, 1), D(2024, 5, 31)),  # the most recent May
    # open bounds
    ("How has my blood pressure changed since 2019?", D(2019, 1, 1), None),
    ("since 2015", D(2015, 1, 1), None),
    ("since March 2020", D(2020, 3, 1), None),
    ("since last year", D(2024, 1, 1), None),
    ("starting in 2016", D(2016, 1, 1), None),
    ("after 2018", D(2019, 1, 1), None),
    ("after March 2020", D(2020, 4, 1), None),
    ("before 2010", None, D(2009, 12, 31)),
    ("prior to March 2020", None, D(2020, 2, 29)),
    ("up to 2012", None, D(2012, 12, 31)),
    ("until 2012-06-30", None, D(2012, 6, 30)),
    ("more than 5 years ago", None, D(2020, 1, 3)),
    # ranges
    ("between 2015 and 2018", D(2015, 1, 1), D(2018, 12, 31)),
    ("from 2015 to 2018", D(2015, 1, 1), D(2018, 12, 31)),
    ("BETWEEN 2018 AND 2015", D(2015, 1, 1), D(2018, 12, 31)),
    ("visits 2015-2018", D(2015, 1, 1), D(2018, 12, 31)),
    ("from January 2020 to March 2020", D(2020, 1, 1), D(2020, 3, 31)),
    ("between 2021-01-15 and 2021-02-15", D(2021, 1, 15), D(2021, 2, 15)),
    # calendar-relative
    ("Did I get a flu shot last year?", D(2024, 1, 1), D(2024, 12, 31)),
    ("previous year", D(2024, 1, 1), D(2024, 12, 31)),
    ("this year", D(2025, 1, 1), NOW),
    ("earlier this year", D(2025, 1, 1), NOW),
    ("last month", D(2024, 12, 1), D(2024, 12, 31)),
    ("this month", D(2025, 1, 1), NOW),
    ("last week", D(2024, 12, 23), D(2024, 12, 29)),
    ("this week", D(2024, 12, 30), NOW),
    ("yesterday", D(2024, 12, 31), D(2024, 12, 31)),
    ("Today", NOW, NOW),
    ("the day before yesterday", D(2024, 12, 30), D(2024, 12, 30)),
    ("last March", D(2024, 3, 1), D(2024, 3, 31)),
    ("year to date", D(2025, 1, 1), NOW),
    # rolling
    ("past year", D(2024, 1, 2), NOW),  # now - 365 days
    ("in the past year", D(2024, 1, 2), NOW),
    ("in the last year", D(2024, 1, 2), NOW),
    ("this past year", D(2024, 1, 2), NOW),
    ("in the past 6 months", D(2024, 7, 1), NOW),
    ("in the last 6 months", D(2024, 7, 1), NOW),
    ("last 6 months", D(2024, 7, 1), NOW),
    ("in the last 2 years", D(2023, 1, 2), NOW),
    ("over the past 3 weeks", D(2024, 12, 11), NOW),
    ("in the last 10 days", D(2024, 12, 22), NOW),
    ("within the past two years", D(2023, 1, 2), NOW),
    ("in the past few months", D(2024, 10, 1), NOW),
    ("over the last couple of years", D(2023, 1, 2), NOW),
    ("past week", D(2024, 12, 25), NOW),
    ("last 12 mos", D(2024, 1, 1), NOW),
    ("over the past decade", D(2015, 1, 4), NOW),
    # "N units ago" is the calendar unit that contains that day
    ("ten years ago", D(2015, 1, 1), D(2015, 12, 31)),
    ("a year ago", D(2024, 1, 1), D(2024, 12, 31)),
    ("three months ago", D(2024, 10, 1), D(2024, 10, 31)),
    ("2 weeks ago", D(2024, 12, 16), D(2024, 12, 22)),
    ("5 days ago", D(2024, 12, 27), D(2024, 12, 27)),
    ("a couple of years ago", D(2023, 1, 1), D(2023, 12, 31)),
    ("twelve years ago", D(2013, 1, 1), D(2013, 12, 31)),
    ("since 3 years ago", D(2022, 1, 1), None),
    # clinician shorthand
    ("LDL trend, 5y", D(2020, 1, 3), NOW),
    ("A1c over 18mo", D(2023, 7, 1), NOW),
]


@pytest.mark.parametrize(("question", "start", "end"), WINDOWS, ids=[w[0] for w in WINDOWS])
def test_windows(question: str, start: date | None, end: date | None) -> None:
    window = parse_time(question, NOW)
    assert window is not None, question
    assert (window.start, window.end) == (start, end)
    assert window.phrase and window.phrase in question


MID_WINDOWS = [
    ("last month", D(2024, 7, 1), D(2024, 7, 31)),
    ("this month", D(2024, 8, 1), MID),
    ("last week", D(2024, 8, 5), D(2024, 8, 11)),
    ("in the last 6 months", D(2024, 2, 15), MID),
    ("in March", D(2024, 3, 1), D(2024, 3, 31)),
    ("in September", D(2023, 9, 1), D(2023, 9, 30)),
    ("last August", D(2023, 8, 1), D(2023, 8, 31)),
    ("6 months ago", D(2024, 2, 1), D(2024, 2, 29)),
]


@pytest.mark.parametrize(("question", "start", "end"), MID_WINDOWS)
def test_windows_mid_year(question: str, start: date, end: date) -> None:
    window = parse_time(question, MID)
    assert window is not None
    assert (window.start, window.end) == (start, end)


NO_WINDOW = [
    "What was my most recent HbA1c?",
    "my last HbA1c",
    "What was my last visit?",
    "latest labs",
    "most recent blood pressure",
    "the last time I had a flu shot",
    "show my last 3 readings",
    "my first vaccine",
    "When I was 5, did I get the MMR?",
    "at age 40",
    "in my 20s",
    "when she was in her 30s",
    "Do I have any allergies?",
    "since my last visit",
    "after my surgery",
    "in the past, did I have asthma?",
    "past medical history",
    "LOINC 2093-3",
    "metformin 2000 mg",
    "glucose 140",
    "blood pressure 120/80",
    "covid-19 vaccine",
    "type 2 diabetes",
    "PHQ-9 score",
    "take 2 tablets for 10 days",
    "How many times was I seen?",
    "recently",
    "Is my BMI over 30?",
    "the Mayo clinic",
    "my 5y old son",
    "a 5yo with asthma",
    "",
]


@pytest.mark.parametrize("question", NO_WINDOW)
def test_no_window(question: str) -> None:
    assert parse_time(question, NOW) is None


def test_phrase_is_the_matched_text() -> None:
    window = parse_time("How has my blood pressure changed Since March 2020?", NOW)
    assert window == TimeWindow(D(2020, 3, 1), None, "Since March 2020")


def test_longest_expression_wins() -> None:
    window = parse_time("labs from 2015 to 2018, especially 2016", NOW)
    assert window is not None
    assert window.phrase == "from 2015 to 2018"


def test_invalid_dates_are_not_windows() -> None:
    assert parse_time("on 2021-02-30", NOW) is None
    assert parse_time("on 13/45/2020", NOW) is None


def test_datetime_now_gives_plain_dates() -> None:
    window = parse_time("this year", datetime(2025, 1, 1, 13, 30))
    assert window is not None
    assert type(window.end) is date and window.end == NOW
