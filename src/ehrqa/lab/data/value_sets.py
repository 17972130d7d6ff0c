"""The template generator's own value sets: each concept by its codes, with phrasings of its own.

``value_sets.toml`` (next to this module) names every concept the generator asks about — labs,
vital signs, conditions, drug classes, vaccines, encounter kinds, procedures, report panels —
by code lists (LOINC, SNOMED CT, RxNorm, CVX) and by the words patients and clinicians use.
It is deliberately independent of the selector's knowledge files: gold relevance is decided
by these codes, and questions use these phrasings, so the benchmark measures what the
selector does not know instead of echoing its lexicon. Nothing under :mod:`ehrqa.lab.data`
imports :mod:`ehrqa.select`, :mod:`ehrqa.answer`, :mod:`ehrqa.cds` or :mod:`ehrqa.knowledge`
(a test walks every module's imports).

The file is read strictly: unknown keys, missing fields and dangling names are a
:class:`~ehrqa.core.errors.ConfigError` naming the entry and what to change.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ehrqa.core.errors import ConfigError
from ehrqa.fhir.record import Record
from ehrqa.lab.data.phrasings import Names

VALUE_SETS_PATH = Path(__file__).with_name("value_sets.toml")
SECTIONS = (
    "measures",
    "lab_groups",
    "conditions",
    "drug_classes",
    "vaccines",
    "encounters",
    "procedures",
    "reports",
    "facts",
)
# Keys each section allows besides label/patient/clinician; `codes` is required where listed.
_OPTIONAL: dict[str, frozenset[str]] = {
    "measures": frozenset({"kind", "codes", "words"}),
    "lab_groups": frozenset({"members"}),
    "conditions": frozenset({"codes", "words", "common"}),
    "drug_classes": frozenset({"codes", "ingredients"}),
    "vaccines": frozenset({"codes", "plural"}),
    "encounters": frozenset({"codes", "classes", "any"}),
    "procedures": frozenset({"codes"}),
    "reports": frozenset({"codes"}),
    "facts": frozenset({"codes", "words"}),
}
MEASURE_KINDS = ("lab", "vital")
_WORD_RE = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class ValueSet:
    """One concept: its codes, the words that also reveal it, and how people name it."""

    key: str
    names: Names
    codes: frozenset[str] = frozenset()
    words: tuple[str, ...] = ()
    kind: str = ""
    common: bool = False
    plural: tuple[str, str] | None = None
    classes: frozenset[str] = frozenset()
    any: bool = False
    members: tuple[str, ...] = ()
    ingredients: tuple[str, ...] = ()


@dataclass(frozen=True)
class ValueSets:
    """Every value set of the file, by section and key, in file order."""

    measures: Mapping[str, ValueSet]
    lab_groups: Mapping[str, ValueSet]
    conditions: Mapping[str, ValueSet]
    drug_classes: Mapping[str, ValueSet]
    vaccines: Mapping[str, ValueSet]
    encounters: Mapping[str, ValueSet]
    procedures: Mapping[str, ValueSet]
    reports: Mapping[str, ValueSet]
    facts: Mapping[str, ValueSet]
    unrecorded_labs: tuple[str, ...]

    def every(self) -> Iterable[tuple[str, ValueSet]]:
        """``(section, value set)`` for every entry, in file order."""
        for section in SECTIONS:
            for value_set in getattr(self, section).values():
                yield section, value_set


# --- reading the file ------------------------------------------------------------------------


def _strings(where: str, key: str, value: Any, *, required: bool = True) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where}: {key} must be a list of non-empty strings, got {value!r}")
    if required and not value:
        raise ConfigError(f"{where}: {key} must list at least one entry")
    return tuple(value)


def _entry(section: str, key: str, data: Any) -> ValueSet:
    where = f"value_sets.toml [{section}.{key}]"
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = set(data) - {"label", "patient", "clinician"} - _OPTIONAL[section]
    if unknown:
        allowed = ", ".join(sorted({"label", "patient", "clinician", *_OPTIONAL[section]}))
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {allowed}")
    label = data.get("label")
    if not isinstance(label, str) or not label.strip():
        raise ConfigError(f"{where}: label must be a non-empty string")
    names = Names(
        label,
        _strings(where, "patient", data.get("patient")),
        _strings(where, "clinician", data.get("clinician")),
    )
    needs_codes = "codes" in _OPTIONAL[section] and not data.get("any")
    codes = _strings(where, "codes", data.get("codes", []), required=needs_codes)
    plural = _strings(where, "plural", data["plural"]) if "plural" in data else None
    if plural is not None and len(plural) != 2:
        raise ConfigError(f"{where}: plural must be [patient form, clinician form]")
    kind = data.get("kind", "")
    if section == "measures" and kind not in MEASURE_KINDS:
        raise ConfigError(f"{where}: kind must be one of {', '.join(MEASURE_KINDS)}")
    for flag in ("common", "any"):
        if not isinstance(data.get(flag, False), bool):
            raise ConfigError(f"{where}: {flag} must be true or false")

    def optional(name: str) -> tuple[str, ...]:
        return _strings(where, name, data.get(name, []), required=False)

    return ValueSet(
        key=key,
        names=names,
        codes=frozenset(codes),
        words=tuple(w.lower() for w in optional("words")),
        kind=kind,
        common=bool(data.get("common", False)),
        plural=(plural[0], plural[1]) if plural else None,
        classes=frozenset(optional("classes")),
        any=bool(data.get("any", False)),
        members=_strings(where, "members", data.get("members"), required=True)
        if section == "lab_groups"
        else (),
        ingredients=tuple(i.lower() for i in optional("ingredients")),
    )


def parse_value_sets(data: Mapping[str, Any]) -> ValueSets:
    """Check and type the parsed TOML; :class:`ConfigError` names the first problem."""
    unknown = set(data) - {*SECTIONS, "unrecorded_labs"}
    if unknown:
        raise ConfigError(
            f"value_sets.toml: unknown section(s) {sorted(unknown)}; known: {', '.join(SECTIONS)}"
        )
    tables: dict[str, dict[str, ValueSet]] = {}
    for section in SECTIONS:
        raw = data.get(section, {})
        if not isinstance(raw, dict) or not raw:
            raise ConfigError(f"value_sets.toml: [{section}] must hold at least one entry")
        tables[section] = {key: _entry(section, key, value) for key, value in raw.items()}
    unrecorded = _strings("value_sets.toml", "unrecorded_labs", data.get("unrecorded_labs", []))
    for where, names in [
        *((f"[lab_groups.{k}] members", g.members) for k, g in tables["lab_groups"].items()),
        ("unrecorded_labs", unrecorded),
    ]:
        missing = [n for n in names if n not in tables["measures"]]
        if missing:
            raise ConfigError(f"value_sets.toml {where}: {missing} are not [measures] entries")
    return ValueSets(**tables, unrecorded_labs=unrecorded)


@functools.cache
def load_value_sets(path: Path = VALUE_SETS_PATH) -> ValueSets:
    """The value sets of ``path`` (the packaged file by default), read and checked once."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"value set file {path} not found; reinstall ehrqa") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return parse_value_sets(data)


# --- matching records --------------------------------------------------------------------------


def words(text: str) -> list[str]:
    """Lower-case words of ``text``; apostrophes vanish ("Alzheimer's" → "alzheimers")."""
    return _WORD_RE.findall(text.lower().replace("’", "").replace("'", ""))


@functools.cache
def _word_pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    keys = sorted({" ".join(words(p)) for p in phrases} - {""}, key=len, reverse=True)
    if not keys:
        return None
    return re.compile(rf"(?<![^\W_])(?:{'|'.join(map(re.escape, keys))})(?![^\W_])")


def _says(phrases: tuple[str, ...], text: str) -> bool:
    """Whether ``text`` holds one of ``phrases`` as whole words."""
    pattern = _word_pattern(phrases)
    return pattern is not None and pattern.search(" ".join(words(text))) is not None


def has_code(value_set: ValueSet, record: Record) -> bool:
    """Whether one of the record's codes is in the value set."""
    return any(c.code in value_set.codes for c in record.codes)


def mentions(value_set: ValueSet, record: Record) -> bool:
    """Whether the record is about the concept by code or by one of its guard words.

    Used only to prove absence ("No", "not recorded"): a product or condition code missing
    from the list must not make a recorded thing look absent.
    """
    if has_code(value_set, record):
        return True
    displays = " ".join(c.display for c in record.codes) or record.text
    return _says((*value_set.words, *value_set.ingredients), displays)


def in_drug_class(value_set: ValueSet, record: Record) -> bool:
    """Whether a medication record is of the class: a listed RxNorm code or ingredient name."""
    if has_code(value_set, record):
        return True
    return _says(value_set.ingredients, " ".join(c.display for c in record.codes))


def is_encounter_of(value_set: ValueSet, record: Record) -> bool:
    """Whether an Encounter is of the kind: any encounter, a type code, or its class code."""
    if value_set.any or has_code(value_set, record):
        return True
    kind = record.resource.get("class")
    return isinstance(kind, dict) and kind.get("code") in value_set.classes
