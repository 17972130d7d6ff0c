"""Judgements computed by code: trend direction, reference ranges, control, insurers; and the
answers that open with them."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from ehrqa.answer.answerer import AnswerConfig, answer
from ehrqa.answer.judgements import (
    control,
    death,
    duration,
    payer_judgement,
    range_judgement,
    trend,
    vaccine_due,
)
from ehrqa.fhir.record import Coding, Component, Record
from ehrqa.knowledge import load_knowledge
from ehrqa.select.base import Selected, Selection
from ehrqa.select.query import analyze

NOW = date(2025, 1, 1)
LOINC = "http://loinc.org"


def obs(ref: str, day: str, code: str, name: str, value: float, unit: str) -> Record:
    return Record(
        ref=f"Observation/{ref}",
        resource_type="Observation",
        id=ref,
        patient_id="p",
        text=f"[Observation/{ref}] {day} {name} (LOINC {code}) = {value} {unit}",
        date=day,
        codes=(Coding(LOINC, code, name),),
        value=value,
        unit=unit,
    )


def weight(ref: str, day: str, value: float) -> Record:
    return obs(ref, day, "29463-7", "Body Weight", value, "kg")


def bp(ref: str, day: str, systolic: float, diastolic: float) -> Record:
    return Record(
        ref=f"Observation/{ref}",
        resource_type="Observation",
        id=ref,
        patient_id="p",
        text=f"[Observation/{ref}] {day} Blood Pressure: {systolic} / {diastolic} mm[Hg]",
        date=day,
        codes=(Coding(LOINC, "85354-9", "Blood pressure panel"),),
        components=(
            Component("Systolic Blood Pressure", systolic, None, "mm[Hg]", "8480-6"),
            Component("Diastolic Blood Pressure", diastolic, None, "mm[Hg]", "8462-4"),
        ),
    )


def condition(ref: str, code: str, name: str) -> Record:
    return Record(
        ref=f"Condition/{ref}",
        resource_type="Condition",
        id=ref,
        patient_id="p",
        text=f"[Condition/{ref}] 2010-01-01 {name} (SNOMED {code}); status active",
        date="2010-01-01",
        codes=(Coding("http://snomed.info/sct", code, name),),
        status="active",
    )


def test_trend_names_direction_and_first_and_last_values() -> None:
    verdict = trend([weight("w2", "2024-01-01", 88.04123), weight("w1", "2020-01-01", 80.0)])
    assert verdict is not None
    assert verdict.sentence.startswith("Body Weight went up: 80 kg on 2020-01-01")
    assert "88 kg on 2024-01-01 [Observation/w2]" in verdict.sentence
    flat = trend([weight("a", "2020-01-01", 80.0), weight("b", "2024-01-01", 80.5)])
    assert flat is not None and "was stable" in flat.sentence
    worse = trend([weight("a", "2020-01-01", 80.0), weight("b", "2024-01-01", 90.0)], "lower")
    assert worse is not None and "went up (worse)" in worse.sentence
    assert trend([weight("a", "2020-01-01", 80.0)]) is None  # one reading is no trend


def test_range_judgement_flags_high_and_names_its_source() -> None:
    kb = load_knowledge()
    high = range_judgement(obs("g", "2024-05-01", "4548-4", "HbA1c", 7.8, "%"), kb)
    assert high is not None and "HIGH" in high.sentence and "source:" in high.sentence
    assert all(span in high.sentence for span in high.knowledge)
    normal = range_judgement(bp("b", "2024-05-01", 110.2345, 70.4321), kb)
    assert normal is not None and "110/70 mmHg" in normal.sentence
    assert "within the normal range" in normal.sentence
    assert range_judgement(obs("x", "2024-05-01", "0000-0", "Unknown", 1.0, "1"), kb) is None


def test_control_compares_the_newest_measure_with_the_target() -> None:
    kb = load_knowledge()
    diabetes = condition("d", "44054006", "Diabetes mellitus type 2 (disorder)")
    monitors = kb.monitoring("44054006")
    assert monitors
    readings = [
        obs("old", "2020-01-01", "4548-4", "HbA1c", 8.1, "%"),
        obs("new", "2024-01-01", "4548-4", "HbA1c", 6.4, "%"),
    ]
    verdict = control([diabetes], readings, monitors)
    assert verdict is not None
    assert "6.4% on 2024-01-01 [Observation/new] is at target (controlled)" in verdict.sentence
    assert "Observation/old" not in verdict.sentence


def test_control_reads_a_systolic_and_diastolic_filed_apart() -> None:
    # "is my blood pressure under control now" over readings filed without their panel fell
    # back to the reference range: the targets read only the panel's components.
    kb = load_knowledge()
    hypertension = condition("h", "59621000", "Essential hypertension (disorder)")
    readings = [
        obs("s", "2022-12-01", "8480-6", "Systolic Blood Pressure", 138.1, "mm[Hg]"),
        obs("d", "2022-12-01", "8462-4", "Diastolic Blood Pressure", 83.5, "mm[Hg]"),
    ]
    verdict = control([hypertension], readings, kb.monitoring("59621000"))
    assert verdict is not None and "not controlled" in verdict.sentence
    assert "[Observation/s]" in verdict.sentence and "[Observation/d]" in verdict.sentence
    # Filed beside its panel, the panel (both parts in one) stands for the day.
    with_panel = [*readings, bp("p", "2022-12-01", 138.1, 83.5)]
    verdict = control([hypertension], with_panel, kb.monitoring("59621000"))
    assert verdict is not None and "[Observation/p]" in verdict.sentence
    assert "[Observation/s]" not in verdict.sentence


def test_anxiety_is_judged_by_its_screening_score() -> None:
    # "Is his anxiety under control?" said no reading had a target.
    kb = load_knowledge()
    anxiety = condition("a", "80583007", "Severe anxiety (panic) (finding)")
    score = obs("g", "2021-08-30", "70274-6", "GAD-7 total score", 16, "{score}")
    verdict = control([anxiety], [score], kb.monitoring("80583007"))
    assert verdict is not None and "16 on 2021-08-30" in verdict.sentence
    assert "not controlled" in verdict.sentence and "GAD-7" in verdict.sentence


def test_payers_are_named_with_their_claim_dates() -> None:
    def claim(ref: str, day: str, payer: str) -> Record:
        resource = {"resourceType": "Claim", "insurance": [{"coverage": {"display": payer}}]}
        return Record(
            ref=f"Claim/{ref}", resource_type="Claim", id=ref, patient_id="p",
            text=f"[Claim/{ref}] {day} claim", date=day, resource=resource,
        )  # fmt: skip

    verdict = payer_judgement(
        [claim("a", "2010-01-01", "Medicaid"), claim("b", "2020-01-01", "Medicare"),
         claim("c", "2021-01-01", "Medicare")]
    )  # fmt: skip
    assert verdict is not None
    assert verdict.sentence.startswith("On the latest claim (2021-01-01) the insurer is Medicare")
    assert "earlier: Medicaid (last claim 2010-01-01) [Claim/a]" in verdict.sentence


def test_trend_question_opens_with_the_direction_and_verifies() -> None:
    question = "Has my weight gone up or down?"
    records = [weight("w1", "2020-01-01", 80.0), weight("w2", "2024-01-01", 88.04123)]
    selection = Selection(analyze(question, NOW), [Selected(r, 1.0) for r in records])
    result = answer(question, NOW, selection, None, AnswerConfig(mode="extractive"))
    assert result.text.startswith("Body Weight went up")
    assert result.verified, result.unverified


def test_age_of_a_deceased_patient_is_the_age_at_death() -> None:
    question = "How old am I?"
    patient = Record(
        ref="Patient/p", resource_type="Patient", id="p", patient_id="p",
        text="[Patient/p] Ann; female; born 1941-08-06; deceased 2012-10-11",
        resource={"resourceType": "Patient", "birthDate": "1941-08-06",
                  "deceasedDateTime": "2012-10-11T00:00:00Z"},
    )  # fmt: skip
    selection = Selection(analyze(question, NOW), [Selected(patient, 1.0)])
    result = answer(question, NOW, selection, None, AnswerConfig(mode="extractive"))
    assert result.text.startswith("Died on 2012-10-11 at age 71")
    assert result.verified, result.unverified


def test_a_medicine_is_one_line_with_its_orders_and_reason() -> None:
    question = "Why am I taking metformin?"

    def order(ref: str, day: str) -> Record:
        return Record(
            ref=f"MedicationRequest/{ref}", resource_type="MedicationRequest", id=ref,
            patient_id="p", date=day, status="active",
            text=f"[MedicationRequest/{ref}] {day} metformin 500 MG (RxNorm 860975); status "
            "active; reason Diabetes mellitus type 2 (disorder)",
            codes=(Coding("http://www.nlm.nih.gov/research/umls/rxnorm", "860975",
                          "metformin 500 MG"),),
        )  # fmt: skip

    records = [order("m1", "2020-01-01"), order("m2", "2023-01-01")]
    why = Selection(analyze(question, NOW), [Selected(r, 1.0) for r in records])
    result = answer(question, NOW, why, None, AnswerConfig(mode="extractive"))
    assert result.text.startswith("metformin 500 MG was prescribed for Diabetes mellitus type 2")
    assert result.verified, result.unverified
    listing = "What medicines am I on?"
    selection = Selection(analyze(listing, NOW), [Selected(r, 1.0) for r in records])
    result = answer(listing, NOW, selection, None, AnswerConfig(mode="extractive"))
    assert result.text.count("metformin 500 MG") == 1
    assert "first ordered 2020-01-01, last 2023-01-01" in result.text
    assert "for Diabetes mellitus type 2" in result.text and result.verified
    unexplained = order("x", "2021-01-01")
    unexplained.text = unexplained.text.partition("; reason")[0]
    bare = Selection(analyze(question, NOW), [Selected(unexplained, 1.0)])
    said = answer(question, NOW, bare, None, AnswerConfig(mode="extractive")).text
    assert said.startswith("The record gives no reason for metformin 500 MG")


def _shot(ref: str, day: str, cvx: str, name: str) -> Record:
    return Record(
        ref=f"Immunization/{ref}", resource_type="Immunization", id=ref, patient_id="p",
        text=f"[Immunization/{ref}] {day} {name} (CVX {cvx})", date=day,
        codes=(Coding("http://hl7.org/fhir/sid/cvx", cvx, name),),
    )  # fmt: skip


def test_a_vaccine_is_due_by_its_interval() -> None:
    kb = load_knowledge()
    td = _shot("t", "2019-10-19", "113", "Td (adult) preservative free")
    [verdict] = vaccine_due([td], kb, date(2025, 1, 1))
    assert verdict.sentence.startswith("Not due: last Td (adult) preservative free on 2019-10-19")
    assert "next due 2029-10-19" in verdict.sentence
    flu = _shot("f", "2023-10-01", "140", "Influenza, seasonal")
    [due] = vaccine_due([flu], kb, date(2025, 1, 1))
    assert due.sentence.startswith("Due now") and "next due 2024-10-01" in due.sentence


def test_duration_runs_from_onset_to_resolution_or_now() -> None:
    ongoing = condition("h", "38341003", "Hypertension")
    [verdict] = duration([ongoing], date(2025, 1, 1))
    assert verdict.sentence.startswith("Hypertension: 15 years, since 2010-01-01")


def test_death_is_answered_either_way_round() -> None:
    dead = Record(
        ref="Patient/p", resource_type="Patient", id="p", patient_id="p", text="[Patient/p]",
        resource={"deceasedDateTime": "2012-10-11T08:00:00Z"},
    )  # fmt: skip
    assert death(dead, "Is he still alive?", 71).sentence.startswith("No: died on 2012-10-11")
    assert death(dead, "Has he died?", 71).sentence.startswith("Yes: died on 2012-10-11 at age 71")
    assert death(dead, "When did he pass away?", None).sentence.startswith("Died on 2012-10-11")
    alive = Record("Patient/q", "Patient", "q", "q", "[Patient/q]", resource={})
    assert death(alive, "Is she alive?", None).sentence.startswith("Yes: the record shows no")


def test_hybrid_mode_leaves_an_asked_judgement_to_code() -> None:
    def no_model() -> None:
        raise AssertionError("a judgement is computed, not written by the model")

    question = "Is my HbA1c normal?"
    a1c = obs("g", "2024-05-01", "4548-4", "Hemoglobin A1c", 7.8, "%")
    selection = Selection(analyze(question, NOW), [Selected(a1c, 1.0)])
    result = answer(question, NOW, selection, no_model, AnswerConfig(mode="hybrid"))  # type: ignore[arg-type]
    assert result.source == "extractive" and "HIGH" in result.text and result.verified


def test_a_measure_asked_about_control_is_judged_by_its_target() -> None:
    question = "Is my blood pressure under control?"
    reading = bp("b", "2024-05-01", 186.2345, 108.4321)
    selection = Selection(analyze(question, NOW), [Selected(reading, 1.0)])
    result = answer(question, NOW, selection, None, AnswerConfig(mode="extractive"))
    assert "186/108 mmHg" in result.text and "not controlled" in result.text
    assert result.verified, result.unverified


def test_age_at_an_event_is_computed_from_the_birth_date() -> None:
    question = "How old was he when he broke his arm?"
    fracture = condition("f", "65966004", "Fracture of forearm (disorder)")
    selection = Selection(analyze(question, NOW), [Selected(fracture, 1.0)])
    selection.details["patient"] = {"birth_date": "2000-06-01", "gender": "male"}
    result = answer(question, NOW, selection, None, AnswerConfig(mode="extractive"))
    assert result.text.startswith(
        "Fracture of forearm: first recorded 2010-01-01 [Condition/f], at age 9"
    )
    assert result.verified, result.unverified


def test_a_kind_of_record_without_the_asked_thing_is_never_a_yes() -> None:
    question = "Do I have any spleen problems?"  # "spleen problems" names no concept
    plan = analyze(question, NOW)
    assert plan.keywords and not plan.concepts
    lung = condition("e", "87433001", "Pulmonary emphysema (disorder)")
    selection = Selection(plan, [Selected(lung, 1.0, ("type Condition",))])
    text = answer(question, NOW, selection, None, AnswerConfig(mode="extractive")).text
    assert text.startswith('I could not match "spleen" to a record; the conditions on record:')
    named = Selection(plan, [Selected(lung, 1.0, ("lexical match",))])
    assert answer(question, NOW, named, None, AnswerConfig(mode="extractive")).text.startswith(
        "Yes"
    )


def test_a_visit_of_a_kind_the_record_does_not_name_is_never_given_as_the_answer() -> None:
    question = "When was my last dental visit?"  # no visit says "dental"
    plan = analyze(question, NOW)
    assert plan.keywords == ("dental",) and not plan.concepts
    visit = Record(
        ref="Encounter/v",
        resource_type="Encounter",
        id="v",
        patient_id="p",
        text="[Encounter/v] 2020-12-02 Prenatal visit",
        date="2020-12-02",
        codes=(Coding("http://snomed.info/sct", "424619006", "Prenatal visit"),),
    )
    chosen = Selection(plan, [Selected(visit, 1.0, ("type Encounter", "newest match"))])
    text = answer(question, NOW, chosen, None, AnswerConfig(mode="extractive")).text
    assert text.startswith('I could not match "dental" to a record; the most recent encounters')


def smoking_status(ref: str, day: str, value: str) -> Record:
    return Record(
        ref=f"Observation/{ref}",
        resource_type="Observation",
        id=ref,
        patient_id="p",
        text=f"[Observation/{ref}] {day} Tobacco smoking status = {value}",
        date=day,
        codes=(Coding(LOINC, "72166-2", "Tobacco smoking status"),),
        value_text=value,
    )


@pytest.mark.parametrize(
    ("question", "latest", "opens"),
    [
        ("Do I smoke?", "Never smoker", "No:"),
        ("Am I a smoker?", "Current every day smoker", "Yes:"),
        ("Does he still smoke?", "Former smoker", "No, not now:"),
        ("Have I ever smoked?", "Former smoker", "Yes:"),
        ("Did she smoke?", "Ex-smoker (finding)", "Yes:"),
        ("Have I ever smoked?", "Never smoked tobacco (finding)", "No:"),
    ],
)
def test_smoking_is_answered_from_the_latest_status(question: str, latest: str, opens: str) -> None:
    older = smoking_status("old", "2015-01-01", "Current every day smoker")
    newest = smoking_status("new", "2020-01-01", latest)
    plan = analyze(question, NOW)
    chosen = Selection(plan, [Selected(newest, 1.0), Selected(older, 1.0)])
    text = answer(question, NOW, chosen, None, AnswerConfig(mode="extractive")).text
    assert text.startswith(opens) and "on 2020-01-01" in text and "[Observation/new]" in text
    assert "(finding)" not in text


def test_a_smoking_status_nobody_asked_yes_or_no_about_is_listed() -> None:
    question = "What is my smoking status?"
    plan = analyze(question, NOW)
    chosen = Selection(plan, [Selected(smoking_status("s", "2020-01-01", "Never smoker"), 1.0)])
    text = answer(question, NOW, chosen, None, AnswerConfig(mode="extractive")).text
    assert not text.startswith(("Yes", "No")) and "Never smoker" in text


def bmi(ref: str, day: str, value: float) -> Record:
    return obs(ref, day, "39156-5", "Body Mass Index", value, "kg/m2")


@pytest.mark.parametrize(
    ("question", "value", "opening"),
    [
        # An obesity entry from 2014 that was never closed, and a BMI of 27.7 since.
        ("Am I still obese?", 27.7, "Not by the latest measure: Body Mass Index 27.7 kg/m²"),
        ("Am I obese?", 27.7, "Not by the latest measure: Body Mass Index 27.7 kg/m²"),
        ("Is he still obese?", 31.2, "Yes, by the latest measure: Body Mass Index 31.2 kg/m²"),
        # Overweight is BMI 25 or more: a wider state than obesity, never read as it.
        ("Am I overweight?", 27.7, "Yes, by the latest measure: Body Mass Index 27.7 kg/m²"),
        ("Is she overweight?", 23.0, "Not by the latest measure: Body Mass Index 23 kg/m²"),
    ],
)
def test_a_state_a_measure_defines_is_answered_by_its_latest_value(
    question: str, value: float, opening: str
) -> None:
    plan = analyze(question, NOW)
    obesity = condition("o", "162864005", "Body mass index 30+ - obesity (finding)")
    items = [Selected(obesity, 1.0), Selected(bmi("old", "2014-04-10", 31.0), 0.9)]
    items.append(Selected(bmi("new", "2024-04-23", value), 0.9))
    selection = Selection(plan, items)
    selection.details["patient"] = {"birth_date": "1972-03-30", "gender": "male"}
    result = answer(question, NOW, selection, None, AnswerConfig(mode="extractive"))
    assert result.text.startswith(opening), result.text
    assert "[Observation/new]" in result.text.split(".")[0] + result.text
    assert "Yes, the record shows" not in result.text
    assert result.verified, result.unverified


def test_two_readings_of_the_latest_day_that_disagree_give_no_verdict() -> None:
    # "Am I anemic?" read the first of two same-day haemoglobins as "Not by the latest
    # measure" over a recorded anaemia.
    question = "Am I obese?"
    obesity = condition("o", "162864005", "Body mass index 30+ - obesity (finding)")
    items = [Selected(obesity, 1.0), Selected(bmi("a", "2024-04-23", 27.7), 0.9)]
    items.append(Selected(bmi("b", "2024-04-23", 31.0), 0.9))
    selection = Selection(analyze(question, NOW), items)
    selection.details["patient"] = {"birth_date": "1972-03-30", "gender": "male"}
    text = answer(question, NOW, selection, None, AnswerConfig(mode="extractive")).text
    assert "by the latest measure" not in text and "obesity" in text.lower(), text


def test_a_childs_weight_is_not_read_against_adult_bmi_thresholds() -> None:
    question = "Is my son overweight?"
    plan = analyze(question, NOW)
    selection = Selection(plan, [Selected(bmi("c", "2024-04-23", 26.0), 0.9)])
    selection.details["patient"] = {"birth_date": "2015-03-30", "gender": "male"}
    result = answer(question, NOW, selection, None, AnswerConfig(mode="extractive"))
    assert "by the latest measure" not in result.text


def test_conditions_filed_twice_the_same_day_count_once() -> None:
    question = "How many bones did my grandmother break?"
    plan = analyze(question, NOW)
    assert plan.intent == "count" and [c.name for c in plan.concepts] == ["fracture"]
    days = ["2011-07-17", "2011-07-17", "2015-08-25", "2015-08-25"]
    names = [
        "Fracture of clavicle",
        "Pathological fracture",
        "Fracture of rib",
        "Pathological fracture",
    ]
    records = [
        Record(f"Condition/f{i}", "Condition", f"f{i}", "p",
               f"[Condition/f{i}] {day} {name} (SNOMED 1{i}); status resolved", date=day,
               codes=(Coding("http://snomed.info/sct", f"1{i}", name),), status="resolved")
        for i, (day, name) in enumerate(zip(days, names, strict=True))
    ]  # fmt: skip
    selection = Selection(plan, [Selected(r, 1.0) for r in records])
    text = answer(question, NOW, selection, None, AnswerConfig(mode="extractive")).text
    assert text.startswith("2 (on 2 dates, the last on 2015-08-25; 4 entries):"), text


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("does my record list me as hispanic?", "Race: White; ethnicity: Not Hispanic or Latino"),
        ("Pt's city of residence?", "Lives in: Adams, Massachusetts, US"),
        ("What language does she speak?", "Language: English"),
    ],
)
def test_a_patient_field_asked_for_opens_the_answer(question: str, expected: str) -> None:
    text = (
        "[Patient/p] 1987-12-31 Ann Lee; female; born 1987-12-31; marital status married; "
        "lives in Adams, Massachusetts, US; language English; race White; "
        "ethnicity Not Hispanic or Latino"
    )
    person = Record("Patient/p", "Patient", "p", "p", text, date="1987-12-31")
    selection = Selection(analyze(question, NOW), [Selected(person, 1.0)])
    result = answer(question, NOW, selection, None, AnswerConfig(mode="extractive"))
    assert result.text.startswith(f"{expected} [Patient/p]."), result.text
    assert result.verified, result.unverified


def test_a_lasting_diagnosis_stands_and_its_measure_answers_only_without_one() -> None:
    question = "Bone density - do I have osteoporosis?"
    scan = obs("t", "2024-06-19", "38265-5", "DXA [T-score] Bone density", -0.4, "{T-score}")
    patient = {"birth_date": "1960-01-01", "gender": "female"}
    plain = Selection(analyze(question, NOW), [Selected(scan, 0.9)])
    plain.details["patient"] = patient
    text = answer(question, NOW, plain, None, AnswerConfig(mode="extractive")).text
    assert text.startswith("Not by the latest measure: DXA [T-score] Bone density -0.4"), text
    diagnosed = condition("o", "64859006", "Osteoporosis (disorder)")
    listed = Selection(analyze(question, NOW), [Selected(diagnosed, 1.0), Selected(scan, 0.9)])
    listed.details["patient"] = patient
    text = answer(question, NOW, listed, None, AnswerConfig(mode="extractive")).text
    assert "Not by the latest measure" not in text and "Osteoporosis" in text, text


def shot(ref: str, day: str, cvx: str, name: str) -> Record:
    return Record(f"Immunization/{ref}", "Immunization", ref, "p",
                  f"[Immunization/{ref}] {day} {name} (CVX {cvx}); status completed", date=day,
                  codes=(Coding("http://hl7.org/fhir/sid/cvx", cvx, name),))  # fmt: skip


def test_a_childs_shots_are_read_against_the_childhood_schedule() -> None:
    from ehrqa.answer.judgements import child_vaccines

    kb = load_knowledge()
    mmr = [shot("m1", "2013-08-16", "03", "MMR"), shot("m2", "2017-05-19", "03", "MMR")]
    birth, now = date(2012, 6, 8), date(2020, 6, 20)
    verdict = child_vaccines(mmr, kb, birth, now, frozenset({"mmr vaccine"}))
    assert verdict is not None
    assert verdict.sentence.startswith(
        "Up to date for age 8 years by the childhood schedule: MMR 2 of 2"
    )
    behind = child_vaccines(mmr[:1], kb, birth, now, frozenset({"mmr vaccine"}))
    assert behind is not None and behind.sentence.startswith(
        "Behind for age 8 years by the childhood schedule: MMR 1 of 2 doses due by now"
    )
    # Asked about shots in general, every scheduled vaccine is read: none of polio is behind.
    everything = child_vaccines(mmr, kb, birth, now)
    assert everything is not None and "polio (IPV) 0 of 4 doses due by now" in everything.sentence
    # At 19 days old nothing is due yet (the first hepatitis B dose is due by 2 months).
    assert child_vaccines([], kb, date(2020, 6, 1), date(2020, 6, 20)) is None
    # The counts and ages are computed, never flagged as unverified ("warning: unverified:
    # 14, 6, 6, 17" on a 14-year-old's answer); the dates stay checked against the doses.
    from ehrqa.answer.verify import check_facts

    checked = verdict.sentence
    for span in verdict.knowledge:
        checked = checked.replace(span, " ")
    assert check_facts(checked, mmr) == []
    assert "2017-05-19" in checked


def test_working_for_a_living_is_not_a_question_about_death() -> None:
    from ehrqa.answer.judgements import DEATH_RE

    # "What do I do for a living" was answered "Yes: the record shows no date of death".
    for question in ("what do I do for a living", "what is her living situation"):
        assert not DEATH_RE.search(question), question
    for question in ("is he still living?", "is she alive", "when did he pass away"):
        assert DEATH_RE.search(question), question


def test_a_property_no_record_states_is_never_affirmed() -> None:
    # "Was the shooting an accident?" answered "Yes, the record shows: Bullet wound".
    wound = condition("w", "262574004", "Bullet wound")
    for question, asked in (
        ("was the shooting an accident?", "an accident"),
        ("Was his gunshot wound serious?", "serious"),
    ):
        found = Selected(wound, 1.0, ("semantic match 'gunshot wound' (0.71)",))
        selection = Selection(analyze(question, NOW), [found])
        text = answer(question, NOW, selection, None, AnswerConfig(mode="extractive")).text
        assert text.startswith(f"The record does not say whether it was {asked}; it shows:"), text
    plain = "Did he have a gunshot wound?"
    found = Selected(wound, 1.0, ("semantic match 'gunshot wound' (0.71)",))
    selection = Selection(analyze(plain, NOW), [found])
    assert answer(plain, NOW, selection, None, AnswerConfig()).text.startswith("Yes")


def test_how_bad_is_never_answered_by_the_record_of_the_thing() -> None:
    # "How bad was her stroke?" answered "Found: Stroke".
    stroke = condition("s", "230690007", "Stroke")
    question = "How bad was her stroke - did it leave her weak on one side?"
    found = Selected(stroke, 1.0, ("stroke: code SNOMED 230690007",))
    text = answer(question, NOW, Selection(analyze(question, NOW), [found]), None, AnswerConfig())
    assert text.text.startswith("The record does not say how bad it was; it shows: Stroke")


def test_passing_is_dying_but_passing_a_test_is_not() -> None:
    from ehrqa.answer.judgements import DEATH_RE

    assert DEATH_RE.search("when did he pass and what was the cause")
    assert not DEATH_RE.search("did he pass his hearing test")


def test_conditions_judged_by_the_same_readings_are_one_verdict_of_the_asked_measure() -> None:
    question = "is her sugar under control?"
    kidney = condition("k", "127013003", "Disorder of kidney due to diabetes mellitus (disorder)")
    albumin = condition("m", "90781000119102", "Microalbuminuria due to type 2 diabetes (disorder)")
    records = [
        kidney,
        albumin,
        obs("a", "2024-05-01", "4548-4", "Hemoglobin A1c", 6.2, "%"),
        bp("b", "2024-05-01", 149.1, 89.6),
    ]
    selection = Selection(analyze(question, NOW), [Selected(r, 1.0) for r in records])
    text = answer(question, NOW, selection, None, AnswerConfig(mode="extractive")).text
    # Both diabetes conditions named once, the HbA1c verdict said once, no blood pressure:
    # "sugar" asks for the glycaemic targets only.
    assert text.count("is at target (controlled)") == 1, text
    assert "[Condition/k]" in text and "[Condition/m]" in text
    assert "mmHg" not in text.split("Records:")[0]
    whole = "is her diabetes under control?"
    selection = Selection(analyze(whole, NOW), [Selected(r, 1.0) for r in records])
    text = answer(whole, NOW, selection, None, AnswerConfig(mode="extractive")).text
    assert "149.1/89.6 mmHg" in text and "above target (not controlled)" in text


def test_a_panel_and_its_parts_recorded_apart_are_one_reading() -> None:
    question = "what's my blood pressure?"
    records = [
        bp("p", "2024-05-01", 149.1, 89.6),
        obs("s", "2024-05-01", "8480-6", "Systolic Blood Pressure", 149.1, "mm[Hg]"),
        obs("d", "2024-05-01", "8462-4", "Diastolic Blood Pressure", 89.6, "mm[Hg]"),
    ]
    selection = Selection(analyze(question, NOW), [Selected(r, 1.0) for r in records])
    text = answer(question, NOW, selection, None, AnswerConfig(mode="extractive")).text
    lead = text.split("Records:")[0]
    assert lead.count("HIGH") == 1 and "[Observation/p]" in lead, text


@pytest.mark.parametrize(
    ("question", "start"),
    [
        ("is she pregnant?", "No, none is current; earlier entries: Normal pregnancy"),
        ("has she been pregnant?", "Yes, the record shows: Normal pregnancy"),
        ("is she pregnant? she was in 2024", "No, none is current"),
    ],
)
def test_a_state_asked_now_is_not_affirmed_by_one_that_ended(question: str, start: str) -> None:
    # "is she pregnant?" said "Yes, the record shows: Normal pregnancy (resolved 2024-06-06)".
    ended = dataclasses.replace(
        condition("p", "72892002", "Normal pregnancy (finding)"),
        status="resolved",
        end_date="2024-06-06",
    )
    selection = Selection(analyze(question, NOW), [Selected(ended, 1.0)])
    text = answer(question, NOW, selection, None, AnswerConfig(mode="extractive")).text
    assert text.startswith(start), text


def test_a_problem_list_of_circumstances_only_says_no_disease_is_listed() -> None:
    # "Active problem list" listed "Medication review due; Stress; Received higher education".
    question = "Active problem list"
    records = [
        condition("a", "314529007", "Medication review due (situation)"),
        condition("b", "73595000", "Stress (finding)"),
    ]
    selection = Selection(analyze(question, NOW), [Selected(r, 1.0) for r in records])
    text = answer(question, NOW, selection, None, AnswerConfig(mode="extractive")).text
    assert text.startswith("No current disease or disorder is on the problem list"), text
    assert "Stress" in text
    ill = [*records, condition("c", "59621000", "Essential hypertension (disorder)")]
    selection = Selection(analyze(question, NOW), [Selected(r, 1.0) for r in ill])
    text = answer(question, NOW, selection, None, AnswerConfig(mode="extractive")).text
    assert text.startswith("Current: Essential hypertension"), text


def test_a_procedure_asked_at_another_is_not_affirmed_by_that_other() -> None:
    # "Were any polyps removed at his last colonoscopy?" said "Yes, 1 in the record:
    # Colonoscopy": the colonoscopy says where, the polyp removal is what is asked.
    question = "Were any polyps removed at his last colonoscopy?"
    scope = dataclasses.replace(
        condition("x", "73761001", "Colonoscopy (procedure)"),
        ref="Procedure/x",
        resource_type="Procedure",
        status="completed",
    )
    from ehrqa.answer.extractive import focus

    selection = focus(Selection(analyze(question, NOW), [Selected(scope, 1.0)]))
    text = answer(question, NOW, selection, None, AnswerConfig(mode="extractive")).text
    assert text.startswith("No polypectomy is recorded."), text


def _smoking(ref: str, day: str, status: str) -> Record:
    return dataclasses.replace(
        obs(ref, day, "72166-2", "Tobacco smoking status", 0.0, ""), value=None, value_text=status
    )


def test_when_someone_quit_smoking_is_between_the_last_current_and_first_former_status() -> None:
    # "when did she quit smoking?" listed every status record.
    question = "when did she quit smoking?"
    records = [
        _smoking("a", "1987-12-01", "Smokes tobacco daily (finding)"),
        _smoking("b", "1988-12-24", "Smokes tobacco daily (finding)"),
        _smoking("c", "1989-12-09", "Ex-smoker (finding)"),
        _smoking("d", "2024-05-11", "Ex-smoker (finding)"),
    ]
    selection = Selection(analyze(question, NOW), [Selected(r, 1.0) for r in records])
    text = answer(question, NOW, selection, None, AnswerConfig(mode="extractive")).text
    assert text.startswith("Between 1988-12-24 and 1989-12-09"), text
    always = Selection(analyze(question, NOW), [Selected(r, 1.0) for r in records[2:]])
    text = answer(question, NOW, always, None, AnswerConfig(mode="extractive")).text
    assert text.startswith("The record does not say when"), text


def test_an_age_at_an_event_never_found_is_not_todays_age() -> None:
    # "how old was she when she had her first baby?" said "Age 56 on 2026-12-06".
    question = "how old was she when she got her tattoo?"
    me = Record(
        ref="Patient/p", resource_type="Patient", id="p", patient_id="p",
        text="[Patient/p] 1970-06-27 Chrissy Adams; born 1970-06-27", date="1970-06-27",
        resource={"resourceType": "Patient", "birthDate": "1970-06-27"},
    )  # fmt: skip
    selection = Selection(analyze(question, NOW), [Selected(me, 1.0)])
    text = answer(question, NOW, selection, None, AnswerConfig(mode="extractive")).text
    assert not text.startswith("Age 54"), text
    died = dataclasses.replace(
        me, resource={**me.resource, "deceasedDateTime": "2013-03-27T10:00:00Z"}
    )
    passed = "How old was she when she passed?"
    selection = Selection(analyze(passed, NOW), [Selected(died, 1.0)])
    text = answer(passed, NOW, selection, None, AnswerConfig(mode="extractive")).text
    assert text.startswith("Died on 2013-03-27 at age 42"), text


def test_a_course_asked_of_a_condition_with_no_reading_is_not_a_list() -> None:
    # "has her emphysema gotten worse?" answered "Found: Pulmonary emphysema".
    question = "has her emphysema gotten worse?"
    emphysema = condition("e", "87433001", "Pulmonary emphysema (disorder)")
    selection = Selection(analyze(question, NOW), [Selected(emphysema, 1.0)])
    text = answer(question, NOW, selection, None, AnswerConfig(mode="extractive")).text
    assert text.startswith("The record holds no reading to tell how it has changed"), text


@pytest.mark.parametrize(
    ("question", "code", "name", "value", "unit", "verdict"),
    [
        ("Is his anxiety score in the worrying range?", "70274-6", "GAD-7 total score", 15.0,
         "{score}", "HIGH"),
        ("Was his peanut blood test positive?", "6206-7", "Peanut IgE Ab", 0.31, "kU/L",
         "within the normal range"),
        ("Was his alcohol screen positive?", "75626-2", "Total score [AUDIT-C]", 11.0, "{score}",
         "HIGH"),
    ],
)  # fmt: skip
def test_a_screening_score_is_judged_against_its_published_cut_off(
    question: str, code: str, name: str, value: float, unit: str, verdict: str
) -> None:
    # "Was his alcohol screen positive?" answered "Most recent: Total score [AUDIT-C]: 11".
    record = obs("s", "2024-09-01", code, name, value, unit)
    selection = Selection(analyze(question, NOW), [Selected(record, 1.0)])
    selection.details["patient"] = {"birth_date": "1980-01-01", "gender": "male"}
    text = answer(question, NOW, selection, None, AnswerConfig(mode="extractive")).text
    assert verdict in text, text


def test_testing_positive_for_an_illness_is_not_a_range_of_that_days_readings() -> None:
    # "Did Denae ever test positive for covid?" answered with her blood pressure's range.
    question = "Did she ever test positive for covid?"
    covid = condition(
        "c",
        "840539006",
        "Disease caused by severe acute respiratory syndrome coronavirus 2 (disorder)",
    )
    records = [covid, obs("d", "2021-01-12", "8462-4", "Diastolic Blood Pressure", 84.2, "mm[Hg]")]
    selection = Selection(analyze(question, NOW), [Selected(r, 1.0) for r in records])
    text = answer(question, NOW, selection, None, AnswerConfig(mode="extractive")).text
    assert "HIGH" not in text and text.startswith("Yes"), text


@pytest.mark.parametrize(
    ("question", "lead"),
    [
        ("Is my a1c going up?", ""),
        ("is my a1c going down?", "Yes: "),
        ("has she lost any?", "Yes: "),
        ("Is my a1c getting better?", "Yes: "),
        ("is it getting worse?", ""),
        ("Has my a1c gone up or down?", ""),
        ("How has my a1c changed?", ""),
    ],
)
def test_a_trend_asked_yes_or_no_opens_with_its_answer(question: str, lead: str) -> None:
    # "is it going down?" answered "… went down (better): …" without its yes; the other way
    # is said by the sentence's opening ("went down"), never a bare "No" (read as absence).
    from ehrqa.answer.judgements import trend_answer

    series = [
        obs("a1", "2019-01-01", "4548-4", "Hemoglobin A1c", 8.0, "%"),
        obs("a2", "2024-01-01", "4548-4", "Hemoglobin A1c", 6.5, "%"),
    ]
    verdict = trend(series, better="lower")
    assert verdict is not None and verdict.direction == ("down", "better")
    said = trend_answer(question, verdict).sentence
    assert said == f"{lead}{verdict.sentence}"
    # With no target to say which way is better, "better" is not answered.
    plain = trend(series)
    assert plain is not None and trend_answer("is it getting better?", plain) == plain
    stable = trend([*series[:1], obs("a3", "2024-01-01", "4548-4", "Hemoglobin A1c", 8.0, "%")])
    assert stable is not None and trend_answer("is it getting worse?", stable) == stable


@pytest.mark.parametrize(
    ("question", "value", "opening", "state"),
    [
        ("has the a1c crossed into diabetes?", 5.9, "No:", "in the prediabetes range"),
        ("has the a1c crossed into diabetes?", 6.8, "Yes:", "in the diabetes range"),
        ("did her prediabetes stay prediabetes?", 6.1, "Yes:", "in the prediabetes range"),
        ("did her prediabetes stay prediabetes?", 5.4, "No:", "in the normal range"),
        ("did her prediabetes stay prediabetes?", 7.2, "No:", "in the diabetes range"),
    ],
)
def test_whether_a_condition_turned_into_the_next_is_read_against_its_threshold(
    question: str, value: float, opening: str, state: str
) -> None:
    from ehrqa.answer.judgements import progression

    # val12: "she's been prediabetic forever - has the a1c crossed into diabetes?" listed
    # every A1c; "did it stay prediabetes?" answered "Found: Prediabetes".
    (monitor,) = [m for m in load_knowledge().monitoring("prediabetes") if m.becomes]
    a1c = obs("a", "2023-12-16", "4548-4", "Hemoglobin A1c", value, "%")
    entry = condition("p", "15777000", "Prediabetes (finding)")
    verdict = progression(entry, [a1c], monitor, question)
    assert verdict is not None and verdict.sentence.startswith(opening), verdict
    assert state in verdict.sentence and "diabetes is ≥ 6.5%" in verdict.sentence
    assert ("(not controlled)" in verdict.sentence) == (value >= 6.5)
    assert verdict.refs == ("Observation/a", "Condition/p")
    assert "since 2010-01-01 [Condition/p]" in verdict.sentence
    assert progression(entry, [], monitor, question) is None
