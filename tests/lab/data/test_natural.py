"""The natural-question benchmark: each op on a tiny hand-made bundle, and the committed gold."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from ehrqa.lab.data.natural import (
    ROUNDS,
    Gold,
    Question,
    SpecError,
    assign_splits,
    build_items,
    derive,
    fmt,
    load_record,
    question_files,
    question_round,
    read_questions,
    record_from_bundle,
    split_names,
)
from ehrqa.lab.data.qa import ACCEPTED_SPLITS, QAItem

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


def test_why_names_the_reason_a_procedure_was_done() -> None:
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "p", "birthDate": "1950-01-01"}},
            {"resource": {"resourceType": "Condition", "id": "c", "code": {"text": "Fracture"}}},
            {
                "resource": {
                    "resourceType": "Procedure",
                    "id": "x",
                    "code": {"text": "Bone density scan"},
                    "performedDateTime": "2020-01-01",
                    "reasonReference": [{"reference": "Condition/c"}],
                }
            },
        ],
    }
    question = Question("t-2", "b", "q?", "2020-12-01", "patient", "why", {})
    question.spec = {"op": "why", "types": ["Procedure"], "display": "bone density"}
    g = derive(question, record_from_bundle(bundle))
    assert (g.answer, g.answer_values) == ("Bone density scan was done for Fracture.", ["Fracture"])


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
    # "Is she still alive?" is answered the other way round ("Yes, the patient died" was gold).
    alive = gold({"op": "demographics", "field": "alive"}, now="2022-01-01")
    assert alive.answer_values == ["no", "2021-03-01", "70"]
    assert alive.answer.startswith("No, the patient died on 2021-03-01")


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
    # Every round's dev and test split holds questions, and the dataset format takes them all.
    rounds = {s for n in range(len(ROUNDS)) for s in split_names(n)}
    assert {r["split"] for r in rows} == rounds
    assert set(ACCEPTED_SPLITS) == rounds | {"train"}


# Round 1 (questions-a/b) as dealt before round 2 existed: a new round must never move them.
ROUND_ONE_VAL = {
    "0283b437-ef20-41bb-a026-b60a742d536a", "2a3d4d46-512f-480f-8eb9-5a11ef3b2176",
    "2b1149df-e8d7-437a-b676-011dc0551dde", "2d95f315-808c-4b67-836b-e56bdba9dd21",
    "3cb52497-3f07-4323-897b-aed5fe681d6b", "4b54bebd-7f01-4a33-8494-0214dc432e46",
    "4db03e6a-a8d0-4691-b861-e685e90a5d77", "579423cd-3384-4e7d-bf19-295a26d27524",
    "60319ca6-f8b8-49a2-8abf-7ca0065a21d4", "72aace43-07ff-4900-96ae-ff77059ae354",
    "74bbd61f-8017-4274-a156-8e31a96ec0d3", "775447e9-2cc5-4cc9-94de-d358d0efa661",
    "85c63cf3-278e-454c-b5ba-df5889815eb7", "9df87ee4-4ade-45c5-8601-910e8ff9db99",
    "c79b748f-a792-4aea-bca5-c7c9c5b188cd", "fb13e626-1400-45a1-9a99-29c6e7a0e8e4",
}  # fmt: skip


def test_round_one_split_is_unchanged_by_later_rounds() -> None:
    committed = [orjson.loads(line) for line in (BENCH / "qa.jsonl").read_bytes().splitlines()]
    round_one = [r for r in committed if r["id"].split("-")[1] in ("a", "b")]
    splits = {r["patient_id"]: r["split"] for r in round_one}
    assert {p for p, s in splits.items() if s == "val"} == ROUND_ONE_VAL
    assert {s for p, s in splits.items() if p not in ROUND_ONE_VAL} == {"test"}
    kinds: dict[str, set[str]] = {}
    for row in round_one:
        kinds.setdefault(row["patient_id"], set()).add(row["intent"])
    assert assign_splits(kinds) == splits
    later = {r["patient_id"] for r in committed if r["split"] in ("val2", "test2")}
    assert later and not later & set(splits)


def test_rounds_are_split_apart_and_a_patient_may_not_be_in_two() -> None:
    rounds = [question_round(f"questions-{x}.jsonl") for x in "abcdefghijklmn"]
    assert rounds == [0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert question_round("") == 0 and split_names(1) == ("val2", "test2")
    assert split_names(2) == ("val3", "test3") and split_names(3) == ("val4", "test4")
    assert split_names(4) == ("val5", "test5") and split_names(5) == ("val6", "test6")
    assert split_names(6) == ("val7", "test7") and split_names(7) == ("val8", "test8")
    assert split_names(8) == ("val9", "test9") and split_names(9) == ("val10", "test10")
    assert split_names(10) == ("val11", "test11")
    assert split_names(11) == ("val12", "test12")
    assert split_names(12) == ("val13", "test13")
    assert split_names(13) == ("val14", "test14")
    assert split_names(14) == ("val15", "test15")
    assert split_names(15) == ("val16", "test16")
    with pytest.raises(SpecError, match=r"questions-z\.jsonl"):
        question_round("questions-z.jsonl")
    spec = {"op": "latest", "codes": ["LOINC|4548-4"]}
    late = Question("t-c", TINY.name, "q?", "2020-12-01", "patient", "latest", spec)
    late.source = "questions-c.jsonl"
    assert build_items([late], TINY.parent)[0]["split"] in ("val2", "test2")
    early = Question("t-a", TINY.name, "q?", "2020-12-01", "patient", "latest", spec)
    early.source = "questions-a.jsonl"
    with pytest.raises(SpecError, match=re.escape(f"patient {TINY.name} is asked in two rounds")):
        build_items([early, late], TINY.parent)


# Round 2 (questions-c) as dealt before round 3 existed: round 3 must never move them.
ROUND_TWO_VAL = {
    "06895d41-5937-4e83-9f3d-0af09db31c69", "0b896820-f478-4e9c-a456-acc676cf5640",
    "17ff80a3-dda8-4a58-a8c5-6fe94ad0d747", "51764196-d9e4-4713-86a5-7bdc6847bd01",
    "6908592e-0062-4df3-acb2-10548e07084a", "6b223f89-e726-44da-81ad-03d30fc61254",
    "7a18395e-05fb-44ad-9481-82774944b537", "97b86776-fa4e-46dc-b9a4-52c269e73da9",
    "c5ed5d78-5b3f-4a75-bdfb-5f318b068a20", "d070e7dd-4d25-4c52-9fb2-78d232e1cf2c",
    "d421c808-2605-41a4-9aaf-9d786528dc13", "d5525459-8f3e-4e60-8ed2-5140d165db75",
}  # fmt: skip


def test_round_three_is_dealt_on_its_own_and_round_two_is_unchanged() -> None:
    by_round, kinds = _committed_rounds()
    two, three = by_round["c"], by_round["d"]
    assert {p for p, s in two.items() if s == "val2"} == ROUND_TWO_VAL
    assert {s for p, s in two.items() if p not in ROUND_TWO_VAL} == {"test2"}
    assert assign_splits({p: kinds[p] for p in two}, names=split_names(1)) == two
    assert sorted(three.values()).count("val3") == sorted(three.values()).count("test3") == 12
    assert assign_splits({p: kinds[p] for p in three}, names=split_names(2)) == three
    earlier = set(by_round["a"]) | set(by_round["b"]) | set(two)
    assert not earlier & set(three)


@pytest.mark.parametrize(
    ("letter", "number"),
    [(letter, number) for number, letter in enumerate("defghijklmn", start=3)],
)
def test_a_later_round_question_is_dealt_into_its_own_splits_and_accepted(
    letter: str, number: int
) -> None:
    spec = {"op": "latest", "codes": ["LOINC|4548-4"]}
    late = Question(f"t-{letter}", TINY.name, "q?", "2020-12-01", "patient", "latest", spec)
    late.source = f"questions-{letter}.jsonl"
    row = build_items([late], TINY.parent)[0]
    splits = (f"val{number}", f"test{number}")
    assert row["split"] in splits
    for split in splits:
        assert QAItem.from_dict({**row, "split": split}, f"t-{letter}").split == split


# Round 3 (questions-d) as dealt before round 4 existed: round 4 must never move them.
ROUND_THREE_VAL = {
    "1ae0605d-e5b8-4d6d-a96d-c93dcbd57e06", "2f06f0fd-bc92-4450-9b66-4f15bd84d056",
    "43400618-8533-406d-8303-af7cc5714549", "43dd4e31-0c9d-42c7-a2e1-53ccf0e09dba",
    "71a8a403-9ec4-4677-96f6-5a1f53c89da0", "73fbc942-448b-4aee-81a6-32249efd963b",
    "8a6f7e61-55dc-4dc3-bf12-b3531b690b05", "9e2e28b1-1db8-489f-a5d4-3d7e6b2b3a0c",
    "a6fb5437-10d5-4f70-81a0-4f43bfbd9fb0", "c36d05b1-36eb-4faa-809e-832002f431a7",
    "da2c7b0a-791a-4b8f-9a30-dc3d8cf1ec75", "fdba4d87-c986-4650-9bf7-1f64c41cf297",
}  # fmt: skip


# Round 4 (questions-e) as dealt before round 5 existed: round 5 must never move them.
ROUND_FOUR_VAL = {
    "11f2b925-43b2-45e4-ac34-7811a9eb9c1b", "523ce6ff-60bd-4d69-a8b4-9770f0e8e9f7",
    "64de554d-c28d-42bd-bd78-74628938a02f", "7e1885c2-cb03-4883-8ce3-2e62c39257f3",
    "dbaeb336-8fb6-44dd-9606-6ccb4114074b", "dbcdd082-df8c-45c5-b961-816cf90f70c4",
}  # fmt: skip


# Round 5 (questions-f) as dealt before round 6 existed: round 6 must never move them.
ROUND_FIVE_VAL = {
    "0f49d2d0-59be-4f72-a22b-0a582367b44b", "1f456f0a-acb1-4728-82af-01ca57083c7b",
    "39e53c6f-309b-4ed7-b650-79a4ef7b1e99", "4648ad42-5db5-4996-8627-255680aeada8",
    "546ebc02-7a24-497f-bcbc-e3bb473dac7a", "87a339d0-8cae-418e-89c7-8651e6aab3c6",
    "9ccf4d74-5990-4232-82b2-54e2d6c68ec5", "c0d63c39-42aa-4f2c-9669-fa487d5f6f54",
    "c3d9f92d-0956-4f12-9e90-6bed9db5f27d", "cf5f5ab6-3540-42ec-8c7c-c45f9f11ad2f",
    "d8f42bb7-a9ee-4fc3-9026-685271b50c79", "f02ede18-83f8-4ac9-b9e3-c27754c10e8e",
}  # fmt: skip


# Round 6 (questions-g) as dealt before round 7 existed: round 7 must never move them.
ROUND_SIX_VAL = {
    "082e1e50-6561-42a4-9b5f-0e5094142756", "2bd18d48-1d2d-4edb-ad61-70bd7d91fe81",
    "31e064cb-7fff-42ba-b8be-f56531f4eb1f", "34a17aef-dd20-4eda-bf6c-f121e454616d",
    "563460b4-b997-4772-a548-a9f877eb4c12", "6bb3d38f-ae2e-40cf-a31e-baaea0b8bcc1",
    "76e3464d-4f85-4cbf-af90-0866063056cc", "9823384d-2120-478e-9ab3-6375c594347d",
}  # fmt: skip


# Round 7 (questions-h) as dealt before round 8 existed: round 8 must never move them.
ROUND_SEVEN_VAL = {
    "1410c2ee-05cb-4d45-86cc-f4980597f053", "26b62bec-0651-4e88-b8e3-8323d5f1a7ec",
    "543816ab-27fc-462d-8179-bf3156c4783a", "bc76f6c4-48cc-45b2-98f1-5792e72decdc",
    "bdb0bf01-3e05-4950-a843-4d7e722cae4f", "e224268b-e233-45f0-a961-59fd223827c9",
    "eecd5395-d638-4b9d-bb79-2d10a475459d", "f9aef24a-c8f6-4c36-90a3-970a21701185",
    "feb67a40-0da5-4855-a7b2-2b5e11f48c5f",
}  # fmt: skip


# Round 8 (questions-i) as dealt before round 9 existed: round 9 must never move them.
ROUND_EIGHT_VAL = {
    "2998fa42-a581-4303-bcba-e01b779c1d62", "358071ad-cfe8-47da-9eb1-3f5f9019fbb1",
    "4669ee9a-8b5b-4c5e-a884-ff2c9e6d2d79", "4c571cbf-9d09-4bc8-a449-2a73de886a9e",
    "5be9aabd-556d-4828-86ba-b649eed0f00b", "68ce281a-94ba-4551-ad96-28df9e56ff0d",
    "929a6aec-ee21-450e-81a4-f01f8f6f408e", "c1b9b2d3-0aae-49de-8508-c20b0d814d91",
    "c6404b97-ff91-4a26-97b3-3de8f553634e", "cc81957e-6e50-40d2-84f5-019ae1e35c7d",
}  # fmt: skip


# Round 9 (questions-j) as dealt before round 10 existed: round 10 must never move them.
ROUND_NINE_VAL = {
    "2517d451-d199-4ec1-b74f-9ba977bd0a4a", "4703b124-0f67-4445-af63-67b951510cbc",
    "5263d94d-1079-437d-b76d-4850b174fcca", "9245bf88-d47c-499d-97d7-1b0002176bd3",
    "9cc17293-169d-4df8-8b39-47e56c72ca83", "a2a8e969-0608-4c5c-9c5f-7260d8b29ade",
    "a5ebf698-202b-43f5-85be-fd88d1e410dc", "a7a6a85c-50e5-4dac-b55f-53248d4ead40",
    "d720f0e0-d66d-431d-800a-32895bf1db45", "fb563c4b-d5c6-46fe-8b6f-0e7a52cdeabc",
}  # fmt: skip


# Round 10 (questions-k) as dealt before round 11 existed: round 11 must never move them.
ROUND_TEN_VAL = {
    "04b57bc4-3541-492f-bb74-ed65f7af76eb", "0ab1d6db-f9cf-4be3-8f8a-90fa75863511",
    "38580ff3-cd72-43c6-86bb-e50b8188baed", "9284255b-f52b-48ed-8224-341c1e7fd3db",
    "a85fd6c8-8ef9-49ec-9af5-62f42aff8fc6", "ae75d2aa-e9bf-4871-8b2d-10c35d6ba807",
    "cb16f44c-d516-4697-aad2-29b2d6f99c5a", "eacab9ca-0dc9-474b-a6a0-a893ce8e8248",
    "eb5cff34-4ed5-4081-9b12-a89b3f06341d", "f61d65fc-5bae-403a-8bf4-8c5f56d7f17e",
}  # fmt: skip


# Round 11 (questions-l) as dealt before round 12 existed: round 12 must never move them.
ROUND_ELEVEN_VAL = {
    "17b73761-0a2a-48a6-a9c9-cc1e7b55b356", "41478e21-adcf-4a21-93c4-f17b7ae05a6d",
    "52e254db-0d41-44ee-8f7e-93d54b2b41fe", "59025216-adb5-48a9-abc1-ad52ec297db4",
    "7100e78e-04f0-4005-8bb5-26d17326abcf", "7ba152ff-c567-4d19-9a00-ccc950a130e1",
    "a6b3d75c-a0e1-484c-af6e-2bfb88f57137", "c84255de-5b9d-4029-91c8-bd5b3f555e13",
    "e597c783-afcf-4d06-a9f9-c1013c4e077b", "f339b6bd-0699-4dbc-8519-e06d71e33040",
}  # fmt: skip


# Round 12 (questions-m) as dealt before round 13 existed: round 13 must never move them.
ROUND_TWELVE_VAL = {
    "1c826d28-25cf-4ef1-9993-8bd26acf4319", "90dee173-251a-4de1-8660-c7fe29b84b23",
    "b6798659-bd99-414e-8c1b-d8cf0fe209c1", "b933e942-2388-4686-9573-dd32e8bde2c8",
    "ba956723-2c55-4c19-b792-cffd6587d878", "bce9e816-4849-4b92-88cd-598d502c921e",
    "c28df122-5124-413c-a1bc-2a304d16c942", "c9f1ac8e-084d-4625-8089-e0b08158d6ae",
    "da19b938-ae0e-430c-92f7-53d5cfc605a9", "ea090204-5849-4e04-9295-0a552cd0f645",
}  # fmt: skip


# Round 13 (questions-n) as dealt before round 14 existed: round 14 must never move them.
ROUND_THIRTEEN_VAL = {
    "03c13833-66d8-444f-8bf5-1ec1d1944c15", "03d50b77-fa38-4632-918d-bbf27f4e4847",
    "20467c96-1e2c-4008-94e9-415d3f8bb51b", "226e9d18-e3be-427e-9436-359d85af5c25",
    "619b9ff7-971d-4d8f-b2f0-70025257cea8", "8f2e37f0-ab7b-49e8-a639-9cde937e43ba",
    "9ed022f7-94ec-43be-987a-bddf2590d290", "aaed2ccc-378b-4c1f-a052-69ad239a08fb",
    "ae2aaf34-225b-40c4-9368-729611e18791", "c6956f1e-ed9e-4279-a428-d1cb47a87e46",
}  # fmt: skip


# Round 14 (questions-o) as dealt before round 15 existed: round 15 must never move them.
ROUND_FOURTEEN_VAL = {
    "02eaf2c3-eecf-4da5-8b48-26cdca55e10e", "0a9e8f87-a052-4b5c-88c3-4129f709aa18",
    "3c9eac3f-70b3-4c17-a155-5ac0cfb8f5f6", "3f34c1f4-047c-4c64-89a1-0d6d17ce865a",
    "5c10a606-de5f-4da8-8f2f-bd4d1d325174", "a7342e0e-efc3-4cc4-b69b-7d86081ceab3",
    "c8e01533-0e7a-4c2c-b08b-adcebbf87522", "d7f7bbe5-2392-4466-b377-494f2c091273",
    "e7304fc5-d93a-41ee-918f-f0ae60456b65", "f2f4146c-3328-479a-9c9e-1970eb2f297b",
}  # fmt: skip


# Round 15 (questions-p) as dealt before round 16 existed: round 16 must never move them.
ROUND_FIFTEEN_VAL = {
    "0aee3eb2-1cc6-424b-8b28-e9c1335b5105", "2e63274d-68ee-4a83-b2a6-a3524161a97b",
    "3d31a398-5943-49b0-ac96-9dd7cbfc7764", "3ebdab0d-12bc-4e66-83ff-f6ac09556c3f",
    "93a7403d-6c5b-44ff-a701-83d2e0d1990a", "9a300d3d-9457-41fa-8ec6-2b4d89adcc43",
    "9d31dd6f-a223-4473-983b-3569a836ebe7", "afc0a840-5ab7-4b12-8d57-16926c821ca2",
    "c23ab9b5-7f4f-4e16-9d8c-7820cb88ba04", "d3e265f4-0a32-4168-a822-ed0588600095",
}  # fmt: skip


def _committed_rounds() -> tuple[dict[str, dict[str, str]], dict[str, set[str]]]:
    """Each round's patients with their split (by file letter), and each patient's kinds."""
    committed = [orjson.loads(line) for line in (BENCH / "qa.jsonl").read_bytes().splitlines()]
    by_round: dict[str, dict[str, str]] = {}
    kinds: dict[str, set[str]] = {}
    for row in committed:
        letter = row["id"].split("-")[1]
        by_round.setdefault(letter, {})[row["patient_id"]] = row["split"]
        kinds.setdefault(row["patient_id"], set()).add(row["intent"])
    return by_round, kinds


@pytest.mark.parametrize(
    ("before", "after", "pinned", "dealt"),
    [
        ("d", "e", ROUND_THREE_VAL, (6, 6)),
        ("e", "f", ROUND_FOUR_VAL, (12, 12)),
        ("f", "g", ROUND_FIVE_VAL, (8, 8)),
        ("g", "h", ROUND_SIX_VAL, (9, 8)),
        ("h", "i", ROUND_SEVEN_VAL, (10, 10)),
        ("i", "j", ROUND_EIGHT_VAL, (10, 10)),
        ("j", "k", ROUND_NINE_VAL, (10, 10)),
        ("k", "l", ROUND_TEN_VAL, (10, 10)),
        ("l", "m", ROUND_ELEVEN_VAL, (10, 10)),
        ("m", "n", ROUND_TWELVE_VAL, (10, 10)),
        ("n", "o", ROUND_THIRTEEN_VAL, (10, 10)),
        ("o", "p", ROUND_FOURTEEN_VAL, (10, 10)),
        ("p", "q", ROUND_FIFTEEN_VAL, (10, 10)),
    ],
)
def test_a_round_is_dealt_on_its_own_and_never_moves_the_one_before(
    before: str, after: str, pinned: set[str], dealt: tuple[int, int]
) -> None:
    by_round, kinds = _committed_rounds()
    letters = "abcdefghijklmnopq"
    old, new = by_round[before], by_round[after]
    n = letters.index(before) - 1  # round n+1 (file letters a and b are round 1)
    val, test = split_names(n)
    assert {p for p, s in old.items() if s == val} == pinned
    assert {s for p, s in old.items() if p not in pinned} == {test}
    assert assign_splits({p: kinds[p] for p in old}, names=split_names(n)) == old
    splits = sorted(new.values())
    assert (splits.count(f"val{n + 2}"), splits.count(f"test{n + 2}")) == dealt
    assert assign_splits({p: kinds[p] for p in new}, names=split_names(n + 1)) == new
    earlier = set().union(*(set(by_round[x]) for x in letters[: letters.index(after)]))
    assert not earlier & set(new)
