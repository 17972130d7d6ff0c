"""Cited summaries: of a patient's record, of one diagnostic report, of a clinical note.

Every statement of a summary cites what it states: a patient resource (``[Type/id]``) or a
paragraph of a file (``[file:NAME#N]``). Summaries are extractive. Statements about
records are composed from the records' own code displays, values, units and dates, so
each number and date can be checked against the cited record
(:func:`ehrqa.answer.verify.check_facts`); statements about free text are the text's own
sentences, picked by :func:`pick_sentences` and kept in document order.

With ``mode="hybrid"`` or ``"model"`` and a model, :func:`ehrqa.cds.narrate.narrate`
rewrites the extractive summary as prose citing the same sources and checks the rewrite.
Every function here is pure over its inputs except :func:`summarize_report` and
:func:`recent_encounters`, which read the store they are given.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import PurePath

from ehrqa.cds.base import Advice, AdviceItem, Source, Statement
from ehrqa.cds.narrate import NARRATE_MODES
from ehrqa.cds.results import result_flag, result_text
from ehrqa.cds.sources import record_source
from ehrqa.core.errors import ConfigError, NotFoundError
from ehrqa.fhir.elements import concept_label
from ehrqa.fhir.record import Record
from ehrqa.fhir.render import note_text
from ehrqa.llm.base import ChatModel
from ehrqa.meds.context import SOCIAL_RE, PatientContext, latest_per_code
from ehrqa.store.base import RecordQuery, RecordStore
from ehrqa.text.dates import age_on

# A chat model, or a function that loads one when it is first needed.
ModelArg = ChatModel | Callable[[], ChatModel] | None

INSTRUCTIONS = {
    "patient": (
        "Summarise this patient's record for a clinician in a few sentences: problems, "
        "medications, allergies, and the results that matter."
    ),
    "report": (
        "Summarise this diagnostic report for a clinician: abnormal results first, "
        "then the conclusion."
    ),
    "text": "Summarise this clinical note for a clinician in a few sentences.",
}

# Laboratory results in clinical priority order, by LOINC code. Codes only: names mislead
# ("Hemoglobin A1c" contains "hemoglobin", "albumin/creatinine" contains "creatinine").
KEY_LABS: tuple[tuple[str, ...], ...] = (
    ("4548-4", "17856-6", "4549-2"),  # HbA1c
    ("33914-3", "62238-1", "98979-8", "48642-3", "48643-1", "69405-9"),  # eGFR
    ("2160-0", "38483-4"),  # creatinine
    ("6298-4", "2823-3"),  # potassium
    ("2951-2", "2947-0"),  # sodium
    ("718-7", "20509-6"),  # haemoglobin
    ("18262-6", "13457-7", "2089-1"),  # LDL cholesterol
    ("14959-1", "9318-7"),  # urine albumin/creatinine ratio
    ("2339-0", "2345-7"),  # glucose
    ("6301-6", "34714-6"),  # INR
    ("3016-3", "11580-8"),  # TSH
    ("1742-6", "1743-4"),  # ALT
    ("777-3", "26515-7"),  # platelets
    ("6690-2", "26464-8"),  # white cells
    ("2093-3",),  # total cholesterol
    ("2085-9",),  # HDL cholesterol
    ("2571-8",),  # triglycerides
    ("6299-2", "3094-0"),  # urea nitrogen
)
# The vital signs always shown; other vitals are shown only when flagged abnormal.
KEY_VITALS: tuple[tuple[str, ...], ...] = (
    ("85354-9", "55284-4"),  # blood pressure panel
    ("39156-5",),  # BMI
    ("29463-7", "3141-9"),  # body weight
    ("8867-4",),  # heart rate
)
# Synthea files systolic and diastolic pressure as laboratory results too.
VITALS_FILED_AS_LABS = frozenset({"8480-6", "8462-4"})
MAX_REPORT_TEXT_SENTENCES = 4


def summarize_patient(
    context: PatientContext,
    *,
    model: ModelArg = None,
    mode: str = "extractive",
    max_items: int = 8,
    recent: Sequence[Record] = (),
    vitals: Sequence[Record] | None = None,
) -> Advice:
    """A cited summary of a patient's record as of ``context.now``.

    Sections: age and gender, active problems (newest first), current medications,
    allergies and intolerances ("none recorded" when there are none), the latest
    laboratory results of the last two years (key results first, one per test, then
    abnormal ones), the latest vital signs, and the ``recent`` encounters the caller passes
    (see :func:`recent_encounters`). Results carry their date and a High/Low flag from the
    record's interpretation or reference range, else from ``knowledge/reference_ranges.csv``
    for the patient's sex and age; values are rounded and units written for a reader.
    ``vitals`` are the newest vital signs per code (see :func:`latest_vitals`); without them
    the context's (last year's) are used. Each list is cut to ``max_items`` with an "and N
    more" statement citing the rest. Abstains when the context holds neither a Patient nor
    any record.
    """
    _check_options(mode, model, max_items=max_items)
    started = time.perf_counter()
    query = f"Patient/{context.patient_id}"
    shown_vitals = list(context.vitals if vitals is None else vitals)
    items = _patient_items(context, max_items, recent, shown_vitals)
    if not items:
        reason = (
            f"No record of patient {context.patient_id} as of {context.now.isoformat()}: "
            "nothing to summarise. Ingest the patient's records first (ehrqa ingest)."
        )
        return _abstain(query, reason, context.patient_id)
    sources = _record_sources([*context.records(), *recent, *shown_vitals])
    if context.patient is not None:
        sources[context.patient.ref] = _patient_source(context.patient, context)
    advice = _advice(query, items, sources)
    advice.patient_id = context.patient_id
    return _finish(advice, started, model, mode, INSTRUCTIONS["patient"])


def summarize_report(
    store: RecordStore,
    ref: str,
    now: date,
    *,
    model: ModelArg = None,
    mode: str = "extractive",
) -> Advice:
    """A cited summary of the DiagnosticReport ``ref`` (``DiagnosticReport/ID`` or ``ID``).

    One statement per result Observation (value, unit, date, flag; abnormal results
    first), the conclusion and coded conclusions, and the most informative sentences of
    the report's attached text. Results dated after ``now`` are left out. Raises
    :class:`NotFoundError` when the report is absent or ``ref`` names another type;
    abstains when the report has no result, conclusion or text.
    """
    _check_options(mode, model)
    started = time.perf_counter()
    report = _get_report(store, ref)
    results = [r for r in store.get_many(result_refs(report)) if (r.day or "") <= now.isoformat()]
    items = _report_items(report, results)
    if not items:
        reason = (
            f"{report.ref} has no results, conclusion or attached text in the store: "
            "nothing to summarise."
        )
        return _abstain(report.ref, reason, report.patient_id)
    sources = _record_sources(results)
    sources[report.ref] = _report_source(report)
    advice = _advice(report.ref, [_report_header(report), *items], sources)
    advice.patient_id = report.patient_id
    return _finish(advice, started, model, mode, INSTRUCTIONS["report"])


def summarize_text(
    text: str,
    name: str,
    *,
    model: ModelArg = None,
    mode: str = "extractive",
    max_sentences: int = 6,
) -> Advice:
    """A cited summary of a clinical note or file: its most informative sentences.

    The text is split into paragraphs (at blank lines); :func:`pick_sentences` chooses up
    to ``max_sentences`` sentences, kept in document order and grouped under their
    section headings, each citing its paragraph as ``[file:NAME#N]`` (N counts from 1).
    Abstains when the text has no sentence to summarise.
    """
    _check_options(mode, model, max_sentences=max_sentences)
    started = time.perf_counter()
    cite_name = citation_name(name)
    query = f"file:{cite_name}"
    units = split_units(text)
    picked = pick_sentences(units, max_sentences)
    if not picked:
        return _abstain(query, f"{name} holds no text to summarise.", None)
    paragraphs = split_paragraphs(text)
    sources = {
        f"file:{cite_name}#{u.paragraph}": Source(
            f"file:{cite_name}#{u.paragraph}",
            "file",
            f"{name}, paragraph {u.paragraph}",
            paragraphs[u.paragraph - 1],
        )
        for u in picked
    }
    items = _sections(picked, lambda u: [f"file:{cite_name}#{u.paragraph}"])
    return _finish(_advice(query, items, sources), started, model, mode, INSTRUCTIONS["text"])


def recent_encounters(
    store: RecordStore, patient_id: str, now: date, *, limit: int = 3
) -> list[Record]:
    """The patient's ``limit`` most recent encounters up to ``now``, newest first.

    What the CLI and API pass as ``recent`` to :func:`summarize_patient`, which stays a
    function of what it is given.
    """
    query = RecordQuery(
        patient_id, types=("Encounter",), end=now.isoformat(), order="newest", limit=limit
    )
    return store.query(query)


def latest_vitals(store: RecordStore, patient_id: str, now: date) -> list[Record]:
    """The patient's newest vital sign of each code up to ``now``, however old, newest first.

    The summary shows them with their dates: an old blood pressure is still the latest one,
    and its date tells the reader how old it is.
    """
    query = RecordQuery(
        patient_id, types=("Observation",), categories=("vital-signs",), end=now.isoformat()
    )
    return latest_per_code(store.query(query), "vital-signs", "")


# --- the patient summary ---------------------------------------------------------------


def _patient_source(patient: Record, context: PatientContext) -> Source:
    # The age is derived from the birth date and "now"; the source says so, so that a
    # narrative stating the age can be checked against the text it cites.
    age = context.age
    text = patient.text if age is None else f"{patient.text}; age {age} on {context.now}"
    return Source(patient.ref, "record", "Patient", text)


def _patient_items(
    context: PatientContext, max_items: int, recent: Sequence[Record], vitals: Sequence[Record]
) -> list[AdviceItem]:
    if context.patient is None and not context.records() and not recent and not vitals:
        return []
    sex, age = context.gender, context.age

    def result(record: Record) -> str:
        return result_text(record, sex, age)

    sections = [
        ("Patient details", _demographics(context)),
        ("Active problems", _capped(context.conditions, _condition, max_items, "active problems")),
        (
            "Current medications",
            _capped(context.medications, _medication, max_items, "medications"),
        ),
        ("Allergies and intolerances", _allergies(context)),
        (
            "Latest laboratory results (last 2 years)",
            _capped(key_labs(context.labs, sex, age), result, max_items, "results")
            or _none(context, "No laboratory result in the last 2 years."),
        ),
        ("Latest vital signs", [_cite(result(r), r) for r in key_vitals(vitals, sex, age)]),
        ("Recent encounters", [_cite(_encounter(r), r) for r in recent]),
    ]
    return [AdviceItem("summary", title, found) for title, found in sections if found]


def _allergies(context: PatientContext) -> list[Statement]:
    """One statement per allergy; "none recorded" (citing the patient) when there is none."""
    if context.allergies:
        return [_cite(_allergy(r), r) for r in context.allergies]
    return _none(context, "No allergy or intolerance recorded.")


def _none(context: PatientContext, text: str) -> list[Statement]:
    """A statement of absence, citing the patient whose record holds nothing of the kind."""
    return [Statement(text, [context.patient.ref])] if context.patient is not None else []


def _demographics(context: PatientContext) -> list[Statement]:
    patient = context.patient
    if patient is None:
        return []
    birth = patient.resource.get("birthDate")
    born = birth[:10] if isinstance(birth, str) else ""
    deceased = patient.resource.get("deceasedDateTime")
    died = _day(deceased[:10]) if isinstance(deceased, str) else None
    # The age of a patient who has died is the age at death, not at "now".
    age = age_on(born, min(context.now, died) if died else context.now) if born else None
    gender = context.gender or "gender unknown"
    who = f"{age}-year-old {gender}" if age is not None else gender.capitalize()
    if died is not None and age is not None:
        who = f"{gender.capitalize()}, died aged {age}"
    facts = [f"born {born}"] if born else []
    if isinstance(deceased, str):
        facts.append(f"deceased {deceased[:10]}")
    elif patient.resource.get("deceasedBoolean") is True:
        facts.append("deceased")
    details = f" ({', '.join(facts)})" if facts else ""
    return [Statement(f"{who}{details}.", [patient.ref])]


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def key_labs(
    labs: Sequence[Record], sex: str | None = None, age: int | None = None
) -> list[Record]:
    """The labs worth a summary: key LOINC codes in priority order, one per test (the
    newest: "creatinine in blood" and "in serum" are one test), then other measured results
    (abnormal ones first, then newest). Questionnaire answers and scores filed as
    laboratory results, and blood pressures (shown with the vital signs), are left out.
    """
    newest = sorted(labs, key=lambda r: r.date or "", reverse=True)
    ranked: dict[int, Record] = {}
    for record in newest:
        rank = _rank(record, KEY_LABS)
        if rank is not None:
            ranked.setdefault(rank, record)
    others = [r for r in newest if _rank(r, KEY_LABS) is None and _is_measurement(r)]
    flagged = sorted(others, key=lambda r: result_flag(r, sex, age) is None)
    return [ranked[rank] for rank in sorted(ranked)] + flagged


def key_vitals(
    vitals: Sequence[Record], sex: str | None = None, age: int | None = None
) -> list[Record]:
    """Blood pressure, BMI, weight and heart rate, then any other vital flagged abnormal."""
    newest = sorted(vitals, key=lambda r: r.date or "", reverse=True)
    ranked: dict[int, Record] = {}
    for record in newest:
        rank = _rank(record, KEY_VITALS)
        if rank is not None:
            ranked.setdefault(rank, record)
    flagged = [r for r in newest if _rank(r, KEY_VITALS) is None and result_flag(r, sex, age)]
    return [ranked[rank] for rank in sorted(ranked)] + flagged


def _rank(record: Record, table: tuple[tuple[str, ...], ...]) -> int | None:
    codes = {c.code for c in record.codes}
    return next((i for i, group in enumerate(table) if codes.intersection(group)), None)


def _is_measurement(record: Record) -> bool:
    """A measured quantity with a unit: not a score (``{score}``), answer or duplicate vital."""
    if record.value is None or not record.unit or record.unit.startswith("{"):
        return False
    if {c.code for c in record.codes} & VITALS_FILED_AS_LABS:
        return False
    return "?" not in record.display and not SOCIAL_RE.search(record.display)


def _capped(
    records: Sequence[Record], phrase: Callable[[Record], str], cap: int, noun: str
) -> list[Statement]:
    """One statement per record up to ``cap``, then one "And N more" citing the rest."""
    shown = [_cite(phrase(r), r) for r in records[:cap]]
    rest = records[cap:]
    if rest:
        # The count is supported by the citations: it is the number of records cited.
        more = f"And {len(rest)} more {noun}".rstrip() + "."
        shown.append(Statement(more, [r.ref for r in rest]))
    return shown


def _cite(text: str, record: Record) -> Statement:
    return Statement(text if text.endswith(".") else f"{text}.", [record.ref])


def _condition(record: Record) -> str:
    since = f", since {record.day}" if record.day else ""
    return f"{record.display}{since}"


def _medication(record: Record) -> str:
    dosage = rendered_part(record, "dosage")
    since = f", prescribed {record.day}" if record.day else ""
    status = f", {record.status}" if record.status and record.status != "active" else ""
    return f"{record.display}{f' ({dosage})' if dosage else ''}{since}{status}"


def _allergy(record: Record) -> str:
    kind = record.resource.get("type")
    what = f"{kind if isinstance(kind, str) else 'allergy'} to {record.display}"
    extras = [rendered_part(record, "criticality"), rendered_part(record, "reactions")]
    details = "; ".join(e for e in extras if e)
    return f"{what[:1].upper()}{what[1:]}{f' ({details})' if details else ''}"


def _encounter(record: Record) -> str:
    kind = concept_label(record.resource.get("class")) or "encounter"
    kind = kind if kind.lower().endswith("encounter") else f"{kind} encounter"
    what = f"{kind}: {record.display}" if record.codes else kind
    reason = rendered_part(record, "reason")
    return f"{record.day or 'Undated'} {what}{f' ({reason})' if reason else ''}"


def rendered_part(record: Record, label: str) -> str:
    """The ``label …`` part of a record's rendering (``dosage 1 tablet, once per day``).

    Rendered parts are joined by ``"; "``; the label is kept, so the phrase reads alone.
    """
    body = record.text.split("] ", 1)[-1]
    return next((p for p in body.split("; ") if p.startswith(f"{label} ")), "")


# --- the report summary -----------------------------------------------------------------


def _get_report(store: RecordStore, ref: str) -> Record:
    ref = ref.strip()
    if "/" not in ref:
        ref = f"DiagnosticReport/{ref}"
    kind = ref.split("/", 1)[0]
    if kind != "DiagnosticReport":
        raise NotFoundError(
            f"{ref} is a {kind}, not a DiagnosticReport; pass --report DiagnosticReport/ID "
            "(or summarise a patient with --patient ID)"
        )
    try:
        return store.get(ref)
    except NotFoundError as error:
        raise NotFoundError(
            f"{ref} is not in the store; check the id, or ingest the bundle that holds it "
            "(ehrqa ingest PATH)"
        ) from error


def result_refs(report: Record) -> list[str]:
    """The ``Observation/ID`` references of a DiagnosticReport's ``result``, in order.

    ``urn:uuid:`` and absolute references (as found before ingestion rewrites them) are
    read as Observations, the only type a result may reference.
    """
    refs: list[str] = []
    for item in report.resource.get("result") or ():
        reference = item.get("reference") if isinstance(item, dict) else None
        if not isinstance(reference, str) or not reference:
            continue
        if reference.startswith("urn:uuid:"):
            refs.append(f"Observation/{reference[len('urn:uuid:') :]}")
            continue
        parts = reference.split("/")
        if "_history" in parts:
            parts = parts[: parts.index("_history")]
        if len(parts) >= 2:
            refs.append(f"{parts[-2]}/{parts[-1]}")
    return list(dict.fromkeys(refs))


def _report_header(report: Record) -> AdviceItem:
    status = f", {report.status}" if report.status else ""
    day = f" on {report.day}" if report.day else ""
    count = _count_part(report)
    text = f"{report.display}{day}{status}{f': {count}' if count else ''}"
    return AdviceItem("summary", "Report details", [_cite(text, report)])


def _count_part(report: Record) -> str:
    body = report.text.split("] ", 1)[-1]
    return next((p for p in body.split("; ") if re.fullmatch(r"\d+ results?", p)), "")


def _report_items(report: Record, results: list[Record]) -> list[AdviceItem]:
    # Abnormal results first; sorted() is stable, so the report's order holds within each.
    ordered = sorted(results, key=lambda r: result_flag(r) is None)
    items = []
    if ordered:
        statements = [_cite(result_text(r), r) for r in ordered]
        items.append(AdviceItem("summary", "Report results", statements))
    if conclusions := _conclusions(report):
        statements = [Statement(f"Conclusion: {c.rstrip('.')}.", [report.ref]) for c in conclusions]
        items.append(AdviceItem("summary", "Conclusion", statements))
    note = note_text(report.resource) or ""
    picked = pick_sentences(split_units(note), MAX_REPORT_TEXT_SENTENCES)
    if picked:
        items.append(
            AdviceItem("summary", "Report text", [Statement(u.text, [report.ref]) for u in picked])
        )
    return items


def _conclusions(report: Record) -> list[str]:
    text = report.resource.get("conclusion")
    found = [text.strip()] if isinstance(text, str) and text.strip() else []
    found += [concept_label(c) for c in report.resource.get("conclusionCode") or ()]
    return list(dict.fromkeys(c for c in found if c))


def _report_source(report: Record) -> Source:
    # The one-line rendering cuts the conclusion and the text; the source holds them whole
    # so that every statement citing the report can be checked against it.
    extra = [*_conclusions(report), note_text(report.resource) or ""]
    text = "\n".join([report.text, *(e.strip() for e in extra if e.strip())])
    return Source(report.ref, "record", report.display, text)


# --- the text summary -------------------------------------------------------------------

# "# Plan" or a short title line ending in a colon ("Assessment and Plan:"); a longer line
# ending in a colon ("The patient was prescribed the following:") introduces a list.
_HEADING_RE = re.compile(r"^\s*(#{1,6}\s+\S.*|[A-Z][A-Za-z/&()-]*(?: [A-Za-z/&()-]+){0,3}:)\s*$")
_LIST_RE = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")
_WORD_RE = re.compile(r"[a-z][a-z0-9'-]+")
# Function words, and words every (Synthea) note repeats, carry no content.
_STOPWORD_TEXT = """a about above after again all also am an and any are as at be because been
before being below between both but by can could did do does doing down during each few for
from further had has have having he her here hers him his how i if in into is it its itself
just me more most my no nor not now of off on once only or other our out over own same she
should so some such than that the their them then there these they this those through to too
under until up very was we were what when where which while who whom why will with would you
your yes per mg ml patient patients procedure finding situation regime therapy following"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
LEAD_BONUS = 0.5
NUMBER_BONUS = 0.25
REDUNDANCY = 0.7


@dataclass(frozen=True)
class TextUnit:
    """A sentence or list item of a text: where it is, under which heading, what it says."""

    text: str
    paragraph: int
    position: int
    heading: str
    lead: bool


def citation_name(name: str) -> str:
    """The file's base name as cited (``file:NAME#N``): no folders, spaces or brackets."""
    base = PurePath(name.strip()).name if name.strip() else ""
    cleaned = re.sub(r"[\s\[\]]+", "_", base).strip("_")
    return cleaned or "text"


def split_paragraphs(text: str) -> list[str]:
    """The text's paragraphs (separated by blank lines), stripped, empty ones dropped."""
    return [p.strip() for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if p.strip()]


def split_units(text: str) -> list[TextUnit]:
    """The sentences and list items of ``text``, in order, with paragraph and heading.

    Heading lines (``# Plan``, ``Assessment:``) are not units; they name the units that
    follow. The first unit after a heading or paragraph break is a lead unit.
    """
    units: list[TextUnit] = []
    heading = ""
    for number, paragraph in enumerate(split_paragraphs(text), start=1):
        lead = True
        for line_heading, chunk in _chunks(paragraph):
            if line_heading is not None:
                heading, lead = line_heading, True
                continue
            for sentence in _SENTENCE_END_RE.split(chunk):
                if sentence.strip():
                    units.append(TextUnit(sentence.strip(), number, len(units), heading, lead))
                    lead = False
    return units


def _chunks(paragraph: str) -> Iterable[tuple[str | None, str]]:
    """``(heading, "")`` for heading lines, ``(None, text)`` for list items and prose runs."""
    prose: list[str] = []
    for line in paragraph.splitlines():
        is_item = _LIST_RE.match(line) is not None
        if (_HEADING_RE.match(line) or is_item or not line.strip()) and prose:
            yield None, " ".join(prose)
            prose = []
        if _HEADING_RE.match(line):
            yield line.strip().lstrip("#").strip().rstrip(":"), ""
        elif is_item:
            yield None, _LIST_RE.sub("", line).strip()
        elif line.strip():
            prose.append(line.strip())
    if prose:
        yield None, " ".join(prose)


def content_words(text: str) -> list[str]:
    """The lower-cased words of ``text`` that carry content (no stop words)."""
    return [w for w in _WORD_RE.findall(text.lower()) if w not in STOPWORDS]


def pick_sentences(units: Sequence[TextUnit], limit: int) -> list[TextUnit]:
    """The ``limit`` most informative units, in document order. Deterministic.

    A unit scores the sum of its distinct content words' document frequencies (each
    divided by the highest frequency), divided by the square root of its number of
    distinct content words (so long sentences do not win by length alone), plus
    :data:`LEAD_BONUS` when it leads its section or paragraph and :data:`NUMBER_BONUS`
    when it states a number. Units without content words never count; a unit sharing
    :data:`REDUNDANCY` of its content words with a picked one is skipped. Ties go to the
    earlier unit.
    """
    words = [set(content_words(u.text)) for u in units]
    frequency = Counter(w for found in words for w in found)
    top = max(frequency.values(), default=1)
    scored = []
    for unit, found in zip(units, words, strict=True):
        if not found:
            continue
        score = sum(frequency[w] / top for w in found) / math.sqrt(len(found))
        score += LEAD_BONUS * unit.lead + NUMBER_BONUS * bool(re.search(r"\d", unit.text))
        scored.append((-score, unit.position, unit, found))
    picked: list[tuple[TextUnit, set[str]]] = []
    for _, _, unit, found in sorted(scored, key=lambda s: (s[0], s[1])):
        if len(picked) >= limit:
            break
        if any(len(found & other) >= REDUNDANCY * len(found) for _, other in picked):
            continue
        picked.append((unit, found))
    return sorted((u for u, _ in picked), key=lambda u: u.position)


def _sections(units: list[TextUnit], cite: Callable[[TextUnit], list[str]]) -> list[AdviceItem]:
    """Picked units grouped under their headings, in document order."""
    items: list[AdviceItem] = []
    for unit in units:
        title = unit.heading or "Key sentences"
        if not items or items[-1].title != title:
            items.append(AdviceItem("summary", title))
        items[-1].statements.append(Statement(unit.text, cite(unit)))
    return items


# --- shared -----------------------------------------------------------------------------


def _check_options(mode: str, model: ModelArg, **limits: int) -> None:
    if mode not in NARRATE_MODES:
        raise ConfigError(f"unknown summary mode {mode!r}; use one of: {', '.join(NARRATE_MODES)}")
    if mode == "model" and model is None:
        raise ConfigError(
            "summary mode 'model' needs a model; name one (--model) or use extractive mode"
        )
    for name, value in limits.items():
        if value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")


def _record_sources(records: Iterable[Record]) -> dict[str, Source]:
    return {r.ref: record_source(r) for r in records}


def render_items(items: Sequence[AdviceItem]) -> str:
    """The readable summary: each section's title, then its statements with citations."""
    blocks = []
    for item in items:
        lines = [f"- {s.render()}" for s in item.all_statements()]
        blocks.append("\n".join([f"{item.title}:", *lines]))
    return "\n\n".join(blocks)


def _advice(query: str, items: list[AdviceItem], sources: dict[str, Source]) -> Advice:
    cited = {ref for item in items for s in item.all_statements() for ref in s.citations}
    kept = {ref: source for ref, source in sources.items() if ref in cited}
    return Advice("summarize", query, render_items(items), items, kept, "extractive")


def _abstain(query: str, reason: str, patient_id: str | None) -> Advice:
    return Advice(
        "summarize", query, reason, [], {}, "abstain", patient_id=patient_id, abstain_reason=reason
    )


def _finish(advice: Advice, started: float, model: ModelArg, mode: str, instruction: str) -> Advice:
    advice.timings["summarize"] = time.perf_counter() - started
    if mode == "extractive" or model is None:
        return advice
    from ehrqa.cds.narrate import narrate

    begun = time.perf_counter()
    narrated = narrate(advice, model, mode=mode, instruction=instruction)
    narrated.timings.setdefault("narrate", time.perf_counter() - begun)
    return narrated
