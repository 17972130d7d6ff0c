"""Read the knowledge files into one checked :class:`~ehrqa.knowledge.model.Knowledge`.

The files sit next to this module (package data). Each is read strictly: unknown keys,
wrong types, dangling concept names and rows without a source are errors that name the
file, the entry and what to change, so a reviewer's edit cannot silently drop knowledge.
"""

from __future__ import annotations

import csv
import functools
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ehrqa.knowledge.model import (
    COMPARATORS,
    SMOKING_STATES,
    ChildSeries,
    Concept,
    Cue,
    CueRule,
    Drug,
    DrugClass,
    EncounterClass,
    Knowledge,
    KnowledgeError,
    Monitor,
    OrganGroups,
    ReferenceRange,
    RiskFactors,
    ScreeningInterval,
    VaccineInterval,
)

KNOWLEDGE_DIR = Path(__file__).parent
# Concept files in the order their concepts are listed (the scanner's tie order).
CONCEPT_FILES = (
    "labs",
    "findings",
    "panels",
    "vitals",
    "surveys",
    "social",
    "conditions",
    "vaccines",
    "allergens",
    "procedures",
    "encounters",
)
MEDICATION_TYPES = ("MedicationRequest", "MedicationStatement")
CODE_PATTERNS = {
    "LOINC": re.compile(r"\d{1,7}-\d"),
    "SNOMED": re.compile(r"\d{6,18}"),
    "CVX": re.compile(r"\d{1,3}"),
    "RxNorm": re.compile(r"\d{1,8}"),
}
# Class members that become single-drug concepts: one or two plain words ("aspirin 81" and
# "ortho tri-cyclen" are display fragments, not ingredients).
_INGREDIENT_RE = re.compile(r"[a-z]+(?: [a-z]+)?")
_DOSE_RE = re.compile(r"\s+\d.*$")


class _Table:
    """One TOML table with its location, for typed reads that fail with a useful message."""

    def __init__(self, data: Any, file: str, where: str) -> None:
        if not isinstance(data, dict):
            raise KnowledgeError(f"{file}: {where} must be a table, got {type(data).__name__}")
        self.data: dict[str, Any] = data
        self.file = file
        self.where = where

    def fail(self, message: str) -> KnowledgeError:
        """An error located at this table."""
        return KnowledgeError(f"{self.file}: {self.where}: {message}")

    def only(self, *allowed: str) -> None:
        """Reject keys outside ``allowed`` (a typo would otherwise be ignored)."""
        extra = sorted(set(self.data) - set(allowed))
        if extra:
            raise self.fail(f"unknown key(s) {extra}; allowed: {list(allowed)}")

    def text(self, key: str, default: str | None = None) -> str:
        """A non-empty string value."""
        value = self.data.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{key!r} must be a non-empty string, got {value!r}")
        return value.strip()

    def texts(self, key: str, *, lower: bool = False) -> tuple[str, ...]:
        """A list of non-empty strings (lower case when ``lower``); missing = empty."""
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(f"{key!r} must be a list of non-empty strings, got {value!r}")
        if lower and any(v != v.lower() for v in value):
            raise self.fail(f"{key!r} must be lower case: {[v for v in value if v != v.lower()]}")
        return tuple(v.strip() for v in value)

    def number(self, key: str, default: float | None = None) -> float | None:
        """A number (int or float) or ``default`` when missing."""
        value = self.data.get(key, default)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise self.fail(f"{key!r} must be a number, got {value!r}")
        return None if value is None else float(value)

    def flag(self, key: str) -> bool:
        """A boolean, false when missing."""
        value = self.data.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(f"{key!r} must be true or false, got {value!r}")
        return value

    def rows(self, key: str) -> list[_Table]:
        """The array of tables ``[[key]]`` (required, non-empty)."""
        value = self.data.get(key)
        if not isinstance(value, list) or not value:
            raise self.fail(f"needs at least one [[{key}]] entry")
        return [_Table(v, self.file, f"[[{key}]] #{i + 1}{_label(v)}") for i, v in enumerate(value)]

    def table(self, key: str) -> _Table:
        """The sub-table ``[key]`` (missing = empty)."""
        return _Table(self.data.get(key, {}), self.file, f"[{key}]")


def _label(entry: Any) -> str:
    name = entry.get("name") or entry.get("code") if isinstance(entry, dict) else None
    name = name or (entry.get("vaccine") if isinstance(entry, dict) else None)
    return f" ({name!r})" if isinstance(name, str) else ""


def _read_toml(directory: Path, stem: str) -> _Table:
    path = directory / f"{stem}.toml"
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise KnowledgeError(f"{path.name}: knowledge file missing from {directory}") from None
    except tomllib.TOMLDecodeError as exc:
        raise KnowledgeError(f"{path.name}: not valid TOML: {exc}") from None
    return _Table(data, path.name, "top level")


# --- concept files ----------------------------------------------------------------------------


def _concepts(directory: Path, stem: str) -> list[Concept]:
    top = _read_toml(directory, stem)
    top.only("kind", "system", "resource_types", "category", "procedure_terms", "concept")
    kind, system = top.text("kind"), top.text("system")
    procedure_terms = (
        top.texts("procedure_terms", lower=True) if "procedure_terms" in top.data else ()
    )
    if system not in CODE_PATTERNS:
        raise top.fail(f"system {system!r} is not one of {sorted(CODE_PATTERNS)}")
    types = top.texts("resource_types")
    category = top.text("category") if "category" in top.data else None
    concepts = []
    for row in top.rows("concept"):
        row.only("name", "codes", "synonyms", "terms", "related", "diagnostic")
        name = row.text("name")
        codes = row.texts("codes")
        bad = [c for c in codes if not CODE_PATTERNS[system].fullmatch(c)]
        if bad:
            raise row.fail(f"codes {bad} are not {system} codes")
        terms = row.texts("terms", lower=True)
        if not terms:
            raise row.fail("'terms' needs at least one display substring")
        synonyms = (name, *row.texts("synonyms"))
        related = row.texts("related")
        diagnostic = row.data.get("diagnostic", False)
        if not isinstance(diagnostic, bool):
            raise row.fail(f"'diagnostic' must be true or false, got {diagnostic!r}")
        concepts.append(
            Concept(
                name,
                kind,
                system,
                frozenset(codes),
                terms,
                synonyms,
                types,
                category,
                related,
                procedure_terms,
                diagnostic,
            )
        )
    return concepts


def _drug_file(directory: Path) -> tuple[Any, ...]:
    top = _read_toml(directory, "drug_classes")
    top.only("class", "drug", "brands", "parents", "not_ingredients", "indications")
    classes = []
    for row in top.rows("class"):
        row.only("name", "synonyms", "members", "covers")
        classes.append(
            DrugClass(
                row.text("name"),
                row.texts("synonyms"),
                row.texts("members", lower=True),
                row.texts("covers"),
            )
        )
    drugs = []
    for row in top.rows("drug"):
        row.only("name", "classes", "names")
        drugs.append(Drug(row.text("name"), row.texts("classes"), row.texts("names", lower=True)))
    brands_table = top.table("brands")
    brands = {k: brands_table.text(k) for k in brands_table.data}
    parents_table = top.table("parents")
    parents = {k: parents_table.texts(k) for k in parents_table.data}
    not_ingredients = top.table("not_ingredients")
    not_ingredients.only("members")
    ind_table = top.table("indications")
    indications = {k: ind_table.texts(k) for k in ind_table.data}
    return classes, drugs, brands, parents, frozenset(not_ingredients.texts("members")), indications


def _drug_concepts(
    classes: list[DrugClass], brands: Mapping[str, str], not_ingredients: frozenset[str]
) -> list[Concept]:
    """One concept per drug class, then one per member ingredient (its brands folded in)."""
    concepts = [
        Concept(
            c.name,
            "drug_class",
            "RxNorm",
            frozenset(),
            c.members,
            (c.name, *c.synonyms),
            MEDICATION_TYPES,
        )
        for c in classes
    ]
    taken = {c.name for c in classes} | set(brands) | not_ingredients
    members = (m for c in classes for m in c.members)
    ingredients = dict.fromkeys(
        m for m in members if m not in taken and _INGREDIENT_RE.fullmatch(m)
    )
    for ingredient in ingredients:
        names = (ingredient, *(b for b, i in brands.items() if i == ingredient))
        concepts.append(
            Concept(ingredient, "drug", "RxNorm", frozenset(), names, names, MEDICATION_TYPES)
        )
    return concepts


def _cue_file(
    directory: Path,
) -> tuple[
    list[CueRule],
    dict[str, tuple[str, ...]],
    dict[str, Cue],
    dict[str, tuple[str, ...]],
    tuple[str, ...],
    OrganGroups,
]:
    top = _read_toml(directory, "cues")
    top.only("cue", "groups", "concept_cues", "group_leads", "unrecorded", "organ_groups")
    unrecorded = top.table("unrecorded")
    unrecorded.only("properties")
    properties = unrecorded.texts("properties", lower=True)
    organ_table = top.table("organ_groups")
    organ_table.only("phrases", "tests_before")
    organs = OrganGroups(
        organ_table.texts("phrases", lower=True), organ_table.texts("tests_before", lower=True)
    )
    rules = []
    for row in top.rows("cue"):
        row.only("phrases", "resource_types", "categories")
        cue = Cue(row.texts("resource_types"), row.texts("categories"))
        rules.append(CueRule(row.texts("phrases"), cue))
    groups_table = top.table("groups")
    groups = {k: groups_table.texts(k) for k in groups_table.data}
    concept_cues = {}
    for name, value in top.table("concept_cues").data.items():
        row = _Table(value, top.file, f"[concept_cues] {name!r}")
        row.only("resource_types", "categories")
        concept_cues[name] = Cue(row.texts("resource_types"), row.texts("categories"))
    leads_table = top.table("group_leads")
    leads = {phrase: leads_table.texts(phrase) for phrase in leads_table.data}
    for phrase, names in leads.items():
        for lead in names:
            if lead not in groups.get(phrase, ()):
                raise KnowledgeError(
                    f"{top.file}: [group_leads] {phrase!r}: {lead!r} must be one of the "
                    f"concepts of the [groups] phrase {phrase!r} "
                    f"({list(groups[phrase]) if phrase in groups else 'no such group phrase'})"
                )
    for phrase in organs.phrases:
        if phrase not in groups:
            raise KnowledgeError(
                f"{top.file}: [organ_groups] phrases: {phrase!r} is not a [groups] phrase"
            )
    return rules, groups, concept_cues, leads, properties, organs


# --- the tables for answers and decision support ----------------------------------------------


def _optional_float(cell: str, file: str, line: int, column: str) -> float | None:
    if not cell.strip():
        return None
    try:
        return float(cell)
    except ValueError:
        raise KnowledgeError(f"{file}: line {line}: {column} {cell!r} is not a number") from None


def _reference_ranges(directory: Path) -> list[ReferenceRange]:
    path = directory / "reference_ranges.csv"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KnowledgeError(f"{path.name}: knowledge file missing from {directory}") from None
    numbered = [
        (n, line) for n, line in enumerate(text.splitlines(), 1) if not line.startswith("#")
    ]
    numbered = [(n, line) for n, line in numbered if line.strip()]
    if not numbered:
        raise KnowledgeError(f"{path.name}: no header row")
    reader = csv.DictReader(line for _, line in numbered)
    expected = ["loinc", "low", "high", "unit", "sex", "age_min", "age_max", "label", "source"]
    if reader.fieldnames != expected:
        raise KnowledgeError(
            f"{path.name}: line {numbered[0][0]}: header must be {','.join(expected)}"
        )
    rows = []
    for (line, _), cells in zip(numbered[1:], reader, strict=True):
        if None in cells or any(v is None for v in cells.values()):
            raise KnowledgeError(f"{path.name}: line {line}: needs {len(expected)} columns")
        rows.append(_range_row(cells, path.name, line))
    return rows


def _range_row(cells: dict[str, str], file: str, line: int) -> ReferenceRange:
    def num(column: str) -> float | None:
        return _optional_float(cells[column], file, line, column)

    def fail(message: str) -> KnowledgeError:
        return KnowledgeError(f"{file}: line {line}: {message}")

    loinc = cells["loinc"].strip()
    if not CODE_PATTERNS["LOINC"].fullmatch(loinc):
        raise fail(f"loinc {loinc!r} is not a LOINC code")
    low, high = num("low"), num("high")
    if low is None and high is None:
        raise fail("a range needs a low or a high bound")
    if low is not None and high is not None and low > high:
        raise fail(f"low {low} is above high {high}")
    sex = cells["sex"].strip() or None
    if sex not in (None, "male", "female"):
        raise fail(f"sex {sex!r} must be male, female or empty")
    for column in ("unit", "label", "source"):
        if not cells[column].strip():
            raise fail(f"{column} is empty; every row needs a {column}")
    unit, *also = (u.strip() for u in cells["unit"].split("|"))
    if not unit or not all(also):
        raise fail(f"unit {cells['unit']!r} has an empty spelling")
    return ReferenceRange(
        loinc,
        low,
        high,
        unit,
        cells["label"].strip(),
        cells["source"].strip(),
        sex,
        num("age_min"),
        num("age_max"),
        tuple(also),
    )


def _monitors(directory: Path) -> list[Monitor]:
    top = _read_toml(directory, "monitoring")
    top.only("monitor")
    monitors = []
    for row in top.rows("monitor"):
        row.only(
            "condition",
            "measure",
            "loinc",
            "comparator",
            "target",
            "unit",
            "component",
            "source",
            "defines",
            "lasting",
            "becomes",
            "becomes_at",
            "becomes_source",
        )
        comparator = row.text("comparator")
        if comparator not in COMPARATORS:
            raise row.fail(f"comparator {comparator!r} must be one of {list(COMPARATORS)}")
        target = row.number("target")
        if target is None:
            raise row.fail("'target' is required")
        loinc = row.texts("loinc")
        component = row.text("component") if "component" in row.data else None
        if not loinc or (component is not None and component not in loinc):
            raise row.fail("'loinc' must list the codes, including the component's")
        becomes = row.text("becomes") if "becomes" in row.data else None
        becomes_at = row.number("becomes_at")
        becomes_source = row.text("becomes_source") if "becomes_source" in row.data else None
        if (becomes is None) != (becomes_at is None) or (becomes is None) != (
            becomes_source is None
        ):
            raise row.fail("'becomes', 'becomes_at' and 'becomes_source' go together")
        monitors.append(
            Monitor(
                row.text("condition"),
                row.text("measure"),
                loinc,
                comparator,
                target,
                row.text("unit"),
                row.text("source"),
                component,
                row.flag("defines"),
                row.flag("lasting"),
                becomes,
                becomes_at,
                becomes_source,
            )
        )
    return monitors


def _vaccine_intervals(directory: Path) -> list[VaccineInterval]:
    top = _read_toml(directory, "vaccine_intervals")
    top.only("interval")
    intervals = []
    for row in top.rows("interval"):
        row.only("vaccine", "years", "annual", "source")
        years, annual = row.number("years"), row.flag("annual")
        if annual and years is not None:
            raise row.fail("give 'years' or 'annual = true', not both")
        intervals.append(VaccineInterval(row.text("vaccine"), years, annual, row.text("source")))
    return intervals


def _screening_intervals(directory: Path) -> list[ScreeningInterval]:
    top = _read_toml(directory, "screening_intervals")
    top.only("interval")
    found = []
    for row in top.rows("interval"):
        row.only("screening", "years", "source", "min_age", "max_age", "sex")
        years = row.number("years")
        if years is None or years <= 0:
            raise row.fail("'years' must be a positive number")
        sex = row.text("sex") if "sex" in row.data else ""
        if sex not in ("", "male", "female"):
            raise row.fail(f"'sex' must be male or female, got {sex!r}")
        found.append(
            ScreeningInterval(
                row.text("screening"),
                years,
                row.text("source"),
                row.number("min_age"),
                row.number("max_age"),
                sex,
            )
        )
    return found


def _body_sites(
    directory: Path, concepts: Iterable[str]
) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    top = _read_toml(directory, "body_sites")
    top.only("sites", "implied")
    table = top.table("sites")
    sites = {}
    for word in table.data:
        if word != word.lower():
            raise KnowledgeError(f"{top.file}: [sites] {word!r} must be lower case")
        terms = table.texts(word, lower=True)
        if not terms:
            raise KnowledgeError(f"{top.file}: [sites] {word!r} lists no display term")
        sites[word] = terms
    implied_table = top.table("implied")
    implied = {}
    known = set(concepts)
    for name in implied_table.data:
        if name not in known:
            raise KnowledgeError(f"{top.file}: [implied] {name!r} is not a concept name")
        implied[name] = implied_table.texts(name, lower=True)
        if unknown := [w for w in implied[name] if w not in sites]:
            raise KnowledgeError(f"{top.file}: [implied] {name!r}: {unknown} not in [sites]")
    return sites, implied


CHILD_SCHEDULE_SOURCE = (
    "CDC Child and Adolescent Immunization Schedule by Age, United States, 2024 (Table 1)"
)


def _child_schedule(directory: Path) -> list[ChildSeries]:
    top = _read_toml(directory, "child_vaccines")
    top.only("series")
    found = []
    for row in top.rows("series"):
        row.only("vaccine", "label", "due")
        steps = row.data.get("due")
        if (
            not isinstance(steps, list)
            or not steps
            or not all(
                isinstance(s, list) and len(s) == 2 and all(type(n) is int and n > 0 for n in s)
                for s in steps
            )
        ):
            raise row.fail("'due' must list [age in months, doses] pairs of positive integers")
        due = tuple((int(a), int(d)) for a, d in steps)
        if [a for a, _ in due] != sorted({a for a, _ in due}) or [d for _, d in due] != sorted(
            {d for _, d in due}
        ):
            raise row.fail("'due' must rise in both age and doses")
        label = row.text("label") if "label" in row.data else ""
        found.append(ChildSeries(row.text("vaccine"), due, label))
    return found


def _risk_factors(directory: Path) -> list[RiskFactors]:
    top = _read_toml(directory, "risk_factors")
    top.only("risk")
    risks = []
    for row in top.rows("risk"):
        row.only("disease", "also", "factors", "source")
        risks.append(
            RiskFactors(
                row.text("disease"),
                row.texts("also", lower=True),
                row.texts("factors", lower=True),
                row.text("source"),
            )
        )
    return risks


def _social_findings(directory: Path) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    top = _read_toml(directory, "social_findings")
    top.only("social", "smoking")
    table = top.table("social")
    table.only("phrases")
    smoking = top.table("smoking")
    smoking.only(*SMOKING_STATES)
    states = {state: smoking.texts(state, lower=True) for state in SMOKING_STATES}
    return table.texts("phrases", lower=True), states


def _encounter_classes(directory: Path) -> list[EncounterClass]:
    top = _read_toml(directory, "encounter_classes")
    top.only("class")
    classes = []
    for row in top.rows("class"):
        row.only("code", "label", "phrases")
        code = row.text("code")
        if code != code.upper():
            raise row.fail(f"code {code!r} must be upper case (v3 ActCode)")
        classes.append(EncounterClass(code, row.text("label"), row.texts("phrases", lower=True)))
    return classes


# --- cross-file checks ---------------------------------------------------------------------------


def _require(names: set[str], refs: Iterable[tuple[str, str]], what: str) -> None:
    """Every ``(where, name)`` must name a known concept: a typo would drop knowledge."""
    missing = sorted({f"{where}: {name!r}" for where, name in refs if name not in names})
    if missing:
        raise KnowledgeError(f"unknown {what}: {'; '.join(missing)}")


def _check(kb: Knowledge) -> None:
    names = [c.name for c in kb.concepts]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise KnowledgeError(f"concept names must be unique across files; repeated: {twice}")
    known = set(names)
    _require(
        known, (("related of " + c.name, r) for c in kb.concepts for r in c.related), "concept"
    )
    _require(
        known, (("cues.toml [groups] " + p, n) for p, g in kb.groups.items() for n in g), "concept"
    )
    _require(known, (("cues.toml [concept_cues]", n) for n in kb.concept_cues), "concept")
    risk_names = (
        (f"risk_factors.toml {r.disease}", n)
        for r in kb.risks
        for n in (r.disease, *r.also, *r.factors)
    )
    _require(known, risk_names, "concept")
    _require(
        known, (("drug_classes.toml [brands] " + b, i) for b, i in kb.brands.items()), "concept"
    )
    conditions = {c.name for c in kb.concepts if c.kind == "condition"}
    _require(
        conditions,
        (
            ("drug_classes.toml [indications] " + d, c)
            for d, cs in kb.drug_indications.items()
            for c in cs
        ),
        "condition",
    )
    _require(conditions, (("monitoring.toml", m.condition) for m in kb.monitors), "condition")
    becomes = (("monitoring.toml becomes", m.becomes) for m in kb.monitors if m.becomes)
    _require(conditions, becomes, "condition")
    _require(known, (("monitoring.toml measure", m.measure) for m in kb.monitors), "concept")
    vaccines = {c.name for c in kb.concepts if c.kind == "vaccine"}
    _require(
        vaccines, (("vaccine_intervals.toml", v.vaccine) for v in kb.vaccine_intervals), "vaccine"
    )
    _require(vaccines, (("child_vaccines.toml", s.vaccine) for s in kb.child_schedule), "vaccine")
    procedures = {c.name for c in kb.concepts if c.kind == "procedure"}
    _require(
        procedures,
        (("screening_intervals.toml", i.screening) for i in kb.screening_intervals),
        "procedure",
    )
    for problem in drug_disagreements(kb):
        raise KnowledgeError(f"drug_classes.toml: {problem}")


def drug_disagreements(kb: Knowledge) -> list[str]:
    """Where the question classes and the drugs' own classes disagree.

    A drug whose classes (widened by ``[parents]``) include a question class, or one of the
    classes it ``covers``, must be one of that class's members, and a member that is a known
    drug must belong to the class that way. Brands count as their ingredient.
    """
    problems = []
    drug_by_name = {d.name: d for d in kb.drugs}
    alias = {n: d.name for d in kb.drugs for n in d.names} | dict(kb.brands)
    for cls in kb.drug_classes:
        wanted = {cls.name, *cls.covers}
        inside = {d.name for d in kb.drugs if wanted & set(kb.class_ancestors(d.classes))}
        # "aspirin 81" is aspirin at a dose: the member names the ingredient before the digits.
        plain = (_DOSE_RE.sub("", m) for m in cls.members)
        members = {alias.get(m, m) for m in plain}
        for name in sorted(inside - members):
            problems.append(f"{name} is a {cls.name} by its classes but not a member of it")
        for name in sorted(members & set(drug_by_name) - inside):
            own = kb.class_ancestors(drug_by_name[name].classes)
            problems.append(f"{name} is a member of {cls.name} but its classes are {list(own)}")
    return problems


@functools.cache
def load_knowledge(directory: Path | None = None) -> Knowledge:
    """Load and check every knowledge file of ``directory`` (default: the packaged files).

    Cached per directory. Raises :class:`KnowledgeError` naming the file and entry on any
    malformed or inconsistent content.
    """
    directory = directory or KNOWLEDGE_DIR
    concepts = [c for stem in CONCEPT_FILES for c in _concepts(directory, stem)]
    classes, drugs, brands, parents, not_ingredients, indications = _drug_file(directory)
    # A drug's other names ("topamax" for topiramate) name its ingredient's concept too.
    members = {m for c in classes for m in c.members}
    named = {n: d.name for d in drugs if d.name in members for n in d.names if n not in brands}
    concepts += _drug_concepts(classes, {**named, **brands}, not_ingredients)
    rules, groups, concept_cues, group_leads, properties, organs = _cue_file(directory)
    social, smoking = _social_findings(directory)
    sites, implied = _body_sites(directory, (c.name for c in concepts))
    kb = Knowledge(
        concepts=tuple(concepts),
        cues=tuple(rules),
        groups=groups,
        concept_cues=concept_cues,
        drug_classes=tuple(classes),
        drugs=tuple(drugs),
        brands=brands,
        class_parents=parents,
        not_ingredients=not_ingredients,
        drug_indications=indications,
        reference_ranges=tuple(_reference_ranges(directory)),
        monitors=tuple(_monitors(directory)),
        vaccine_intervals=tuple(_vaccine_intervals(directory)),
        encounter_classes=tuple(_encounter_classes(directory)),
        social_findings=social,
        smoking_states=smoking,
        risks=tuple(_risk_factors(directory)),
        child_schedule=tuple(_child_schedule(directory)),
        group_leads=group_leads,
        screening_intervals=tuple(_screening_intervals(directory)),
        body_sites=sites,
        implied_sites=implied,
        unrecorded_properties=properties,
        organ_groups=organs,
    )
    _check(kb)
    return kb
