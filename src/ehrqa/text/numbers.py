"""Numbers as a reader expects them, and the check that a shown number is a record's value.

Synthetic records carry measurement noise as 10+ decimals ("1.8575090940655805 mg/dL"). A
reader wants "1.9 mg/dL": a value with more than two decimals is shown with one decimal
(two below 1, and as many as its unit says: whole mmHg, see ``text/units.csv``). A value
a record states with two decimals or fewer is shown exactly as recorded.

:func:`rounds_to` is the one rule by which a shown number counts as a cited value: equal,
or that value correctly rounded to the shown decimals when the value itself had more than
two (so "14" never stands for a recorded 14.1, and an invented "200" never for 199.38).
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from ehrqa.text.dates import blank_dates

NOISY_DECIMALS = 2  # values with more decimals than this are measurement noise to round


def exact_number(value: float) -> str:
    """The number as the record states it: ``101.0`` → ``101``, ``67.2`` → ``67.2``."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def decimals(number: str) -> int:
    """How many decimals ``number`` (a plain decimal string) is written with."""
    return len(number.split(".", 1)[1]) if "." in number else 0


def _places(value: float) -> int:
    # One decimal, as labs and vitals are usually reported; two below 1 (0.85 mg/dL).
    return 2 if abs(value) < 1 else 1


def _quantize(value: float | Decimal, places: int) -> Decimal:
    return Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def display_number(value: float, places: int | None = None) -> str:
    """``value`` as an answer shows it: exact when recorded with ≤ 2 decimals, else rounded.

    ``199.37575576513606`` → ``199.4``, ``96.76005855002018`` → ``96.8``,
    ``0.8575090940655805`` → ``0.86``, ``7.8`` → ``7.8``, ``101.0`` → ``101``. ``places``
    overrides the size rule for a measure shown in whole units (blood pressure in mmHg).
    """
    exact = exact_number(value)
    if decimals(exact) <= NOISY_DECIMALS or "e" in exact.lower():
        return exact
    shown = _quantize(value, _places(value) if places is None else places)
    text = format(shown, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def rounds_to(shown: str, recorded: float) -> bool:
    """Whether the number ``shown`` states the ``recorded`` value (see the module doc)."""
    try:
        stated = Decimal(shown)
    except InvalidOperation:
        return False
    if stated == Decimal(str(recorded)) or float(stated) == recorded:
        return True
    if decimals(exact_number(recorded)) <= NOISY_DECIMALS:
        return False
    places = decimals(shown)
    return places < decimals(exact_number(recorded)) and _quantize(recorded, places) == stated


_NUMBER_BODY = r"[-+]?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?)"
# Not after a letter, digit, "." or "," (so "A1c" and "x10" hold no number); may be followed
# by letters ("5mg") but not by more digits.
NUMBER_RE = re.compile(rf"(?<![\w.,]){_NUMBER_BODY}(?!\d|[.,]\d)")
_WHOLE_NUMBER_RE = re.compile(rf"{_NUMBER_BODY}")
# fmt: off
_NUMBER_WORD_LIST = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
)
# fmt: on
NUMBER_WORDS = {word: str(i) for i, word in enumerate(_NUMBER_WORD_LIST)}


def normalize_number(text: str) -> str | None:
    """Canonical decimal string of a number, or None when ``text`` is not one number.

    ``"7.80"`` → ``"7.8"``, ``"1,234"`` → ``"1234"``, ``"7,8"`` → ``"7.8"`` (decimal comma),
    ``"+3"`` → ``"3"``, ``"-0.0"`` → ``"0"``, ``"1e3"`` → None.
    """
    text = text.strip().replace("\u2212", "-")
    if not _WHOLE_NUMBER_RE.fullmatch(text):
        return None
    if re.fullmatch(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?", text):
        text = text.replace(",", "")
    else:
        text = text.replace(",", ".")
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid numbers
        return None
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def numbers_in(text: str) -> list[str]:
    """Canonical numbers of ``text`` outside its dates, number words zero–twenty included."""
    _, rest = blank_dates(text.replace("\u2212", "-"))
    numbers = [n for n in map(normalize_number, NUMBER_RE.findall(rest)) if n is not None]
    numbers += [NUMBER_WORDS[w] for w in re.findall(r"[a-z]+", rest.lower()) if w in NUMBER_WORDS]
    return numbers
