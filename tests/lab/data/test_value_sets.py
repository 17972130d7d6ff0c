"""The template generator's own value sets: independence from the selector, loader, matching."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

import ehrqa.lab.data
from ehrqa.core.errors import ConfigError
from ehrqa.fhir.record import Coding, Record
from ehrqa.lab.data.qa import read_dataset
from ehrqa.lab.data.value_sets import (
    VALUE_SETS_PATH,
    in_drug_class,
    is_encounter_of,
    load_value_sets,
    mentions,
    parse_value_sets,
)

DATA_DIR = Path(ehrqa.lab.data.__file__).parent
SAMPLE = Path(__file__).parents[2] / "fixtures" / "qa_sample"
# The selector, the answerer and decision support, and the knowledge files the selector's
# lexicon is made of: the generator must name concepts without any of them.
FORBIDDEN = ("ehrqa.select", "ehrqa.answer", "ehrqa.cds", "ehrqa.knowledge", "ehrqa.meds")
# The share of lexicon phrasings that the generator of issue 15 used (about 95%); the new
# generator must stay well below it.
MAX_LEXICON_SHARE = 0.5


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".")[: -node.level]
    return ".".join([*package, node.module] if node.module else package)


def imported_modules(source: str, module: str) -> list[str]:
    """Every module ``source`` imports, at any depth (lazy imports inside functions too),
    including ``importlib.import_module("…")`` and ``__import__("…")`` with a literal name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            found += [base, *(f"{base}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if name in ("import_module", "__import__") and isinstance(first, ast.Constant):
                found.append(str(first.value))
    return found


def forbidden_imports(source: str, module: str) -> list[str]:
    """The imports of ``source`` that reach into :data:`FORBIDDEN` packages."""
    return [
        name
        for name in imported_modules(source, module)
        if any(name == f or name.startswith(f"{f}.") for f in FORBIDDEN)
    ]


def test_nothing_under_data_imports_the_selector_answerer_or_cds() -> None:
    modules = sorted(DATA_DIR.rglob("*.py"))
    assert len(modules) >= 5
    bad = {}
    for path in modules:
        relative = path.relative_to(DATA_DIR.parents[2]).with_suffix("")
        module = ".".join(relative.parts)
        if found := forbidden_imports(path.read_text(encoding="utf-8"), module):
            bad[str(path)] = found
    assert not bad, f"ehrqa.lab.data must not import {FORBIDDEN}: {bad}"


@pytest.mark.parametrize(
    "source",
    [
        "from ehrqa.select.lexicon import CONCEPTS_BY_NAME",
        "import ehrqa.answer.compose as c",
        "def f():\n    from ehrqa.cds import drugs\n    return drugs",
        "class A:\n    def m(self):\n        import ehrqa.knowledge\n",
        "from ...select import default",
        "from ... import cds",
        "import importlib\nx = importlib.import_module('ehrqa.select.timeexpr')",
    ],
)
def test_the_import_check_sees_every_form(source: str) -> None:
    assert forbidden_imports(source, "ehrqa.lab.data.qa_gen")


def test_the_import_check_lets_neutral_modules_through() -> None:
    source = "from ehrqa.fhir.record import Record\nfrom . import phrasings\nimport ehrqa.store"
    assert forbidden_imports(source, "ehrqa.lab.data.qa_gen") == []


# --- how many phrasings the selector's lexicon already knows -----------------------------------

_ARTICLE = re.compile(r"^(?:a|an|the|my|some)\s+", re.IGNORECASE)


def _recognised(phrase: str) -> bool:
    """Whether the selector's lexicon knows ``phrase`` verbatim: one of its phrases, whole."""
    from ehrqa.select.lexicon import scan, words

    bare = _ARTICLE.sub("", phrase)
    matches = scan(bare)
    return (
        len(matches) == 1
        and matches[0].start == 0
        and matches[0].end == len(words(bare))
        and bool(matches[0].concepts)
    )


def _all_phrasings() -> list[str]:
    found = []
    for _, value_set in load_value_sets().every():
        found += [*value_set.names.patient, *value_set.names.clinician, *(value_set.plural or ())]
    return sorted(set(found))


def _sample_phrasings() -> list[str]:
    """The concept phrases the committed sample's questions actually use (longest match)."""
    phrasings = sorted(_all_phrasings(), key=len, reverse=True)
    used = []
    for item in read_dataset(SAMPLE / "qa.jsonl"):
        hit = next((p for p in phrasings if f" {p}" in f" {item.question}"), None)
        if hit is not None:
            used.append(hit)
    return used


def test_generated_phrasings_are_mostly_not_lexicon_synonyms(
    capsys: pytest.CaptureFixture[str],
) -> None:
    every, sample = _all_phrasings(), _sample_phrasings()
    assert len(every) > 300 and len(sample) > 100
    share_every = sum(map(_recognised, every)) / len(every)
    share_sample = sum(map(_recognised, sample)) / len(sample)
    with capsys.disabled():
        print(
            f"\nlexicon knows {share_every:.1%} of the {len(every)} value-set phrasings and "
            f"{share_sample:.1%} of the {len(sample)} concept phrases of the committed sample"
        )
    assert share_every < MAX_LEXICON_SHARE
    assert share_sample < MAX_LEXICON_SHARE


def test_the_share_measure_counts_lexicon_phrases() -> None:
    # The measure must be able to fail: phrases the lexicon certainly knows count as known.
    assert _recognised("blood pressure") and _recognised("a statin")
    assert not _recognised("stopping breathing at night")


# --- the loader -----------------------------------------------------------------------------------


def test_packaged_value_sets_load_and_cover_every_section() -> None:
    value_sets = load_value_sets()
    sections = {section for section, _ in value_sets.every()}
    assert sections == {
        "measures",
        "lab_groups",
        "conditions",
        "drug_classes",
        "vaccines",
        "encounters",
        "procedures",
        "reports",
        "facts",
    }
    for section, value_set in value_sets.every():
        if section not in ("lab_groups",) and not value_set.any:
            assert value_set.codes, (section, value_set.key)
        assert len(value_set.names.patient) + len(value_set.names.clinician) >= 2, value_set.key
    assert sum(vs.common for vs in value_sets.conditions.values()) >= 15
    assert value_sets.conditions["fracture"].common
    assert "a water pill" in value_sets.drug_classes["water_pill"].names.patient


def _minimal() -> dict[str, Any]:
    def entry() -> dict[str, Any]:
        return {"label": "x", "patient": ["x"], "clinician": ["x"], "codes": ["1"]}

    return {
        "unrecorded_labs": ["m"],
        "measures": {"m": {**entry(), "kind": "lab"}},
        "lab_groups": {"g": {"label": "g", "patient": ["g"], "clinician": ["g"], "members": ["m"]}},
        "conditions": {"c": entry()},
        "drug_classes": {"d": entry()},
        "vaccines": {"v": entry()},
        "encounters": {"e": {"label": "e", "patient": ["e"], "clinician": ["e"], "any": True}},
        "procedures": {"p": entry()},
        "reports": {"r": entry()},
        "facts": {"f": entry()},
    }


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("measures", "m", "kind"), "lab test", "kind must be one of"),
        (("conditions", "c", "synonyms"), ["y"], "unknown key"),
        (("conditions", "c", "codes"), [], "codes must list at least one"),
        (("conditions", "c", "patient"), "x", "patient must be a list"),
        (("conditions", "c", "label"), "", "label must be a non-empty string"),
        (("conditions", "c", "common"), "yes", "common must be true or false"),
        (("vaccines", "v", "plural"), ["shots"], "plural must be"),
        (("lab_groups", "g", "members"), ["nope"], "not [measures] entries"),
        (("unrecorded_labs",), ["nope"], "not [measures] entries"),
        (("extras",), {}, "unknown section"),
    ],
)
def test_bad_value_sets_name_the_problem(path: tuple[str, ...], value: Any, message: str) -> None:
    data = _minimal()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_value_sets(data)


def test_a_broken_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "value_sets.toml"
    bad.write_text("[measures\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_value_sets(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_value_sets(tmp_path / "missing.toml")
    assert VALUE_SETS_PATH.is_file()


# --- matching records by code --------------------------------------------------------------------


def _record(rtype: str, code: str, display: str, **resource: Any) -> Record:
    return Record(
        ref=f"{rtype}/x",
        resource_type=rtype,
        id="x",
        patient_id="p1",
        text=display,
        codes=(Coding("http://example.org", code, display),),
        resource={"resourceType": rtype, **resource},
    )


def test_drug_class_by_code_catches_a_misspelt_display() -> None:
    statin = load_value_sets().drug_classes["statin"]
    # Java-Synthea's display "Simvistatin 10 MG" is misspelt; its RxNorm code is listed.
    assert in_drug_class(statin, _record("MedicationRequest", "316672", "Simvistatin 10 MG"))
    assert in_drug_class(statin, _record("MedicationRequest", "0", "Rosuvastatin 5 MG Tablet"))
    assert not in_drug_class(statin, _record("MedicationRequest", "0", "Ezetimibe 10 MG Tablet"))


def test_an_emergency_visit_is_found_by_its_class() -> None:
    emergency = load_value_sets().encounters["emergency"]
    typed = _record("Encounter", "50849002", "Emergency room admission (procedure)")
    by_class = _record(
        "Encounter", "185347001", "Encounter for problem", **{"class": {"code": "EMER"}}
    )
    office = _record(
        "Encounter", "185347001", "Encounter for problem", **{"class": {"code": "AMB"}}
    )
    assert is_encounter_of(emergency, typed) and is_encounter_of(emergency, by_class)
    assert not is_encounter_of(emergency, office)


def test_absence_needs_neither_code_nor_word() -> None:
    fracture = load_value_sets().conditions["fracture"]
    assert mentions(fracture, _record("Condition", "16114001", "Fracture of ankle"))
    # An unlisted code whose display says "fracture" still rules out a "No".
    assert mentions(fracture, _record("Condition", "999", "Fracture of vertebral column"))
    assert not mentions(fracture, _record("Condition", "44465007", "Sprain of ankle"))


def test_committed_sample_asks_in_the_generators_own_words() -> None:
    questions = " ".join(i.question for i in read_dataset(SAMPLE / "qa.jsonl"))
    manifest = orjson.loads((SAMPLE / "manifest.json").read_bytes())
    assert manifest["counts"]["items"] > 200
    assert any(p in questions for p in _all_phrasings())
