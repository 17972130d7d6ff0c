"""Compact one-line renderings of FHIR R4 resources, and the text of attached notes.

A rendering is what a prompt shows for one record: ``[Type/id]``, the date (YYYY-MM-DD),
then the facts, joined by ``; ``. Code displays are kept exactly as coded (Synthea's
"(disorder)" suffixes included) because answers cite them verbatim and citation checks
compare strings. Every function here is pure and deterministic.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import re
from collections.abc import Callable, Sequence
from typing import Any

from ehrqa.core.errors import FhirValidationError
from ehrqa.fhir.elements import (
    Resolver,
    categories,
    codings,
    components,
    concept_label,
    element_value,
    end_date,
    first_string,
    format_number,
    main_codes,
    medication_codes,
    resolve_reference,
    resource_identity,
    start_date,
    status_of,
)
from ehrqa.fhir.record import SYSTEM_NAMES, Coding, Component

# The version of what this module renders. Stores keep the version their texts were
# rendered with and re-render every record's text (and its search index) when opened by
# code with a later one (ehrqa.store.rendering). Bump it, saying why below, whenever a
# change here (or in the fhir.elements readers used here) changes a rendered line or a
# note's text.
#   1: before versions were kept.
#   2: Patient lines name race and ethnicity.
#   3: claims name an insurer known only by reference (its Organization or Coverage).
RENDER_VERSION = 3
MAX_LINE_CHARS = 400
NOTE_CHARS = 300
ELLIPSIS = "…"

_BAD_BASE64 = "attachment data is not valid base64; re-encode the document or drop the attachment"
_TAG = re.compile(r"<[^>]*>")
_UNIT_WORDS = {
    "s": "second",
    "min": "minute",
    "h": "hour",
    "d": "day",
    "wk": "week",
    "mo": "month",
    "a": "year",
}
# Observations are normally final; anything else (preliminary, entered-in-error) matters.
_ROUTINE_OBSERVATION_STATUSES = frozenset({"final", "amended", "corrected"})

Renderer = Callable[[dict[str, Any], Resolver | None], str]


def render(resource: dict[str, Any], *, resolve: Resolver | None = None) -> str:
    """Render one FHIR resource as a compact line: ``[Type/id] YYYY-MM-DD facts``.

    ``resolve`` looks up referenced resources (a MedicationRequest's Medication, reason
    Conditions); without it references show their ``display``. Whitespace is collapsed
    and the line is cut to :data:`MAX_LINE_CHARS` with "…". Raises
    :class:`FhirValidationError` when ``resourceType`` or ``id`` is missing.
    """
    rtype, rid = resource_identity(resource)
    facts = _RENDERERS.get(rtype, _generic)(resource, resolve)
    return clip(collapse(f"[{rtype}/{rid}] {facts}"), MAX_LINE_CHARS)


def collapse(text: str) -> str:
    """Collapse every run of whitespace (newlines included) to one space."""
    return " ".join(text.split())


def clip(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, ending with "…" when cut."""
    if len(text) <= limit:
        return text
    return text[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS


def coding_label(coding: Coding) -> str:
    """``Display (LOINC 4548-4)``; unknown systems show the bare code."""
    system = SYSTEM_NAMES.get(coding.system)
    ref = f"{system} {coding.code}" if system and coding.code else coding.code
    if coding.display and ref:
        return f"{coding.display} ({ref})"
    return coding.display or ref


def decode_attachment_text(attachment: dict[str, Any]) -> str | None:
    """The text in an attachment's base64 ``data`` when its content type is ``text/*``.

    The ``charset`` parameter is honoured (UTF-8 when absent or unknown; undecodable bytes
    become U+FFFD). Returns ``None`` for other content types or when there is no inline
    data (a ``url`` is never fetched). Raises :class:`FhirValidationError` on bad base64.
    """
    if not isinstance(attachment, dict):
        return None
    content_type, data = attachment.get("contentType"), attachment.get("data")
    if not isinstance(content_type, str) or not isinstance(data, str) or not data:
        return None
    mime, _, params = content_type.partition(";")
    if not mime.strip().lower().startswith("text/"):
        return None
    try:
        raw = base64.b64decode(data)
    except (binascii.Error, ValueError) as error:
        raise FhirValidationError(_BAD_BASE64, path="data") from error
    return raw.decode(_charset(params), errors="replace").lstrip("\ufeff")


def _charset(params: str) -> str:
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            name = value.strip().strip("\"'")
            try:
                return codecs.lookup(name).name
            except LookupError:
                break
    return "utf-8"


def note_text(resource: dict[str, Any]) -> str | None:
    """The full text of a DocumentReference's content or a DiagnosticReport's presentedForm.

    Plain-text attachments are preferred, since a note often comes both as text and as
    HTML; HTML is reduced to its text. ``None`` for other types or when no attachment
    holds inline text.
    """
    rtype = resource.get("resourceType")
    if rtype == "DocumentReference":
        attachments = [
            (f"content[{i}].attachment", item.get("attachment"))
            for i, item in enumerate(_items(resource.get("content")))
            if isinstance(item, dict)
        ]
    elif rtype == "DiagnosticReport":
        forms = _items(resource.get("presentedForm"))
        attachments = [(f"presentedForm[{i}]", form) for i, form in enumerate(forms)]
    else:
        return None
    attachments.sort(key=lambda pair: not _content_type(pair[1]).startswith("text/plain"))
    for path, attachment in attachments:
        try:
            text = decode_attachment_text(_dict(attachment))
        except FhirValidationError as error:
            raise FhirValidationError(
                _BAD_BASE64, resource_type=str(rtype), path=f"{path}.data"
            ) from error
        if text and text.strip():
            is_html = _content_type(attachment).startswith("text/html")
            return html.unescape(_TAG.sub(" ", text)) if is_html else text
    return None


def _content_type(attachment: Any) -> str:
    value = attachment.get("contentType") if isinstance(attachment, dict) else None
    return value.strip().lower() if isinstance(value, str) else ""


# --- small pieces shared by the renderers -------------------------------------------------


def _line(when: str, *parts: str) -> str:
    body = "; ".join(part for part in parts if part)
    return f"{when} {body}" if when else body


def _day(value: Any) -> str:
    return value[:10] if isinstance(value, str) else ""


def _day_of(resource: dict[str, Any]) -> str:
    return _day(start_date(resource))


def _labelled(prefix: str, value: Any) -> str:
    return f"{prefix} {value}" if value else ""


def labelled(text: str, label: str) -> str | None:
    """The value a rendered line gives ``label`` ("…; insurer Aetna; …" → "Aetna"), the
    inverse of how lines are written; None when the line has no such field."""
    found = re.search(rf"; {re.escape(label)} ([^;]+)", text)
    return found.group(1).strip() if found else None


def _first_label(found: Sequence[Coding]) -> str:
    # A local code without a display says less than the next, displayed, coding.
    best = next((c for c in found if c.display), found[0] if found else None)
    return coding_label(best) if best else ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def _distinct(values: Sequence[str]) -> str:
    return ", ".join(dict.fromkeys(v for v in values if v))


def _status(resource: dict[str, Any]) -> str:
    return _labelled("status", status_of(resource))


def _number(value: Any) -> str:
    # bool is an int in Python, but a FHIR boolean is never a number.
    if not isinstance(value, int | float) or isinstance(value, bool):
        return ""
    return format_number(float(value))


def _quantity(quantity: Any) -> str:
    quantity = _dict(quantity)
    number = _number(quantity.get("value"))
    if not number:
        return ""
    unit = _text(quantity.get("unit")) or _text(quantity.get("code"))
    return f"{_text(quantity.get('comparator'))}{number} {unit}".strip()


def _money(money: Any) -> str:
    money = _dict(money)
    number = _number(money.get("value"))
    return f"{number} {_text(money.get('currency'))}".strip() if number else ""


def _value_text(value: float | None, value_text: str | None, unit: str | None) -> str:
    if value_text is not None:
        text = value_text
    elif value is not None:
        text = format_number(value)
    else:
        return ""
    return f"{text} {unit}" if text and unit else text


def _period(period: Any) -> str:
    start, end = _day(_dict(period).get("start")), _day(_dict(period).get("end"))
    if start and end:
        return f"{start} to {end}"
    return f"from {start}" if start else _labelled("until", end)


def _until(resource: dict[str, Any]) -> str:
    return _labelled("until", _day(end_date(resource)))


def _reasons(resource: dict[str, Any], resolve: Resolver | None) -> str:
    labels = [concept_label(concept) for concept in _items(resource.get("reasonCode"))]
    labels += _reference_labels(resource, resource.get("reasonReference"), resolve)
    return _labelled("reason", _distinct(labels))


def _reference_labels(resource: dict[str, Any], refs: Any, resolve: Resolver | None) -> list[str]:
    # A referenced Condition is shown by its code; unresolved, by the reference's display.
    labels: list[str] = []
    for ref in _items(refs):
        ref = _dict(ref)
        target = _dict(resolve_reference(resource, ref.get("reference"), resolve))
        labels.append(concept_label(target.get("code")) or _text(ref.get("display")))
    return labels


def _human_name(names: Any) -> str:
    candidates = [n for n in _items(names) if isinstance(n, dict)]
    official = [n for n in candidates if n.get("use") == "official"]
    name = (official or candidates or [{}])[0]
    if text := _text(name.get("text")):
        return text
    given = [g for g in _items(name.get("given")) if isinstance(g, str)]
    return " ".join([*given, _text(name.get("family"))]).strip()


# --- one renderer per resource type; each returns the line after "[Type/id] " -------------


def _observation(resource: dict[str, Any], resolve: Resolver | None) -> str:
    subject = _first_label(main_codes(resource, resolve)) or "observation"
    parts = components(resource)
    if parts:
        facts = f"{subject}: " + "; ".join(_component(part) for part in parts)
    elif value := _value_text(*element_value(resource)):
        facts = f"{subject} = {value}"
    else:
        facts = subject
    # "N" (normal) is the common case; only abnormal flags are worth the space.
    flags = [c.display or c.code for c in codings(resource.get("interpretation")) if c.code != "N"]
    status = status_of(resource)
    return _line(
        _day_of(resource),
        facts,
        _labelled("interpretation", _distinct(flags)),
        _labelled("absent", concept_label(resource.get("dataAbsentReason"))),
        _labelled("status", status if status not in _ROUTINE_OBSERVATION_STATUSES else None),
    )


def _component(part: Component) -> str:
    value = _value_text(part.value, part.value_text, part.unit)
    return f"{part.name} {value}".strip()


def _onset(resource: dict[str, Any]) -> str:
    onset = first_string(resource, (("onsetDateTime",), ("onsetPeriod", "start")))
    if onset:
        return f"onset {_day(onset)}"
    return _labelled("recorded", _day(first_string(resource, (("recordedDate",),))))


def _verification(resource: dict[str, Any]) -> str:
    found = codings(resource.get("verificationStatus"))
    code = found[0].code if found else ""
    return _labelled("verification", code if code != "confirmed" else "")


def _condition(resource: dict[str, Any], resolve: Resolver | None) -> str:
    abated = _day(end_date(resource))
    if not abated and isinstance(resource.get("abatementString"), str):
        abated = resource["abatementString"]
    resolved = _labelled("resolved", abated) or (
        "resolved" if resource.get("abatementBoolean") is True else ""
    )
    return _line(
        _onset(resource),
        _first_label(main_codes(resource)),
        _status(resource),
        _verification(resource),
        resolved,
    )


def _dosage(dosages: Any) -> str:
    dosage = next((d for d in _items(dosages) if isinstance(d, dict)), None)
    if dosage is None:
        return ""
    if text := _text(dosage.get("text")):
        return f"dosage {text}"
    dose = _dict(next(iter(_items(dosage.get("doseAndRate"))), None))
    as_needed = concept_label(dosage.get("asNeededCodeableConcept"))
    pieces = [
        _quantity(dose.get("doseQuantity") or dosage.get("dose")),
        _timing(dosage.get("timing")),
        concept_label(dosage.get("route")),
        f"as needed for {as_needed}" if as_needed else "",
        "as needed" if dosage.get("asNeededBoolean") is True else "",
    ]
    return _labelled("dosage", ", ".join(p for p in pieces if p))


def _timing(timing: Any) -> str:
    repeat = _dict(_dict(timing).get("repeat"))
    period, unit = repeat.get("period"), _UNIT_WORDS.get(repeat.get("periodUnit") or "")
    if not isinstance(period, int | float) or unit is None:
        return concept_label(_dict(timing).get("code"))
    frequency = repeat.get("frequency")
    frequency = frequency if isinstance(frequency, int) else 1
    times = {1: "once", 2: "twice"}.get(frequency, f"{frequency} times")
    if period == 1:
        return f"{times} per {unit}"
    return f"{times} every {format_number(float(period))} {unit}s"


def _medication(resource: dict[str, Any], resolve: Resolver | None) -> str:
    return _first_label(medication_codes(resource, resolve)) or "unknown medication"


def _medication_request(resource: dict[str, Any], resolve: Resolver | None) -> str:
    intent = _text(resource.get("intent"))
    supply = _dict(resource.get("dispenseRequest"))
    return _line(
        _day_of(resource),
        _medication(resource, resolve),
        _status(resource),
        _labelled("intent", intent if intent != "order" else ""),
        _dosage(resource.get("dosageInstruction")),
        _labelled("supply", _quantity(supply.get("expectedSupplyDuration"))),
        _reasons(resource, resolve),
    )


def _medication_statement(resource: dict[str, Any], resolve: Resolver | None) -> str:
    return _line(
        _day_of(resource),
        _medication(resource, resolve),
        _status(resource),
        _dosage(resource.get("dosage")),
        _until(resource),
        _reasons(resource, resolve),
    )


def _coded_event(resource: dict[str, Any], resolve: Resolver | None) -> str:
    # Immunization and Procedure: what was done, when, and why.
    sites = [concept_label(site) for site in _items(resource.get("bodySite"))]
    return _line(
        _day_of(resource),
        _first_label(main_codes(resource, resolve)),
        _status(resource),
        _labelled("status reason", concept_label(resource.get("statusReason"))),
        _labelled("site", _distinct(sites)),
        _until(resource),
        _reasons(resource, resolve),
    )


def _encounter(resource: dict[str, Any], resolve: Resolver | None) -> str:
    kind = concept_label(resource.get("class"))
    if not kind.lower().endswith("encounter"):
        kind = f"{kind} encounter".strip()
    what = _first_label(main_codes(resource, resolve))
    discharge = _dict(resource.get("hospitalization")).get("dischargeDisposition")
    return _line(
        _day_of(resource),
        f"{kind}: {what}" if what else kind,
        _reasons(resource, resolve),
        _labelled("period", _period(resource.get("period"))),
        _labelled("discharged to", concept_label(discharge)),
        _status(resource),
    )


def _allergy(resource: dict[str, Any], resolve: Resolver | None) -> str:
    kind = _text(resource.get("type")) or "allergy"
    substances = ", ".join(coding_label(c) for c in main_codes(resource))
    return _line(
        _onset(resource),
        f"{kind} to {substances}" if substances else kind,
        _labelled("category", ", ".join(categories(resource))),
        _labelled("criticality", _text(resource.get("criticality"))),
        _labelled("reactions", ", ".join(_reaction(r) for r in _items(resource.get("reaction")))),
        _status(resource),
        _verification(resource),
    )


def _reaction(reaction: Any) -> str:
    reaction = _dict(reaction)
    signs = _distinct([concept_label(m) for m in _items(reaction.get("manifestation"))])
    severity = _text(reaction.get("severity"))
    return f"{signs} ({severity})" if signs and severity else signs


def _report(resource: dict[str, Any], resolve: Resolver | None) -> str:
    count = len(_items(resource.get("result")))
    conclusions = [_text(resource.get("conclusion"))]
    conclusions += [concept_label(c) for c in _items(resource.get("conclusionCode"))]
    note = note_text(resource)
    return _line(
        _day_of(resource),
        _first_label(main_codes(resource, resolve)),
        f"{count} result{'s' if count != 1 else ''}" if count else "",
        _labelled("conclusion", _distinct(conclusions)),
        _status(resource),
        _labelled("report:", clip(collapse(note), NOTE_CHARS) if note else ""),
    )


def _care_plan(resource: dict[str, Any], resolve: Resolver | None) -> str:
    kinds = _distinct([c.display for c in codings(resource.get("category"))])
    head = " ".join(p for p in ("care plan", _text(resource.get("title"))) if p)
    activities = [_activity(a) for a in _items(resource.get("activity"))]
    return _line(
        _day_of(resource),
        f"{head}: {kinds}" if kinds else head,
        _labelled("activities", ", ".join(a for a in activities if a)),
        _labelled("period", _period(resource.get("period"))),
        _status(resource),
    )


def _activity(activity: Any) -> str:
    detail = _dict(_dict(activity).get("detail"))
    reference = _dict(_dict(activity).get("reference"))
    label = (
        concept_label(detail.get("code"))
        or _text(detail.get("description"))
        or _text(reference.get("display"))
    )
    status = _text(detail.get("status"))
    return f"{label} [{status}]" if label and status else label


def _document(resource: dict[str, Any], resolve: Resolver | None) -> str:
    kind = _first_label(main_codes(resource, resolve)) or "document"
    note = note_text(resource) or _text(resource.get("description"))
    snippet = clip(collapse(note), NOTE_CHARS)
    return _line(_day_of(resource), f"{kind}: {snippet}" if snippet else kind)


def _patient(resource: dict[str, Any], resolve: Resolver | None) -> str:
    deceased = _labelled("deceased", _day(resource.get("deceasedDateTime")))
    if not deceased and resource.get("deceasedBoolean") is True:
        deceased = "deceased"
    return _line(
        _day_of(resource),
        _human_name(resource.get("name")),
        _text(resource.get("gender")),
        _labelled("born", _day(resource.get("birthDate"))),
        deceased,
        _labelled("marital status", _marital(resource.get("maritalStatus"))),
        _labelled("lives in", _address(resource.get("address"))),
        _labelled("language", _language(resource.get("communication"))),
        _labelled("race", _us_core_text(resource, "race")),
        _labelled("ethnicity", _us_core_text(resource, "ethnicity")),
    )


def _us_core_text(resource: dict[str, Any], name: str) -> str:
    """The US Core race or ethnicity extension's text ("Not Hispanic or Latino"), else its
    first coding's display."""
    url = f"http://hl7.org/fhir/us/core/StructureDefinition/us-core-{name}"
    for extension in _items(resource.get("extension")):
        extension = _dict(extension)
        if extension.get("url") != url:
            continue
        parts = [_dict(part) for part in _items(extension.get("extension"))]
        for part in parts:
            if part.get("url") == "text" and isinstance(part.get("valueString"), str):
                return str(part["valueString"])
        for part in parts:
            display = _dict(part.get("valueCoding")).get("display")
            if isinstance(display, str) and display:
                return display
    return ""


# HL7 v3 MaritalStatus codes, for records that carry the code without a display or text.
_MARITAL = {
    "A": "annulled",
    "D": "divorced",
    "I": "interlocutory",
    "L": "legally separated",
    "M": "married",
    "P": "polygamous",
    "S": "never married",
    "T": "domestic partner",
    "U": "unmarried",
    "W": "widowed",
}


def _marital(concept: Any) -> str:
    """Marital status in words: the text or display, else the v3 code's meaning."""
    concept = _dict(concept)
    if isinstance(concept.get("text"), str) and len(concept["text"]) > 1:
        return str(concept["text"])
    for coding in codings(concept):
        if coding.display and len(coding.display) > 1:
            return coding.display
        if coding.code in _MARITAL:
            return _MARITAL[coding.code]
    return ""


def _address(addresses: Any) -> str:
    """The first address's city, state and country."""
    for address in _items(addresses):
        address = _dict(address)
        parts = [address.get(k) for k in ("city", "state", "country")]
        text = ", ".join(p for p in parts if isinstance(p, str) and p)
        if text:
            return text
    return ""


def _language(communication: Any) -> str:
    labels = [concept_label(_dict(c).get("language")) for c in _items(communication)]
    return _distinct([label for label in labels if label])


def _goal(resource: dict[str, Any], resolve: Resolver | None) -> str:
    targets = [_target(t) for t in _items(resource.get("target"))]
    addresses = _reference_labels(resource, resource.get("addresses"), resolve)
    return _line(
        _day_of(resource),
        f"goal: {concept_label(resource.get('description'))}",
        _labelled("targets", ", ".join(t for t in targets if t)),
        _labelled("addresses", _distinct(addresses)),
        _status(resource),
    )


def _target(target: Any) -> str:
    target = _dict(target)
    detail = _quantity(target.get("detailQuantity")) or _text(target.get("detailString"))
    due = _labelled("by", _day(target.get("dueDate")))
    return " ".join(p for p in (concept_label(target.get("measure")), detail, due) if p)


def _device(resource: dict[str, Any], resolve: Resolver | None) -> str:
    names = [_text(_dict(n).get("name")) for n in _items(resource.get("deviceName"))]
    kind = _first_label(main_codes(resource, resolve)) or _distinct(names)
    carrier = _dict(next(iter(_items(resource.get("udiCarrier"))), None))
    udi = carrier.get("carrierHRF") or carrier.get("deviceIdentifier")
    return _line(
        _day_of(resource),
        f"device: {kind}" if kind else "device",
        _labelled("UDI", _text(udi)),
        _status(resource),
        _labelled("expires", _day(resource.get("expirationDate"))),
    )


def _imaging(resource: dict[str, Any], resolve: Resolver | None) -> str:
    series = [_dict(s) for s in _items(resource.get("series"))]
    count = resource.get("numberOfInstances")
    instances = f"{count} instance{'s' if count != 1 else ''}" if isinstance(count, int) else ""
    return _line(
        _day_of(resource),
        _first_label(main_codes(resource, resolve)) or "imaging study",
        _labelled("modality", _distinct([concept_label(s.get("modality")) for s in series])),
        _labelled("body site", _distinct([concept_label(s.get("bodySite")) for s in series])),
        instances,
        _status(resource),
    )


def _supply(resource: dict[str, Any], resolve: Resolver | None) -> str:
    item = _dict(resource.get("suppliedItem"))
    what = _first_label(main_codes(resource, resolve)) or "item"
    return _line(
        _day_of(resource),
        f"supplied {what}",
        _labelled("quantity", _quantity(item.get("quantity"))),
        _status(resource),
    )


def _care_team(resource: dict[str, Any], resolve: Resolver | None) -> str:
    members: list[str] = []
    for participant in _items(resource.get("participant")):
        participant = _dict(participant)
        role = _distinct([concept_label(r) for r in _items(participant.get("role"))])
        who = _text(_dict(participant.get("member")).get("display"))
        members.append(f"{who} ({role})" if who and role else who or role)
    name = _text(resource.get("name"))
    return _line(
        _day_of(resource),
        " ".join(p for p in ("care team", name) if p),
        _labelled("members", _distinct(members)),
        _labelled("period", _period(resource.get("period"))),
        _reasons(resource, resolve),
        _status(resource),
    )


def _claim(resource: dict[str, Any], resolve: Resolver | None) -> str:
    kind = "claim" if resource.get("resourceType") == "Claim" else "explanation of benefit"
    items = [concept_label(_dict(i).get("productOrService")) for i in _items(resource.get("item"))]
    return _line(
        _day_of(resource),
        f"{kind} {concept_label(resource.get('type'))}".strip(),
        _labelled("insurer", _distinct(insurers(resource, resolve))),
        _labelled("items", _distinct(items)),
        _claim_total(resource.get("total")),
        _labelled("outcome", _text(resource.get("outcome"))),
        _status(resource),
    )


def insurers(resource: dict[str, Any], resolve: Resolver | None = None) -> list[str]:
    """Who pays a Claim or ExplanationOfBenefit: its insurer, else its coverages' names.

    A reference without a display is followed with ``resolve``: the insurer Organization's
    name, a Coverage's payor (or its type).
    """
    insurer = _dict(resource.get("insurer"))
    names = [_text(insurer.get("display")) or _organization_name(insurer, resolve)]
    for entry in _items(resource.get("insurance")):
        coverage = _dict(_dict(entry).get("coverage"))
        names.append(_text(coverage.get("display")) or _coverage_payor(coverage, resolve))
    named = [n for n in names if n]
    return list(dict.fromkeys(named))


def stated_insurers(resource: dict[str, Any], text: str) -> list[str]:
    """:func:`insurers`, else the insurers a record's rendered line names ("; insurer
    Aetna"), which ingestion found by following references."""
    if names := insurers(resource):
        return names
    stated = labelled(text, "insurer")
    return [n.strip() for n in stated.split(", ")] if stated else []


def _organization_name(reference: dict[str, Any], resolve: Resolver | None) -> str:
    target = resolve(reference["reference"]) if resolve and reference.get("reference") else None
    return _text(_dict(target).get("name")) if target else ""


def _coverage_payor(reference: dict[str, Any], resolve: Resolver | None) -> str:
    coverage = resolve(reference["reference"]) if resolve and reference.get("reference") else None
    if not coverage:
        return ""
    for payor in _items(coverage.get("payor")):
        payor = _dict(payor)
        if name := _text(payor.get("display")) or _organization_name(payor, resolve):
            return name
    return concept_label(coverage.get("type"))


def _claim_total(total: Any) -> str:
    # Claim.total is one Money; ExplanationOfBenefit.total is a list of {category, amount}.
    if isinstance(total, dict) and "value" in total:
        return _labelled("total", _money(total))
    parts = []
    for entry in _items(total):
        amount = _money(_dict(entry).get("amount"))
        category = concept_label(_dict(entry).get("category"))
        parts.append(f"{category} {amount}".strip() if amount else "")
    return _labelled("total", ", ".join(p for p in parts if p))


def _generic(resource: dict[str, Any], resolve: Resolver | None) -> str:
    name = resource.get("name")
    return _line(
        _day_of(resource),
        _first_label(main_codes(resource, resolve)),
        _text(name) or _human_name(name),
        _status(resource),
    )


_RENDERERS: dict[str, Renderer] = {
    "Observation": _observation,
    "Condition": _condition,
    "MedicationRequest": _medication_request,
    "MedicationStatement": _medication_statement,
    "MedicationAdministration": _medication_statement,
    "Immunization": _coded_event,
    "Procedure": _coded_event,
    "Encounter": _encounter,
    "AllergyIntolerance": _allergy,
    "DiagnosticReport": _report,
    "CarePlan": _care_plan,
    "DocumentReference": _document,
    "Patient": _patient,
    "Goal": _goal,
    "Device": _device,
    "ImagingStudy": _imaging,
    "SupplyDelivery": _supply,
    "CareTeam": _care_team,
    "Claim": _claim,
    "ExplanationOfBenefit": _claim,
}
