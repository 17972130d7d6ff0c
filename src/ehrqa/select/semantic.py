"""Semantic matching of a question's phrases to the patient's own coded concepts.

Patients ask in words no lexicon lists ("have I ever broken a bone?" about a record of
"Fracture of forearm"; "my sugar levels" about "Hemoglobin A1c/Hemoglobin.total in Blood").
:class:`ConceptMatcher` compares the question's content phrases with the displays of THIS
patient's distinct codings, by cosine similarity of sentence embeddings, and returns the
concepts the question is about.

Public API (for the selectors)::

    from ehrqa.llm.embed import load_embedder
    from ehrqa.select.semantic import DEFAULT_MIN_SCORE, ConceptMatcher

    matcher = ConceptMatcher(load_embedder("minilm"), cache_dir)  # once per process
    concepts = store.distinct_codes(patient_id)                    # ~10 ms, one SQL query
    for m in matcher.match(question, concepts, min_score=DEFAULT_MIN_SCORE):
        m.concept.refs, m.score, m.phrase    # records to select, cosine, the phrase matched

- :meth:`RecordStore.distinct_codes <ehrqa.store.base.RecordStore.distinct_codes>` lists the
  concepts (type, system, code, display, refs). Filter them by type before matching when
  only some kinds of record are wanted (billing types repeat the clinical displays).
- :meth:`ConceptMatcher.match` returns :class:`SemanticMatch` es, best first; concepts that
  share a display (a Condition and its Encounter reason) share a score and count once
  towards ``limit``.
- ``DEFAULT_MIN_SCORE`` was calibrated with MiniLM on lay phrases over Java-Synthea
  patients (``benchmarks/semantic_calibration.py``); another embedder needs its own.
- The pure parts: :func:`concept_text` (what is embedded for a concept),
  :func:`question_phrases` (what is embedded for a question) and :func:`rank_matches`
  (scores from vectors, no I/O).

Each distinct concept text is embedded once and kept on disk, one ``.npz`` per model in
``cache_dir`` (written atomically, shared by processes and patients); question phrases are
embedded per question and kept in memory only, since questions are private.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from ehrqa.core.errors import ConfigError
from ehrqa.store.base import CodedConcept

if TYPE_CHECKING:
    import numpy as np

    from ehrqa.llm.embed import Embedder

__all__ = [
    "DEFAULT_MIN_SCORE",
    "CodedConcept",
    "ConceptMatcher",
    "SemanticMatch",
    "clean_display",
    "concept_text",
    "phrase_weights",
    "question_phrases",
    "rank_matches",
]

# Calibrated with MiniLM (benchmarks/semantic_calibration.py, 84 lay phrases x 29 Java-Synthea
# patients): the best F1 of the top match (precision 0.77, recall 0.61), with the exponent below.
DEFAULT_MIN_SCORE = 0.55
# A phrase of n of the question's N content words scores cosine * (n / N) ** this: a lone
# word ("blood" of "blood thinner") must match far better than the whole phrase to win.
DEFAULT_SUBPHRASE_EXPONENT = 0.5
MAX_NGRAM = 3  # longer runs of content words are compared whole, not as n-grams
PHRASE_CACHE_SIZE = 4096  # question phrases kept in memory per matcher

# SNOMED CT semantic tags at the end of a display: "(disorder)", "(regime/therapy)".
_SEMANTIC_TAG = re.compile(r"\s*\((?:[a-z]+[ /]?)+\)\s*$")
# LOINC property/scale in brackets ("[Mass/volume]", "[#/volume]"): noise to a lay phrase.
_LOINC_PROPERTY = re.compile(r"\s*\[[^\]]*/[^\]]*\]")
# Strengths and pack sizes of RxNorm displays ("25 MG", "0.09 MG/ACTUAT", "24 HR").
_DOSE = re.compile(
    r"\b\d+(?:\.\d+)?\s*(?:MG|ML|MCG|UNT|MEQ|ACTUAT|HR|mg|ml)(?:/(?:ML|ACTUAT|HR|MG))?\b"
)
_LETTER_DOT_LETTER = re.compile(r"(?<=[A-Za-z])\.(?=[A-Za-z])")  # "Hemoglobin.total"
_INVISIBLE = re.compile(r"[\u200b-\u200d\u2060\ufeff]")
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"[a-z0-9]+(?:['\-][a-z0-9]+)*")
_YEAR = re.compile(r"^(?:19|20)\d\d$")


@dataclass(frozen=True)
class SemanticMatch:
    """A concept the question is about: cosine ``score`` and the question ``phrase`` it matched."""

    concept: CodedConcept
    score: float
    phrase: str


def clean_display(display: str) -> str:
    """The text embedded for a display: without SNOMED tags, LOINC properties and doses.

    ``"Acute bacterial sinusitis (disorder)"`` → ``"Acute bacterial sinusitis"``;
    ``"Glucose [Mass/volume] in Blood"`` → ``"Glucose in Blood"``. Returns ``""`` for a
    display with nothing left to compare.
    """
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", display))
    text = _SEMANTIC_TAG.sub("", text)
    text = _LOINC_PROPERTY.sub("", text)
    text = _DOSE.sub("", text)
    text = _LETTER_DOT_LETTER.sub(" ", text)
    return _SPACES.sub(" ", text).strip(" -/,")


def concept_text(concept: CodedConcept) -> str:
    """The text embedded for a concept: its cleaned display, and "vaccine" for a vaccine.

    CVX displays name a vaccine without saying so ("Influenza, seasonal, injectable"):
    MiniLM puts "flu shot" at 0.48 from that and 0.63 from it with "vaccine" added.
    """
    text = clean_display(concept.display)
    if text and concept.resource_type == "Immunization" and "vaccin" not in text.lower():
        text += " vaccine"
    return text


@cache
def default_stopwords() -> frozenset[str]:
    """The words of ``semantic_stopwords.txt``: how questions are asked, not what about."""
    text = resources.files("ehrqa.select").joinpath("semantic_stopwords.txt").read_text("utf-8")
    lines = (line.split("#", 1)[0].strip().lower() for line in text.splitlines())
    return frozenset(line for line in lines if line)


def question_phrases(question: str, stopwords: Iterable[str] | None = None) -> list[str]:
    """The phrases of ``question`` to compare with displays, longest first.

    The content words (stop words and years dropped) joined as one phrase, then their
    n-grams of up to :data:`MAX_NGRAM` words, in order. "Have I ever broken a bone?" gives
    ``["broken bone", "broken", "bone"]``. A question of stop words only gives ``[]``.
    """
    stop = default_stopwords() if stopwords is None else frozenset(stopwords)
    words = [w for w in _WORD.findall(question.lower()) if w not in stop and not _YEAR.match(w)]
    phrases: dict[str, None] = {}  # ordered set
    if words:
        phrases[" ".join(words)] = None
    for n in range(min(MAX_NGRAM, len(words)), 0, -1):
        for i in range(len(words) - n + 1):
            phrases.setdefault(" ".join(words[i : i + n]), None)
    return list(phrases)


def phrase_weights(phrases: Sequence[str], exponent: float) -> list[float]:
    """``(words / words of the longest phrase) ** exponent`` for each phrase (1.0 for it)."""
    lengths = [len(p.split()) for p in phrases]
    longest = max(lengths, default=1)
    return [(n / longest) ** exponent for n in lengths]


def rank_matches(
    phrases: Sequence[str],
    phrase_vectors: np.ndarray,
    concepts: Sequence[CodedConcept],
    concept_vectors: np.ndarray,
    *,
    min_score: float,
    limit: int | None = None,
    weights: Sequence[float] | None = None,
) -> list[SemanticMatch]:
    """Score each concept by its best weighted cosine with a phrase; keep those ``>= min_score``.

    Rows of the vector arrays are unit length and align with ``phrases`` and ``concepts``;
    ``weights`` (default all 1) scale each phrase's cosines (see :func:`phrase_weights`).
    A concept whose vector is all zeros (nothing to compare) scores 0. Best first (ties in
    the given order); ``limit`` caps the number of distinct displays returned, all concepts
    of a kept display included.
    """
    import numpy as np

    if not phrases or not concepts:
        return []
    similarity = concept_vectors @ phrase_vectors.T  # (concepts, phrases)
    if weights is not None:
        similarity = similarity * np.asarray(weights, dtype=np.float32)
    best_phrase = similarity.argmax(axis=1)
    best = similarity[np.arange(len(concepts)), best_phrase]
    order = sorted(range(len(concepts)), key=lambda i: -float(best[i]))
    matches: list[SemanticMatch] = []
    displays: set[str] = set()
    for i in order:
        score = float(best[i])
        if score < min_score:
            break
        display = concepts[i].display
        if limit is not None and display not in displays and len(displays) >= limit:
            continue
        displays.add(display)
        matches.append(SemanticMatch(concepts[i], score, phrases[int(best_phrase[i])]))
    return matches


class ConceptMatcher:
    """Matches questions to coded concepts with an embedder; display vectors cached on disk.

    ``subphrase_exponent`` discounts parts of the question against the whole (see
    :func:`phrase_weights`); 0 scores every phrase by its plain cosine.

    ``cache_dir`` holds one ``<model>.npz`` (cleaned display texts and their vectors) per
    embedder name. It is read once, extended when a patient brings new displays, and
    replaced atomically, so processes share it; two processes adding at once may each
    lose the other's additions, which are then embedded again later (never mixed up).
    """

    def __init__(
        self,
        embedder: Embedder,
        cache_dir: str | Path,
        *,
        subphrase_exponent: float = DEFAULT_SUBPHRASE_EXPONENT,
    ) -> None:
        if subphrase_exponent < 0:
            raise ConfigError(
                f"subphrase_exponent {subphrase_exponent} < 0 would favour parts of the "
                "question over the whole: give 0 (no preference) or more"
            )
        self.embedder = embedder
        self.subphrase_exponent = subphrase_exponent
        self.cache_dir = Path(cache_dir)
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", embedder.name)[:60]
        digest = hashlib.sha1(embedder.name.encode()).hexdigest()[:8]
        self.cache_path = self.cache_dir / f"{slug}-{digest}.npz"
        self._lock = threading.Lock()
        self._index: dict[str, int] = {}
        self._vectors = self._empty()
        self._phrases: OrderedDict[str, np.ndarray] = OrderedDict()
        self._load()

    def match(
        self,
        question: str,
        concepts: Sequence[CodedConcept],
        *,
        min_score: float = DEFAULT_MIN_SCORE,
        limit: int | None = 5,
    ) -> list[SemanticMatch]:
        """The concepts ``question`` is about, best first (see :func:`rank_matches`)."""
        if not -1.0 <= min_score <= 1.0:
            raise ConfigError(f"min_score {min_score} is not a cosine: give a value in [-1, 1]")
        phrases = question_phrases(question)
        if not phrases or not concepts:
            return []
        concept_vectors = self.concept_vectors(concepts)
        return rank_matches(
            phrases,
            self.phrase_vectors(phrases),
            concepts,
            concept_vectors,
            min_score=min_score,
            limit=limit,
            weights=phrase_weights(phrases, self.subphrase_exponent),
        )

    def concept_vectors(self, concepts: Sequence[CodedConcept]) -> np.ndarray:
        """One unit row per concept (its :func:`concept_text`'s; zeros when that is empty)."""
        import numpy as np

        cleaned = [concept_text(c) for c in concepts]
        with self._lock:
            missing = sorted({t for t in cleaned if t and t not in self._index})
            if missing:
                self._add(missing)
            rows = np.zeros((len(cleaned), self.embedder.dim), dtype=np.float32)
            for row, text in enumerate(cleaned):
                if text:
                    rows[row] = self._vectors[self._index[text]]
        return rows

    def phrase_vectors(self, phrases: Sequence[str]) -> np.ndarray:
        """One unit row per question phrase; recent phrases are kept in memory, not on disk."""
        import numpy as np

        with self._lock:
            missing = [p for p in dict.fromkeys(phrases) if p not in self._phrases]
            if missing:
                for phrase, vector in zip(missing, self.embedder.embed(missing), strict=True):
                    self._phrases[phrase] = vector
            for phrase in phrases:
                self._phrases.move_to_end(phrase)
            while len(self._phrases) > PHRASE_CACHE_SIZE:
                self._phrases.popitem(last=False)
            return np.stack([self._phrases[p] for p in phrases])

    @property
    def cached_displays(self) -> int:
        """How many cleaned display texts have a vector."""
        return len(self._index)

    # -- the on-disk cache -------------------------------------------------------------
    def _empty(self) -> np.ndarray:
        import numpy as np

        return np.zeros((0, self.embedder.dim), dtype=np.float32)

    def _load(self) -> None:
        """Read the cache file when it exists and fits this embedder; otherwise start empty."""
        import numpy as np

        try:
            with np.load(self.cache_path, allow_pickle=False) as data:
                texts, vectors = data["texts"], data["vectors"]
        except (OSError, KeyError, ValueError):  # absent, or unreadable: rebuilt on use
            return
        if vectors.ndim != 2 or vectors.shape != (len(texts), self.embedder.dim):
            return
        self._index = {str(t): i for i, t in enumerate(texts)}
        self._vectors = vectors.astype(np.float32, copy=False)

    def _add(self, texts: list[str]) -> None:
        """Embed ``texts`` (minus any another process has cached since) and save the cache."""
        import numpy as np

        self._load()  # pick up what other processes added meanwhile
        texts = [t for t in texts if t not in self._index]
        if not texts:
            return
        vectors = np.asarray(self.embedder.embed(texts), dtype=np.float32)
        start = len(self._index)
        self._vectors = np.concatenate([self._vectors, vectors])
        self._index.update((t, start + i) for i, t in enumerate(texts))
        self._save()

    def _save(self) -> None:
        import numpy as np

        self.cache_dir.mkdir(parents=True, exist_ok=True)
        texts = np.array(sorted(self._index, key=self._index.__getitem__), dtype=str)
        handle, temp = tempfile.mkstemp(dir=self.cache_dir, prefix=".concepts-", suffix=".npz")
        try:
            with os.fdopen(handle, "wb") as out:
                np.savez(out, texts=texts, vectors=self._vectors)
            os.replace(temp, self.cache_path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


class LazyConceptMatcher:
    """A :class:`ConceptMatcher` built on first use: loading the embedder costs ~0.5 s, and
    most questions never need it (it serves only selections the rules left empty).

    ``minilm`` runs on ONNX Runtime without torch (:func:`load_matcher_embedder`), from
    ``<home>/cache/onnx`` (``home`` defaults to the data directory). When the embedder
    cannot be loaded (not prepared and no torch to prepare it, or the MiniLM package
    missing), :meth:`match` finds nothing and the reason is logged once.
    """

    def __init__(
        self, embedder_spec: str, cache_dir: str | Path, *, home: str | Path | None = None
    ) -> None:
        self.embedder_spec = embedder_spec
        self.cache_dir = Path(cache_dir)
        self.home = home
        self._matcher: ConceptMatcher | None = None
        self.unavailable: str | None = None
        self._lock = threading.Lock()

    def warm(self) -> None:
        """Load the embedder now (or note why it cannot be), not on the first question."""
        self._get()

    def _get(self) -> ConceptMatcher | None:
        with self._lock:
            if self._matcher is None and self.unavailable is None:
                from ehrqa.core.errors import BackendUnavailableError, NotFoundError

                try:
                    embedder = load_matcher_embedder(self.embedder_spec, self.home)
                    self._matcher = ConceptMatcher(embedder, self.cache_dir)
                except (BackendUnavailableError, NotFoundError) as exc:
                    self.unavailable = str(exc)
                    import logging

                    logging.getLogger(__name__).warning(
                        "semantic matching is off (%s); selecting with the rules alone", exc
                    )
            return self._matcher

    def match(
        self,
        question: str,
        concepts: Sequence[CodedConcept],
        *,
        min_score: float = DEFAULT_MIN_SCORE,
        limit: int | None = 5,
    ) -> list[SemanticMatch]:
        """As :meth:`ConceptMatcher.match`; nothing when the embedder is unavailable."""
        matcher = self._get()
        if matcher is None:
            return []
        return matcher.match(question, concepts, min_score=min_score, limit=limit)


def load_matcher_embedder(spec: str, home: str | Path | None = None) -> Embedder:
    """The embedder ``spec`` names, with ``minilm`` run by ONNX Runtime (no torch import).

    Its vectors equal the sentence-transformers ones to ~1e-6 (tests/llm/test_onnx_parity),
    so it keeps the name ``minilm`` and shares the cached display vectors. The ONNX model
    is prepared under ``home`` on first use where torch is installed, or by
    ``ehrqa models prepare``. Other specs load as :func:`ehrqa.llm.embed.load_embedder`.
    """
    if spec.strip() != "minilm":
        from ehrqa.llm.embed import load_embedder

        return load_embedder(spec)
    from ehrqa.core.config import default_home
    from ehrqa.llm.onnx_encoder import OnnxBiEncoder
    from ehrqa.llm.onnx_export import ensure_minilm_onnx

    return OnnxBiEncoder(ensure_minilm_onnx(home or default_home()), name="minilm")
