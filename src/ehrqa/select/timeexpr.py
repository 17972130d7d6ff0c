"""Time expressions in questions: "since 2019", "in the past 6 months", "last year", ….

:func:`parse_time` turns the one time expression of a question into an inclusive date
window relative to ``now``. Words that only *order* records ("my last HbA1c", "latest
visit", "most recent") are not windows and give ``None``; so do ages ("when I was 5").

Conventions (documented here once, relied on by the tests):

* Bare "last year / last month / last week" is the previous *calendar* unit; weeks run
  Monday–Sunday. "This year / month / week" runs from the start of the unit to ``now``.
* "The past/last year", "past year", "in the last 6 months", "over the past 3 weeks" are
  *rolling* windows ending at ``now``; a year is 365 days, a month a calendar month.
* "N units ago" is the calendar unit that contains that day ("ten years ago" = that year).
* When a question holds several expressions, the longest one wins.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta


@dataclass(frozen=True)
class TimeWindow:
    """An inclusive date window; ``None`` on either side means open-ended."""

    start: date | None
    end: date | None
    phrase: str


Span = tuple[date | None, date | None]

MONTHS: dict[str, int] = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sept", "sep"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
NUMBER_WORDS: dict[str, int] = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "couple": 2,
    "few": 3,
    "several": 3,
}

# --- regex building blocks -------------------------------------------------------------

# Longest names first so that "sept" is not read as "sep" followed by "t".
_MONTH = "(?:" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_YEAR = r"(?:19|20)\d{2}"
_ORD = r"(?:st|nd|rd|th)?"
_NUM = (
    r"(?:\d{1,3}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
    r"|(?:a\s+)?couple(?:\s+of)?|(?:a\s+)?few|several|an?)"
)
_UNIT = r"(?:days?|weeks?|wks?|months?|mos?|years?|yrs?|decades?)"
_AGO = rf"{_NUM}\s+{_UNIT}\s+ago"
_RELATIVE = rf"(?:{_AGO}|(?:last|previous|this)\s+(?:year|month|week)|yesterday|today)"
# "the 90s" needs "the": "in my 20s" is an age, not a decade.
_DECADE = r"(?:(?:the\s+)?(?:19|20)\d0'?s|the\s+'?\d0'?s)"

# One absolute point in time, most specific first (alternation takes the first that fits).
_ABSOLUTE = (
    r"(?:\d{4}-\d{1,2}-\d{1,2}"
    r"|\d{1,2}/\d{1,2}/\d{4}"
    rf"|{_MONTH}\s+\d{{1,2}}{_ORD},?\s+{_YEAR}"
    rf"|\d{{1,2}}{_ORD}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR}"
    rf"|{_MONTH},?\s+(?:of\s+)?{_YEAR}"
    r"|\d{4}-\d{2}(?![\d-])"
    rf"|{_DECADE}"
    rf"|{_YEAR})"
)
_POINT = rf"(?:{_ABSOLUTE}|{_RELATIVE}|{_MONTH})"
# Digits glued to a year are codes, doses or values ("2093-3", "2000 mg"), not years.
_NO_CODE_BEFORE = r"(?<![\w/.-])"
_NO_CODE_AFTER = r"(?![\w/-]|\.\d|\s*(?:mg|mcg|ml|g|kg|lbs?|units?|iu|mmol)\b|\s*%)"

_FLAGS = re.IGNORECASE
_RANGE_RE = re.compile(
    rf"\b(?:between|from)\s+(?:the\s+)?(?P<a>{_POINT})\s+"
    rf"(?:and|to|until|till|through|thru|-|–)\s+(?:the\s+)?(?P<b>{_POINT}){_NO_CODE_AFTER}"
    rf"|{_NO_CODE_BEFORE}(?P<a2>{_YEAR})\s*(?:-|–|to)\s*(?P<b2>{_YEAR}){_NO_CODE_AFTER}",
    _FLAGS,
)
_BOUND_RE = re.compile(
    r"\b(?P<op>since|starting(?:\s+(?:in|from))?|beginning(?:\s+in)?|after|later\s+than"
    r"|before|prior\s+to|earlier\s+than|until|till|up\s+to|through)"
    rf"\s+(?:the\s+year\s+)?(?P<a>{_POINT}){_NO_CODE_AFTER}",
    _FLAGS,
)
# "since the anemia in 2014", "since my surgery in March 2019", "after my anemia in 2020":
# from the event's date on (the event happened within that year, so from its start).
_SINCE_EVENT_RE = re.compile(
    r"\b(?:since|after|following)\s+(?:(?:the|my|his|her|their|that|this)\s+)?(?:[a-z'-]+\s+){1,3}?"
    rf"(?:in|of|on|back\s+in)\s+(?:the\s+year\s+)?(?P<a>{_POINT}){_NO_CODE_AFTER}",
    _FLAGS,
)
# "labs from 2020" means during 2020, so "from" without "to" reads like "in".
_IN_RE = re.compile(
    r"\b(?:in|during|for|of|on|from|throughout|around|circa)\s+"
    rf"(?:the\s+(?:year\s+|month\s+of\s+))?(?P<a>{_ABSOLUTE}|{_MONTH}){_NO_CODE_AFTER}",
    _FLAGS,
)
_BARE_RE = re.compile(rf"{_NO_CODE_BEFORE}(?P<a>{_ABSOLUTE}){_NO_CODE_AFTER}", _FLAGS)
_ROLLING_RE = re.compile(
    r"\b(?:(?:in|over|during|within|for|from)\s+)?(?P<det>the\s+|this\s+)?"
    rf"(?P<rel>past|last|previous|preceding|prior)\s+(?:(?P<num>{_NUM})\s+)?(?P<unit>{_UNIT})\b",
    _FLAGS,
)
# Clinician shorthand: "LDL trend, 5y", "A1c over 18mo" (never "a 5yo", "5y old": ages).
_TERSE_RE = re.compile(
    r"(?<![\w./-])(?P<num>\d{1,2})\s?(?P<unit>y|yrs?|mos?|wks?)(?![\w/-])(?!\s*old\b)", _FLAGS
)
_THIS_RE = re.compile(
    r"\b(?:(?:earlier\s+|so\s+far\s+)?(?:this|the\s+current|current)\s+(?:calendar\s+)?"
    r"(?P<unit>year|month|week)(?:\s+so\s+far|\s+to\s+date)?|year[\s-]to[\s-]date|ytd)\b",
    _FLAGS,
)
_DAY_RE = re.compile(
    r"\b(?:(?P<before>the\s+day\s+before\s+yesterday)|(?P<yesterday>yesterday)"
    r"|today|tonight|this\s+(?:morning|afternoon|evening))\b",
    _FLAGS,
)
_AGO_RE = re.compile(
    r"\b(?:(?P<mod>more\s+than|over|less\s+than|under|within|about|around|roughly"
    rf"|approximately|some)\s+)?(?P<num>{_NUM})\s+(?P<unit>{_UNIT})\s+ago\b",
    _FLAGS,
)
_LAST_MONTH_NAME_RE = re.compile(
    rf"\b(?:last|this\s+past)\s+(?P<m>{_MONTH})(?![\w/-]|\s*\d)", _FLAGS
)

# Whole-string parsers for one point, used on the groups captured above.
_ISO_RE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_US_RE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_MDY_RE = re.compile(rf"({_MONTH})\s+(\d{{1,2}}){_ORD},?\s+(\d{{4}})", _FLAGS)
_DMY_RE = re.compile(rf"(\d{{1,2}}){_ORD}\s+(?:of\s+)?({_MONTH}),?\s+(\d{{4}})", _FLAGS)
_MY_RE = re.compile(rf"({_MONTH}),?\s+(?:of\s+)?(\d{{4}})", _FLAGS)
_YM_RE = re.compile(r"(\d{4})-(\d{2})")
_DECADE_RE = re.compile(r"(?:the\s+)?'?(\d{2}|\d{4})'?s", _FLAGS)
_YEAR_ONLY_RE = re.compile(r"\d{4}")
_MONTH_ONLY_RE = re.compile(_MONTH, _FLAGS)
_AGO_ONLY_RE = re.compile(rf"(?P<num>{_NUM})\s+(?P<unit>{_UNIT})\s+ago", _FLAGS)
_REL_UNIT_RE = re.compile(r"(?P<rel>last|previous|this)\s+(?P<unit>year|month|week)", _FLAGS)

_UNITS = {
    "day": "day",
    "week": "week",
    "wk": "week",
    "month": "month",
    "mo": "month",
    "year": "year",
    "yr": "year",
    "decade": "decade",
}


# --- date arithmetic ----------------------------------------------------------------------


def _add_months(day: date, months: int) -> date:
    """``day`` moved by whole calendar months, clamped to the last day of the month."""
    year, month0 = divmod(day.year * 12 + day.month - 1 + months, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(day.day, last))


def _month_span(year: int, month: int) -> Span:
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _year_span(year: int) -> Span:
    return date(year, 1, 1), date(year, 12, 31)


def _unit_containing(day: date, unit: str) -> Span:
    """The calendar day, week (Monday–Sunday), month or year that contains ``day``."""
    if unit == "day":
        return day, day
    if unit == "week":
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=6)
    if unit == "month":
        return _month_span(day.year, day.month)
    return _year_span(day.year)


def _unit(word: str) -> str:
    """Canonical unit: ``"yrs"`` → ``"year"``, ``"Months"`` → ``"month"``."""
    word = word.lower()
    return _UNITS[word[:-1] if word.endswith("s") else word]


def _number(text: str | None) -> int:
    """``"3"``, ``"three"``, ``"a couple of"`` → 3, 3, 2; absent → 1."""
    if not text:
        return 1
    words = [w for w in text.lower().split() if w not in ("a", "of")] or ["a"]
    return int(words[0]) if words[0].isdigit() else NUMBER_WORDS[words[0]]


def _back(now: date, unit: str, count: int) -> date:
    """The day ``count`` units before ``now``."""
    if unit == "day":
        return now - timedelta(days=count)
    if unit == "week":
        return now - timedelta(weeks=count)
    if unit == "month":
        return _add_months(now, -count)
    # A year is 365 days, as the spec fixes "past year" to now - 365 days.
    return now - timedelta(days=365 * count * (10 if unit == "decade" else 1))


def _previous_unit(now: date, unit: str) -> Span:
    """The whole calendar unit before the one that contains ``now``."""
    if unit == "month":
        return _unit_containing(_add_months(now.replace(day=1), -1), "month")
    if unit in ("day", "week"):
        return _unit_containing(_back(now, unit, 1), unit)
    return _year_span(now.year - (10 if unit == "decade" else 1))


def _latest_month(now: date, month: int, strictly_before: bool) -> Span:
    """The most recent named month up to ``now`` (before the current month if strict)."""
    same_year = month < now.month or (month == now.month and not strictly_before)
    return _month_span(now.year if same_year else now.year - 1, month)


# --- points ------------------------------------------------------------------------------


def _absolute_point(text: str, now: date) -> Span | None:
    """Span of an absolute point: a day, month, year or decade. ``None`` if invalid."""
    if m := _ISO_RE.fullmatch(text):
        day = date(int(m[1]), int(m[2]), int(m[3]))
        return day, day
    if m := _US_RE.fullmatch(text):
        day = date(int(m[3]), int(m[1]), int(m[2]))
        return day, day
    if m := _MDY_RE.fullmatch(text):
        day = date(int(m[3]), _month_number(m[1]), int(m[2]))
        return day, day
    if m := _DMY_RE.fullmatch(text):
        day = date(int(m[3]), _month_number(m[2]), int(m[1]))
        return day, day
    if m := _MY_RE.fullmatch(text):
        return _month_span(int(m[2]), _month_number(m[1]))
    if m := _YM_RE.fullmatch(text):
        return _month_span(int(m[1]), int(m[2]))
    if m := _DECADE_RE.fullmatch(text):
        return _decade_span(m[1], now)
    if _YEAR_ONLY_RE.fullmatch(text):
        return _year_span(int(text))
    if _MONTH_ONLY_RE.fullmatch(text):
        return _latest_month(now, _month_number(text), strictly_before=False)
    return None


def _month_number(name: str) -> int:
    return MONTHS[name.lower().rstrip(".")]


def _decade_span(digits: str, now: date) -> Span | None:
    """``"1990"`` → the 1990s; ``"90"`` → the most recent decade ending in 90."""
    if len(digits) == 4:
        first = int(digits)
        if first % 10:
            return None
    else:
        first = 2000 + int(digits)
        if first > now.year:
            first -= 100
    return date(first, 1, 1), date(first + 9, 12, 31)


def _point(text: str, now: date) -> Span | None:
    """Span of any point: absolute, "3 years ago", "last year", "yesterday", a month name."""
    text = " ".join(text.split())
    if m := _AGO_ONLY_RE.fullmatch(text):
        unit = _unit(m["unit"])
        return _unit_containing(_back(now, unit, _number(m["num"])), unit)
    if m := _REL_UNIT_RE.fullmatch(text):
        if m["rel"].lower() == "this":
            return _unit_containing(now, m["unit"].lower())[0], now
        return _previous_unit(now, m["unit"].lower())
    if text.lower() == "yesterday":
        return now - timedelta(days=1), now - timedelta(days=1)
    if text.lower() == "today":
        return now, now
    try:
        return _absolute_point(text, now)
    except ValueError:  # 2021-02-30, 13/45/2020: looks like a date, is not one
        return None


# --- one handler per pattern ----------------------------------------------------------------


def _on_range(m: re.Match[str], now: date) -> Span | None:
    a = _point(m["a"] or m["a2"], now)
    b = _point(m["b"] or m["b2"], now)
    if a is None or b is None:
        return None
    if a[0] and b[1] and a[0] > b[1]:  # "between 2018 and 2015"
        a, b = b, a
    return a[0], b[1]


def _on_since_event(m: re.Match[str], now: date) -> Span | None:
    point = _point(m["a"], now)
    return None if point is None else (point[0], None)


def _on_bound(m: re.Match[str], now: date) -> Span | None:
    point = _point(m["a"], now)
    if point is None:
        return None
    first, last = point
    op = m["op"].lower().split()[0]
    if op in ("since", "starting", "beginning"):
        return first, None
    if op in ("after", "later"):
        return (last + timedelta(days=1) if last else None), None
    if op in ("before", "prior", "earlier"):
        return None, (first - timedelta(days=1) if first else None)
    return None, last  # until, till, up to, through: the point itself is included


def _on_point(m: re.Match[str], now: date) -> Span | None:
    return _point(m["a"], now)


def _on_rolling(m: re.Match[str], now: date) -> Span | None:
    unit = _unit(m["unit"])
    rolling = m["num"] or m["det"] or m["rel"].lower() == "past" or unit == "decade"
    if rolling:
        return _back(now, unit, _number(m["num"])), now
    return _previous_unit(now, unit)  # bare "last year" is the previous calendar year


def _on_terse(m: re.Match[str], now: date) -> Span | None:
    unit = "year" if m["unit"].lower() == "y" else _unit(m["unit"])
    return _back(now, unit, int(m["num"])), now


def _on_this(m: re.Match[str], now: date) -> Span | None:
    return _unit_containing(now, (m["unit"] or "year").lower())[0], now


def _on_day(m: re.Match[str], now: date) -> Span | None:
    day = now - timedelta(days=2 if m["before"] else 1 if m["yesterday"] else 0)
    return day, day


def _on_ago(m: re.Match[str], now: date) -> Span | None:
    unit = _unit(m["unit"])
    day = _back(now, unit, _number(m["num"]))
    mod = (m["mod"] or "").lower().split()
    if mod[:1] in (["more"], ["over"]):
        return None, day
    if mod[:1] in (["less"], ["under"], ["within"]):
        return day, now
    return _unit_containing(day, unit)


def _on_last_month_name(m: re.Match[str], now: date) -> Span | None:
    return _latest_month(now, _month_number(m["m"]), strictly_before=True)


_Handler = Callable[[re.Match[str], date], Span | None]
_RULES: tuple[tuple[re.Pattern[str], _Handler], ...] = (
    (_RANGE_RE, _on_range),
    (_BOUND_RE, _on_bound),
    (_SINCE_EVENT_RE, _on_since_event),
    (_IN_RE, _on_point),
    (_BARE_RE, _on_point),
    (_ROLLING_RE, _on_rolling),
    (_TERSE_RE, _on_terse),
    (_THIS_RE, _on_this),
    (_DAY_RE, _on_day),
    (_AGO_RE, _on_ago),
    (_LAST_MONTH_NAME_RE, _on_last_month_name),
)


def parse_time(question: str, now: date) -> TimeWindow | None:
    """The date window named in ``question``, relative to ``now``; ``None`` if there is none.

    Every pattern is tried and the longest match wins, so "since March 2020" beats the
    "March 2020" inside it. Ordering words alone ("my last visit") are not windows.
    """
    if isinstance(now, datetime):  # a datetime would leak times into the window
        now = now.date()
    best: tuple[tuple[int, int], re.Match[str], Span] | None = None
    for pattern, handler in _RULES:
        for m in pattern.finditer(question):
            span = handler(m, now)
            key = (m.end() - m.start(), -m.start())
            if span is not None and (best is None or key > best[0]):
                best = (key, m, span)
    if best is None:
        return None
    _, m, (start, end) = best
    return TimeWindow(start=start, end=end, phrase=m[0].strip())
