"""Dates as records and answers write them: ISO days, "November 2, 2024", "2 Nov 2024",
"11/02/2024" (month first), "November 2024"; and whole years between two days (an age)."""

from __future__ import annotations

import re
from datetime import date


def iso_day(value: object) -> date | None:
    """The day an ISO date or dateTime string names (``"2012-10-11T08:00:00Z"``), or None."""
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


MONTHS = "january february march april may june july august september october november december"
MONTH_NUM = {name: i + 1 for i, name in enumerate(MONTHS.split())} | {
    name[:3]: i + 1 for i, name in enumerate(MONTHS.split())
}
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
DATE_RES = (
    re.compile(r"\b(\d{4})-(\d{2})-(\d{2})(?:T[\d:.+\-Z]+)?\b"),
    re.compile(rf"\b({_MONTH})\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I),
    re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTH})\s+(\d{{4}})\b", re.I),
    re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b"),
    re.compile(rf"\b({_MONTH})\s+(\d{{4}})\b", re.I),
)


def _to_day(match: re.Match[str], pattern_index: int) -> str | None:
    g = match.groups()
    try:
        if pattern_index == 0:
            return date(int(g[0]), int(g[1]), int(g[2])).isoformat()
        if pattern_index == 1:
            return date(int(g[2]), MONTH_NUM[g[0].lower().rstrip(".")[:3]], int(g[1])).isoformat()
        if pattern_index == 2:
            return date(int(g[2]), MONTH_NUM[g[1].lower().rstrip(".")[:3]], int(g[0])).isoformat()
        if pattern_index == 3:
            return date(int(g[2]), int(g[0]), int(g[1])).isoformat()
        return f"{int(g[1]):04d}-{MONTH_NUM[g[0].lower().rstrip('.')[:3]]:02d}"
    except (ValueError, KeyError):
        return None


def find_dates(text: str) -> tuple[list[tuple[str, str]], str]:
    """Dates in ``text`` as ``(span, ISO day or YYYY-MM)``, and the text with them blanked.

    A date-shaped span that is no real date comes with an empty day.
    """
    found: list[tuple[str, str]] = []
    for index, pattern in enumerate(DATE_RES):

        def blank(match: re.Match[str], index: int = index) -> str:
            # An impossible date ("2023-14-08") is kept with an empty day: never supported.
            found.append((match.group(0), _to_day(match, index) or ""))
            return " " * len(match.group(0))

        text = pattern.sub(blank, text)
    return found, text


def days_between(start: str, end: str) -> int:
    """Days from ISO day ``start`` to ISO day ``end`` (negative when ``end`` comes first)."""
    return (date.fromisoformat(end[:10]) - date.fromisoformat(start[:10])).days


def whole_years(start: date, end: date) -> int:
    """Whole years from ``start`` to ``end`` (an age: birthdays not yet reached don't count)."""
    return end.year - start.year - ((end.month, end.day) < (start.month, start.day))


def whole_months(start: date, end: date) -> int:
    """Whole months from ``start`` to ``end`` (a month not yet completed doesn't count)."""
    return (end.year - start.year) * 12 + end.month - start.month - (end.day < start.day)


def age_on(birth_date: str, now: date) -> int | None:
    """Whole years from ``birth_date`` (ISO) to ``now``; None when the date is unreadable."""
    try:
        born = date.fromisoformat(birth_date[:10])
    except ValueError:
        return None
    return whole_years(born, now)


def blank_dates(text: str) -> tuple[list[str], str]:
    """ISO days and months of ``text`` (bare ``YYYY-MM`` too), and the text with them blanked."""
    found, rest = find_dates(text)
    days = [day for _, day in found if day]  # an impossible date ("2024-02-30") is no date

    def month(match: re.Match[str]) -> str:
        if 1 <= int(match.group(2)) <= 12:
            days.append(f"{match.group(1)}-{match.group(2)}")
            return " " * len(match.group(0))
        return match.group(0)

    # A bare ISO year-month ("2024-11"), which find_dates does not read.
    rest = re.sub(r"\b(\d{4})-(\d{2})\b(?!-\d)", month, rest)
    return days, rest


def dates_in(text: str) -> list[str]:
    """Dates in ``text`` as ISO days (``YYYY-MM-DD``) or months (``YYYY-MM``).

    Reads ISO dates and datetimes, ``November 2, 2024``, ``Nov. 2nd, 2024``,
    ``2 November 2024``, ``11/02/2024`` (month first), ``November 2024`` and ``2024-11``.
    """
    return blank_dates(text.replace("\u2212", "-"))[0]
