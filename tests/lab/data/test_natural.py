"""The natural-question benchmark: each op on a tiny hand-made bundle, and the committed gold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from ehrqa.lab.data.natural import (
    Gold,
    Question,
    SpecError,
    build_items,
    derive,
    fmt,
    load_record,
    question_files,
    read_questions,
)
from ehrqa.lab.data.qa import QAItem

REPO = Path(__file__).resolve().parents[3]
TINY = REPO / "tests" / "fixtures" / "natural" / "tiny_bundle.json"
BENCH = REPO / "benchmarks" / "natural"
SHARED = REPO.parent / "shared" / "data" / "java-synthea"
BP = {
    "codes": ["LOINC|55284-4"],
    "components": ["LOINC|8480-6", "LOINC|8462-4"],
    "round": 0,
    "unit": "mmHg",
}


def gold(spec: dict[str, Any], now: str = "2020-12-01", perspective: str = "patient") -> Gold:
    question = Question("t-1", "tiny", "q?", now, perspective, "latest", spec)
    return derive(question, load_record(TINY))


def test_latest_keeps_same_time_duplicates_and_picks_bundle_order() -> None:
    g = gold({"op": "latest", "codes": ["LOINC|4548-4"], "round": 1})
    assert g.answer_values == ["6.9", "%", "2020-05-01"]  # 6.85 half-up, not banker's 6.8
    assert g.relevant_ids == ["Observation/o2", "Observation/o3"]
    assert "7.4 %" in g.answer


def test_first_and_now_cut_off() -> None:
    assert gold({"op": "first", "codes": ["LOINC|4548-4"]}).answer_values[0] == "8.2"
    with pytest.raises(SpecError, match="t-1"):  # the weight is dated after now
        gold({"op": "latest", "codes": ["LOINC|29463-7"]})


def test_components_print_as_a_pair_and_coded_values_as_text() -> None:
    assert gold({"op": "latest", **BP}).answer_values == ["142/78", "mmHg", "2020-05-01"]
    smoke = gold({"op": "latest", "codes": ["LOINC|72166-2"]})
    assert smoke.answer_values == ["Former smoker", "2020-05-01"]


def test_trend_direction_and_better() -> None:
    spec = {"op": "trend", "codes": ["LOINC|4548-4"], "round": 1}
    assert gold(spec).answer_values[-1] == "down"
    assert gold({**spec, "better": "lower"}).answer_values[-1] == "better"
    assert gold({**spec, "tolerance": 2}).answer_values[-1] == "stable"
    assert len(gold(spec).relevant_ids) == 3


@pytest.mark.parametrize(
    ("bounds", "status"),
    [({"high": 6.8}, "high"), ({"high": 6.9}, "normal"), ({"low": 7.0}, "low")],
)
def test_range_judges_the_printed_value(bounds: dict[str, float], status: str) -> None:
    spec = {"op": "range", "codes": ["LOINC|4548-4"], "source": "test", **bounds}
    assert gold(spec).answer_values[-1] == status


def test_control_with_component_targets_and_absent_condition() -> None:
    spec = {
        "op": "control",
        "condition": {"codes": ["SNOMED|44054006"]},
        "measure": BP,
        "target": [{"high": 139}, {"high": 89}],
        "source": "test",
    }
    g = gold(spec)
    assert g.answer_values[-1] == "not controlled"
    assert g.relevant_ids == ["Condition/c1", "Observation/o4"]
    absent = gold({**spec, "condition": {"display": "asthma"}})
    assert absent.answer_values == ["no"] and absent.relevant_ids == []


def test_exists_yes_no_and_active() -> None:
    broke = gold({"op": "exists", "types": ["Condition"], "display": "fracture"})
    assert broke.answer_values == ["yes", "2019-02-01", "Fracture of forearm"]
    still = gold({"op": "exists", "types": ["Condition"], "display": "fracture", "active": True})
    assert still.answer_values == ["no"]


def test_why_follows_reason_reference() -> None:
    g = gold({"op": "why", "display": "metformin"})
    assert g.answer_values == ["Diabetes"]
    assert g.relevant_ids == ["Condition/c1", "MedicationRequest/m2"]
    with pytest.raises(SpecError, match="no reason"):
        gold({"op": "why", "display": "ibuprofen"})


def test_same_visit_finds_the_encounter_resources() -> None:
    g = gold({"op": "same_visit", "display": "colonoscopy", "find": ["Condition"]})
    assert g.answer_values == ["2020-05-01", "Diabetes", "Polyp of colon"]
    assert g.relevant_ids[0] == "Procedure/pr1"


def test_count_encounters_by_class_and_window() -> None:
    assert gold({"op": "count_encounters", "classes": ["EMER"]}).answer_values == ["2"]
    recent = {"op": "count_encounters", "classes": ["EMER"], "within_days": 365}
    assert gold(recent).relevant_ids == ["Encounter/e3"]
    assert gold({"op": "count_encounters", "classes": ["IMP"]}).answer_values == ["0"]


def test_vaccine_due_and_not_due() -> None:
    td = {"op": "vaccine", "codes": ["CVX|113"], "interval_years": 10, "source": "CDC"}
    assert gold(td).answer_values == ["2008-03-01", "due", "2018-03-01"]
    flu = {"op": "vaccine", "display": "influenza", "interval_years": 1, "source": "CDC"}
    assert gold(flu).answer_values[1] == "not due"
    assert gold({**td, "codes": ["CVX|187"]}).answer_values == ["no record", "due"]


def test_age_duration_and_death() -> None:
    assert gold({"op": "age"}, now="2020-06-14").answer_values == ["69"]
    assert gold({"op": "age"}, now="2022-01-01").answer_values == ["70", "2021-03-01"]
    at = {"op": "age", "at": {"types": ["Condition"], "display": "fracture"}}
    assert gold(at).answer_values == ["68", "2019-02-01"]
    assert gold({"op": "duration", "display": "diabetes"}).answer_values == ["10", "2010-01-10"]
    dead = gold({"op": "demographics", "field": "deceased"}, now="2022-01-01")
    assert dead.answer_values == ["yes", "2021-03-01", "70"]


def test_summaries_drop_social_findings_and_duplicate_medicines() -> None:
    problems = gold({"op": "summary", "what": "problems"})
    assert problems.answer_values == ["Diabetes", "Polyp of colon"]
    meds = gold({"op": "summary", "what": "medications"})
    assert meds.answer_values == ["Metformin 500 MG"]
    assert meds.relevant_ids == ["MedicationRequest/m2"]
    assert gold({"op": "summary", "what": "allergies"}).answer_values == ["Allergy to peanuts"]


def test_insurer_and_demographics() -> None:
    assert gold({"op": "insurer"}).answer_values == ["Medicare", "2020-05-01"]
    assert gold({"op": "insurer", "all": True}).answer_values == ["Medicaid", "Medicare"]
    city = gold({"op": "demographics", "field": "city"})
    assert city.answer_values == ["Salem"] and city.relevant_ids == ["Patient/p1"]


def test_unanswerable_checks_its_absence_claim() -> None:
    g = gold({"op": "unanswerable", "reason": "no PSA"})
    assert not g.answerable and g.relevant_ids == []
    with pytest.raises(SpecError, match="matches 1"):
        gold({"op": "unanswerable", "reason": "x", "absent": {"display": "peanut"}})


def test_multi_unions_parts() -> None:
    spec = {"op": "multi", "parts": [{"op": "latest", **BP}, {"op": "insurer"}]}
    g = gold(spec)
    assert g.answer_values == ["142/78", "mmHg", "2020-05-01", "Medicare"]
    assert g.relevant_ids == ["Observation/o4", "ExplanationOfBenefit/eob1"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"op": "nope"}, "unknown op"),
        ({"op": "latest"}, "needs 'codes' or 'display'"),
        ({"op": "latest", "codes": ["4548-4"]}, "SYSTEM\\|code"),
        ({"op": "range", "codes": ["LOINC|4548-4"], "high": 7}, "source"),
        ({"op": "exists", "display": "("}, "bad regex"),
    ],
)
def test_bad_specs_name_the_question(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        gold(spec)


def test_fmt_rounds_half_up() -> None:
    assert (fmt(38.5, 0), fmt(7.0, 1), fmt(2.675, 2)) == ("39", "7.0", "2.68")


def test_question_files_are_valid_and_ids_unique() -> None:
    questions = read_questions(question_files(BENCH))
    assert len(questions) >= 130
    assert len({q.id for q in questions}) == len(questions)


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared Java-Synthea data absent ({SHARED})")
def test_committed_gold_matches_a_fresh_derivation() -> None:
    rows = build_items(read_questions(question_files(BENCH)), SHARED)
    committed = [orjson.loads(line) for line in (BENCH / "qa.jsonl").read_bytes().splitlines()]
    assert [r["id"] for r in rows] == [c["id"] for c in committed], "rebuild: build.py"
    for fresh, old in zip(rows, committed, strict=True):
        assert fresh == old, f"{fresh['id']}: gold changed; rerun benchmarks/natural/build.py"
        QAItem.from_dict(old, old["id"])
    assert {r["split"] for r in rows} == {"val", "test"}
