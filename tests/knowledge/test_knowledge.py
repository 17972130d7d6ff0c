"""The knowledge files: loader errors, the new tables, the scanner and the facades over them."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from ehrqa.knowledge import KnowledgeError, drug_disagreements, load_knowledge
from ehrqa.knowledge.loader import KNOWLEDGE_DIR
from ehrqa.knowledge.scanner import find_concepts
from ehrqa.meds import drugs
from ehrqa.select import lexicon

KB = load_knowledge()


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A writable copy of the packaged knowledge files."""
    for path in KNOWLEDGE_DIR.iterdir():
        if path.suffix in (".toml", ".csv"):
            shutil.copy(path, tmp_path / path.name)
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


BROKEN = [
    (
        "labs.toml",
        'name = "hba1c"',
        'name = "hba1c"\ncodez = []',
        r"labs\.toml: \[\[concept\]\] #1 \('hba1c'\): unknown key",
    ),
    (
        "labs.toml",
        'codes = ["4548-4", "17856-6"]',
        'codes = ["A1C"]',
        r"labs\.toml: .*'hba1c'.*not LOINC codes",
    ),
    ("labs.toml", 'kind = "lab"', 'kind = "lab', r"labs\.toml: not valid TOML: .*line 9"),
    (
        "conditions.toml",
        'related = ["diabetes medicine", "hba1c", "glucose"]',
        'related = ["diabetes pils"]',
        r"unknown concept: related of diabetes: 'diabetes pils'",
    ),
    (
        "child_vaccines.toml",
        "due = [[2, 1], [3, 2], [19, 3]]",
        "due = [[3, 2], [2, 1]]",
        r"child_vaccines\.toml: \[\[series\]\] #1 \('hepatitis b vaccine'\): 'due' must rise",
    ),
    (
        "child_vaccines.toml",
        'vaccine = "mmr vaccine"',
        'vaccine = "mmr jab"',
        r"unknown vaccine.*'mmr jab'",
    ),
    (
        "monitoring.toml",
        'comparator = "<"',
        'comparator = "less"',
        r"monitoring\.toml: \[\[monitor\]\] #1: comparator 'less'",
    ),
    (
        "monitoring.toml",
        'condition = "diabetes"',
        'condition = "diabetis"',
        r"unknown condition: monitoring\.toml: 'diabetis'",
    ),
    (
        "vaccine_intervals.toml",
        "years = 10\n",
        "years = 10\nannual = true\n",
        r"vaccine_intervals\.toml: .*'tetanus vaccine'.*not both",
    ),
    (
        "encounter_classes.toml",
        'code = "EMER"',
        'code = "emer"',
        r"encounter_classes\.toml: .*upper case",
    ),
    (
        "drug_classes.toml",
        'zetia = "ezetimibe"',
        'zetia = "ezetimib"',
        r"\[brands\] zetia: 'ezetimib'",
    ),
    (
        "cues.toml",
        '"sugar number" = ["hba1c", "glucose"]',
        '"sugar number" = ["hba1c", "glucos"]',
        r"cues\.toml \[groups\] sugar number: 'glucos'",
    ),
    (
        "cues.toml",
        '"renal function" = ["egfr", "creatinine"]',
        '"renal function" = ["egfr", "hba1c"]',
        r"cues\.toml: \[group_leads\] 'renal function': 'hba1c' must be one of",
    ),
    (
        "cues.toml",
        '"renal function" = ["egfr", "creatinine"]',
        '"renal function" = "egfr"',
        r"cues\.toml: \[group_leads\]: 'renal function' must be a list",
    ),
    (
        "cues.toml",
        '"accident", "accidental",',
        '"Accident", "accidental",',
        r"cues\.toml: \[unrecorded\]: 'properties' must be lower case",
    ),
    (
        "body_sites.toml",
        'hip = ["hip", "femur", "femoral"]',
        'Hip = ["hip"]',
        r"body_sites\.toml: \[sites\] 'Hip' must be lower case",
    ),
    (
        "body_sites.toml",
        'hip = ["hip", "femur", "femoral"]',
        "hip = []",
        r"body_sites\.toml: \[sites\] 'hip' lists no display term",
    ),
    (
        "cues.toml",
        'phrases = ["kidneys"]',
        'phrases = ["livers"]',
        r"cues\.toml: \[organ_groups\] phrases: 'livers' is not a \[groups\] phrase",
    ),
    (
        "body_sites.toml",
        '"contraceptive implant" = ["arm"]',
        '"contraceptive implnt" = ["arm"]',
        r"body_sites\.toml: \[implied\] 'contraceptive implnt' is not a concept name",
    ),
    (
        "body_sites.toml",
        '"contraceptive implant" = ["arm"]',
        '"contraceptive implant" = ["armpit"]',
        r"body_sites\.toml: \[implied\] 'contraceptive implant': \['armpit'\] not in \[sites\]",
    ),
    (
        "monitoring.toml",
        "becomes_at = 6.5\n",
        "",
        r"monitoring\.toml: .*'becomes', 'becomes_at' and 'becomes_source' go together",
    ),
    (
        "monitoring.toml",
        'becomes = "diabetes"',
        'becomes = "diabetis"',
        r"monitoring\.toml becomes.*'diabetis'",
    ),
]


@pytest.mark.parametrize(("name", "old", "new", "message"), BROKEN, ids=[b[3][:30] for b in BROKEN])
def test_malformed_files_are_named(
    files: Path, name: str, old: str, new: str, message: str
) -> None:
    _edit(files / name, old, new)
    with pytest.raises(KnowledgeError, match=message):
        load_knowledge(files)


RANGE_ROWS = [
    ("4548-4,,5.6,%", "4548-4,,,%", r"line \d+: a range needs a low or a high bound"),
    ("4548-4,,5.6,%", "4548-4,9,5.6,%", r"line \d+: low 9.0 is above high 5.6"),
    ("4548-4,,5.6,%", "4548-4,,five,%", r"line \d+: high 'five' is not a number"),
    (
        ",ADA Standards of Care in Diabetes 2024 section 2 (Diagnosis and Classification)\n17856",
        ",\n17856",
        r"line \d+: source is empty",
    ),
    ("2085-9,40,,mg/dL,male", "2085-9,40,,mg/dL,men", r"line \d+: sex 'men'"),
    ("2085-9,40,,mg/dL,male", "2085-9,40,,mg/dL|,male", r"line \d+: unit 'mg/dL\|' has an empty"),
]


@pytest.mark.parametrize(("old", "new", "message"), RANGE_ROWS)
def test_malformed_reference_rows_name_the_line(
    files: Path, old: str, new: str, message: str
) -> None:
    _edit(files / "reference_ranges.csv", old, new)
    with pytest.raises(KnowledgeError, match=r"reference_ranges\.csv: " + message):
        load_knowledge(files)


def test_missing_file_is_named(files: Path) -> None:
    (files / "monitoring.toml").unlink()
    with pytest.raises(KnowledgeError, match=r"monitoring\.toml: knowledge file missing"):
        load_knowledge(files)


def test_every_reference_row_has_a_source_unit_and_valid_code() -> None:
    text = (KNOWLEDGE_DIR / "reference_ranges.csv").read_text()
    rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    assert len(rows) == len(KB.reference_ranges) >= 40
    assert all(r["source"].strip() and r["unit"].strip() for r in rows)
    lab_codes = {code for c in KB.concepts if c.system == "LOINC" for code in c.codes}
    assert {r.loinc for r in KB.reference_ranges} <= lab_codes


@pytest.mark.parametrize(
    ("loinc", "sex", "value", "flag"),
    [
        ("4548-4", None, 6.1, "high"),
        ("4548-4", None, 5.4, "normal"),
        ("718-7", "female", 12.5, "normal"),
        ("718-7", "male", 12.5, "low"),
        ("8480-6", None, 128, "high"),
        ("2947-0", "other", 131, "low"),
    ],
)
def test_reference_range_flags(loinc: str, sex: str | None, value: float, flag: str) -> None:
    rng = KB.reference_range(loinc, sex=sex, age=50)
    assert rng is not None and rng.flag(value) == flag


def test_reference_ranges_are_adult_only() -> None:
    assert KB.reference_range("4548-4", age=8) is None
    assert KB.reference_range("0000-0") is None


def test_monitoring_by_name_code_and_synonym() -> None:
    by_name = KB.monitoring("diabetes")
    assert by_name == KB.monitoring("44054006") and by_name[0].measure == "hba1c"
    assert (by_name[0].comparator, by_name[0].target, by_name[0].unit) == ("<", 7.0, "%")
    assert by_name[0].met(6.8) and not by_name[0].met(7.2)
    bp = KB.monitoring("high blood pressure")
    assert {m.component for m in bp} == {"8480-6", "8462-4"}
    assert KB.monitoring("not a condition") == ()


def test_indications_by_ingredient_and_brand() -> None:
    assert "hyperlipidemia" in KB.indications("Lipitor")
    assert KB.indications("metformin") == KB.indications("glucophage")
    assert "hypertension" in KB.indications("lisinopril")
    assert KB.indications("unobtainium") == ()


def test_vaccine_intervals() -> None:
    tdap = KB.vaccine_interval("115")
    assert tdap is not None and tdap.years == 10 and not tdap.annual
    flu = KB.vaccine_interval("flu shot")
    assert flu is not None and flu.annual and flu.years is None
    mmr = KB.vaccine_interval("3")
    assert mmr is not None and mmr.vaccine == "mmr vaccine" and mmr.years is None
    assert KB.vaccine_interval("999") is None


def test_encounter_classes() -> None:
    emer = KB.encounter_class("emer")
    assert emer is not None and emer.label == "emergency visit" and "a and e" in emer.phrases
    imp = KB.encounter_class("IMP")
    assert imp is not None and "admitted" in imp.phrases
    assert KB.encounter_class("XYZ") is None


LAY = [
    ("Did I ever break a bone?", "fracture"),
    ("Have I had allergy shots?", "allergen immunotherapy"),
    ("Am I on a water pill?", "diuretic"),
    ("How are my diabetes numbers?", "hba1c"),
    ("When did I last go to the ER?", "emergency visit"),
    ("Did I have a mini-stroke?", "stroke"),
    ("How is my kidney function?", "egfr"),
    ("Am I on a cholesterol pill?", "lipid lowering"),
    ("Am I on a pressure pill?", "antihypertensive"),
    ("Do I use a puffer?", "inhaler"),
    ("When was my last flu jab?", "influenza vaccine"),
    ("Have I had a smear test?", "pap smear"),
    ("Any shortness of breath?", "shortness of breath"),
    ("Was I ever in A and E?", "emergency visit"),
    ("Simvistatin 10 MG", "simvastatin"),
]


@pytest.mark.parametrize(("text", "name"), LAY)
def test_scanner_finds_lay_phrases(text: str, name: str) -> None:
    assert name in [c.name for c in find_concepts(text)]


def test_ezetimibe_is_not_a_statin() -> None:
    statin = next(c for c in KB.drug_classes if c.name == "statin")
    assert "ezetimibe" not in statin.members
    assert "statin" not in KB.class_ancestors(
        next(d for d in KB.drugs if d.name == "ezetimibe").classes
    )
    lipid = next(c for c in KB.drug_classes if c.name == "lipid lowering")
    assert {"ezetimibe", "atorvastatin"} <= set(lipid.members)


def test_question_classes_agree_with_drug_classes() -> None:
    assert drug_disagreements(KB) == []


def test_disagreement_is_reported(files: Path) -> None:
    _edit(files / "drug_classes.toml", '"atorvastatin",', '"atorvastatin", "ezetimibe",')
    with pytest.raises(KnowledgeError, match="ezetimibe is a member of statin"):
        load_knowledge(files)


def test_lexicon_facade_equals_the_data() -> None:
    assert KB.concepts == lexicon.CONCEPTS
    assert [c.name for c in KB.concepts_of("lab")] == [row[0] for row in lexicon.LABS]
    assert [row[0] for row in lexicon.DRUG_CLASSES] == [c.name for c in KB.drug_classes]
    assert dict(KB.brands) == lexicon.BRANDS
    assert lexicon.get_concept("hba1c") is KB.by_name["hba1c"]


def test_cds_drug_table_equals_the_data() -> None:
    assert [row[0] for row in drugs.DRUGS] == [d.name for d in KB.drugs]
    assert dict(KB.class_parents) == drugs.CLASS_PARENTS
    assert drugs.BRANDS["augmentin"] == "co-amoxiclav"


def test_knowledge_sits_below_the_layers_that_use_it() -> None:
    upper = ("ehrqa.select", "ehrqa.answer", "ehrqa.cds", "ehrqa.fhir", "ehrqa.lab.data")
    for path in KNOWLEDGE_DIR.glob("*.py"):
        imports = [line for line in path.read_text().splitlines() if "import" in line]
        assert not [line for line in imports if any(u in line for u in upper)], path.name


def test_a_range_reads_values_in_any_listed_spelling_of_its_unit() -> None:
    egfr = KB.reference_range("33914-3", age=60)
    assert egfr is not None and egfr.unit == "mL/min/{1.73_m2}"
    assert egfr.measures("mL/min") and egfr.measures(None) and not egfr.measures("mg/dL")


def test_a_screening_interval_names_a_known_procedure_and_positive_years(files: Path) -> None:
    _edit(
        files / "screening_intervals.toml", 'screening = "colonoscopy"', 'screening = "colonscopy"'
    )
    with pytest.raises(KnowledgeError, match=r"screening_intervals\.toml.*'colonscopy'"):
        load_knowledge(files)
    _edit(
        files / "screening_intervals.toml",
        'screening = "colonscopy"\nyears = 10',
        'screening = "colonoscopy"\nyears = 0',
    )
    with pytest.raises(
        KnowledgeError, match=r"screening_intervals\.toml.*'years' must be a positive"
    ):
        load_knowledge(files)
    assert KB.screening_interval("mammogram") is not None


def test_memory_and_lung_function_scores_say_which_way_is_better() -> None:
    # "were his memory scores getting worse?" said only "went down": the MMSE (both codes
    # Synthea writes) and FEV1/FVC have a one-sided range, so a fall is worse.
    for code, low in (("72106-8", 24), ("72107-6", 24), ("19926-5", 70)):
        rng = KB.reference_range(code, age=70)
        assert rng is not None and rng.low == low and rng.high is None, code
    assert "Folstein" in KB.reference_range("72106-8", age=70).source  # type: ignore[union-attr]


def test_a_drugs_other_names_name_its_ingredient() -> None:
    # "What was the topamax for?" matched nothing: [[drug]] names were read by cds only.
    assert [c.name for c in find_concepts("what was the topamax for")] == ["topiramate"]
    assert [c.name for c in find_concepts("is she still on cymbalta")] == ["duloxetine"]
