"""Normalisation for answer accuracy: is an expected atomic value present in an answer?

A QA item's ``answer_values`` are atomic facts (``"7.8"``, ``"%"``, ``"2024-11-02"``,
``"Prediabetes"``, ``"yes"``). :func:`value_present` decides whether one of them is stated in
a generated answer. Citations (``[Observation/abc]``) and bare references are removed from
the answer first, because resource ids contain digits. The expected value is classified in
this order, and matched as follows:

- **empty**: always present.
- **boolean** (``yes``/``no``/``true``/``false``): the answer's *first* polar word decides
  (``yes``/``true`` versus ``no``/``not``/``none``/``never``/``false``), so "Yes, there is
  no record of …" says yes.
- **date** (ISO day ``2024-11-02``, datetime, year-month ``2024-11``, or any form
  :func:`dates_in` reads): a day is matched by the same day written as ``2024-11-02``,
  ``November 2, 2024``, ``Nov 2, 2024``, ``2 November 2024`` or ``11/02/2024`` (US order); a
  year-month is matched by ``November 2024``, ``2024-11`` or any day in that month. A month
  does not match an expected day.
- **number**: some number of the answer (outside its dates) has exactly the same value:
  ``7.80`` == ``7.8``, ``1,234`` == ``1234`` (a comma before exactly-three-digit groups is a
  thousands separator, any other comma a decimal comma), ``7.8%`` contains ``7.8``, or a
  more precise statement of it: a gold ``1.9`` (a record's value rounded) is matched by
  ``1.86`` or ``1.9``, but never by a less precise ``2``; ``16.43`` never by ``16.4``, and
  a whole ``61`` by ``61`` or one decimal (``60.7``), not ``60.73``. A gold value with measurement
  noise (more than two decimals: ``37.30773577693237``) is also matched by that value
  correctly rounded to one decimal or more (``37.3``, ``37.31``; not ``37`` or ``37.4``),
  the rounding answers show (:func:`ehrqa.text.numbers.rounds_to`). A number may
  be glued to a unit (``5mg``) but not to a preceding letter (``A1c`` holds no ``1``).
  Number words zero–twenty count (``three`` == ``3``); a four-digit year (1800–2199) is
  also matched by the year of a date in the answer.
- **unit** (a known unit, or a space-free string with ``/ [ { % * ^``): some 1–3-token span
  of the answer, with any leading number removed, normalises (:func:`normalize_unit`) to the
  same unit: ``mm[Hg]`` ~ ``mmHg`` ~ ``mm Hg``; ``kg/m2`` ~ ``kg/m²``; ``%`` ~ ``percent``;
  ``/min`` ~ ``beats per minute``; case is ignored. Short units that are also words
  (``in``) count only right after a number.
- **numbers or dates with text** (``7.8 %``, ``120/80 mm[Hg]``, ``Stage 3``): every number
  and date present, and the rest (a unit or a name) present.
- **name**: every word token of the expected value occurs in the answer (case-insensitive,
  accents folded, a trailing plural ``s`` ignored). Parenthesised and bracketed parts of the
  expected value are optional, so ``Prediabetes (finding)`` is matched by "prediabetes" and
  ``Prediabetes`` by "prediabetes (finding)".
"""

from __future__ import annotations

import re
import unicodedata
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from ehrqa.text.citations import CITATION_RE, FHIR_TYPES, citation_parts
from ehrqa.text.dates import blank_dates, dates_in
from ehrqa.text.numbers import (
    NOISY_DECIMALS,
    NUMBER_RE,
    decimals,
    display_number,
    normalize_number,
    numbers_in,
    rounds_to,
)
from ehrqa.text.units import (
    EDGE_PUNCT,
    KNOWN_UNITS,
    normalize_unit,
    readable_units,
    unit_decimals,
    unit_present,
)

# ---------------------------------------------------------------------------- citations

_BARE_REF_RE = re.compile(
    r"\b(?:" + "|".join(sorted(map(re.escape, FHIR_TYPES), key=len, reverse=True)) + r")"
    r"/[A-Za-z0-9\-.]{1,64}"
)


def _is_citation(match: re.Match[str]) -> bool:
    parts = citation_parts(match.group(1))
    return all(p.isdigit() or p.split("/", 1)[0] in FHIR_TYPES for p in parts)


def strip_citations(text: str) -> str:
    """Remove ``[Type/id]`` / ``[3]`` citations and bare ``Type/id`` references from ``text``.

    Bracketed text that is not a citation (``mm[Hg]``) is kept. Spaces left before
    punctuation are tidied.
    """
    text = CITATION_RE.sub(lambda m: " " if _is_citation(m) else m.group(0), text)
    text = _BARE_REF_RE.sub(" ", text)
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", text))
    return text.strip()


def tokenize(text: str) -> list[str]:
    """Word tokens for METEOR: numbers (``7.8``, ``1,234``), words, single punctuation marks."""
    return re.findall(r"\d+(?:[.,]\d+)*|\w+|[^\w\s]", text)


# ---------------------------------------------------------------------------- numbers, units

# Numbers, dates and units are read by ehrqa.text (numbers_in, dates_in, normalize_unit,
# unit_present), which the answer checks share with these metrics.
_UNIT_LIKE_RE = re.compile(r"[^\s]*[/\[{%*^][^\s]*")

# ---------------------------------------------------------------------------- names, booleans

_OPTIONAL_PARTS_RE = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_POLAR = {
    "yes": True,
    "true": True,
    "no": False,
    "not": False,
    "none": False,
    "never": False,
    "false": False,
}


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _word_tokens(text: str) -> set[str]:
    return {
        t[:-1] if len(t) > 3 and t.endswith("s") else t
        for t in re.findall(r"[a-z0-9]+", _fold(text))
    }


def _name_present(expected: str, answer: str) -> bool:
    core = _OPTIONAL_PARTS_RE.sub(" ", expected)
    want = _word_tokens(core) or _word_tokens(expected)
    return bool(want) and want <= _word_tokens(answer)


def _polarity(text: str) -> bool | None:
    for word in re.findall(r"[a-z]+", _fold(text)):
        if word in _POLAR:
            return _POLAR[word]
    return None


# ---------------------------------------------------------------------------- value_present


def _number_present(number: str, answer: str) -> bool:
    found = numbers_in(answer)
    if number in found:
        return True
    # A more precise statement of the same value: "1.86" states a gold "1.9" (the gold is
    # the record's value rounded); a less precise one ("2" for "1.9") does not.
    if any(_rounds_down_to(candidate, number) for candidate in found):
        return True
    # A gold value with measurement noise ("37.30773577693237") is stated by that value
    # correctly rounded ("37.3"): the one rule the verifier accepts (text.numbers.rounds_to).
    if decimals(number) > NOISY_DECIMALS and any(
        (decimals(c) >= 1 or _shown_whole(c, float(number), answer)) and rounds_to(c, float(number))
        for c in found
    ):
        return True
    is_year = number.isdigit() and len(number) == 4 and 1800 <= int(number) <= 2199
    return is_year and any(day[:4] == number for day in dates_in(answer))


def _shown_whole(shown: str, recorded: float, answer: str) -> bool:
    """Whether a whole ``shown`` is how the product writes the noisy ``recorded`` value.

    That is its display rule (text.numbers): one decimal whose trailing zero is dropped
    ("4" for 4.0259, "118" for 117.993), or whole units where the unit says so ("131/80
    mmHg" for 131.31/80.31: text/units.csv).
    """
    if display_number(recorded) == shown:
        return True
    after = re.search(rf"(?<![\d.]){re.escape(shown)}(?:/\d+)?\s*([^\s\d\[(.,;:]+)", answer)
    return after is not None and after.group(1) in _WHOLE_UNITS


# Readers' spellings of the units whose values are shown in whole numbers (mmHg, /min).
_WHOLE_UNITS = frozenset(
    reader for code, reader in readable_units().items() if unit_decimals(code) == 0
)


def _rounds_down_to(precise: str, number: str) -> bool:
    """Whether ``precise``, written with more decimals than ``number``, rounds to it.

    A whole ``number`` is stated only by a one-decimal value ("60.7" for a gold "61", a
    value shown to one decimal where the gold rounds to units), never by a long one: a
    whole number may be a value recorded exactly ("16" breaths), which "16.43" is not.
    """
    places = decimals(number)
    if decimals(precise) <= places or (places == 0 and decimals(precise) != 1):
        return False
    step = Decimal(1).scaleb(-places)
    try:
        return Decimal(precise).quantize(step, rounding=ROUND_HALF_UP) == Decimal(number)
    except InvalidOperation:
        return False


def _date_present(day: str, answer: str) -> bool:
    return any(found == day or found.startswith(day + "-") for found in dates_in(answer))


def value_present(expected: str, answer: str) -> bool:
    """True when the atomic value ``expected`` is stated in ``answer`` (see module docs)."""
    expected = expected.strip()
    answer = strip_citations(answer)
    if not expected:
        return True
    if expected.lower() in _POLAR and expected.lower() not in {"not", "none", "never"}:
        return _polarity(answer) == _POLAR[expected.lower()]
    days, rest = blank_dates(expected)
    if len(days) == 1 and not rest.strip(EDGE_PUNCT):
        return _date_present(days[0], answer)
    number = normalize_number(expected)
    if number is not None:
        return _number_present(number, answer)
    if normalize_unit(expected) in KNOWN_UNITS:
        return unit_present(expected, answer)
    if _UNIT_LIKE_RE.fullmatch(expected) and not NUMBER_RE.search(expected):
        return unit_present(expected, answer) or _name_present(expected, answer)
    numbers = NUMBER_RE.findall(rest)
    if days or numbers:
        found = all(_date_present(day, answer) for day in days) and all(
            _number_present(normalize_number(n) or n, answer) for n in numbers
        )
        remainder = NUMBER_RE.sub(" ", rest).strip(" \t.,;:!?\"'/-")
        return found and (not remainder or value_present(remainder, answer))
    return _name_present(expected, answer)
