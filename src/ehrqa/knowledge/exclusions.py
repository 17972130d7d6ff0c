"""Sex- and age-specific exclusions of diagnoses, read from ``exclusions.toml``.

:func:`load_exclusions` reads the file strictly (unknown keys, bad sexes, inverted age
bounds and rows without a term, reason or source are errors naming the entry);
:func:`excluded` says which rule, if any, rules a diagnosis out for a patient.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from ehrqa.knowledge.loader import KNOWLEDGE_DIR, _read_toml, _Table
from ehrqa.knowledge.model import KnowledgeError

SEXES = ("male", "female")


@dataclass(frozen=True)
class Exclusion:
    """A diagnosis that applies only to one sex and/or within an age band."""

    name: str
    terms: tuple[str, ...]
    reason: str
    source: str
    sex: str | None = None
    age_min: int | None = None
    age_max: int | None = None

    def names(self, diagnosis: str) -> bool:
        """Whether ``diagnosis`` is named by one of the terms (matched at a word start)."""
        lowered = diagnosis.lower()
        return any(re.search(rf"\b{re.escape(term)}", lowered) for term in self.terms)

    def rules_out(self, sex: str | None, age: int | None) -> str | None:
        """Why a patient of ``sex`` and ``age`` cannot have the diagnosis, or None.

        An unknown sex (None, "other", "unknown") or age never rules anything out.
        """
        if self.sex is not None and sex in SEXES and sex != self.sex:
            return f"{self.reason}; the patient is {sex}"
        if age is not None and self.age_min is not None and age < self.age_min:
            return f"{self.reason}; the patient is {age}"
        if age is not None and self.age_max is not None and age > self.age_max:
            return f"{self.reason}; the patient is {age}"
        return None


def excluded(
    diagnosis: str, sex: str | None, age: int | None, rules: tuple[Exclusion, ...] | None = None
) -> tuple[Exclusion, str] | None:
    """The first rule that rules ``diagnosis`` out for the patient, with the reason."""
    for rule in load_exclusions() if rules is None else rules:
        if rule.names(diagnosis) and (why := rule.rules_out(sex, age)) is not None:
            return rule, why
    return None


@functools.cache
def load_exclusions(directory: Path = KNOWLEDGE_DIR) -> tuple[Exclusion, ...]:
    """Every rule of ``exclusions.toml`` in ``directory``, checked (cached)."""
    top = _read_toml(directory, "exclusions")
    top.only("exclusion")
    return tuple(_row(row) for row in top.rows("exclusion"))


def _row(row: _Table) -> Exclusion:
    row.only("name", "terms", "sex", "age_min", "age_max", "reason", "source")
    terms = row.texts("terms", lower=True)
    if not terms:
        raise row.fail("'terms' must name at least one word start")
    sex = row.data.get("sex")
    if sex is not None and sex not in SEXES:
        raise row.fail(f"'sex' must be one of {list(SEXES)}, got {sex!r}")
    age_min, age_max = _age(row, "age_min"), _age(row, "age_max")
    if sex is None and age_min is None and age_max is None:
        raise row.fail("give 'sex', 'age_min' or 'age_max': a rule must exclude someone")
    if age_min is not None and age_max is not None and age_min > age_max:
        raise row.fail(f"'age_min' {age_min} is above 'age_max' {age_max}")
    return Exclusion(
        row.text("name"), terms, row.text("reason"), row.text("source"), sex, age_min, age_max
    )


def _age(row: _Table, key: str) -> int | None:
    value = row.number(key)
    if value is not None and (value < 0 or not value.is_integer()):
        raise KnowledgeError(f"{row.file}: {row.where}: {key!r} must be whole years ≥ 0")
    return None if value is None else int(value)
