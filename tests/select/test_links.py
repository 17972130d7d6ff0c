"""The record graph the selector follows, encounter classes, the semantic fallback, and the
reranker's rule that it never empties what the rules found."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from ehrqa.fhir.record import Coding, Record
from ehrqa.lab.data.demo import DEMO_NOW, DEMO_PATIENT
from ehrqa.select.base import Selected, Selection
from ehrqa.select.default import DefaultSelector, asked_encounter_classes
from ehrqa.select.query import analyze
from ehrqa.select.rerank import Scored, apply_cutoff
from ehrqa.select.semantic import SemanticMatch
from ehrqa.store import RecordQuery, SqliteStore
from ehrqa.store.base import CodedConcept


def test_lay_phrases_name_encounter_classes() -> None:
    assert asked_encounter_classes("How many times did I go to the ER last year?") == ("EMER",)
    assert "IMP" in asked_encounter_classes("Was I ever admitted to the hospital?")
    assert asked_encounter_classes("What was my last physical?") == ()  # outpatient: too broad


def test_emergency_visits_are_found_by_their_class(demo_store: SqliteStore) -> None:
    query = RecordQuery(DEMO_PATIENT, types=("Encounter",), categories=("emer",))
    emergency = {r.ref for r in demo_store.query(query) if (r.day or "") <= DEMO_NOW.isoformat()}
    selection = DefaultSelector().select(
        demo_store, DEMO_PATIENT, "How many times have I been to the emergency room?", DEMO_NOW
    )
    assert emergency and emergency <= set(selection.refs)


def _record(ref: str, display: str, day: str = "2020-01-01", code: str = "1") -> Record:
    rtype, rid = ref.split("/")
    return Record(ref, rtype, rid, "p", f"[{ref}] {day} {display}", date=day,
                  codes=(Coding("http://snomed.info/sct", code, display),))  # fmt: skip


def test_reranker_never_empties_a_recognised_concepts_matches() -> None:
    plan = analyze("Have I ever had asthma?", date(2025, 1, 1))
    concept = plan.concepts[0].name
    item = Selected(_record("Condition/a", "Asthma"), 1.0, (f"{concept}: code SNOMED 1",))
    base = Selection(plan, [item])
    scored = Scored(base, [item.record], {"Condition/a": 0.01})
    kept = apply_cutoff(None, "p", scored, "filter", 0.5)  # type: ignore[arg-type]
    assert kept.refs == ["Condition/a"]


class _FakeMatcher:
    """Matches the question to the patient's first concept with a given score."""

    def __init__(self, score: float) -> None:
        self.score = score

    def match(self, question, concepts, *, min_score=0.55, limit=5):  # type: ignore[no-untyped-def]
        best = concepts[0]
        return [SemanticMatch(best, self.score, question)] if self.score >= min_score else []


def test_semantic_fallback_selects_or_names_the_closest(demo_store: SqliteStore) -> None:
    question = "Have I ever had a zorblax?"  # a word no lexicon knows
    concepts: list[CodedConcept] = demo_store.distinct_codes(DEMO_PATIENT)
    assert concepts
    sure = DefaultSelector(matcher=_FakeMatcher(0.8))  # type: ignore[arg-type]
    found = sure.select(demo_store, DEMO_PATIENT, question, DEMO_NOW)
    assert found.items and all("semantic match" in i.reasons[0] for i in found.items)
    near = DefaultSelector(matcher=_FakeMatcher(0.52))  # type: ignore[arg-type]
    missed = near.select(demo_store, DEMO_PATIENT, question, DEMO_NOW)
    assert not missed.items and not missed.negative  # a near miss is never a "No"
    assert (missed.empty_reason or "").startswith("The closest entry in the record is")
    far = DefaultSelector(matcher=_FakeMatcher(0.2))  # type: ignore[arg-type]
    nothing = far.select(demo_store, DEMO_PATIENT, question, DEMO_NOW)
    assert not nothing.items and "closest" not in (nothing.empty_reason or "")


def test_a_kind_of_visit_the_files_name_is_never_matched_by_meaning(
    demo_store: SqliteStore,
) -> None:
    # "in the hospital" is an inpatient stay: found by its class, or none, never "the
    # closest entry" an embedder finds (an "Outpatient procedure" for a word "hospital").
    question = "How many times was I in the hospital in 1900?"
    selector = DefaultSelector(matcher=_FakeMatcher(0.8))  # type: ignore[arg-type]
    found = selector.select(demo_store, DEMO_PATIENT, question, DEMO_NOW)
    assert not found.items
    assert (found.empty_reason or "").startswith("0: the record has no hospital stay")


def test_findings_of_a_procedure_come_from_its_visit(demo_store: SqliteStore) -> None:
    selection = DefaultSelector().select(
        demo_store, DEMO_PATIENT, "What did they find at my last checkup?", DEMO_NOW
    )
    linked = [i for i in selection.items if any(r.startswith("same visit as ") for r in i.reasons)]
    assert linked  # the checkup's results, not its routine vitals or questionnaires
    for item in linked:
        assert not {"vital-signs", "social-history", "survey"} & set(item.record.category)
        anchor = next(r for r in item.reasons if r.startswith("same visit as "))
        anchor_day = demo_store.get(anchor.removeprefix("same visit as ")).day
        assert item.record.day == anchor_day


def _order(ref: str, display: str, reason: str = "") -> Record:
    rid = ref.split("/")[1]
    text = f"[{ref}] 2020-01-01 {display}; status active" + (f"; reason {reason}" if reason else "")
    return Record(ref, "MedicationRequest", rid, "p", text, date="2020-01-01", status="active",
                  codes=(Coding("http://www.nlm.nih.gov/research/umls/rxnorm", "1", display),))  # fmt: skip


def test_medicines_for_a_condition_by_reason_or_indication() -> None:
    from ehrqa.select.default import NOT_FOR_REASON, _for_condition

    orders = [
        Selected(_order("MedicationRequest/a", "Alendronic acid 10 MG Oral Tablet"), 1.0),
        Selected(_order("MedicationRequest/f", "ferrous sulfate 325 MG Oral Tablet"), 1.0),
        Selected(_order("MedicationRequest/s", "Sertraline 100MG", "Osteoporosis (disorder)"), 1.0),
    ]
    plan = analyze("What am I taking for my osteoporosis?", date(2025, 1, 1))
    kept = [i.record.ref for i in _for_condition(plan, orders)]
    assert kept == ["MedicationRequest/a", "MedicationRequest/s"]  # indication; named reason
    plan = analyze("What do I take for my migraines?", date(2025, 1, 1))
    none_for = _for_condition(plan, orders)
    assert len(none_for) == 3 and all(NOT_FOR_REASON in i.reasons for i in none_for)


def test_reranker_may_drop_what_only_shared_words_found(demo_store: SqliteStore) -> None:
    plan = analyze("What color are my eyes?", date(2025, 1, 1))
    item = Selected(_record("Observation/u", "Color of Urine"), 1.0, ("lexical match",))
    scored = Scored(Selection(plan, [item]), [item.record], {"Observation/u": 0.01})
    dropped = apply_cutoff(demo_store, DEMO_PATIENT, scored, "filter", 0.5)
    assert dropped.items == [] and dropped.empty_reason
    # ... but never as "The record does not contain information": what was searched is said,
    # the records found shown beside it ("hx hip fx?" over a closed fracture of the hip).
    assert dropped.empty_reason.startswith('I could not match "color eyes"')
    assert [s.record.ref for s in dropped.nearby] == ["Observation/u"] and not dropped.negative


def test_a_record_named_by_every_searched_word_is_never_dropped(demo_store: SqliteStore) -> None:
    # "What else happened the day of the episiotomy?": the reranker scored "Episiotomy" low.
    plan = analyze("what else happened the day of the episiotomy", date(2025, 1, 1))
    assert plan.keywords == ("episiotomy",)
    item = Selected(_record("Procedure/e", "Episiotomy (procedure)"), 1.0, ("lexical match",))
    scored = Scored(Selection(plan, [item]), [item.record], {"Procedure/e": 0.01})
    kept = apply_cutoff(demo_store, DEMO_PATIENT, scored, "filter", 0.5)
    assert kept.refs == ["Procedure/e"]


def test_risk_factors_are_the_active_conditions_the_knowledge_files_list(
    demo_store: SqliteStore,
) -> None:
    from ehrqa.knowledge import load_knowledge
    from ehrqa.select.default import risk_factor_selection

    plan = analyze("What are my risk factors for heart disease?", DEMO_NOW)
    selection = risk_factor_selection(demo_store, DEMO_PATIENT, plan)
    assert selection is not None and selection.details["risk"]["source"]
    factors = load_knowledge().risk_factors("coronary heart disease")
    assert factors is not None
    for item in selection.items:  # each a factor, or the smoking status said beside them
        name = item.reasons[0].removeprefix("risk factor: ").split(":")[0]
        assert name in factors.factors
        assert item.record.resource_type in ("Condition", "Observation")
    if not selection.items:
        assert selection.negative and "None of the usual risk factors" in (
            selection.empty_reason or ""
        )
    assert (
        risk_factor_selection(demo_store, DEMO_PATIENT, analyze("My last HbA1c?", DEMO_NOW)) is None
    )


def test_an_insurance_question_keeps_the_newest_claims_and_each_earlier_insurer() -> None:
    from ehrqa.select.default import _current_payer

    def claim(ref: str, day: str, payer: str) -> Selected:
        resource = {"resourceType": "Claim", "insurance": [{"coverage": {"display": payer}}]}
        record = Record(f"Claim/{ref}", "Claim", ref, "p", f"[Claim/{ref}] {day} claim",
                        date=day, resource=resource)  # fmt: skip
        return Selected(record, 1.0, ("type Claim",))

    claims = [claim("a", "2010-01-01", "Medicaid"), claim("b", "2011-01-01", "Medicaid"),
              claim("c", "2020-01-01", "Medicare"), claim("d", "2021-01-01", "Medicare"),
              claim("e", "2021-01-01", "Medicare")]  # fmt: skip
    plan = analyze("Who is my insurance with?", date(2025, 1, 1))
    kept = sorted(i.record.ref for i in _current_payer(plan, claims))
    assert kept == ["Claim/b", "Claim/d", "Claim/e"]
    listing = analyze("Show my claims", date(2025, 1, 1))
    assert len(_current_payer(listing, claims)) == 5  # not an insurance question


def test_every_record_of_a_kind_is_narrowed_by_meaning(demo_store: SqliteStore) -> None:
    question = "Did I have a procedure on my zorblax?"  # a kind, and a word no concept knows
    wide = DefaultSelector().select(demo_store, DEMO_PATIENT, question, DEMO_NOW)
    assert len(wide.items) > 20  # rules alone: every procedure
    narrowed = DefaultSelector(matcher=_FakeMatcher(0.8)).select(  # type: ignore[arg-type]
        demo_store, DEMO_PATIENT, question, DEMO_NOW
    )
    assert 0 < len(narrowed.items) < len(wide.items)
    assert all("semantic match" in i.reasons[0] for i in narrowed.items)
    unsure = DefaultSelector(matcher=_FakeMatcher(0.3)).select(  # type: ignore[arg-type]
        demo_store, DEMO_PATIENT, question, DEMO_NOW
    )
    assert len(unsure.items) == len(wide.items)  # nothing sure: the rules' list stays


def test_every_coded_match_answers_a_have_i_ever_question() -> None:
    plan = analyze("Has she ever broken a bone?", date(2025, 1, 1))
    concept = plan.concepts[0].name
    bone = Selected(_record("Condition/a", "Fracture of bone"), 1.0, (f"{concept}: code SNOMED 1",))
    clavicle = Selected(
        _record("Condition/b", "Fracture of clavicle"), 1.0, (f"{concept}: code SNOMED 2",)
    )
    scored = Scored(Selection(plan, [bone, clavicle]), [bone.record, clavicle.record],
                    {"Condition/a": 0.9, "Condition/b": 0.01})  # fmt: skip
    kept = apply_cutoff(None, "p", scored, "filter", 0.5)  # type: ignore[arg-type]
    assert sorted(kept.refs) == ["Condition/a", "Condition/b"]
    # A display term of the concept answers it too: "History of single seizure" for fits.
    fits = analyze("did the baby have fits", date(2025, 1, 1))
    epilepsy = Selected(_record("Condition/e", "Epilepsy"), 1.0, ("epilepsy: code SNOMED 3",))
    single = Selected(
        _record("Condition/s", "History of single seizure"), 1.0, ("epilepsy: term 'seizure'",)
    )
    scored = Scored(Selection(fits, [epilepsy, single]), [epilepsy.record, single.record],
                    {"Condition/e": 0.9, "Condition/s": 0.01})  # fmt: skip
    kept = apply_cutoff(None, "p", scored, "filter", 0.5)  # type: ignore[arg-type]
    assert sorted(kept.refs) == ["Condition/e", "Condition/s"]


def test_a_count_of_nothing_is_zero(demo_store: SqliteStore) -> None:
    question = "How many flu shots did I get in 1990?"
    selection = DefaultSelector().select(demo_store, DEMO_PATIENT, question, DEMO_NOW)
    assert not selection.items and selection.negative
    assert (selection.empty_reason or "").startswith("0: the record has no influenza vaccine")


def test_surgery_is_found_by_the_word_parts_of_its_display(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite3")
    store.upsert(
        [
            _record("Procedure/a", "Rectal polypectomy"),
            _record("Procedure/b", "Documentation of current medications"),
            _record("Procedure/c", "Colonoscopy"),
            _record("Procedure/d", "Partial resection of colon"),
        ]
    )
    for question in ("What surgeries have I had?", "Was she ever operated on?"):
        selection = DefaultSelector().select(store, "p", question, date(2025, 1, 1))
        assert sorted(selection.refs) == ["Procedure/a", "Procedure/d"], question


def test_an_absence_names_the_asked_thing_and_the_window_dates(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite3")
    store.upsert(
        [_record("Encounter/v", "Encounter for check up"), _record("Condition/c", "Asthma")]
    )
    now = date(2020, 5, 16)
    selection = DefaultSelector().select(store, "p", "Any ER visits in the past 12 months?", now)
    assert selection.items == [] and selection.negative
    assert selection.empty_reason == (
        "No: the record has no emergency visit in the past 12 months (since 2019-05-16) (0 found)."
    )


def test_no_current_medicine_is_a_none_current_answer(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite3")
    ended = Record(
        "MedicationRequest/m", "MedicationRequest", "m", "p",
        "[MedicationRequest/m] 2015-01-01 Amoxicillin 250 MG; status stopped", date="2015-01-01",
        codes=(Coding("http://www.nlm.nih.gov/research/umls/rxnorm", "1", "Amoxicillin 250 MG"),),
        status="stopped",
    )  # fmt: skip
    store.upsert([ended])
    question = "What medications am I currently taking?"
    selection = DefaultSelector().select(store, "p", question, date(2025, 1, 1))
    assert selection.items == [] and selection.negative
    assert selection.empty_reason == "None current: the record has no current medications."


def test_a_vaccination_filed_as_a_procedure_counts_and_an_antibody_test_does_not() -> None:
    from ehrqa.select.default import matches_concept
    from ehrqa.select.lexicon import CONCEPTS_BY_NAME

    shot = _record("Procedure/a", "Vaccination for diphtheria, pertussis, and tetanus")
    test = _record("Procedure/b", "Measurement of Varicella-zoster virus antibody")
    assert matches_concept(shot, CONCEPTS_BY_NAME["tetanus vaccine"]) is not None
    assert matches_concept(test, CONCEPTS_BY_NAME["varicella vaccine"]) is None
    assert matches_concept(test, CONCEPTS_BY_NAME["zoster vaccine"]) is None


def _visit_bundle() -> dict[str, object]:
    from conftest import bundle, patient

    visit = {"reference": "Encounter/e1"}
    snomed = "http://snomed.info/sct"
    return bundle(
        patient(),
        {"resourceType": "Encounter", "id": "e1", "status": "finished",
         "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
         "type": [{"coding": [{"system": snomed, "code": "308540004",
                               "display": "Inpatient stay (finding)"}]}],
         "subject": {"reference": "Patient/p1"},
         "period": {"start": "2019-06-28T10:00:00Z", "end": "2019-06-29T10:00:00Z"}},
        {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
         "clinicalStatus": {"coding": [{"code": "active"}]},
         "code": {"coding": [{"system": snomed, "code": "88805009",
                              "display": "Chronic congestive heart failure (disorder)"}]},
         "onsetDateTime": "2018-06-12T10:00:00Z"},
        {"resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
         "subject": {"reference": "Patient/p1"}, "encounter": visit,
         "medicationCodeableConcept": {"coding": [{
             "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1719286",
             "display": "10 ML Furosemide 10 MG/ML Injection"}]},
         "reasonReference": [{"reference": "Condition/c1"}],
         "authoredOn": "2019-06-28T10:00:00Z"},
        {"resourceType": "Procedure", "id": "x1", "status": "completed",
         "subject": {"reference": "Patient/p1"}, "encounter": visit,
         "code": {"coding": [{"system": snomed, "code": "399208008",
                              "display": "Plain chest X-ray (procedure)"}]},
         "performedPeriod": {"start": "2019-06-28T11:00:00Z", "end": "2019-06-28T11:30:00Z"}},
    )  # fmt: skip


def test_a_visit_asked_why_is_answered_by_what_it_recorded(
    store: SqliteStore, tmp_path: Path
) -> None:
    from conftest import write_json
    from ehrqa.answer.answerer import AnswerConfig, answer
    from ehrqa.ingest.files import ingest_paths

    ingest_paths(store, [write_json(tmp_path / "b.json", _visit_bundle())])
    question, now = "Why was she in hospital at the end?", date(2019, 7, 10)
    selection = DefaultSelector().select(store, "p1", question, now)
    assert {"Encounter/e1", "MedicationRequest/m1", "Procedure/x1"} <= set(selection.refs)
    text = answer(question, now, selection, None, AnswerConfig(mode="extractive")).text
    assert text.startswith("At the Inpatient stay on 2019-06-28 [Encounter/e1]: 10 ML Furosemide")
    assert "for Chronic congestive heart failure [MedicationRequest/m1]" in text


def test_a_treatment_asked_for_is_what_the_record_gives_for_it_and_the_reranker_keeps_it() -> None:
    from ehrqa.select.default import _for_condition

    plan = analyze("Is her memory problem being treated?", date(2025, 1, 1))
    assert [c.name for c in plan.concepts] == ["dementia"]
    xray = Record("Procedure/x", "Procedure", "x", "p", "[Procedure/x] 2020-01-01 Chest X-ray",
                  date="2020-01-01", codes=(Coding("http://snomed.info/sct", "2", "Chest X-ray"),))  # fmt: skip
    items = [
        Selected(_order("MedicationRequest/m", "Memantine 2 MG/ML", "Alzheimer's disease"), 1.0),
        Selected(_order("MedicationRequest/g", "Galantamine 4 MG", "Alzheimer's disease"), 1.0),
        Selected(xray, 1.0),
    ]
    kept = _for_condition(plan, items)
    assert [i.record.ref for i in kept] == ["MedicationRequest/m", "MedicationRequest/g"]
    scored = Scored(Selection(plan, kept), [i.record for i in kept],
                    {"MedicationRequest/m": 0.01, "MedicationRequest/g": 0.3})  # fmt: skip
    chosen = apply_cutoff(None, "p", scored, "filter", 0.2)  # type: ignore[arg-type]
    assert set(chosen.refs) == {"MedicationRequest/m", "MedicationRequest/g"}


def _wrist_bundle() -> dict[str, object]:
    from conftest import bundle, patient

    visit, snomed = {"reference": "Encounter/e2"}, "http://snomed.info/sct"
    return bundle(
        patient(),
        {"resourceType": "Encounter", "id": "e2", "status": "finished",
         "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
         "subject": {"reference": "Patient/p1"},
         "period": {"start": "2014-07-31T10:00:00Z", "end": "2014-07-31T12:00:00Z"}},
        {"resourceType": "Condition", "id": "w", "subject": {"reference": "Patient/p1"},
         "encounter": visit, "clinicalStatus": {"coding": [{"code": "resolved"}]},
         "code": {"coding": [{"system": snomed, "code": "263102004",
                              "display": "Fracture subluxation of wrist"}]},
         "onsetDateTime": "2014-07-31T10:00:00Z"},
        {"resourceType": "Procedure", "id": "x", "status": "completed",
         "subject": {"reference": "Patient/p1"}, "encounter": visit,
         "code": {"coding": [{"system": snomed, "code": "74016001",
                              "display": "X-ray of wrist"}]},
         "performedDateTime": "2014-07-31T10:30:00Z"},
    )  # fmt: skip


def test_what_was_done_for_a_problem_comes_from_its_visit(
    store: SqliteStore, tmp_path: Path
) -> None:
    from conftest import write_json
    from ehrqa.answer.answerer import AnswerConfig, answer
    from ehrqa.ingest.files import ingest_paths

    data = _wrist_bundle()
    ingest_paths(store, [write_json(tmp_path / "w.json", data)])
    question, now = "what did they do when she broke her wrist?", date(2019, 7, 10)
    selection = DefaultSelector().select(store, "p1", question, now)
    assert "Procedure/x" in selection.refs
    text = answer(question, now, selection, None, AnswerConfig(mode="extractive")).text
    assert text.startswith("For Fracture subluxation of wrist on 2014-07-31 [Condition/w]: X-ray")


def test_a_measure_at_the_time_of_an_event_is_the_reading_nearest_to_it(
    store: SqliteStore, tmp_path: Path
) -> None:
    from conftest import bundle, observation, patient, write_json
    from ehrqa.answer.answerer import AnswerConfig, answer
    from ehrqa.ingest.files import ingest_paths
    from ehrqa.select.query import event_anchor

    anchor = event_anchor("How low was my hemoglobin back when I needed the transfusion?")
    assert anchor is not None and [c.name for c in anchor.events] == ["blood transfusion"]
    assert event_anchor("When was my last A1c?") is None  # no event named
    snomed = "http://snomed.info/sct"
    hb = [
        observation(f"h{i}", day, value, code="718-7", display="Hemoglobin", unit="g/dL")
        for i, (day, value) in enumerate([("2013-11-10", 8.9), ("2016-12-15", 13.8)])
    ]
    data = bundle(
        patient(),
        *hb,
        {"resourceType": "Procedure", "id": "t", "status": "completed",
         "subject": {"reference": "Patient/p1"},
         "code": {"coding": [{"system": snomed, "code": "180207008",
                              "display": "Intravenous blood transfusion of packed cells"}]},
         "performedDateTime": "2013-11-14T10:00:00Z"},
    )  # fmt: skip
    ingest_paths(store, [write_json(tmp_path / "t.json", data)])
    question, now = (
        "How low was my hemoglobin back when I needed the transfusion?",
        date(2021, 1, 1),
    )
    selection = DefaultSelector().select(store, "p1", question, now)
    assert set(selection.refs) == {"Procedure/t", "Observation/h0"}
    text = answer(question, now, selection, None, AnswerConfig(mode="extractive")).text
    assert text.startswith("At the time of Intravenous blood transfusion of packed cells"), text
    assert "8.9 g/dL on 2013-11-10 [Observation/h0] (4 days before)" in text


def test_a_deceased_patients_last_year_is_the_year_before_death() -> None:
    from ehrqa.select.default import final_year

    plan = analyze("how many ER visits did he have in his last year", date(2021, 1, 1))
    died = final_year(plan, {"deceased": "2020-07-11"})
    assert died.window is not None and (died.window.start, died.window.end) == (
        date(2019, 7, 12),
        date(2020, 7, 11),
    )
    living = final_year(plan, {"deceased": None})
    assert living.window == plan.window  # the calendar year before now


def test_a_list_of_everything_current_is_the_rules_choice() -> None:
    from ehrqa.select.rerank import keeps_default

    assert keeps_default(analyze("Active med list at time of death", date(2021, 1, 1)))
    assert not keeps_default(analyze("Is she on anything for her knees?", date(2021, 1, 1)))


def test_records_of_another_kind_at_a_conditions_visit(store: SqliteStore, tmp_path: Path) -> None:
    from conftest import write_json
    from ehrqa.ingest.files import ingest_paths

    ingest_paths(store, [write_json(tmp_path / "w.json", _wrist_bundle())])
    question = "Procedures at the wrist fracture encounter?"
    selection = DefaultSelector().select(store, "p1", question, date(2019, 7, 10))
    assert {"Condition/w", "Procedure/x"} <= set(selection.refs)  # never "no information"


def test_treatment_of_a_condition_is_every_record_given_for_it(
    store: SqliteStore, tmp_path: Path
) -> None:
    from conftest import bundle, patient, write_json
    from ehrqa.answer.answerer import AnswerConfig, answer
    from ehrqa.ingest.files import ingest_paths

    snomed, rxnorm = "http://snomed.info/sct", "http://www.nlm.nih.gov/research/umls/rxnorm"
    tumor = {"reference": "Condition/c"}
    chemo = [
        {"resourceType": "Procedure", "id": f"k{i}", "status": "completed",
         "subject": {"reference": "Patient/p1"}, "reasonReference": [tumor],
         "code": {"coding": [{"system": snomed, "code": "367336001",
                              "display": "Chemotherapy (procedure)"}]},
         "performedDateTime": f"1995-{9 + i:02d}-10T10:00:00Z"}
        for i in range(4)
    ]  # fmt: skip
    data = bundle(
        patient(),
        {"resourceType": "Condition", "id": "c", "subject": {"reference": "Patient/p1"},
         "clinicalStatus": {"coding": [{"code": "active"}]},
         "code": {"coding": [{"system": snomed, "code": "363406005",
                              "display": "Malignant tumor of colon"}]},
         "onsetDateTime": "1995-08-12T10:00:00Z"},
        {"resourceType": "Procedure", "id": "r", "status": "completed",
         "subject": {"reference": "Patient/p1"}, "reasonReference": [tumor],
         "code": {"coding": [{"system": snomed, "code": "43075005",
                              "display": "Partial resection of colon"}]},
         "performedDateTime": "1995-08-19T10:00:00Z"},
        {"resourceType": "MedicationRequest", "id": "o", "status": "active", "intent": "order",
         "subject": {"reference": "Patient/p1"}, "reasonReference": [tumor],
         "medicationCodeableConcept": {"coding": [{"system": rxnorm, "code": "597195",
                                                   "display": "oxaliplatin 5 MG/ML Injection"}]},
         "authoredOn": "1995-09-10T10:00:00Z"},
        *chemo,
    )  # fmt: skip
    ingest_paths(store, [write_json(tmp_path / "c.json", data)])
    question, now = "How was her cancer treated?", date(1997, 9, 1)
    selection = DefaultSelector().select(store, "p1", question, now)
    assert {"Procedure/r", "MedicationRequest/o", "Procedure/k0"} <= set(selection.refs)
    text = answer(question, now, selection, None, AnswerConfig(mode="extractive")).text
    assert "Chemotherapy (4 times, 1995-09-10 to 1995-12-10)" in text, text


def test_an_order_without_a_reason_is_placed_at_the_visit_that_recorded_a_problem(
    store: SqliteStore, tmp_path: Path
) -> None:
    from conftest import bundle, patient, write_json
    from ehrqa.answer.answerer import AnswerConfig, answer
    from ehrqa.ingest.files import ingest_paths

    visit = {"reference": "Encounter/v"}
    data = bundle(
        patient(),
        {"resourceType": "Encounter", "id": "v", "status": "finished",
         "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
         "subject": {"reference": "Patient/p1"},
         "period": {"start": "2015-01-24T10:00:00Z", "end": "2015-01-24T11:00:00Z"}},
        {"resourceType": "Condition", "id": "o", "subject": {"reference": "Patient/p1"},
         "encounter": visit, "clinicalStatus": {"coding": [{"code": "resolved"}]},
         "code": {"coding": [{"system": "http://snomed.info/sct", "code": "65363002",
                              "display": "Otitis media"}]},
         "onsetDateTime": "2015-01-24T10:00:00Z"},
        {"resourceType": "MedicationRequest", "id": "c", "status": "stopped", "intent": "order",
         "subject": {"reference": "Patient/p1"}, "encounter": visit,
         "medicationCodeableConcept": {"coding": [{
             "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "309097",
             "display": "Cefuroxime 250 MG Oral Tablet"}]},
         "authoredOn": "2015-01-24T10:00:00Z"},
    )  # fmt: skip
    ingest_paths(store, [write_json(tmp_path / "o.json", data)])
    question, now = "Why was he given cefuroxime?", date(2020, 6, 20)
    selection = DefaultSelector().select(store, "p1", question, now)
    assert {"MedicationRequest/c", "Condition/o"} <= set(selection.refs)
    text = answer(question, now, selection, None, AnswerConfig(mode="extractive")).text
    assert text.startswith(
        "Cefuroxime 250 MG Oral Tablet was prescribed on 2015-01-24 [MedicationRequest/c] at the "
        "visit that recorded Otitis media [Condition/o]; the order itself names no reason."
    ), text


def test_this_pregnancy_dates_the_question_and_a_procedure_shot_counts(
    store: SqliteStore, tmp_path: Path
) -> None:
    from conftest import bundle, patient, write_json
    from ehrqa.answer.answerer import AnswerConfig, answer
    from ehrqa.ingest.files import ingest_paths

    snomed = "http://snomed.info/sct"
    data = bundle(
        patient(),
        {"resourceType": "Condition", "id": "preg", "subject": {"reference": "Patient/p1"},
         "clinicalStatus": {"coding": [{"code": "active"}]},
         "code": {"coding": [{"system": snomed, "code": "72892002",
                              "display": "Normal pregnancy"}]},
         "onsetDateTime": "2020-10-18T10:00:00Z"},
        {"resourceType": "Procedure", "id": "tdap", "status": "completed",
         "subject": {"reference": "Patient/p1"},
         "code": {"coding": [{"system": snomed, "code": "608006",
                              "display": "Vaccination for diphtheria, pertussis, and tetanus"}]},
         "performedDateTime": "2021-03-07T10:00:00Z"},
        {"resourceType": "Immunization", "id": "td", "status": "completed",
         "patient": {"reference": "Patient/p1"},
         "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "113",
                                     "display": "Td (adult) preservative free"}]},
         "occurrenceDateTime": "2016-07-24T10:00:00Z"},
    )  # fmt: skip
    ingest_paths(store, [write_json(tmp_path / "p.json", data)])
    now = date(2021, 3, 10)
    question = "Did I get the whooping cough shot during this pregnancy?"
    selection = DefaultSelector().select(store, "p1", question, now)
    assert selection.refs == ["Procedure/tdap"]  # not the Td of 2016, not the pregnancy
    # A part of a longer question is dated the same way.
    two = "Am I pregnant and did I get the whooping cough shot during this pregnancy?"
    facets = DefaultSelector().select(store, "p1", two, now).facets
    assert [f.refs for f in facets] == [["Condition/preg"], ["Procedure/tdap"]]
    due = "Am I due for a tetanus booster?"
    text = answer(
        due, now, DefaultSelector().select(store, "p1", due, now), None,
        AnswerConfig(mode="extractive"),
    ).text  # fmt: skip
    assert text.startswith("Not due: last Vaccination for diphtheria, pertussis, and tetanus on "
                           "2021-03-07 [Procedure/tdap]; next due 2031-03-07"), text  # fmt: skip


def test_a_due_question_about_nothing_recorded_is_never_a_bare_no(demo_store: SqliteStore) -> None:
    found = DefaultSelector().select(
        demo_store, DEMO_PATIENT, "Am I due for a mammogram?", DEMO_NOW
    )
    assert not found.items
    reason = found.empty_reason or ""
    assert reason.startswith("There is no record of mammogram: if none was given elsewhere")
    assert "USPSTF" in reason and not reason.startswith("No")


def test_a_measure_since_a_medicine_started_reads_from_the_last_reading_before_it(
    demo_store: SqliteStore,
) -> None:
    question = "Has my cholesterol changed since I started aspirin?"
    found = DefaultSelector().select(demo_store, DEMO_PATIENT, question, DEMO_NOW)
    start = found.details.get("since")
    assert start is not None and start.startswith("MedicationRequest/")
    first_order = demo_store.get(start).day or ""
    readings = [i.record for i in found.items if i.record.resource_type == "Observation"]
    assert readings and sum((r.day or "") < first_order for r in readings) <= 1


def test_allergies_asked_by_category_are_only_that_category(demo_store: SqliteStore) -> None:
    from ehrqa.select.default import _of_asked_category
    from ehrqa.select.query import analyze

    def allergy(ref: str, category: str) -> Selected:
        record = _record(f"AllergyIntolerance/{ref}", f"Allergy {ref}")
        record.category = (category,)
        return Selected(record, 1.0)

    plan = analyze("any drug allergies?", DEMO_NOW)
    both = Selection(plan, [allergy("food", "food"), allergy("drug", "medication")])
    assert _of_asked_category(demo_store, DEMO_PATIENT, both).refs == ["AllergyIntolerance/drug"]


def test_none_current_shows_the_earlier_ones_beside_it(demo_store: SqliteStore) -> None:
    found = DefaultSelector().select(
        demo_store, DEMO_PATIENT, "What antibiotics am I on right now?", DEMO_NOW
    )
    assert not found.items and found.nearby
    assert (found.empty_reason or "").startswith("None current: no antibiotic is active")
    assert all(i.record.resource_type == "MedicationRequest" for i in found.nearby)


def test_none_in_the_asked_window_shows_the_last_one_outside_it(demo_store: SqliteStore) -> None:
    found = DefaultSelector().select(
        demo_store, DEMO_PATIENT, "Did I get a flu shot in 1940?", DEMO_NOW
    )
    assert not found.items and found.negative
    assert (found.empty_reason or "").startswith("No: the record has no influenza vaccine in 1940")
    assert found.nearby and all(i.record.resource_type == "Immunization" for i in found.nearby)


def test_visits_for_a_condition_are_those_that_name_it() -> None:
    from ehrqa.select.default import _visits_for
    from ehrqa.select.query import analyze

    def visit(ref: str, display: str, cls: str) -> Selected:
        record = _record(f"Encounter/{ref}", display)
        record.category = (cls,)
        return Selected(record, 1.0)

    items = [visit("er1", "Emergency hospital admission for asthma", "emer"),
             visit("er2", "Emergency room admission", "emer"),
             visit("fu1", "Asthma follow-up", "amb")]  # fmt: skip
    er = analyze("how many times did I go to the ER for my asthma", DEMO_NOW)
    assert _visits_for(Selection(er, list(items))).refs == ["Encounter/er1"]
    follow = analyze("how many asthma follow ups have i had", DEMO_NOW)
    assert _visits_for(Selection(follow, list(items))).refs == ["Encounter/fu1"]


def test_ever_in_hospital_with_no_stay_is_a_counted_no(demo_store: SqliteStore) -> None:
    # Asked by a class phrase with nothing of that class: "No … hospital stay (0 found)",
    # never "the record does not contain information about encounters".
    found = DefaultSelector().select(
        demo_store, DEMO_PATIENT, "Have I ever been in the hospital in 1940?", DEMO_NOW
    )
    assert not found.items and found.negative
    assert (found.empty_reason or "").startswith("No: the record has no hospital stay in 1940")


def test_visits_of_a_kind_within_a_class_are_both(store: SqliteStore, tmp_path: Path) -> None:
    """ "Number of inpatient detox admissions?": the detox stays, not every hospital stay and
    every detox visit besides (it counted 5 for 2)."""
    from conftest import bundle, patient, write_json
    from ehrqa.ingest.files import ingest_paths

    act, snomed = "http://terminology.hl7.org/CodeSystem/v3-ActCode", "http://snomed.info/sct"

    def visit(id_: str, cls: str, code: str, display: str, day: str) -> dict[str, object]:
        return {"resourceType": "Encounter", "id": id_, "status": "finished",
                "class": {"system": act, "code": cls},
                "type": [{"coding": [{"system": snomed, "code": code, "display": display}]}],
                "subject": {"reference": "Patient/p1"},
                "period": {"start": f"{day}T10:00:00Z", "end": f"{day}T12:00:00Z"}}  # fmt: skip

    detox = "Drug rehabilitation and detoxification"
    visits = [
        visit("d1", "IMP", "56876005", detox, "2011-05-25"),
        visit("d2", "IMP", "56876005", detox, "2015-01-31"),
        visit("d3", "AMB", "56876005", detox, "2016-03-01"),
        visit("h1", "IMP", "32485007", "Hospital admission", "1992-05-14"),
    ]
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(patient(), *visits))])
    now = date(2020, 1, 1)
    counted = DefaultSelector().select(store, "p1", "Number of inpatient detox admissions?", now)
    assert set(counted.refs) == {"Encounter/d1", "Encounter/d2"}
    stays = DefaultSelector().select(store, "p1", "How many hospital stays has she had?", now)
    assert set(stays.refs) == {"Encounter/d1", "Encounter/d2", "Encounter/h1"}


def test_visits_of_a_kind_asked_about_a_word_are_those_whose_records_name_it(
    store: SqliteStore, tmp_path: Path
) -> None:
    """ "What did they do for my ankle at the ER?" answered with the newest ER visit (a
    concussion); the visit whose own records name the ankle is the one, with what it gave."""
    from conftest import bundle, patient, write_json
    from ehrqa.ingest.files import ingest_paths

    act, snomed = "http://terminology.hl7.org/CodeSystem/v3-ActCode", "http://snomed.info/sct"
    rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"

    def er(id_: str, day: str) -> dict[str, object]:
        return {"resourceType": "Encounter", "id": id_, "status": "finished",
                "class": {"system": act, "code": "EMER"},
                "type": [{"coding": [{"system": snomed, "code": "50849002",
                                      "display": "Emergency room admission (procedure)"}]}],
                "subject": {"reference": "Patient/p1"},
                "period": {"start": f"{day}T10:00:00Z", "end": f"{day}T12:00:00Z"}}  # fmt: skip

    def condition(id_: str, visit: str, code: str, display: str, day: str) -> dict[str, object]:
        return {"resourceType": "Condition", "id": id_, "subject": {"reference": "Patient/p1"},
                "encounter": {"reference": f"Encounter/{visit}"},
                "code": {"coding": [{"system": snomed, "code": code, "display": display}]},
                "onsetDateTime": f"{day}T10:30:00Z"}  # fmt: skip

    records = [
        er("e1", "2015-11-26"),
        er("e2", "2016-11-25"),
        condition("c1", "e1", "44465007", "Sprain of ankle", "2015-11-26"),
        condition("c2", "e2", "62106007", "Concussion with no loss of consciousness", "2016-11-25"),
        {"resourceType": "MedicationRequest", "id": "m1", "status": "stopped", "intent": "order",
         "subject": {"reference": "Patient/p1"}, "encounter": {"reference": "Encounter/e1"},
         "medicationCodeableConcept": {"coding": [{"system": rxnorm, "code": "310965",
                                                   "display": "Ibuprofen 200 MG Oral Tablet"}]},
         "authoredOn": "2015-11-26T11:00:00Z"},
    ]  # fmt: skip
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(patient(), *records))])
    question, now = "what did they do for my ankle at the ER", date(2020, 1, 1)
    selection = DefaultSelector().select(store, "p1", question, now)
    assert set(selection.refs) == {"Encounter/e1", "Condition/c1", "MedicationRequest/m1"}
    # No visit's records name the word: the visits of the kind stand as before.
    other = DefaultSelector().select(store, "p1", "what did they do for my elbow at the ER", now)
    assert "Encounter/e2" in other.refs


def test_a_condition_asked_at_a_body_site_is_only_there(store: SqliteStore, tmp_path: Path) -> None:
    """ "Did she ever break her hip?" answered "Yes: Fracture of wrist; Fracture of clavicle"."""
    from conftest import bundle, patient, write_json
    from ehrqa.ingest.files import ingest_paths

    snomed = "http://snomed.info/sct"

    def condition(id_: str, code: str, display: str) -> dict[str, object]:
        return {"resourceType": "Condition", "id": id_, "subject": {"reference": "Patient/p1"},
                "code": {"coding": [{"system": snomed, "code": code, "display": display}]},
                "onsetDateTime": "2014-07-31T10:00:00Z"}  # fmt: skip

    wrist = condition("c1", "263102004", "Fracture subluxation of wrist")
    clavicle = condition("c2", "58150001", "Fracture of clavicle")
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(patient(), wrist, clavicle))])
    now = date(2020, 1, 1)
    hip = DefaultSelector().select(store, "p1", "did she ever break her hip", now)
    assert not hip.items and hip.negative
    assert hip.empty_reason == "No: the record has no fracture of the hip."
    assert {i.record.ref for i in hip.nearby} == {"Condition/c1", "Condition/c2"}
    assert DefaultSelector().select(store, "p1", "has she broken her wrist", now).refs == [
        "Condition/c1"
    ]
    # A fracture whose site is not recorded may have been the hip: never a "No".
    pathological = condition("c3", "443165006", "Pathological fracture due to osteoporosis")
    ingest_paths(store, [write_json(tmp_path / "c.json", bundle(patient(), pathological))])
    unsure = DefaultSelector().select(store, "p1", "did she ever break her hip", now)
    assert not unsure.items and not unsure.negative
    assert "site of 1 fracture record is not recorded" in (unsure.empty_reason or "")


def test_a_concept_always_at_the_asked_site_is_there(store: SqliteStore, tmp_path: Path) -> None:
    """ "Does she have the birth control implant in her arm?" said the implant's site is not
    recorded: an implant is always in the arm (body_sites.toml [implied])."""
    from conftest import bundle, patient, write_json
    from ehrqa.ingest.files import ingest_paths

    implant = {"resourceType": "Procedure", "id": "x1", "subject": {"reference": "Patient/p1"},
               "status": "completed", "performedDateTime": "2023-06-15T10:00:00Z",
               "code": {"coding": [{"system": "http://snomed.info/sct", "code": "169553002",
                                    "display": "Insertion of subcutaneous contraceptive"}]}}  # fmt: skip
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(patient(), implant))])
    question = "does she have the birth control implant in her arm"
    selection = DefaultSelector().select(store, "p1", question, date(2024, 1, 1))
    assert selection.refs == ["Procedure/x1"], selection.empty_reason


def test_a_measure_never_recorded_at_an_event_is_said_so(
    store: SqliteStore, tmp_path: Path
) -> None:
    """ "What was her oxygen level when she went into the hospital?" answered "Most recent:
    Inpatient stay": with no oxygen saturation at any time, that is said, the stay beside."""
    from conftest import write_json
    from ehrqa.ingest.files import ingest_paths

    ingest_paths(store, [write_json(tmp_path / "b.json", _visit_bundle())])
    question = "what was her oxygen level when she went into the hospital"
    selection = DefaultSelector().select(store, "p1", question, date(2019, 7, 10))
    assert not selection.items and not selection.negative
    assert selection.empty_reason == "No oxygen saturation is recorded at any time."
    assert [i.record.ref for i in selection.nearby] == ["Encounter/e1"]


def test_a_no_is_checked_against_the_visits_and_reasons_that_name_it(
    store: SqliteStore, tmp_path: Path
) -> None:
    """ "Does he have asthma?" said "No: the record has no asthma" over asthma follow-up
    visits (the diagnosis itself missing): those visits are shown and no "No" is said. A
    visit for osteoarthritis of the knee does not name a knee replacement."""
    from conftest import bundle, patient, write_json
    from ehrqa.ingest.files import ingest_paths

    act, snomed = "http://terminology.hl7.org/CodeSystem/v3-ActCode", "http://snomed.info/sct"

    def visit(id_: str, code: str, display: str, day: str, reason: str = "") -> dict[str, object]:
        found: dict[str, object] = {
            "resourceType": "Encounter", "id": id_, "status": "finished",
            "class": {"system": act, "code": "AMB"},
            "type": [{"coding": [{"system": snomed, "code": code, "display": display}]}],
            "subject": {"reference": "Patient/p1"},
            "period": {"start": f"{day}T10:00:00Z", "end": f"{day}T11:00:00Z"},
        }  # fmt: skip
        if reason:
            found["reasonCode"] = [{"coding": [{"system": snomed, "code": "239873007",
                                                "display": reason}]}]  # fmt: skip
        return found

    visits = [
        visit("a1", "394701000", "Asthma follow-up", "2016-10-05"),
        visit("a2", "394701000", "Asthma follow-up", "2018-09-25"),
        visit("k1", "185347001", "Encounter for problem", "2021-02-09", "Osteoarthritis of knee"),
    ]
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(patient(), *visits))])
    now = date(2021, 3, 1)
    asthma = DefaultSelector().select(store, "p1", "does he have asthma?", now)
    assert not asthma.items and not asthma.negative
    assert asthma.empty_reason == (
        "No asthma is listed among the conditions, but 2 other records name it."
    )
    assert [i.record.ref for i in asthma.nearby] == ["Encounter/a2", "Encounter/a1"]
    knee = DefaultSelector().select(store, "p1", "has he had a knee replacement", now)
    assert knee.negative and not knee.nearby


def test_the_reranker_keeps_a_reading_whole() -> None:
    # "what's her blood pressure been like lately?" kept the systolic of a reading whose
    # panel and diastolic were recorded apart on the same day.
    import dataclasses

    from ehrqa.fhir.record import Component

    plan = analyze("what's her blood pressure been like lately?", date(2025, 1, 1))
    concept = plan.concepts[0].name
    systolic = _record("Observation/s", "Systolic Blood Pressure", "2024-05-01", "8480-6")
    diastolic = _record("Observation/d", "Diastolic Blood Pressure", "2024-05-01", "8462-4")
    panel = dataclasses.replace(
        _record("Observation/p", "Blood pressure panel", "2024-05-01", "85354-9"),
        components=(Component("Systolic", 149.0, None, "mm[Hg]", "8480-6"),
                    Component("Diastolic", 90.0, None, "mm[Hg]", "8462-4")),
    )  # fmt: skip
    older = _record("Observation/o", "Diastolic Blood Pressure", "2020-05-01", "8462-9")
    records = (systolic, diastolic, panel, older)
    items = [Selected(r, 1.0, (f"{concept}: code LOINC x",)) for r in records]
    scores = {"Observation/s": 0.9, "Observation/d": 0.01, "Observation/p": 0.01}
    scored = Scored(Selection(plan, items), list(records), {**scores, "Observation/o": 0.01})
    kept = apply_cutoff(None, "p", scored, "filter", 0.5)  # type: ignore[arg-type]
    assert sorted(kept.refs) == ["Observation/d", "Observation/p", "Observation/s"]


def test_symptoms_of_an_illness_are_the_findings_filed_at_its_visit(
    store: SqliteStore, tmp_path: Path
) -> None:
    """ "What symptoms did he have when he had covid?" answered "Found: COVID-19"."""
    from conftest import bundle, patient, write_json
    from ehrqa.answer.answerer import AnswerConfig, answer
    from ehrqa.ingest.files import ingest_paths

    snomed = "http://snomed.info/sct"

    def condition(id_: str, code: str, display: str, visit: str) -> dict[str, object]:
        return {"resourceType": "Condition", "id": id_, "subject": {"reference": "Patient/p1"},
                "encounter": {"reference": f"Encounter/{visit}"},
                "code": {"coding": [{"system": snomed, "code": code, "display": display}]},
                "onsetDateTime": "2021-07-23T10:00:00Z"}  # fmt: skip

    visit = {"resourceType": "Encounter", "id": "e1", "status": "finished",
             "class": {"code": "AMB"}, "subject": {"reference": "Patient/p1"},
             "period": {"start": "2021-07-23T10:00:00Z", "end": "2021-07-23T11:00:00Z"}}  # fmt: skip
    covid = condition("c1", "840539006", "Disease caused by severe acute respiratory syndrome "
                      "coronavirus 2 (disorder)", "e1")  # fmt: skip
    cough = condition("c2", "49727002", "Cough (finding)", "e1")
    fever = condition("c3", "386661006", "Fever (finding)", "e1")
    elsewhere = condition("c4", "267036007", "Dyspnea (finding)", "e2")
    records = bundle(patient(), visit, covid, cough, fever, elsewhere)
    ingest_paths(store, [write_json(tmp_path / "b.json", records)])
    question = "What symptoms did he have when he had covid"
    now = date(2022, 1, 1)
    selection = DefaultSelector().select(store, "p1", question, now)
    assert {"Condition/c2", "Condition/c3"} <= set(selection.refs)
    assert "Condition/c4" not in selection.refs
    text = answer(question, now, selection, None, AnswerConfig(mode="extractive")).text
    assert "Cough" in text and "Fever" in text and "Dyspnea" not in text


def test_a_record_without_a_site_on_the_day_of_one_at_the_site_is_kept(
    store: SqliteStore, tmp_path: Path
) -> None:
    """ "Did he need stitches for that cut on his leg?" kept the thigh laceration and dropped
    its suture, whose display names no site."""
    from conftest import bundle, patient, write_json
    from ehrqa.ingest.files import ingest_paths

    snomed = "http://snomed.info/sct"

    def record(kind: str, id_: str, code: str, display: str, day: str) -> dict[str, object]:
        when = "onsetDateTime" if kind == "Condition" else "performedDateTime"
        status = {} if kind == "Condition" else {"status": "completed"}
        return {"resourceType": kind, "id": id_, "subject": {"reference": "Patient/p1"},
                **status, when: f"{day}T10:00:00Z",
                "code": {"coding": [{"system": snomed, "code": code, "display": display}]}}  # fmt: skip

    cut = record("Condition", "c1", "283385000", "Laceration of thigh", "1999-09-17")
    stitched = record("Procedure", "x1", "288086009", "Suture open wound", "1999-09-17")
    later = record("Procedure", "x2", "288086009", "Suture open wound", "2005-01-02")
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(patient(), cut, stitched, later))])
    question = "Did he need stitches for that cut on his leg?"
    selection = DefaultSelector().select(store, "p1", question, date(2020, 1, 1))
    assert set(selection.refs) == {"Condition/c1", "Procedure/x1"}


def test_risk_factors_list_each_record_once_and_say_the_smoking_status(
    store: SqliteStore, tmp_path: Path
) -> None:
    """Prediabetes was cited twice (a factor of its own and of diabetes); an ex-smoker's and
    a never-smoker's status was left unsaid."""
    from conftest import bundle, patient, write_json
    from ehrqa.answer.answerer import AnswerConfig, answer
    from ehrqa.ingest.files import ingest_paths
    from ehrqa.select.default import risk_factor_selection

    def smoking(id_: str, status: str, code: str) -> dict[str, object]:
        return {"resourceType": "Observation", "id": id_, "status": "final",
                "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2023-12-27T10:00:00Z",
                "code": {"coding": [{"system": "http://loinc.org", "code": "72166-2",
                                     "display": "Tobacco smoking status"}]},
                "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct",
                                                     "code": code, "display": status}]}}  # fmt: skip

    question = "Does he have any risk factors for heart disease?"
    now = date(2024, 6, 1)
    never = smoking("o1", "Never smoked tobacco (finding)", "266919005")
    ingest_paths(store, [write_json(tmp_path / "a.json", bundle(patient(), never))])
    none = risk_factor_selection(store, "p1", analyze(question, now))
    assert none is not None and not none.items and none.negative
    assert "smoking status is Never smoked tobacco (finding) (2023-12-27)" in (
        none.empty_reason or ""
    )
    prediabetes = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
                   "clinicalStatus": {"coding": [{"code": "active"}]},
                   "onsetDateTime": "2015-09-02T10:00:00Z",
                   "code": {"coding": [{"system": "http://snomed.info/sct", "code": "714628002",
                                        "display": "Prediabetes (finding)"}]}}  # fmt: skip
    former = smoking("o1", "Ex-smoker (finding)", "8517006")
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(patient(), prediabetes, former))])
    found = risk_factor_selection(store, "p1", analyze(question, now))
    assert found is not None and found.refs.count("Condition/c1") == 1
    text = answer(question, now, found, None, AnswerConfig(mode="extractive")).text
    assert text.count("[Condition/c1]") == 1, text
    assert "Also recorded: Tobacco smoking status: Ex-smoker (finding) on 2023-12-27" in text


def test_is_it_working_asks_whether_the_medicines_reason_is_under_control(
    store: SqliteStore, tmp_path: Path
) -> None:
    """ "What's the blood pressure medicine for and is it working?" answered the reason only."""
    from conftest import write_json
    from ehrqa.answer.answerer import AnswerConfig, answer
    from ehrqa.ingest.files import ingest_paths

    records = _visit_bundle()  # furosemide for heart failure; no reading of its targets
    ingest_paths(store, [write_json(tmp_path / "b.json", records)])
    question = "what's the furosemide for and is it working?"
    now = date(2019, 7, 10)
    selection = DefaultSelector().select(store, "p1", question, now)
    assert len(selection.facets) == 2
    assert selection.facets[1].plan.question == "is chronic congestive heart failure under control?"
    text = answer(question, now, selection, None, AnswerConfig(mode="extractive")).text
    # No reading to judge it by: never a "Yes".
    assert "The record holds no reading with a target to judge whether it is controlled" in text
    assert "Yes" not in text


def test_a_record_found_by_code_and_by_a_term_is_no_better_a_match(
    store: SqliteStore, tmp_path: Path
) -> None:
    """ "How old was she when she had her first baby?" took the second birth: "Cesarean
    section", found by its code and again by the term "cesarean", outscored the first birth
    filed by code alone, and the earliest-day cut kept the best-scored only."""
    from conftest import bundle, patient, write_json
    from ehrqa.ingest.files import ingest_paths

    def birth(id_: str, code: str, display: str, day: str) -> dict[str, object]:
        return {"resourceType": "Procedure", "id": id_, "status": "completed",
                "subject": {"reference": "Patient/p1"}, "performedDateTime": f"{day}T10:00:00Z",
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": code,
                                     "display": display}]}}  # fmt: skip

    first = birth(
        "x1", "386216000", "Human parturition, function (observable entity)", "2014-10-25"
    )
    second = birth("x2", "11466000", "Cesarean section (procedure)", "2016-01-16")
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(patient(), first, second))])
    question = "when did she have her first baby?"
    selection = DefaultSelector().select(store, "p1", question, date(2020, 1, 1))
    assert "Procedure/x1" in selection.refs and "Procedure/x2" not in selection.refs


def test_a_dental_surgery_is_placed_at_the_teeth_never_at_an_unknown_site(
    store: SqliteStore, tmp_path: Path
) -> None:
    """ "Has she ever had surgery on her knee?" said the site of two surgeries was not
    recorded: a gingivectomy is of the teeth."""
    from conftest import bundle, patient, write_json
    from ehrqa.ingest.files import ingest_paths

    gums = {"resourceType": "Procedure", "id": "x1", "status": "completed",
            "subject": {"reference": "Patient/p1"}, "performedDateTime": "2012-08-07T10:00:00Z",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "6142004",
                                 "display": "Gingivectomy or gingivoplasty, per tooth"}]}}  # fmt: skip
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(patient(), gums))])
    knee = DefaultSelector().select(store, "p1", "has she ever had surgery on her knee?",
                                    date(2020, 1, 1))  # fmt: skip
    assert not knee.items and knee.negative
    assert knee.empty_reason == "No: the record has no surgery of the knee."


def test_medicines_named_for_a_condition_include_those_recorded_for_it(
    store: SqliteStore, tmp_path: Path
) -> None:
    """ "What migraine medicines is he on?" listed the class's triptan and topiramate and
    left out propranolol and ibuprofen, ordered for his migraine."""
    from conftest import bundle, patient, write_json
    from ehrqa.ingest.files import ingest_paths

    rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
    migraine = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
                "clinicalStatus": {"coding": [{"code": "active"}]},
                "onsetDateTime": "2015-07-06T10:00:00Z",
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "37796009",
                                     "display": "Migraine (disorder)"}]}}  # fmt: skip

    def order(id_: str, code: str, display: str, reason: str | None) -> dict[str, object]:
        why = {"reasonReference": [{"reference": f"Condition/{reason}"}]} if reason else {}
        return {"resourceType": "MedicationRequest", "id": id_, "status": "active",
                "intent": "order", "subject": {"reference": "Patient/p1"},
                "authoredOn": "2023-11-01T10:00:00Z", **why,
                "medicationCodeableConcept": {"coding": [{"system": rxnorm, "code": code,
                                                          "display": display}]}}  # fmt: skip

    records = bundle(
        patient(),
        migraine,
        order("m1", "313782", "sumatriptan 50 MG Oral Tablet", None),
        order("m2", "856422", "propranolol hydrochloride 40 MG Oral Tablet", "c1"),
        order("m3", "314076", "lisinopril 10 MG Oral Tablet", None),
    )
    ingest_paths(store, [write_json(tmp_path / "b.json", records)])
    selection = DefaultSelector().select(
        store, "p1", "What migraine medicines is he on?", date(2024, 1, 1)
    )
    assert set(selection.refs) == {"MedicationRequest/m1", "MedicationRequest/m2"}


def test_a_concept_rescued_from_the_cut_off_keeps_its_records_of_that_day() -> None:
    # "What did he score on the depression questionnaire at his physical?" kept the PHQ-2
    # and dropped the PHQ-9 of the same check-up: the reranker scored both below its cut-off.
    plan = analyze("depression questionnaire results?", date(2025, 1, 1))
    concept = plan.concepts[0].name
    phq2 = _record("Observation/a", "PHQ-2 total score", "2024-12-16", "55758-7")
    phq9 = _record("Observation/b", "PHQ-9 total score", "2024-12-16", "44261-6")
    older = _record("Observation/c", "PHQ-9 total score", "2023-12-16", "44261-9")
    items = [Selected(r, 1.0, (f"{concept}: code LOINC x",)) for r in (phq2, phq9, older)]
    scores = {"Observation/a": 0.02, "Observation/b": 0.01, "Observation/c": 0.01}
    scored = Scored(Selection(plan, items), [i.record for i in items], scores)
    kept = apply_cutoff(None, "p", scored, "filter", 0.5)  # type: ignore[arg-type]
    assert sorted(kept.refs) == ["Observation/a", "Observation/b"]


def test_visits_of_a_class_and_a_kind_in_a_window_are_only_that_kind(tmp_path: Path) -> None:
    # "Any inpatient detox in the last five years?" said "Yes" over a hospital stay for
    # something else: with no detox stay in the window, there is none.
    def stay(ref: str, code: str, name: str, day: str) -> Record:
        return Record(
            f"Encounter/{ref}", "Encounter", ref, "p", f"[Encounter/{ref}] {day} {name}",
            date=day, codes=(Coding("http://snomed.info/sct", code, name),), category=("imp",),
        )  # fmt: skip

    store = SqliteStore(tmp_path / "s.sqlite3")
    store.upsert(
        [
            stay("d1", "56876005", "Drug rehabilitation and detoxification", "2013-08-10"),
            stay("d2", "56876005", "Drug rehabilitation and detoxification", "2019-06-10"),
            stay("h", "32485007", "Hospital admission", "2021-09-11"),
        ]
    )
    now = date(2024, 12, 13)
    ever = DefaultSelector().select(store, "p", "How many inpatient detox stays has she had?", now)
    assert sorted(ever.refs) == ["Encounter/d1", "Encounter/d2"]
    question = "any inpatient detox in the last five years?"
    assert DefaultSelector().select(store, "p", question, now).refs == []


def test_a_reading_on_the_day_a_medicine_started_is_its_baseline(tmp_path: Path) -> None:
    # "have her anxiety scores improved since she started treatment?" read 3 (March) → 2, not
    # the 19 measured at the visit that started escitalopram.
    rx, loinc = "http://www.nlm.nih.gov/research/umls/rxnorm", "http://loinc.org"

    def gad(ref: str, day: str, value: float) -> Record:
        return Record(
            f"Observation/{ref}", "Observation", ref, "p", f"[Observation/{ref}] {day} GAD-7 = "
            f"{value}", date=day, value=value, codes=(Coding(loinc, "70274-6", "GAD-7 total"),),
        )  # fmt: skip

    order = Record(
        "MedicationRequest/e", "MedicationRequest", "e", "p", "[MedicationRequest/e] 2015-10-06 "
        "escitalopram 10 MG Oral Tablet", date="2015-10-06", status="active",
        codes=(Coding(rx, "351249", "escitalopram 10 MG Oral Tablet"),),
    )  # fmt: skip
    store = SqliteStore(tmp_path / "s.sqlite3")
    store.upsert(
        [order, gad("m", "2015-03-09", 3), gad("d", "2015-10-06", 19), gad("n", "2024-04-01", 2)]
    )
    question = "have her anxiety scores improved since she started escitalopram?"
    found = DefaultSelector().select(store, "p", question, date(2024, 6, 1))
    assert found.details.get("since") == "MedicationRequest/e"
    assert sorted(found.refs) == ["MedicationRequest/e", "Observation/d", "Observation/n"]
