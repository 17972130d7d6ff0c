"""CDS Hooks 2.0 (https://cds-hooks.hl7.org/2.0/): services, request checks, cards, feedback.

Everything here is library code that the HTTP routes (:mod:`ehrqa.api.hooks_routes`) call:

* :func:`discovery` — the ``GET /cds-services`` document.
* :func:`parse_request` — a request body checked against the service's hook, or a
  :class:`CdsRequestError` naming what is wrong.
* :func:`hook_context` — the patient context from the prefetch (normalised with
  :func:`ehrqa.fhir.normalize.normalize`) and, for what the prefetch leaves out, the record
  store; :class:`PrefetchRequiredError` (HTTP 412) when neither knows the patient.
* :func:`cards` — the cards for a checked request: medication-safety problems
  (:mod:`ehrqa.meds.safety`) and local protocols from the document library, when there is one.
* :func:`parse_feedback` and :class:`FeedbackStore` — card outcomes, kept in SQLite.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from ehrqa.cds.match import content_words
from ehrqa.cds.sources import Library
from ehrqa.core.config import private_dir, private_file, warn_if_shared
from ehrqa.core.errors import EhrqaError, FhirValidationError, NotFoundError, StoreError
from ehrqa.fhir.normalize import normalize
from ehrqa.fhir.record import Record
from ehrqa.meds.context import PatientContext, context_from_records, context_from_store
from ehrqa.meds.safety import (
    SafetyWarning,
    check_current_medications,
    check_medication,
    drugs_of,
)
from ehrqa.store.base import RecordStore
from ehrqa.store.migrations import Migration, SqliteDatabase, migrate
from ehrqa.store.rows import from_row

SUMMARY_LIMIT = 140  # the spec: "<140-character summary"
SAFETY_LABEL = "ehrqa medication safety"
PROTOCOL_LABEL = "ehrqa local protocols"
TOPIC_SYSTEM = "urn:ehrqa:cds-topic"
OVERRIDE_SYSTEM = "urn:ehrqa:cds-override-reason"
# A protocol hit must be at least this similar (cosine, MiniLM) to be shown as a card.
MIN_PROTOCOL_SIMILARITY = 0.3
MAX_CONDITION_CARDS = 8
# Words that name no clinical topic on their own, so sharing one is no evidence of a match.
_GENERIC = (
    "acute chronic disease disorder finding situation syndrome stage type primary secondary"
    " essential protocol management pathway guideline guidance care treatment"
)
GENERIC_WORDS = frozenset(_GENERIC.split())
EXCERPT_CHARS = 600
FEEDBACK_FILE = "cds_feedback.sqlite3"

PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}&clinical-status=active",
    "medications": "MedicationRequest?patient={{context.patientId}}&status=active",
    "allergies": "AllergyIntolerance?patient={{context.patientId}}",
    "labs": "Observation?patient={{context.patientId}}&category=laboratory&_sort=-date&_count=50",
}
# The resource types each prefetch key stands for: keys the client leaves out are read
# from the record store instead, when it knows the patient.
PREFETCH_TYPES = {
    "patient": ("Patient",),
    "conditions": ("Condition",),
    "medications": ("MedicationRequest", "MedicationStatement"),
    "allergies": ("AllergyIntolerance",),
    "labs": ("Observation",),
}
OVERRIDE_REASONS = (
    ("benefit-outweighs-risk", "Benefit outweighs the risk"),
    ("already-aware", "Already aware; monitoring in place"),
    ("data-incorrect", "The recorded data is incorrect"),
)
_REF_RE = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")


class CdsRequestError(EhrqaError):
    """A CDS Hooks request or feedback body is malformed (HTTP 400)."""

    status_code = 400


class PrefetchRequiredError(CdsRequestError):
    """Neither the prefetch nor the record store holds the patient (HTTP 412)."""

    status_code = 412


@dataclass(frozen=True)
class CdsService:
    """One service of the discovery document."""

    id: str
    hook: str
    title: str
    description: str
    prefetch: dict[str, str] = field(default_factory=lambda: dict(PREFETCH))

    def to_dict(self) -> dict[str, Any]:
        """The service as the discovery document lists it."""
        return {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "prefetch": dict(self.prefetch),
        }


SERVICES: tuple[CdsService, ...] = (
    CdsService(
        "ehrqa-patient-view",
        "patient-view",
        "ehrqa medication safety and local protocols",
        "Checks the patient's current medicines against their allergies, each other, kidney "
        "function and active problems, and links the local protocol for each active problem.",
    ),
    CdsService(
        "ehrqa-order-select",
        "order-select",
        "ehrqa medication order check",
        "Checks each selected draft MedicationRequest against the patient's allergies, "
        "current medicines, kidney function and active problems, with the local guidance.",
    ),
)


def discovery() -> dict[str, Any]:
    """The discovery document: ``{"services": [...]}``."""
    return {"services": [s.to_dict() for s in SERVICES]}


def get_service(service_id: str) -> CdsService:
    """The service ``service_id``; NotFoundError listing the services otherwise."""
    for service in SERVICES:
        if service.id == service_id:
            return service
    known = ", ".join(s.id for s in SERVICES)
    raise NotFoundError(f"no CDS service {service_id!r}; available: {known}")


# --- requests --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HookRequest:
    """A checked CDS Hooks request."""

    service: CdsService
    hook_instance: str
    patient_id: str
    user_id: str
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None
    fhir_server: str | None = None
    selections: tuple[str, ...] = ()
    draft_orders: tuple[dict[str, Any], ...] = ()


def _require_str(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CdsRequestError(f"{where}{key} is required and must be a non-empty string")
    return value


def _optional_str(data: dict[str, Any], key: str, where: str = "") -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise CdsRequestError(f"{where}{key} must be a string, got {type(value).__name__}")
    return value


def parse_request(service_id: str, body: Any) -> HookRequest:
    """Check a request body for the service ``service_id``.

    NotFoundError for an unknown service; CdsRequestError naming the first problem for a
    malformed body, a hook that is not the service's, a ``hookInstance`` that is not a
    UUID, a missing ``context.patientId``/``userId``, or bad order-select ``draftOrders``
    or ``selections``.
    """
    service = get_service(service_id)
    if not isinstance(body, dict):
        raise CdsRequestError("the request body must be a JSON object")
    hook = _require_str(body, "hook", "")
    if hook != service.hook:
        raise CdsRequestError(f"service {service.id} answers hook {service.hook!r}, not {hook!r}")
    instance = _require_str(body, "hookInstance", "")
    try:
        uuid.UUID(instance)
    except ValueError as exc:
        raise CdsRequestError(f"hookInstance must be a UUID, got {instance!r}") from exc
    context = body.get("context")
    if not isinstance(context, dict):
        raise CdsRequestError("context is required and must be a JSON object")
    patient_id = _require_str(context, "patientId", "context.").removeprefix("Patient/")
    user_id = _require_str(context, "userId", "context.")
    if not _REF_RE.match(user_id):
        raise CdsRequestError(
            f"context.userId must be a reference like Practitioner/123, got {user_id!r}"
        )
    _optional_str(context, "encounterId", "context.")
    prefetch = body.get("prefetch")
    if prefetch is not None and not isinstance(prefetch, dict):
        raise CdsRequestError("prefetch must be a JSON object of resources")
    request = HookRequest(
        service,
        instance,
        patient_id,
        user_id,
        context,
        prefetch,
        _optional_str(body, "fhirServer"),
    )
    if service.hook == "order-select":
        request = _with_orders(request, context)
    return request


def _with_orders(request: HookRequest, context: dict[str, Any]) -> HookRequest:
    """The request with its checked order-select ``draftOrders`` and ``selections``."""
    orders = _bundle_resources(context.get("draftOrders"), "context.draftOrders")
    refs = {f"{r.get('resourceType')}/{r.get('id')}" for r in orders}
    selections = context.get("selections")
    if not isinstance(selections, list) or not all(isinstance(s, str) for s in selections):
        raise CdsRequestError("context.selections is required and must be a list of Type/id")
    for selection in selections:
        if selection not in refs:
            raise CdsRequestError(
                f"context.selections names {selection!r}, which is not in context.draftOrders"
            )
    return replace(request, selections=tuple(selections), draft_orders=tuple(orders))


def _bundle_resources(bundle: Any, where: str) -> list[dict[str, Any]]:
    """The resources of a Bundle, each with a resourceType and an id."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise CdsRequestError(f"{where} must be a FHIR Bundle")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise CdsRequestError(f"{where}.entry must be a list")
    resources = []
    for n, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not resource.get("resourceType"):
            raise CdsRequestError(f"{where}.entry[{n}] has no resource with a resourceType")
        if not isinstance(resource.get("id"), str) or not resource["id"]:
            raise CdsRequestError(f"{where}.entry[{n}] {resource['resourceType']} has no id")
        resources.append(resource)
    return resources


def prefetch_records(request: HookRequest) -> list[Record]:
    """The prefetched resources of the request's patient, normalised.

    Each value is a resource, a searchset Bundle or null; OperationOutcomes (a failed
    prefetch) are skipped, and so are resources of another patient.
    """
    records = []
    for key, value in (request.prefetch or {}).items():
        if value is None:
            continue
        if not isinstance(value, dict) or not value.get("resourceType"):
            raise CdsRequestError(f"prefetch.{key} must be a FHIR resource, a Bundle or null")
        resources = (
            _bundle_resources(value, f"prefetch.{key}")
            if value["resourceType"] == "Bundle"
            else [value]
        )
        for resource in resources:
            if resource["resourceType"] == "OperationOutcome":
                continue
            try:
                record = normalize(resource)
            except FhirValidationError as exc:
                raise CdsRequestError(f"prefetch.{key}: {exc}") from exc
            if record.patient_id in (None, request.patient_id):
                records.append(record)
    return records


def hook_context(
    request: HookRequest, store: RecordStore | None, now: date
) -> tuple[PatientContext, bool]:
    """The patient context of a request, and whether the record store contributed to it.

    Prefetched resources come first; the types of the prefetch keys the client did not
    send come from the store when it knows the patient. PrefetchRequiredError when neither
    holds the patient.
    """
    records = prefetch_records(request)
    in_store = store is not None and _store_has(store, request.patient_id)
    if store is not None and in_store:
        sent = set(request.prefetch or {})
        missing = {t for key, types in PREFETCH_TYPES.items() if key not in sent for t in types}
        stored = context_from_store(store, request.patient_id, now)
        records += [
            r for r in [stored.patient, *stored.records()] if r and r.resource_type in missing
        ]
    elif not records:
        raise PrefetchRequiredError(
            f"patient {request.patient_id!r} is neither in the prefetch nor in the record store: "
            "send the prefetch templates of GET /cds-services, or ingest the patient "
            "(ehrqa ingest)"
        )
    return context_from_records(records, request.patient_id, now), in_store


def _store_has(store: RecordStore, patient_id: str) -> bool:
    try:
        store.patient(patient_id)
    except NotFoundError:
        return False
    return True


# --- cards -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardLinks:
    """How cards link to records and chunks: the service's base URL, and which records it
    can serve (those from the record store; prefetched ones live in the EHR)."""

    base_url: str
    linkable: frozenset[str] = frozenset()

    def record(self, ref: str) -> str | None:
        """The URL of a record, when this service can show it."""
        return f"{self.base_url}/v1/records/{ref}" if ref in self.linkable else None

    def chunk(self, chunk_id: str) -> str:
        """The URL of a document chunk."""
        return f"{self.base_url}/v1/docs/chunks/{quote(chunk_id, safe='')}"


def shorten(text: str, limit: int = SUMMARY_LIMIT - 1) -> str:
    """``text`` cut at a word to at most ``limit`` characters, with an ellipsis if cut."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"


def _card_uuid(request: HookRequest, *parts: str) -> str:
    """A stable card id: the same request and problem give the same uuid (for feedback)."""
    name = "|".join((request.service.id, request.hook_instance, *parts))
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:ehrqa:cds:{name}"))


def _record_line(ref: str, records: dict[str, Record]) -> str:
    record = records.get(ref)
    if record is None:
        return f"- `{ref}`"
    value = f" = {record.value:g} {record.unit or ''}".rstrip() if record.value is not None else ""
    day = f" ({record.day})" if record.day else ""
    return f"- `{ref}`: {record.display}{value}{day}"


# The heading of a warning card's detail: what kind of safety check raised it.
KIND_HEADINGS = {
    "allergy": "allergy check",
    "interaction": "interaction check",
    "renal": "kidney-function (renal dose) check",
    "condition": "condition check",
    "duplicate": "duplicate-therapy check",
}


def warning_card(
    request: HookRequest,
    warning: SafetyWarning,
    records: dict[str, Record],
    links: CardLinks,
    *,
    order_ref: str | None = None,
) -> dict[str, Any]:
    """One safety warning as a card; ``order_ref`` adds a "remove this order" suggestion."""
    lines = [
        f"**{warning.severity.capitalize()} {KIND_HEADINGS[warning.kind]}.** {warning.message}",
        "",
        f"**Why it matters:** {warning.basis}",
        "",
        "**Records behind this warning:**",
        *(_record_line(ref, records) for ref in warning.refs),
    ]
    card: dict[str, Any] = {
        "uuid": _card_uuid(request, order_ref or "", warning.message),
        "summary": shorten(warning.message),
        "indicator": warning.severity,
        "detail": "\n".join(lines),
        "source": {
            "label": SAFETY_LABEL,
            "topic": {"system": TOPIC_SYSTEM, "code": warning.kind, "display": warning.kind},
        },
        "links": [
            {"label": f"Open {ref}", "url": url, "type": "absolute"}
            for ref in warning.refs
            if (url := links.record(ref))
        ],
    }
    if warning.severity != "info":
        card["overrideReasons"] = [
            {"system": OVERRIDE_SYSTEM, "code": code, "display": display}
            for code, display in OVERRIDE_REASONS
        ]
    if order_ref is not None and warning.severity == "critical":
        card["selectionBehavior"] = "at-most-one"
        card["suggestions"] = [
            {
                "label": shorten(f"Remove the draft order {order_ref}"),
                "uuid": _card_uuid(request, order_ref, warning.message, "remove"),
                "actions": [
                    {
                        "type": "delete",
                        "description": f"Remove the draft order {order_ref}",
                        "resourceId": [order_ref],
                    }
                ],
            }
        ]
    return card


def protocol_card(
    request: HookRequest,
    hit: Any,
    about: str,
    links: CardLinks,
    *,
    lead: str = "Local protocol for",
) -> dict[str, Any]:
    """An info card pointing at a local protocol chunk: "{lead} {about}: {title}"."""
    chunk = hit.chunk
    title = f"{chunk.title} > {chunk.section}" if chunk.section else chunk.title
    excerpt = shorten(chunk.text, EXCERPT_CHARS)
    url = links.chunk(chunk.id)
    return {
        "uuid": _card_uuid(request, "doc", chunk.id, about),
        "summary": shorten(f"{lead} {about}: {title}"),
        "indicator": "info",
        "detail": f"**{lead} {about}:** {title} (`doc:{chunk.id}`)\n\n{excerpt}",
        "source": {"label": PROTOCOL_LABEL, "url": url},
        "links": [{"label": shorten(f"Protocol: {title}", 80), "url": url, "type": "absolute"}],
    }


def best_protocol(
    library: Library, query: str, words: Iterable[str], *, in_text: bool = False
) -> Any | None:
    """The first protocol hit for ``query`` that is similar enough and shares a word.

    The hit's title (with ``in_text``, also its section and text: for a drug the guidance
    names) must share a specific content word with ``words``: dense retrieval always
    returns something, and a protocol about nothing in the query is junk ("Acute
    bronchitis" must not find the asthma protocol's "Acute exacerbation" section).
    """
    wanted = content_words(" ".join(words)) - GENERIC_WORDS
    for hit in library.search(query, k=3, doc_types=["protocol"]):
        similarity = getattr(hit, "similarity", None)
        if similarity is not None and similarity < MIN_PROTOCOL_SIMILARITY:
            continue
        chunk = hit.chunk
        text = f"{chunk.title} {chunk.section} {chunk.text}" if in_text else chunk.title
        if wanted & content_words(text):
            return hit
    return None


def _condition_label(record: Record) -> str:
    return re.sub(r"\s*\([^)]*\)\s*$", "", record.display)


def patient_view_cards(
    request: HookRequest, context: PatientContext, library: Library | None, links: CardLinks
) -> list[dict[str, Any]]:
    """Cards for patient-view: current-medication problems, then local protocols."""
    records = {r.ref: r for r in context.records()}
    found = [warning_card(request, w, records, links) for w in check_current_medications(context)]
    if library is None:
        return found
    shown: set[str] = set()
    for condition in context.conditions[:MAX_CONDITION_CARDS]:
        label = _condition_label(condition)
        hit = best_protocol(library, label, [label])
        if hit is not None and hit.chunk.id not in shown:
            shown.add(hit.chunk.id)
            found.append(protocol_card(request, hit, label, links))
    return found


def order_select_cards(
    request: HookRequest, context: PatientContext, library: Library | None, links: CardLinks
) -> list[dict[str, Any]]:
    """Cards for order-select: each selected draft medication checked, plus local guidance.

    The draft orders that are not selected count as current medicines, so two new orders
    that interact are caught together.
    """
    drafts = {f"{r['resourceType']}/{r['id']}": normalize(r) for r in request.draft_orders}
    others = [
        rec
        for ref, rec in drafts.items()
        if ref not in request.selections and rec.resource_type == "MedicationRequest"
    ]
    context = replace(context, medications=[*context.medications, *others])
    records = {**{r.ref: r for r in context.records()}, **drafts}
    found: list[dict[str, Any]] = []
    for ref in request.selections:
        order = drafts[ref]
        if order.resource_type != "MedicationRequest":
            continue
        for drug in drugs_of(order):
            for warning in check_medication(drug, context):
                warning = replace(warning, refs=(*warning.refs, ref))
                found.append(warning_card(request, warning, records, links, order_ref=ref))
            hit = best_protocol(library, drug.name, [drug.name], in_text=True) if library else None
            if hit is not None:
                card = protocol_card(request, hit, drug.name, links, lead="Local guidance on")
                found.append(card)
    return found


def cards(
    request: HookRequest,
    context: PatientContext,
    library: Library | None = None,
    *,
    base_url: str = "",
    linkable: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """The cards for a checked request, most severe first.

    ``base_url`` prefixes the links (``{base}/v1/records/Type/id``,
    ``{base}/v1/docs/chunks/ID``); only records in ``linkable`` get a link.
    """
    links = CardLinks(base_url.rstrip("/"), frozenset(linkable))
    build = patient_view_cards if request.service.hook == "patient-view" else order_select_cards
    unique = {card["uuid"]: safe_card(card) for card in build(request, context, library, links)}
    rank = {"critical": 0, "warning": 1, "info": 2}
    return sorted(unique.values(), key=lambda card: rank[card["indicator"]])


# --- text from requests and records, made safe for an EHR to render -------------------------

_TAG = re.compile(r"<[A-Za-z/!?][^<>]*>")  # what HTML reads as a tag: "<" then a letter
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
LINK_SCHEMES = ("http://", "https://")


def plain_text(text: str) -> str:
    """``text`` without markup tags or control characters (summaries, labels: plain text).

    Drug names, displays and ids come from the request and the records, and an EHR may
    render card text as HTML: ``<img onerror=…>`` must never reach it.
    """
    return _CONTROL.sub("", _TAG.sub("", text))


def markdown_text(text: str) -> str:
    """A card ``detail`` (markdown) that renders as text: tags removed, and ``<``, ``>``,
    ``[`` and ``]`` escaped, so no HTML and no link (``[x](javascript:…)``) can form.

    The details this module writes use bold, lists and code spans only, never brackets.
    """
    text = plain_text(text).replace("\\", "\\\\")
    text = text.replace("[", "\\[").replace("]", "\\]")
    return text.replace("<", "&lt;").replace(">", "&gt;")


def safe_url(url: Any) -> str | None:
    """``url`` when it is an http(s) URL without markup or spaces, else None."""
    if not isinstance(url, str) or not url.lower().startswith(LINK_SCHEMES):
        return None
    if any(c in url for c in "<>\"' ") or _CONTROL.search(url):
        return None
    return url


def safe_card(card: dict[str, Any]) -> dict[str, Any]:
    """``card`` with its texts made safe (:func:`plain_text`, :func:`markdown_text`) and
    only http(s) links kept."""
    card = {**card, "summary": plain_text(card["summary"]), "detail": markdown_text(card["detail"])}
    source = dict(card["source"])
    if "url" in source and safe_url(source["url"]) is None:
        del source["url"]
    card["source"] = source
    card["links"] = [
        {**link, "label": plain_text(link["label"])}
        for link in card.get("links", [])
        if safe_url(link.get("url")) is not None
    ]
    if "suggestions" in card:
        card["suggestions"] = [
            {
                **suggestion,
                "label": plain_text(suggestion["label"]),
                "actions": [
                    {**action, "description": plain_text(action["description"])}
                    for action in suggestion.get("actions", [])
                ],
            }
            for suggestion in card["suggestions"]
        ]
    return card


# --- feedback --------------------------------------------------------------------------------

OUTCOMES = ("accepted", "overridden")


def _check_timestamp(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise CdsRequestError(f"{where}.outcomeTimestamp is required (ISO 8601 date-time)")
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CdsRequestError(
            f"{where}.outcomeTimestamp {value!r} is not an ISO 8601 date-time"
        ) from exc
    return value


def _check_feedback_item(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise CdsRequestError(f"{where} must be a JSON object")
    card = _require_str(item, "card", f"{where}.")
    try:
        uuid.UUID(card)
    except ValueError as exc:
        raise CdsRequestError(f"{where}.card must be the card's uuid, got {card!r}") from exc
    outcome = item.get("outcome")
    if outcome not in OUTCOMES:
        raise CdsRequestError(
            f"{where}.outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}"
        )
    _check_timestamp(item.get("outcomeTimestamp"), where)
    reason = item.get("overrideReason")
    if reason is not None and not isinstance(reason, dict):
        raise CdsRequestError(f"{where}.overrideReason must be a JSON object")
    if reason is not None and outcome != "overridden":
        raise CdsRequestError(f"{where}.overrideReason is only allowed with outcome 'overridden'")
    accepted = item.get("acceptedSuggestions")
    if accepted is not None and (
        not isinstance(accepted, list)
        or not all(isinstance(a, dict) and isinstance(a.get("id"), str) for a in accepted)
    ):
        raise CdsRequestError(f'{where}.acceptedSuggestions must be a list of {{"id": uuid}}')
    return item


def parse_feedback(body: Any) -> list[dict[str, Any]]:
    """The checked items of a feedback body ``{"feedback": [...]}``; CdsRequestError otherwise."""
    if not isinstance(body, dict) or not isinstance(body.get("feedback"), list):
        raise CdsRequestError('feedback must be a JSON object {"feedback": [...]}')
    if not body["feedback"]:
        raise CdsRequestError("feedback must hold at least one item")
    return [_check_feedback_item(item, f"feedback[{n}]") for n, item in enumerate(body["feedback"])]


# The feedback file's schema; never edit a released step. Files made before versions were
# kept hold the table at version 0, hence IF NOT EXISTS.
FEEDBACK_MIGRATIONS: tuple[Migration[sqlite3.Connection], ...] = (
    Migration(
        1,
        "the feedback table",
        """
        CREATE TABLE IF NOT EXISTS feedback (
            id INTEGER PRIMARY KEY, service TEXT NOT NULL, card TEXT NOT NULL,
            outcome TEXT NOT NULL, outcome_timestamp TEXT NOT NULL,
            received TEXT NOT NULL, item TEXT NOT NULL
        )
        """,
    ),
)


@dataclass(frozen=True)
class _StoredFeedback:
    """A ``feedback`` row as :meth:`FeedbackStore.items` reads it (``item`` is JSON)."""

    service: str
    item: str


class FeedbackStore:
    """Card outcomes, kept durably in ``<home>/cds_feedback.sqlite3``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            private_dir(self.path.parent)
            created = private_file(self.path)  # 0600 before SQLite opens it
            self._db = sqlite3.connect(str(self.path), check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the card feedback store at {path}: {exc}") from exc
        where = f"the card feedback store at {path}"
        try:
            migrate(SqliteDatabase(self._db, where), FEEDBACK_MIGRATIONS)
        except StoreError:
            self._db.close()
            raise
        except sqlite3.Error as exc:
            self._db.close()
            raise StoreError(
                f"cannot open the card feedback store at {path} ({exc}): move the damaged "
                "file away (a new one is made)"
            ) from exc
        if not created:
            warn_if_shared(self.path)

    @classmethod
    def in_home(cls, home: str | Path) -> FeedbackStore:
        """The feedback store of the data directory ``home``."""
        return cls(Path(home) / FEEDBACK_FILE)

    def save(self, service_id: str, items: Sequence[dict[str, Any]]) -> int:
        """Store checked feedback items in one transaction; the number stored."""
        received = datetime.now(UTC).isoformat(timespec="seconds")
        rows = [
            (
                service_id,
                item["card"],
                item["outcome"],
                item["outcomeTimestamp"],
                received,
                orjson.dumps(item).decode(),
            )
            for item in items
        ]
        with self._lock, self._db:
            self._db.executemany(
                "INSERT INTO feedback (service, card, outcome, outcome_timestamp, received, item)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def items(self, card: str | None = None) -> list[dict[str, Any]]:
        """The stored items (of one card), oldest first, with their ``service``."""
        sql = "SELECT service, item FROM feedback"
        args: tuple[str, ...] = ()
        if card is not None:
            sql, args = sql + " WHERE card = ?", (card,)
        with self._lock:
            cursor = self._db.execute(sql + " ORDER BY id", args)
            rows = cursor.fetchall()
        stored = [from_row(_StoredFeedback, row, cursor.description) for row in rows]
        return [{"service": row.service, **orjson.loads(row.item)} for row in stored]

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()
