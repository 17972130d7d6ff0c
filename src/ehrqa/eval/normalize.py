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

from ehrqa.answer.verify import CITATION_RE, FHIR_TYPES, find_dates
from ehrqa.text.numbers import NOISY_DECIMALS, decimals, display_number, rounds_to
from ehrqa.text.units import readable_units, unit_decimals

# ---------------------------------------------------------------------------- citations

_BARE_REF_RE = re.compile(
    r"\b(?:" + "|".join(sorted(map(re.escape, FHIR_TYPES), key=len, reverse=True)) + r")"
    r"/[A-Za-z0-9\-.]{1,64}"
)


def _is_citation(match: re.Match[str]) -> bool:
    parts = re.split(r"\s*[,;]\s*", match.group(1).strip())
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


# ---------------------------------------------------------------------------- numbers

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


def _blank_dates(text: str) -> tuple[list[str], str]:
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
    return _blank_dates(text.replace("\u2212", "-"))[0]


def numbers_in(text: str) -> list[str]:
    """Canonical numbers of ``text`` outside its dates, number words zero–twenty included."""
    _, rest = _blank_dates(text.replace("\u2212", "-"))
    numbers = [n for n in map(normalize_number, NUMBER_RE.findall(rest)) if n is not None]
    numbers += [NUMBER_WORDS[w] for w in re.findall(r"[a-z]+", rest.lower()) if w in NUMBER_WORDS]
    return numbers


# ---------------------------------------------------------------------------- units

# Canonical unit → spellings (already lower-cased, brackets and spaces removed).
_UNIT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "%": ("percent", "percentage", "pct"),
    "mmhg": ("millimetersofmercury", "millimetresofmercury"),
    "/min": (
        "permin",
        "perminute",
        "/minute",
        "beats/min",
        "breaths/min",
        "bpm",
        "beatsperminute",
        "breathsperminute",
        "beats/minute",
        "breaths/minute",
    ),
    "kg/m2": ("kilogramspersquaremeter", "kg/squaremeter"),
    "kg": ("kilogram", "kilograms", "kgs"),
    "g": ("gram", "grams"),
    "mg": ("milligram", "milligrams"),
    "cm": ("centimeter", "centimeters", "centimetre", "centimetres"),
    "m": ("meter", "meters", "metre", "metres"),
    "in": ("in_i", "inch", "inches"),
    "lb": ("lb_av", "lbs", "pound", "pounds"),
    "cel": ("°c", "degc", "celsius", "degreescelsius", "degreesc", "ºc"),
    "degf": ("°f", "fahrenheit", "degreesfahrenheit", "degreesf", "ºf"),
    "mg/dl": (),
    "g/dl": (),
    "mmol/l": (),
    "mmol/mol": (),
    "mg/g": (),
    "ku/l": (),
    "u/l": (),
    "ng/ml": (),
    "pmol/l": (),
    "ml": ("milliliter", "milliliters"),
    "l": (),
    "fl": ("femtoliter", "femtoliters", "femtolitre", "femtolitres"),
    "pg": ("picogram", "picograms"),
    "10*3/ul": ("k/ul", "thousand/ul", "10*9/l"),
    "10*6/ul": ("m/ul", "million/ul", "10*12/l"),
    "ml/min/1.73_m2": ("ml/min/1.73m2",),
    "score": (),
    "#": (),
    "ph": (),
    "h": ("hour", "hours", "hr", "hrs"),
    "days": ("day", "d"),
    "weeks": ("week", "wk", "wks"),
    "years": ("year", "yr", "yrs"),
}
_CANONICAL_UNIT = {s: canon for canon, spellings in _UNIT_SYNONYMS.items() for s in spellings}
KNOWN_UNITS = frozenset(_UNIT_SYNONYMS)
# Units that are also English words or letters: counted only right after a number.
_AMBIGUOUS_UNITS = frozenset({"in", "m", "g", "l", "h", "days", "weeks", "years", "#"})
_UNIT_LIKE_RE = re.compile(r"[^\s]*[/\[{%*^][^\s]*")
_SUPERSCRIPTS = str.maketrans({"²": "2", "³": "3", "⁶": "6", "⁹": "9", "µ": "u", "μ": "u"})


def normalize_unit(unit: str) -> str:
    """Canonical spelling of a unit: lower case, no spaces, brackets or braces, synonyms merged.

    ``"mm[Hg]"``, ``"mmHg"`` and ``"mm Hg"`` → ``"mmhg"``; ``"kg/m²"`` → ``"kg/m2"``;
    ``"percent"`` → ``"%"``; ``"{score}"`` → ``"score"``; ``"×10^3/µL"`` and ``"×10³/µL"``
    → ``"10*3/ul"``.
    Unknown units are returned in that normal form.
    """
    # "×10³/µL" is 10*3/uL: a superscript after 10 is its exponent.
    text = re.sub(r"10([²³⁶⁹])", r"10*\1", unit.strip().lower()).translate(_SUPERSCRIPTS)
    text = re.sub(r"(?<=\d)\^", "*", text).replace("^", "")
    text = re.sub(r"[\s\[\]{}]", "", text)
    text = re.sub(r"^[x×]\s*(?=10\*)", "", text)
    return _CANONICAL_UNIT.get(text, text)


_EDGE_PUNCT = " \t.,;:!?()\"'"
_LEADING_NUMBER_RE = re.compile(r"^(?:[-+]?\d[\d.,]*(?:/(?=\d))?)+")


def unit_present(expected: str, answer: str) -> bool:
    """Whether ``answer`` states the unit ``expected`` in any spelling :func:`normalize_unit`
    merges ("°C" for ``Cel``, "mmHg" for ``mm[Hg]``); ambiguous short units only after a
    number."""
    want = normalize_unit(expected)
    raw = [t.strip(_EDGE_PUNCT) for t in answer.split()]
    tokens = [t for t in raw if t]
    for i, token in enumerate(tokens):
        glued = _LEADING_NUMBER_RE.sub("", token)
        after_number = glued != token or (i > 0 and bool(numbers_in(tokens[i - 1])))
        for n in (1, 2, 3):
            span = tokens[i : i + n]
            if len(span) < n:
                break
            forms = {normalize_unit(" ".join(span)), normalize_unit(" ".join([glued, *span[1:]]))}
            if want in forms and (want not in _AMBIGUOUS_UNITS or after_number):
                return True
    return False


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
    days, rest = _blank_dates(expected)
    if len(days) == 1 and not rest.strip(_EDGE_PUNCT):
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
